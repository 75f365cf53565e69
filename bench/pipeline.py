"""End-to-end benchmark of the exchange on this machine (`make bench`).

Measures, in one run and on one machine:
  * baselines: raw aiokafka produce to the same broker (awaiting each send, and pipelined), and a
    bare Starlette JSON POST endpoint under the same load generator as the intake;
  * intake: POSTs answered per second at a fixed concurrency (each answer waits for the dedup verdict);
  * end to end: leads per second from the first POST to the last sale.closed, with a check that every
    accepted lead ends in exactly one sale.closed;
  * seller response time at a fixed offered rate (open loop): p50 / p99 / max, and the share of
    answers given synchronously (the rest are 202 + status URL).
Figures are printed beside their baselines and written to bench/results/pipeline.json.
The load generator shares the machine's cores with the broker, Redis and all six services.

`--broker kafka` measures everything twice in one run, on tansu and then on one Apache Kafka broker
(KRaft, idempotent producers, as `make run` on Kafka), prints the two side by side and writes
bench/results/pipeline-kafka.json: the cost of the real broker on this machine.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import sys
import tempfile
import time
from pathlib import Path

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from loadgen import (
    closed_loop,
    open_loop,
    percentile,
    rate_list,
    start_bare_starlette,
    write_results,
)

from leadx.accounts import accounts, partnerships
from leadx.contracts import topics
from leadx.contracts.events.v1 import events_pb2 as ev
from leadx.dev.demo.buyers import BuyerBehaviour, BuyerServer
from leadx.dev.demo.consumers import make_consumer
from leadx.dev.stack import LOCAL_BUYER_URLS, SERVICES, LocalStack
from leadx.platform.db.engine import make_engine, session_factory

RESULTS = ROOT / "bench" / "results" / "pipeline.json"
KAFKA_RESULTS = ROOT / "bench" / "results" / "pipeline-kafka.json"


# ---------------------------------------------------------------- baselines

async def raw_produce(bootstrap: str, awaited: int, pipelined: int) -> dict:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", linger_ms=2)
    await producer.start()
    payload = os.urandom(400)  # about the size of a LeadSubmitted
    try:
        start = time.perf_counter()
        for i in range(awaited):
            await producer.send_and_wait("bench.raw", payload, key=str(i).encode())
        awaited_rate = awaited / (time.perf_counter() - start)
        start = time.perf_counter()
        futures = [await producer.send("bench.raw", payload, key=str(i).encode()) for i in range(pipelined)]
        await asyncio.gather(*futures)
        pipelined_rate = pipelined / (time.perf_counter() - start)
    finally:
        await producer.stop()
    return {"awaited_msgs_per_s": round(awaited_rate), "pipelined_msgs_per_s": round(pipelined_rate)}


async def wait_for_sales(bootstrap: str, topic: str, lead_ids: set[str], timeout_s: float) -> dict[str, list]:
    consumer = AIOKafkaConsumer(topic, bootstrap_servers=bootstrap, group_id=None, auto_offset_reset="earliest",
                                fetch_max_wait_ms=10)
    await consumer.start()
    seen: dict[str, list] = {}
    deadline = time.perf_counter() + timeout_s
    try:
        while time.perf_counter() < deadline and not lead_ids <= seen.keys():
            batch = await consumer.getmany(timeout_ms=200)
            for records in batch.values():
                for record in records:
                    sale = ev.SaleClosed.FromString(record.value)
                    headers = dict(record.headers)
                    seen.setdefault(sale.lead_id, []).append((headers.get("event-id"), record.timestamp))
    finally:
        await consumer.stop()
    return seen


# ---------------------------------------------------------------- the exchange

def start_exchange(run_dir: Path, window_s: float, broker: str) -> tuple[LocalStack, BuyerServer, str]:
    # On Kafka as production runs it: idempotent producers (tansu has no InitProducerId).
    stack = LocalStack(run_dir, broker=broker, topic_prefix="bench.", partitions=6, auction_window_s=window_s,
                       extra_env={"KAFKA_IDEMPOTENCE": "true"} if broker == "kafka" else {})
    stack.start_infra()
    engine = make_engine(stack.database_url)
    buyers = BuyerServer()
    with session_factory(engine)() as session:
        seller = accounts.create_seller(session, "bench seller")
        for name, bid in (("alpha", 1500), ("beta", 1200)):
            buyers.add(name, BuyerBehaviour(bid=bid, accept=True))
            created = accounts.create_buyer(session, name, buyers.ping_url(name), buyers.post_url(name),
                                            urls=LOCAL_BUYER_URLS)
            partnerships.add_partnership(session, seller.id, created.id)
    engine.dispose()
    buyers.start()
    for name in SERVICES:
        stack.add_service(name, LOG_LEVEL="WARNING")
    return stack, buyers, seller.api_key


def run(args, broker: str) -> dict:
    """Every figure, on an exchange over `broker`; the same leads (the same seed) for each broker."""
    rng = random.Random(args.seed)
    run_dir = Path(tempfile.mkdtemp(prefix="leadx-bench-"))
    print(f"--- on {broker}", flush=True)
    stack, buyers, api_key = start_exchange(run_dir, args.window, broker)
    bare, bare_port, _ = start_bare_starlette()
    results: dict = {}
    try:
        print("baseline: raw aiokafka produce, acks=all ...", flush=True)
        results["baseline_produce"] = asyncio.run(raw_produce(stack.kafka_bootstrap, 2000, 20000))
        print("baseline: bare Starlette JSON POST ...", flush=True)
        bodies = [make_consumer(rng) | {"vertical": "auto_loan"} for _ in range(args.leads)]
        bare_run = asyncio.run(closed_loop(f"http://127.0.0.1:{bare_port}/v1/post", {}, bodies, args.concurrency))
        results["baseline_starlette"] = {"requests_per_s": round(bare_run["rate"]), "concurrency": args.concurrency}
        bare.terminate()
        bare.wait(10)

        stack.start_services()
        stack.wait_ready(timeout_s=120)
        url = f"http://127.0.0.1:{stack.port_of('intake', 'INTAKE_PORT')}/v1/post"
        headers = {"Authorization": f"Bearer {api_key}"}

        print(f"intake + end to end: {args.leads} distinct leads, concurrency {args.concurrency} ...", flush=True)
        leads = [make_consumer(rng) | {"min_price": 500} for _ in range(args.leads)]
        started_wall = time.time()
        intake_run = asyncio.run(closed_loop(url, headers, leads, args.concurrency))
        accepted = {body["lead_id"] for code, body, _ in intake_run["answers"] if code in (200, 202)}
        codes: dict[int, int] = {}
        for code, _, _ in intake_run["answers"]:
            codes[code] = codes.get(code, 0) + 1
        sales = asyncio.run(wait_for_sales(stack.kafka_bootstrap, topics.name("bench.", topics.SALE_CLOSED),
                                           accepted, timeout_s=120))
        missing = accepted - sales.keys()
        repeated = {lead: ids for lead, ids in sales.items() if len({i for i, _ in ids}) != 1}
        last_sale_ms = max(ts for ids in sales.values() for _, ts in ids)
        e2e_s = last_sale_ms / 1000 - started_wall
        latencies = [s * 1000 for _, _, s in intake_run["answers"]]
        results["intake_closed_loop"] = {
            "requests_per_s": round(intake_run["rate"]), "answers_by_status": codes,
            "p50_ms": round(percentile(latencies, 50), 1), "p99_ms": round(percentile(latencies, 99), 1),
        }
        results["end_to_end"] = {
            "leads": len(accepted), "sold_or_unsold": len(sales), "missing": len(missing),
            "leads_with_two_outcomes": len(repeated),
            "leads_per_s": round(len(accepted) / e2e_s, 1), "seconds_first_post_to_last_sale": round(e2e_s, 2),
            "auction_window_s": args.window,
        }

        results["fixed_rate"] = []
        for rate in args.rates:
            print(f"seller response at a fixed {rate:g} req/s for {args.seconds:g}s ...", flush=True)
            results["fixed_rate"].append(fixed_rate_phase(stack, url, headers, rng, rate, args.seconds))
    finally:
        if bare.poll() is None:
            bare.terminate()
        stack.stop()
        buyers.stop()
    return results


def fixed_rate_phase(stack: LocalStack, url: str, headers: dict, rng: random.Random, rate: float,
                     seconds: float) -> dict:
    """Offer leads at `rate` for `seconds` (open loop), then wait until each accepted one has its outcome,
    so the next phase starts on an idle pipeline and every lead is checked for exactly one outcome."""
    offered = [make_consumer(rng) for _ in range(int(rate * seconds))]
    answers = asyncio.run(open_loop(url, headers, offered, rate))
    times = [answer.seconds * 1000 for answer in answers]
    accepted = {answer.body["lead_id"] for answer in answers if answer.status in (200, 202)}
    sales = asyncio.run(wait_for_sales(stack.kafka_bootstrap, topics.name("bench.", topics.SALE_CLOSED),
                                       accepted, timeout_s=120))
    return {
        "offered_per_s": rate, "requests": len(answers),
        "p50_ms": round(percentile(times, 50), 1), "p99_ms": round(percentile(times, 99), 1),
        "max_ms": round(max(times), 1),
        "synchronous_share": round(sum(1 for answer in answers if answer.status in (200, 409)) / len(answers), 4),
        "errors_5xx": sum(1 for answer in answers if answer.status >= 500 or answer.status == 0),
        "missing": len(accepted - sales.keys()),
        "leads_with_two_outcomes": sum(1 for ids in sales.values() if len({i for i, _ in ids}) != 1),
    }


def report(results: dict) -> None:
    produce, bare = results["baseline_produce"], results["baseline_starlette"]
    intake, e2e = results["intake_closed_loop"], results["end_to_end"]
    print()
    print(f"{'figure':52} {'leadx':>10} {'baseline':>10} {'ratio':>7}")
    rows = [
        ("intake POSTs answered /s (vs bare Starlette)", intake["requests_per_s"], bare["requests_per_s"]),
        ("end-to-end leads /s (vs raw produce, awaited)", e2e["leads_per_s"], produce["awaited_msgs_per_s"]),
        ("end-to-end leads /s (vs raw produce, pipelined)", e2e["leads_per_s"], produce["pipelined_msgs_per_s"]),
    ]
    for label, ours, base in rows:
        print(f"{label:52} {ours:>10} {base:>10} {ours / base:>7.2f}")
    print(f"intake answer latency at concurrency: p50 {intake['p50_ms']} ms, p99 {intake['p99_ms']} ms;"
          f" answers {intake['answers_by_status']}")
    for fixed in results["fixed_rate"]:
        print(f"fixed {fixed['offered_per_s']:g} req/s: p50 {fixed['p50_ms']} ms, p99 {fixed['p99_ms']} ms,"
              f" max {fixed['max_ms']} ms, answered synchronously {fixed['synchronous_share']:.1%},"
              f" 5xx {fixed['errors_5xx']}; {fixed['missing']} missing, {fixed['leads_with_two_outcomes']}"
              f" with two outcomes")
    print(f"end to end: {e2e['leads']} leads, {e2e['sold_or_unsold']} with an outcome, {e2e['missing']} missing,"
          f" {e2e['leads_with_two_outcomes']} with two outcomes; {e2e['seconds_first_post_to_last_sale']} s"
          f" (auction window {e2e['auction_window_s']} s)")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--leads", type=int, default=2000)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--rates", type=rate_list, default=[25.0, 50.0, 100.0],
                        help="offered requests/s for the latency test, comma-separated (default 25,50,100)")
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--window", type=float, default=1.0, help="auction window, seconds")
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--broker", choices=("tansu", "kafka"), default="tansu",
                        help="kafka: the figures on tansu, then on one Apache Kafka broker, side by side")
    args = parser.parse_args()
    if args.broker == "tansu":
        results = run(args, "tansu")
        report(results)
        write_results(results, args, RESULTS, ROOT)
        return 0 if sound(results) else 1
    by_broker = {broker: run(args, broker) for broker in ("tansu", "kafka")}
    for broker, results in by_broker.items():
        print(f"\n=== {broker}")
        report(results)
    compare(by_broker["tansu"], by_broker["kafka"])
    all_sound = all(sound(results) for results in by_broker.values())
    write_results(by_broker, args, KAFKA_RESULTS, ROOT)  # adds the machine and parameters beside the brokers
    return 0 if all_sound else 1


def sound(results: dict) -> bool:
    """Every accepted lead had exactly one outcome, and no request got a 5xx."""
    phases = [results["end_to_end"], *results["fixed_rate"]]
    broken = any(phase["missing"] or phase["leads_with_two_outcomes"] for phase in phases)
    return not broken and not any(fixed["errors_5xx"] for fixed in results["fixed_rate"])


def compare(tansu: dict, kafka: dict) -> None:
    """The figures of the two brokers side by side, Kafka's as a share of tansu's."""
    rows = [
        ("raw produce, awaited /s", tansu["baseline_produce"]["awaited_msgs_per_s"],
         kafka["baseline_produce"]["awaited_msgs_per_s"]),
        ("raw produce, pipelined /s", tansu["baseline_produce"]["pipelined_msgs_per_s"],
         kafka["baseline_produce"]["pipelined_msgs_per_s"]),
        ("bare Starlette /s (the machine's noise)", tansu["baseline_starlette"]["requests_per_s"],
         kafka["baseline_starlette"]["requests_per_s"]),
        ("intake POSTs answered /s", tansu["intake_closed_loop"]["requests_per_s"],
         kafka["intake_closed_loop"]["requests_per_s"]),
        ("intake p99 ms at concurrency", tansu["intake_closed_loop"]["p99_ms"], kafka["intake_closed_loop"]["p99_ms"]),
        ("end-to-end leads /s", tansu["end_to_end"]["leads_per_s"], kafka["end_to_end"]["leads_per_s"]),
        *[(f"p99 ms at {t['offered_per_s']:g} req/s", t["p99_ms"], k["p99_ms"])
          for t, k in zip(tansu["fixed_rate"], kafka["fixed_rate"], strict=True)],
    ]
    print(f"\n{'figure':42} {'tansu':>10} {'kafka':>10} {'kafka/tansu':>12}")
    for label, on_tansu, on_kafka in rows:
        print(f"{label:42} {on_tansu:>10} {on_kafka:>10} {on_kafka / on_tansu if on_tansu else 0:>12.2f}")


if __name__ == "__main__":
    sys.exit(main())
