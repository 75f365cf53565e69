"""Benchmark of the seller gateway alone (`make bench-intake`).

Measures, in one run and on one machine, beside a bare Starlette + uvicorn JSON endpoint under the
same load generator:
  * PING and POST requests per second at a fixed concurrency (32), with one and with two intake
    workers (separate processes; the load generator spreads requests round-robin);
  * POST requests per second with many in flight (256, `--busy-concurrency`), one worker, beside
    bare Starlette at the same concurrency: at 32 in flight a POST's rate is bound by the verdict's
    two broker hops (latency), with many in flight by CPU. That phase also records the CPU each
    process spent per POST (intake, dedup, broker, Redis, the load generator), and the bare
    server's per request: the budget the goal leaves on this machine;
  * PING latency (p50 / p99) at fixed offered rates (500 and 1,000/s), open loop, on one worker.
A PING verifies its fields, checks the SSN in Redis and signs a token; a POST verifies the whole lead,
publishes lead.submitted (acks=all) and waits for the dedup service's verdict, so dedup runs too.
Rate limits are off. Figures are printed and written to bench/results/intake.json.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import sys
import tempfile
from pathlib import Path

import psutil

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from loadgen import (
    CpuMeter,
    closed_loop,
    open_loop,
    percentile,
    rate_list,
    start_bare_starlette,
    write_results,
)

from leadx.accounts import accounts
from leadx.dev.demo.consumers import make_consumer, ping_subset
from leadx.dev.stack import LocalStack
from leadx.platform.db.engine import make_engine, session_factory

RESULTS = ROOT / "bench" / "results" / "intake.json"
POST_GOAL = 0.40  # POSTs/s on one worker as a share of bare Starlette's requests/s (bench/README.md)


def by_status(answers: list) -> dict[str, int]:
    """HTTP status -> answers. A 409 is a duplicate: the random consumers repeat an SSN now and then."""
    codes: dict[str, int] = {}
    for answer in answers:  # closed_loop's (status, body, seconds), or open_loop's Answer
        codes[str(answer[0])] = codes.get(str(answer[0]), 0) + 1
    return codes


def summarise(run: dict) -> dict:
    latencies = [seconds * 1000 for _, _, seconds in run["answers"]]
    codes = by_status(run["answers"])
    return {"requests_per_s": round(run["rate"]), "p50_ms": round(percentile(latencies, 50), 1),
            "p99_ms": round(percentile(latencies, 99), 1), "answers_by_status": codes}


def run(args) -> dict:
    rng = random.Random(args.seed)
    results: dict = {}
    bare, bare_port, _ = start_bare_starlette()
    try:
        bare_url = f"http://127.0.0.1:{bare_port}/v1/post"
        print("baseline: bare Starlette JSON POST ...", flush=True)
        results["baseline_starlette"] = summarise(asyncio.run(
            closed_loop(bare_url, {}, [make_consumer(rng) for _ in range(args.requests)], args.concurrency)))
        print(f"baseline: bare Starlette JSON POST, {args.busy_concurrency} in flight ...", flush=True)
        procs = {"server": psutil.Process(bare.pid), "load_generator": psutil.Process()}
        results["baseline_starlette_busy"] = busy_loop(bare_url, {}, rng, args, procs)
    finally:
        bare.terminate()
        bare.wait(10)

    stack = LocalStack(Path(tempfile.mkdtemp(prefix="leadx-bench-intake-")), topic_prefix="benchi.", partitions=6)
    stack.start_infra()
    engine = make_engine(stack.database_url)
    with session_factory(engine)() as session:
        api_key = accounts.create_seller(session, "bench seller").api_key
    engine.dispose()
    env = {"INTAKE_RATE_LIMIT_PER_SECOND": "0", "LOG_LEVEL": "WARNING"}
    stack.add_service("dedup", LOG_LEVEL="WARNING")
    stack.add_service("intake", **env)
    stack.add_service("intake", instance="intake-2", **env)
    headers = {"Authorization": f"Bearer {api_key}"}
    try:
        stack.start_services(["dedup", "intake"])
        stack.wait_ready(["dedup", "intake"], timeout_s=120)
        one = [f"http://127.0.0.1:{stack.port_of('intake', 'INTAKE_PORT')}"]
        results["one_worker"] = measure(one, headers, rng, args)
        print(f"1 intake worker: POST closed loop, {args.busy_concurrency} in flight ...", flush=True)
        procs = {name: psutil.Process(stack.services[name].process.pid) for name in ("intake", "dedup")}
        procs |= {process.name: psutil.Process(process.process.pid) for process in stack.infra}
        procs["load_generator"] = psutil.Process()
        results["one_worker"]["post_busy"] = busy_loop(one[0] + "/v1/post", headers, rng, args, procs)
        results["ping_fixed_rate"] = []
        for rate in args.ping_rates:
            print(f"PING latency at a fixed {rate:g} req/s for {args.seconds:g} s ...", flush=True)
            offered = [ping_subset(make_consumer(rng)) for _ in range(int(rate * args.seconds))]
            answers = asyncio.run(open_loop([u + "/v1/ping" for u in one], headers, offered, rate))
            times = [answer.seconds * 1000 for answer in answers]
            results["ping_fixed_rate"].append({
                "offered_per_s": rate, "requests": len(answers),
                "p50_ms": round(percentile(times, 50), 1), "p99_ms": round(percentile(times, 99), 1),
                "max_ms": round(max(times), 1), "answers_by_status": by_status(answers),
            })
        stack.start_services(["intake-2"])
        stack.wait_ready(["intake-2"], timeout_s=120)
        two = one + [f"http://127.0.0.1:{stack.port_of('intake-2', 'INTAKE_PORT')}"]
        results["two_workers"] = measure(two, headers, rng, args)
    finally:
        stack.stop()
    return results


def busy_loop(url: str, headers: dict, rng: random.Random, args, procs: dict[str, psutil.Process]) -> dict:
    """POSTs with many in flight, and the CPU each process spent per request meanwhile."""
    bodies = [make_consumer(rng) for _ in range(args.busy_requests)]
    meter = CpuMeter(procs)
    figures = summarise(asyncio.run(closed_loop(url, headers, bodies, args.busy_concurrency)))
    usage = meter.stop()
    figures["cpu_us_per_request"] = {name: round(usage[f"{name}_cpu_s"] * 1e6 / len(bodies)) for name in procs}
    figures["machine_busy_cores"] = usage["machine_busy_cores"]
    return figures


def judge(results: dict, cores: int) -> dict:
    """The POST goal at the same concurrency and best against best, and what the goal leaves per
    POST: the CPU every process of the path may spend together on this machine's cores."""
    bare = results["baseline_starlette"]["requests_per_s"]
    bare_busy = results["baseline_starlette_busy"]["requests_per_s"]
    post = results["one_worker"]["post"]["requests_per_s"]
    busy = results["one_worker"]["post_busy"]
    best_bare, best_post = max(bare, bare_busy), max(post, busy["requests_per_s"])
    spent = busy["cpu_us_per_request"]
    fixed = sum(spent.get(name, 0) for name in ("load_generator", "broker", "redis"))
    return {
        "post_ratio_at_32": round(post / bare, 3),
        "post_ratio_busy": round(busy["requests_per_s"] / bare_busy, 3),
        "post_ratio_best_to_best": round(best_post / best_bare, 3),
        "goal": POST_GOAL,
        "met": best_post / best_bare >= POST_GOAL,
        "cpu_us_per_post_spent": sum(spent.values()),
        "cpu_us_per_post_the_goal_allows": round(cores * 1e6 / (POST_GOAL * best_bare)),
        "cpu_us_per_post_load_generator_broker_redis": fixed,
        "intake_cpu_us_per_post_vs_bare_server": [spent["intake"],
                                                  results["baseline_starlette_busy"]["cpu_us_per_request"]["server"]],
    }


