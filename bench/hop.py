"""What one hop of a lead costs (`make bench-hop`): a consumer reads a record, publishes one, and
commits, at fixed rates, as each service on a lead's path does.

Every lead crosses several such hops (intake -> dedup -> scoring -> auction -> delivery, the bids
back, the ledger reading them all), and bench/sustained.py puts most of the whole's CPU in the
services' and the broker's handling of those messages rather than in their own logic. This bench
measures one hop alone, in one run, on one machine, against the embedded broker (tansu) or, with
`--broker kafka`, one Apache Kafka broker (both without idempotence, so like for like):
  * leadx: leadx.platform.kafka's EventConsumer (a task per record, same-key order, commits of
    finished records every commit interval, a span) whose handler awaits EventProducer.publish, as
    the services do;
  * leadx-commit-each: the same with a commit after every fetch (KAFKA_COMMIT_INTERVAL_MS=0), as
    the consumer committed before it had an interval;
  * raw: the same work with bare aiokafka (getmany, the fetch's records sent together and their
    acknowledgements awaited, one commit a fetch), the baseline of what the framework adds;
  * wake: an event loop woken by a timer once per record and doing nothing else, the baseline of
    what merely waking a process costs on this machine.
The hop runs in a process of its own (its CPU measured apart from the feeder's, this process,
which publishes the records open loop at each rate); per mode and rate: CPU per record of the hop,
of the broker and of the feeder, and the machine's context switches per record (/proc/stat).
Each hop's and the broker's cores at rest are measured first (not the waker's: it never rests); the
per-record figures are gross (at-rest polling included), with the at-rest share said beside them.
A rate the hop did not keep up with (its records not finished within the rate's time) is flagged:
its figures are those of a backlog handled in batches, not of that rate.
Figures are printed and written to bench/results/hop.json.
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import signal
import sys
import tempfile
import time
from multiprocessing.sharedctypes import Synchronized
from pathlib import Path

import psutil
import uvloop
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from loadgen import CpuMeter, rate_list, write_results  # noqa: E402

from leadx.contracts import topics  # noqa: E402
from leadx.contracts.events.v1 import events_pb2 as ev  # noqa: E402
from leadx.dev.stack import BROKERS, LocalStack, fetch_min_bytes_for  # noqa: E402
from leadx.platform.config import DEFAULT_COMMIT_INTERVAL_MS, DEFAULT_FETCH_MIN_BYTES, KafkaSettings  # noqa: E402
from leadx.platform.kafka.admin import ensure_topics  # noqa: E402
from leadx.platform.kafka.consumer import EventConsumer  # noqa: E402
from leadx.platform.kafka.envelope import Envelope  # noqa: E402
from leadx.platform.kafka.producer import EventProducer  # noqa: E402
from leadx.platform.telemetry import setup_tracing  # noqa: E402

MODES = ("leadx", "leadx-commit-each", "raw", "wake")
IN, OUT = topics.LEAD_SUBMITTED, topics.LEAD_VERIFIED
GROUP = "bench-hop"


def settings(bootstrap: str, partitions: int, mode: str,
             fetch_min_bytes: int = DEFAULT_FETCH_MIN_BYTES) -> KafkaSettings:
    """The services' own defaults (fetch wait 25 ms, no idempotence on tansu); each mode has topics
    and a group of its own (its name as their prefix), so none starts behind another's records."""
    return KafkaSettings(bootstrap_servers=bootstrap, topic_prefix=f"{mode}-", partitions=partitions,
                         replication_factor=1, idempotence=False, fetch_min_bytes=fetch_min_bytes,
                         # The consumer as it was before its commit interval: a commit after every fetch.
                         commit_interval_ms=0 if mode == "leadx-commit-each" else DEFAULT_COMMIT_INTERVAL_MS)


def a_lead(n: int) -> ev.Lead:
    """A lead of the size the services pass on (twenty fields)."""
    return ev.Lead(lead_id=f"L{n:09d}", seller_id="s_1", vertical="auto",
                   fields={f"field_{i}": f"value {i} of lead {n}" for i in range(20)})


