"""Benchmark of duplicate protection (`make bench-dedup`).

In one run, on one machine, against a private Redis (valkey) that holds nothing else:
  * loads N stored identities (default 10 million: a third each SSN, email and home phone, so
    N / 3 consumers) across B buyers (default 1,000): every consumer has its platform record and
    was posted to one to three buyers, at times spread over the last 29 days;
  * Redis memory per stored identity (used_memory after the load minus before, over N);
  * lead checks per second by one dedup worker's code path: the three identities keyed with
    HMAC-SHA256 from the raw fields, then DedupStore.check_submission (platform and per-buyer
    scopes, recording), `--in-flight` at a time as the dedup worker's Kafka consumer runs them;
    half the leads are consumers already stored (duplicates), half are new;
  * Redis round trips per lead (pipelines sent over leads checked), at that concurrency and one at
    a time, and the script calls per lead counted by Redis itself;
  * beside redis-benchmark's GET rate against the same Redis (50 clients, and pipelined 16 deep).
The Redis is the machine's `redis-server` when it has one (a standard build, with jemalloc, as a
deployment runs), else the embedded valkey `make run` uses (built with libc malloc: about half as
fast at 10 million identities, see bench/README.md); `--redis-server` picks another. Its version and
allocator are recorded with the figures, which are printed and written to bench/results/dedup.json.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import random
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import uvloop

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from loadgen import write_results

from leadx.dedup.store import DEFAULT_BUCKET_BITS, DedupStore, encode_record
from leadx.dev.stack import free_port, redis_binary, wait_for_port
from leadx.leads import pii
from leadx.platform.redis.client import connect
from leadx.platform.utc_days import DAY_MS

RESULTS = ROOT / "bench" / "results" / "dedup.json"
SECRET = b"bench-dedup-secret-not-a-real-one"
VERTICAL = "auto_loan"
WINDOW_MS = 30 * DAY_MS
LOAD_CHUNK = 1_000_000  # consumers per bulk-load round: few, large HSETs


def consumer_fields(n: int) -> dict[str, str]:
    return {"ssn": f"{100_000_000 + n}", "email": f"consumer{n}@bench.example", "home_phone": f"{2_000_000_000 + n}"}


def buyer_id(number: int) -> str:
    return f"b_bench{number:05d}"


async def load(store: DedupStore, consumers: int, buyers: int, now_ms: int, rng: random.Random) -> None:
    """Write the records the scripts would have written, bucket by bucket (the scripts' own path at
    20,000 a second would take minutes for 10 million; check_submission is measured afterwards)."""
    redis = store.redis
    mapping = {"next": buyers}
    for number in range(1, buyers + 1):
        mapping[f"b:{buyer_id(number)}"] = number
        mapping[f"n:{number}"] = buyer_id(number)
    await redis.hset(store.buyer_map_key, mapping=mapping)
    for start in range(0, consumers, LOAD_CHUNK):
        buckets: dict[str, dict[bytes, bytes]] = {}
        for n in range(start, min(start + LOAD_CHUNK, consumers)):
            at_s = (now_ms - rng.randrange(29 * DAY_MS)) // 1000
            platform = encode_record(0, at_s, f"L{n:09d}")
            value = platform + b"".join(  # the same time and lead for its buyers: patch the number in
                rng.randint(1, buyers).to_bytes(3, "big") + platform[3:] for _ in range(1 + n % 3))
            for identity in pii.identity_keys(SECRET, consumer_fields(n)).values():
                key, field = store.location(VERTICAL, identity)
                buckets.setdefault(key, {})[field] = value
        swept = encode_record(0, now_ms // 1000, "")[3:7]  # the bucket's last-sweep marker: today
        items = list(buckets.items())
        for at in range(0, len(items), 50_000):  # pipelines of a bounded size
            pipe = redis.pipeline(transaction=False)
            for key, fields in items[at:at + 50_000]:
                pipe.hset(key, mapping={b"": swept, **fields})  # first, where a sweep puts it
                pipe.expire(key, (WINDOW_MS // 1000) + 2 * 86_400)  # as a sweep sets it
            await pipe.execute()
        print(f"  loaded {min(start + LOAD_CHUNK, consumers):,} consumers", flush=True)


async def check_leads(store: DedupStore, leads: list[tuple[str, dict]], in_flight: int, now_ms: int) -> dict:
    """What the dedup worker does per lead, minus Kafka: key the identities, check and record."""
    async def check(lead_id: str, fields: dict) -> bool:
        identities = pii.identity_keys(SECRET, fields)
        result = await store.check_submission(lead_id, VERTICAL, identities, now_ms, WINDOW_MS)
        return result.platform_duplicate_on is not None

    await store.redis.config_resetstat()
    trips_before = store.round_trips
    started, cpu_started = time.perf_counter(), time.process_time()
    # As the worker's Kafka consumer (leadx.platform.kafka.consumer.EventConsumer) runs records: a task each, at
    # most `in_flight` at once, a new one started as soon as one finishes.
    slots = asyncio.Semaphore(in_flight)
    tasks = []
    for lead_id, fields in leads:
        await slots.acquire()
        task = asyncio.create_task(check(lead_id, fields))
        task.add_done_callback(lambda _task: slots.release())
        tasks.append(task)
    duplicates = sum(await asyncio.gather(*tasks))
    elapsed, cpu = time.perf_counter() - started, time.process_time() - cpu_started
    script = (await store.redis.info("commandstats"))["cmdstat_evalsha"]
    return {"leads": len(leads), "seconds": round(elapsed, 2), "checks_per_s": round(len(leads) / elapsed),
            "duplicates_found": duplicates,
            "worker_cpu_us_per_lead": round(cpu / len(leads) * 1e6, 1),
            "redis_cpu_us_per_lead": round(script["usec_per_call"], 1),  # the script's time in Redis
            "script_calls_per_lead": round(script["calls"] / len(leads), 3),
            "round_trips_per_lead": round((store.round_trips - trips_before) / len(leads), 4)}


def server_binary(chosen: str | None) -> str:
    """The Redis to measure: `--redis-server`, else a redis-server on PATH, else the embedded valkey."""
    return chosen or shutil.which("redis-server") or redis_binary()


def server_build(binary: str) -> dict:
    """Version and allocator, from `--version` (e.g. `Redis server v=7.0.15 ... malloc=jemalloc-5.3.0`)."""
    out = subprocess.run([binary, "--version"], capture_output=True, text=True, check=True).stdout
    fields = dict(re.findall(r"(\w+)=(\S+)", out))
    return {"binary": Path(binary).name, "server": out.split(" v=")[0].strip(), "version": fields.get("v", "?"),
            "malloc": fields.get("malloc", "?")}


def redis_benchmark(port: int, requests: int) -> dict:
    binary = shutil.which("redis-benchmark") or shutil.which("valkey-benchmark")
    if binary is None:
        return {"skipped": "no redis-benchmark on this machine"}
    rates = {}
    for label, extra in (("get_50_clients", []), ("get_50_clients_pipelined_16", ["-P", "16"])):
        out = subprocess.run([binary, "-p", str(port), "-q", "-n", str(requests), "-c", "50", "-t", "get", *extra],
                             capture_output=True, text=True, check=True).stdout
        rates[label] = round(float(re.findall(r"GET: ([\d.]+) requests per second", out)[-1]))
    return rates


async def measure(port: int, args) -> dict:
    rng = random.Random(args.seed)
    redis = connect(f"redis://127.0.0.1:{port}/0")
    store = DedupStore(redis, namespace="bench:", bucket_bits=args.bucket_bits)
    now_ms = int(time.time() * 1000)
    consumers = args.identities // 3
    results: dict = {"stored_identities": consumers * 3, "consumers": consumers, "buyers": args.buyers}
    try:
        await store.declare_intact(now_ms)  # a private Redis: its records are loaded below, in bulk
        before = (await redis.info("memory"))["used_memory"]
        started = time.perf_counter()
        await load(store, consumers, args.buyers, now_ms, rng)
        results["load_seconds"] = round(time.perf_counter() - started, 1)
        after = (await redis.info("memory"))["used_memory"]
        results["redis_used_memory_mb"] = round(after / 2**20, 1)
        results["bytes_per_stored_identity"] = round((after - before) / (consumers * 3), 1)
        encodings: dict[str, int] = {}
        sample = [store.location(VERTICAL, pii.identity_key(SECRET, "ssn", consumer_fields(n)["ssn"]))[0]
                  for n in rng.sample(range(consumers), 200)]
        for key in sample:
            encoding = (await redis.object("encoding", key)).decode()
            encodings[encoding] = encodings.get(encoding, 0) + 1
        results["bucket_encodings_in_a_sample_of_200"] = encodings
        gc.collect()
        gc.freeze()  # the loader's garbage is gone; keep collections out of the timed part

        def leads(count: int, tag: str) -> list[tuple[str, dict]]:
            out = []
            for i in range(count):
                if i % 2:  # an already stored consumer: a duplicate
                    out.append((f"{tag}{i:08d}", consumer_fields(rng.randrange(consumers))))
                else:  # a new consumer, never seen before in this run
                    out.append((f"{tag}{i:08d}", consumer_fields(consumers + 10_000_000 * ord(tag) + i)))
            return out

        await check_leads(store, leads(10, "A"), 1, now_ms)  # loads the script into Redis
        results["one_worker"] = await check_leads(store, leads(args.checks, "W"), args.in_flight, now_ms)
        results["one_at_a_time"] = await check_leads(store, leads(2_000, "S"), 1, now_ms)
        print(json.dumps(results, indent=2), flush=True)
    finally:
        await redis.aclose()
    results["baseline_redis_benchmark"] = redis_benchmark(port, args.baseline_requests)
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--identities", type=int, default=10_000_000, help="stored identities to load")
    parser.add_argument("--buyers", type=int, default=1_000)
    parser.add_argument("--bucket-bits", type=int, default=DEFAULT_BUCKET_BITS, help="as DEDUP_BUCKET_BITS")
    parser.add_argument("--checks", type=int, default=100_000, help="leads checked in the throughput run")
    parser.add_argument("--in-flight", type=int, default=256, help="leads checked at once (the worker's max)")
    parser.add_argument("--baseline-requests", type=int, default=500_000)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--redis-server", default=None, help="the Redis binary to measure (see above)")
    args = parser.parse_args()

    port = free_port()
    data_dir = Path(tempfile.mkdtemp(prefix="leadx-bench-dedup-"))
    binary = server_binary(args.redis_server)
    server = subprocess.Popen([binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "",
                               "--appendonly", "no", "--dir", str(data_dir)], stdout=subprocess.DEVNULL)
    try:
        wait_for_port("127.0.0.1", port, 10, server)
        results = uvloop.run(measure(port, args))  # the event loop the services run on
        results["redis_server"] = server_build(binary)
    finally:
        server.terminate()
        server.wait(10)
    worker, baseline = results["one_worker"], results["baseline_redis_benchmark"]
    print(f"\nstored identities: {results['stored_identities']:,} across {args.buyers:,} buyers; "
          f"{results['bytes_per_stored_identity']} bytes each (goal <= 64)")
    print(f"one worker: {worker['checks_per_s']:,} lead checks/s (goal >= 20,000), "
          f"{worker['round_trips_per_lead']} round trips per lead at {args.in_flight} in flight, "
          f"{results['one_at_a_time']['round_trips_per_lead']} one at a time (goal: at most 1)")
    print(f"redis-benchmark GET on the same Redis: {baseline}")
    write_results(results, args, RESULTS, ROOT)


if __name__ == "__main__":
    main()