def measure(bases: list[str], headers: dict, rng: random.Random, args) -> dict:
    label = f"{len(bases)} intake worker{'s' if len(bases) > 1 else ''}"
    print(f"{label}: PING closed loop ...", flush=True)
    pings = [ping_subset(make_consumer(rng)) for _ in range(args.requests)]
    ping = summarise(asyncio.run(closed_loop([b + "/v1/ping" for b in bases], headers, pings, args.concurrency)))
    print(f"{label}: POST closed loop ...", flush=True)
    leads = [make_consumer(rng) for _ in range(args.requests)]
    post = summarise(asyncio.run(closed_loop([b + "/v1/post" for b in bases], headers, leads, args.concurrency)))
    return {"ping": ping, "post": post}


def report(results: dict) -> None:
    bare = results["baseline_starlette"]["requests_per_s"]
    busy, bare_busy = results["one_worker"]["post_busy"], results["baseline_starlette_busy"]
    print()
    print(f"{'figure':44} {'leadx':>8} {'bare Starlette':>15} {'ratio':>7}")
    for workers in ("one_worker", "two_workers"):
        for kind in ("ping", "post"):
            figures = results[workers][kind]
            label = f"{kind.upper()} /s, {workers.replace('_', ' ')} (p50 {figures['p50_ms']} ms)"
            print(f"{label:44} {figures['requests_per_s']:>8} {bare:>15} {figures['requests_per_s'] / bare:>7.2f}")
    label = f"POST /s, one worker, {results['parameters']['busy_concurrency']} in flight (p50 {busy['p50_ms']} ms)"
    print(f"{label:44} {busy['requests_per_s']:>8} {bare_busy['requests_per_s']:>15} "
          f"{busy['requests_per_s'] / bare_busy['requests_per_s']:>7.2f}")
    for fixed in results["ping_fixed_rate"]:
        print(f"PING at a fixed {fixed['offered_per_s']:g} req/s, one worker: p50 {fixed['p50_ms']} ms,"
              f" p99 {fixed['p99_ms']} ms, max {fixed['max_ms']} ms, answers by status {fixed['answers_by_status']}")
    spent = ", ".join(f"{name} {us}" for name, us in busy["cpu_us_per_request"].items())
    print(f"CPU per POST with many in flight, us: {spent} (bare Starlette: "
          + ", ".join(f"{name} {us}" for name, us in bare_busy["cpu_us_per_request"].items()) + ")")
    verdict = results["judgement"]
    print(f"POST goal ({verdict['goal']:.2f} of bare Starlette, best against best): "
          f"{verdict['post_ratio_best_to_best']:.2f}, {'met' if verdict['met'] else 'not met'}. "
          f"The goal allows {verdict['cpu_us_per_post_the_goal_allows']} us of CPU per POST on this machine's "
          f"cores, all processes together; spent {verdict['cpu_us_per_post_spent']}, of which the load "
          f"generator, broker and Redis {verdict['cpu_us_per_post_load_generator_broker_redis']}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=3000, help="requests per closed-loop measurement")
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--busy-concurrency", type=int, default=256,
                        help="requests in flight for the CPU-bound POST figure (default 256)")
    parser.add_argument("--busy-requests", type=int, default=12000,
                        help="requests for the CPU-bound POST figure and its baseline (default 12,000)")
    parser.add_argument("--ping-rates", type=rate_list, default=[500.0, 1000.0],
                        help="offered PINGs/s for the latency test, comma-separated (default 500,1000)")
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    results = run(args)
    results["judgement"] = judge(results, os.cpu_count() or 1)
    report(json.loads(write_results(results, args, RESULTS, ROOT).read_text()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