# --- the hop, in a process of its own -------------------------------------------------------------

def serve(mode: str, bootstrap: str, partitions: int, rate: float, handled: Synchronized,
          fetch_min_bytes: int) -> None:
    """Run one hop until SIGTERM, counting the records it finished in `handled` (shared memory, so
    reading the count costs the hop nothing)."""
    uvloop.install()
    asyncio.run(_serve(mode, bootstrap, partitions, rate, handled, fetch_min_bytes))


async def _serve(mode: str, bootstrap: str, partitions: int, rate: float, handled: Synchronized,
                 fetch_min_bytes: int) -> None:
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    if mode in ("leadx", "leadx-commit-each"):
        await _leadx_hop(settings(bootstrap, partitions, mode, fetch_min_bytes), handled, stop)
    elif mode == "raw":
        await _raw_hop(settings(bootstrap, partitions, mode, fetch_min_bytes), handled, stop)
    else:
        await _wake(rate, handled, stop)


async def _leadx_hop(kafka: KafkaSettings, handled: Synchronized, stop: asyncio.Event) -> None:
    setup_tracing("bench-hop")  # as a service with no exporter: spans carry trace ids, not recorded
    producer = EventProducer(kafka, "bench-hop")
    await producer.start()

    async def handle(envelope: Envelope) -> None:
        submitted: ev.LeadSubmitted = envelope.message
        await producer.publish(OUT, envelope.key, ev.LeadVerified(lead=submitted.lead))
        handled.value += 1

    consumer = EventConsumer(kafka, GROUP, {IN: ev.LeadSubmitted}, handle)
    await consumer.start()
    await stop.wait()
    await consumer.stop()
    await producer.stop()


async def _raw_hop(kafka: KafkaSettings, handled: Synchronized, stop: asyncio.Event) -> None:
    # The linger leadx's hop has (KAFKA_PRODUCER_LINGER_MS), so the two differ only in the framework.
    producer = AIOKafkaProducer(bootstrap_servers=kafka.bootstrap_servers, acks="all",
                                linger_ms=kafka.producer_linger_ms)
    consumer = AIOKafkaConsumer(topics.name(kafka.topic_prefix, IN), bootstrap_servers=kafka.bootstrap_servers,
                                group_id=topics.group(kafka.topic_prefix, GROUP), enable_auto_commit=False,
                                auto_offset_reset="earliest", fetch_max_wait_ms=kafka.fetch_max_wait_ms,
                                fetch_min_bytes=kafka.fetch_min_bytes)
    out = topics.name(kafka.topic_prefix, OUT)
    await producer.start()
    await consumer.start()
    while not stop.is_set():
        batch = await consumer.getmany(timeout_ms=100)
        # Each fetch's records sent together and their acknowledgements awaited before the commit,
        # as the leadx consumer's concurrent handlers do (one send awaited at a time cannot keep up
        # past about 400 records a second here).
        sends = [await producer.send(out, ev.LeadVerified(lead=ev.LeadSubmitted.FromString(record.value).lead)
                                     .SerializeToString(), key=record.key)
                 for records in batch.values() for record in records]
        await asyncio.gather(*sends)
        handled.value += len(sends)
        if batch:
            await consumer.commit()
    await consumer.stop()
    await producer.stop()


async def _wake(rate: float, handled: Synchronized, stop: asyncio.Event) -> None:
    """Woken by a timer once per record's interval, nothing else: the cost of a wake-up alone."""
    started, n = time.perf_counter(), 0
    while not stop.is_set():  # on schedule, as the feeder publishes
        n += 1
        await asyncio.sleep(max(0.0, started + n / rate - time.perf_counter()))
        handled.value += 1


# --- the feeder and the measurements --------------------------------------------------------------

def context_switches() -> int:
    with open("/proc/stat") as stat:
        return next(int(line.split()[1]) for line in stat if line.startswith("ctxt "))


