"""Benchmark of the seller gateway alone (`make bench-intake`).

Measures, in one run and on one machine, beside a bare Starlette + uvicorn JSON endpoint under the
same load generator:
  * PING and POST requests per second at a fixed concurrency, with one and with two intake workers
    (separate processes; the load generator spreads requests round-robin);
  * PING latency (p50 / p99) at fixed offered rates (500 and 1,000/s), open loop, on one worker.
A PING verifies its fields, checks the SSN in Redis and signs a token; a POST verifies the whole lead,
publishes lead.submitted (acks=all) and waits for the dedup service's verdict, so dedup runs too.
Rate limits are off. Figures are printed and written to bench/results/intake.json.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from leadx import accounts  # noqa: E402
from leadx.db.engine import create_schema, make_engine, session_factory  # noqa: E402
from leadx.demo.consumers import make_consumer, ping_subset  # noqa: E402
from leadx.devstack import LocalStack  # noqa: E402
from loadgen import (  # noqa: E402
    closed_loop, open_loop, percentile, rate_list, start_bare_starlette, write_results,
)

RESULTS = ROOT / "bench" / "results" / "intake.json"


def summarise(run: dict) -> dict:
    latencies = [seconds * 1000 for _, _, seconds in run["answers"]]
    codes: dict[str, int] = {}
    for code, _, _ in run["answers"]:
        codes[str(code)] = codes.get(str(code), 0) + 1
    return {"requests_per_s": round(run["rate"]), "p50_ms": round(percentile(latencies, 50), 1),
            "p99_ms": round(percentile(latencies, 99), 1), "answers_by_status": codes}


def run(args) -> dict:
    rng = random.Random(args.seed)
    results: dict = {}
    bare, bare_port, _ = start_bare_starlette()
    try:
        bodies = [make_consumer(rng) for _ in range(args.requests)]
        print("baseline: bare Starlette JSON POST ...", flush=True)
        results["baseline_starlette"] = summarise(asyncio.run(
            closed_loop(f"http://127.0.0.1:{bare_port}/v1/post", {}, bodies, args.concurrency)))
    finally:
        bare.terminate()
        bare.wait(10)

    stack = LocalStack(Path(tempfile.mkdtemp(prefix="leadx-bench-intake-")), topic_prefix="benchi.", partitions=6)
    stack.start_infra()
    engine = make_engine(stack.database_url)
    create_schema(engine)
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
        results["ping_fixed_rate"] = []
        for rate in args.ping_rates:
            print(f"PING latency at a fixed {rate:g} req/s for {args.seconds:g} s ...", flush=True)
            offered = [ping_subset(make_consumer(rng)) for _ in range(int(rate * args.seconds))]
            answers = asyncio.run(open_loop([u + "/v1/ping" for u in one], headers, offered, rate))
            times = [seconds * 1000 for _, _, seconds in answers]
            results["ping_fixed_rate"].append({
                "offered_per_s": rate, "requests": len(answers),
                "p50_ms": round(percentile(times, 50), 1), "p99_ms": round(percentile(times, 99), 1),
                "max_ms": round(max(times), 1), "non_200": sum(1 for code, _, _ in answers if code != 200),
            })
        stack.start_services(["intake-2"])
        stack.wait_ready(["intake-2"], timeout_s=120)
        two = one + [f"http://127.0.0.1:{stack.port_of('intake-2', 'INTAKE_PORT')}"]
        results["two_workers"] = measure(two, headers, rng, args)
    finally:
        stack.stop()
    return results


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
    print()
    print(f"{'figure':44} {'leadx':>8} {'bare Starlette':>15} {'ratio':>7}")
    for workers in ("one_worker", "two_workers"):
        for kind in ("ping", "post"):
            figures = results[workers][kind]
            label = f"{kind.upper()} /s, {workers.replace('_', ' ')} (p50 {figures['p50_ms']} ms)"
            print(f"{label:44} {figures['requests_per_s']:>8} {bare:>15} {figures['requests_per_s'] / bare:>7.2f}")
    for fixed in results["ping_fixed_rate"]:
        print(f"PING at a fixed {fixed['offered_per_s']:g} req/s, one worker: p50 {fixed['p50_ms']} ms,"
              f" p99 {fixed['p99_ms']} ms, max {fixed['max_ms']} ms, {fixed['non_200']} not 200")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=3000, help="requests per closed-loop measurement")
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--ping-rates", type=rate_list, default=[500.0, 1000.0],
                        help="offered PINGs/s for the latency test, comma-separated (default 500,1000)")
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    results = run(args)
    report(results)
    write_results(results, args, RESULTS, ROOT)
    return 0


if __name__ == "__main__":
    sys.exit(main())