async def feed(producer: AIOKafkaProducer | None, target: str, rate: float, count: int, first: int) -> None:
    """Publish `count` leads open loop at `rate` (each on its schedule, whatever the answers take)."""
    started = time.perf_counter()
    sends = []
    for i in range(count):
        delay = started + i / rate - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        if producer is not None:
            value = ev.LeadSubmitted(lead=a_lead(first + i)).SerializeToString()
            sends.append(asyncio.ensure_future(producer.send_and_wait(target, value, key=f"k{first + i}".encode())))
    await asyncio.gather(*sends)


async def wait_for(handled: Synchronized, target: int, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while handled.value < target:
        if time.monotonic() > deadline:
            raise RuntimeError(f"the hop finished {handled.value} of {target} records in {timeout_s:.0f} s")
        await asyncio.sleep(0.05)


async def measure_mode(mode: str, args, bootstrap: str, broker: psutil.Process, quiet: bool = False) -> dict:
    spawn = multiprocessing.get_context("spawn")  # a fresh interpreter, like a service
    handled = spawn.Value("q", 0, lock=False)
    hop = spawn.Process(target=serve, args=(mode, bootstrap, args.partitions, max(args.rates), handled,
                                            args.fetch_min_bytes), daemon=True)
    hop.start()
    hop_process = psutil.Process(hop.pid)
    producer = None
    target = topics.name(settings(bootstrap, args.partitions, mode).topic_prefix, IN)
    if mode != "wake":
        producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", linger_ms=2)
        await producer.start()
    try:
        fed = 0
        if producer is not None:  # joined its group and warm: a few records through it first
            await feed(producer, target, 50, 50, fed)
            fed += 50
            await wait_for(handled, fed, 60)
        await asyncio.sleep(2)  # the group settled
        # A waker never rests: its "at rest" would be its run.
        rest = {"hop": 0.0, "broker": 0.0} if mode == "wake" else await at_rest(hop_process, broker, args.rest_seconds)
        rows = []
        for rate in args.rates:
            count = int(rate * args.seconds)
            meter = CpuMeter({"hop": hop_process, "broker": broker, "feeder": psutil.Process()})
            switches, handled_before = context_switches(), handled.value
            if mode == "wake":
                await asyncio.sleep(args.seconds)
                count = handled.value - handled_before
            else:
                await feed(producer, target, rate, count, fed)
                fed += count
                await wait_for(handled, fed, 120)
            used, switches = meter.stop(), context_switches() - switches
            elapsed = time.perf_counter() - meter.started
            # Open loop: a hop that kept up finished its records within the rate's time (and a
            # little for the last ones); one that did not was measured on a backlog, in batches.
            row = {"rate": rate, "records": count, "seconds": round(elapsed, 2),
                   "kept_up": elapsed <= 1.05 * args.seconds + 0.5,
                   "hop_cpu_ms_per_record": round(1000 * used["hop_cpu_s"] / count, 3),
                   "of_it_at_rest_ms": round(1000 * rest["hop"] * elapsed / count, 3),
                   "broker_cpu_ms_per_record": round(1000 * used["broker_cpu_s"] / count, 3),
                   "broker_at_rest_ms": round(1000 * rest["broker"] * elapsed / count, 3),
                   "feeder_cpu_ms_per_record": round(1000 * used["feeder_cpu_s"] / count, 3),
                   "context_switches_per_record": round(switches / count, 1)}
            rows.append(row)
            if quiet:
                continue
            print(f"  {mode:17} {rate:6.0f}/s: hop {row['hop_cpu_ms_per_record']:.3f} ms a record "
                  f"({row['of_it_at_rest_ms']:.3f} at rest), broker {row['broker_cpu_ms_per_record']:.3f} "
                  f"({row['broker_at_rest_ms']:.3f}), feeder {row['feeder_cpu_ms_per_record']:.3f}; "
                  f"{row['context_switches_per_record']} context switches a record"
                  f"{'' if row['kept_up'] else f'; DID NOT KEEP UP ({elapsed:.1f} s)'}", flush=True)
        return {"at_rest_cores": rest, "rates": rows}
    finally:
        if producer is not None:
            await producer.stop()
        hop.terminate()
        hop.join(30)
        if hop.is_alive():
            hop.kill()
            hop.join()


async def at_rest(hop: psutil.Process, broker: psutil.Process, seconds: float) -> dict[str, float]:
    meter = CpuMeter({"hop": hop, "broker": broker})
    await asyncio.sleep(seconds)
    used = meter.stop()
    return {"hop": used["hop_core_share"], "broker": used["broker_core_share"]}


async def run(args) -> dict:
    with tempfile.TemporaryDirectory(prefix="leadx-hop-") as run_dir:
        # The broker only (and the stack's SQLite schema, unused): no service of the stack runs, so
        # no Redis (the URL is never dialled).
        stack = LocalStack(Path(run_dir), broker=args.broker, redis_url="redis://unused", partitions=args.partitions)
        try:
            await asyncio.to_thread(stack.start_infra)  # it runs an event loop of its own (Kafka's readiness)
            bootstrap = stack.kafka_bootstrap or ""
            for mode in args.modes:
                if mode != "wake":
                    await ensure_topics(settings(bootstrap, args.partitions, mode), (IN, OUT))
            [broker_process] = [process.process for process in stack.infra if process.name == "broker"]
            broker = psutil.Process(broker_process.pid)
            measured = [mode for mode in args.modes if mode != "wake"]
            if measured and args.warmup > 0:
                # A JVM broker compiles its hot paths in its first seconds: whichever mode came first
                # would pay for it. The first mode at the highest rate first, not kept.
                print(f"warm-up: {measured[0]} at {max(args.rates):g}/s for {args.warmup:g} s (not kept)", flush=True)
                await measure_mode(measured[0], argparse.Namespace(
                    **{**vars(args), "rates": [max(args.rates)], "seconds": args.warmup, "rest_seconds": 0.5}),
                    bootstrap, broker, quiet=True)
            results = {}
            for mode in args.modes:
                print(f"{mode}:", flush=True)
                if mode != "wake":
                    results[mode] = await measure_mode(mode, args, bootstrap, broker)
                    continue
                # A waker wakes at one rate: one process per rate.
                rows = [await measure_mode(mode, argparse.Namespace(**{**vars(args), "rates": [rate]}), bootstrap,
                                           broker)
                        for rate in args.rates]
                results[mode] = {"at_rest_cores": rows[0]["at_rest_cores"], "rates": [r["rates"][0] for r in rows]}
            return results
        finally:
            stack.stop()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rates", type=rate_list, default=rate_list("80,200,500,1000"),
                        help="records per second, comma-separated (default 80,200,500,1000)")
    parser.add_argument("--seconds", type=float, default=15.0, help="each rate's length (default 15)")
    parser.add_argument("--rest-seconds", type=float, default=5.0, help="the at-rest measure's length")
    parser.add_argument("--partitions", type=int, default=6, help="of each topic (the services' default, 6)")
    parser.add_argument("--warmup", type=float, default=10.0,
                        help="seconds of the first mode at the highest rate before measuring, not kept (default 10)")
    parser.add_argument("--fetch-min-bytes", type=int, default=None,
                        help="the consumers' KAFKA_FETCH_MIN_BYTES (default: as the local stack runs the"
                             " services on that broker, 1 on tansu, 65536 on Apache Kafka)")
    parser.add_argument("--broker", choices=BROKERS, default="tansu",
                        help="tansu (the embedded broker) or kafka (one Apache Kafka broker from its jars)")
    parser.add_argument("--modes", type=lambda text: [m for m in text.split(",") if m], default=list(MODES),
                        help=f"comma-separated, of {', '.join(MODES)}")
    args = parser.parse_args()
    if args.fetch_min_bytes is None:
        args.fetch_min_bytes = fetch_min_bytes_for(args.broker)
    unknown = [mode for mode in args.modes if mode not in MODES]
    if unknown:
        parser.error(f"unknown mode(s) {unknown}; expected {MODES}")
    uvloop.install()
    results = asyncio.run(run(args))
    write_results({"modes": results}, args, ROOT / "bench" / "results" / "hop.json", ROOT)
    return 0


if __name__ == "__main__":
    sys.exit(main())
