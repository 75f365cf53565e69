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
With `--cluster` (`make bench-dedup-cluster`) the same load and checks run, in one run, against one
Redis and against a Redis Cluster of three primaries on this machine (leadx.dev.redis_cluster,
the store then in its 256 shards), each with one worker and with two worker processes at once,
and one worker against the 256 shards on one Redis (what the sharding costs, apart from three
Redis processes sharing the machine's cores); the figures go to bench/results/dedup-cluster.json,
with the cluster's rate over one Redis's. The workers collect garbage as the services do
(leadx.platform.runtime.tune_garbage_collection).
The Redis is the machine's `redis-server` when it has one (a standard build, with jemalloc, as a
deployment runs), else the embedded valkey `make run` uses (built with libc malloc: about half as
fast at 10 million identities, see bench/README.md); `--redis-server` picks another. Its version and
allocator are recorded with the figures, which are printed and written to bench/results/dedup.json.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import multiprocessing
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

from redis.asyncio.cluster import RedisCluster

from leadx.dedup.store import CLUSTER_SHARDS, DEFAULT_BUCKET_BITS, DedupStore, encode_record
from leadx.dev.redis_cluster import LocalRedisCluster
from leadx.dev.stack import free_port, redis_binary, wait_for_port
from leadx.leads import pii
from leadx.platform.config import RedisSettings
from leadx.platform.redis.client import connect
from leadx.platform.runtime import tune_garbage_collection
from leadx.platform.utc_days import DAY_MS

RESULTS = ROOT / "bench" / "results" / "dedup.json"
CLUSTER_RESULTS = ROOT / "bench" / "results" / "dedup-cluster.json"
NAMESPACE = "bench:"
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
    for shard in range(store.shards):  # every shard numbers the buyers alike here
        await redis.hset(store.state_keys(shard)[0], mapping=mapping)
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

    await store.redis.config_resetstat(**primaries(store.redis))
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
    scripts = [node.get("cmdstat_evalsha", {}) for node in await per_node(store.redis, "commandstats")]
    calls = sum(script.get("calls", 0) for script in scripts)
    script_usec = sum(script.get("usec", 0) for script in scripts)
    return {"leads": len(leads), "seconds": round(elapsed, 2), "checks_per_s": round(len(leads) / elapsed),
            "duplicates_found": duplicates,
            "worker_cpu_us_per_lead": round(cpu / len(leads) * 1e6, 1),
            "redis_cpu_us_per_lead": round(script_usec / len(leads), 1),  # the scripts' time in Redis
            "script_calls_per_lead": round(calls / len(leads), 3),
            "round_trips_per_lead": round((store.round_trips - trips_before) / len(leads), 4)}


def primaries(redis) -> dict:
    """The keyword that sends a server command to every primary of a cluster (none for one Redis)."""
    return {"target_nodes": RedisCluster.PRIMARIES} if isinstance(redis, RedisCluster) else {}


async def per_node(redis, section: str) -> list[dict]:
    """INFO `section` of the one Redis, or of each primary of a cluster."""
    info = await redis.info(section, **primaries(redis))
    return list(info.values()) if isinstance(redis, RedisCluster) else [info]


def leads_of(count: int, tag: str, consumers: int, rng: random.Random) -> list[tuple[str, dict]]:
    """Half stored consumers (duplicates), half never seen in this run (`tag` keeps workers apart)."""
    out = []
    for i in range(count):
        if i % 2:
            out.append((f"{tag}{i:08d}", consumer_fields(rng.randrange(consumers))))
        else:
            out.append((f"{tag}{i:08d}", consumer_fields(consumers + 10_000_000 * ord(tag[-1]) + i)))
    return out


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


async def prepare(store: DedupStore, args, now_ms: int, rng: random.Random) -> dict:
    """Load the store and say what it holds: memory per identity, buckets' encodings."""
    redis = store.redis
    consumers = args.identities // 3
    results: dict = {"stored_identities": consumers * 3, "consumers": consumers, "buyers": args.buyers,
                     "shards": store.shards}
    await store.declare_intact(now_ms)  # a private Redis: its records are loaded below, in bulk
    before = sum(node["used_memory"] for node in await per_node(redis, "memory"))
    started = time.perf_counter()
    await load(store, consumers, args.buyers, now_ms, rng)
    results["load_seconds"] = round(time.perf_counter() - started, 1)
    after = sum(node["used_memory"] for node in await per_node(redis, "memory"))
    results["redis_used_memory_mb"] = round(after / 2**20, 1)
    results["bytes_per_stored_identity"] = round((after - before) / (consumers * 3), 1)
    encodings: dict[str, int] = {}
    sample = [store.location(VERTICAL, pii.identity_key(SECRET, "ssn", consumer_fields(n)["ssn"]))[0]
              for n in rng.sample(range(consumers), 200)]
    for key in sample:
        encoding = (await redis.object("encoding", key)).decode()
        encodings[encoding] = encodings.get(encoding, 0) + 1
    results["bucket_encodings_in_a_sample_of_200"] = encodings
    await check_leads(store, leads_of(64, "A", consumers, rng), 64, now_ms)  # loads the script everywhere
    return results


async def measure(settings: RedisSettings, args, now_ms: int) -> dict:
    rng = random.Random(args.seed)
    redis = connect(settings)
    store = DedupStore(redis, namespace=NAMESPACE, bucket_bits=args.bucket_bits)
    try:
        results = await prepare(store, args, now_ms, rng)
        tune_garbage_collection()  # as the dedup worker runs (leadx.platform.runtime), the loader's garbage gone
        results["one_worker"] = await check_leads(store, leads_of(args.checks, "W", args.identities // 3, rng),
                                                  args.in_flight, now_ms)
        results["one_at_a_time"] = await check_leads(store, leads_of(2_000, "S", args.identities // 3, rng), 1,
                                                     now_ms)
        print(json.dumps(results, indent=2), flush=True)
    finally:
        await redis.aclose()
    return results


async def measure_side_by_side(layouts: dict[str, tuple[RedisSettings, int | None]], args, now_ms: int) -> dict:
    """Each layout (name: its Redis and the store's shards, None for the store's own choice)
    loaded alike, then one worker's checks in `args.rounds` rounds, the layouts taking turns in
    each: this machine's speed drifts by a third within minutes, and a drift then falls on every
    layout alike instead of on whichever ran during it. Each round checks the same leads on every
    layout. A layout's `one_worker` is its median round; the ratios are taken round by round."""
    stores = {name: DedupStore(connect(settings), namespace=NAMESPACE, bucket_bits=args.bucket_bits, shards=shards)
              for name, (settings, shards) in layouts.items()}
    consumers = args.identities // 3
    try:
        results = {name: await prepare(store, args, now_ms, random.Random(args.seed)) for name, store in stores.items()}
        tune_garbage_collection()  # as the dedup worker runs (leadx.platform.runtime), the loaders' garbage gone
        for store in stores.values():  # a warm-up, not counted: the first round ran slower in probes
            await check_leads(store, leads_of(args.checks // 5, "U", consumers, random.Random(args.seed)),
                              args.in_flight, now_ms)
        rounds: dict[str, list[dict]] = {name: [] for name in stores}
        for number in range(args.rounds):
            for name, store in stores.items():
                leads = leads_of(args.checks, f"W{number}", consumers, random.Random(args.seed + number))
                rounds[name].append(await check_leads(store, leads, args.in_flight, now_ms))
                print(f"  round {number + 1}: {name} {rounds[name][-1]['checks_per_s']:,} checks/s", flush=True)
        for name, store in stores.items():
            by_rate = sorted(rounds[name], key=lambda r: r["checks_per_s"])
            results[name]["one_worker"] = by_rate[len(by_rate) // 2]
            results[name]["one_worker_rounds_checks_per_s"] = [r["checks_per_s"] for r in rounds[name]]
            results[name]["one_at_a_time"] = await check_leads(
                store, leads_of(2_000, "S", consumers, random.Random(args.seed)), 1, now_ms)
        results["rounds"] = rounds
        return results
    finally:
        for store in stores.values():
            await store.redis.aclose()


def worker_process(settings: RedisSettings, args, now_ms: int, tag: str) -> dict:
    """One more dedup worker, in a process of its own: checks its share of leads against the loaded
    store (run beside others started at the same moment)."""
    async def run() -> dict:
        redis = connect(settings)
        store = DedupStore(redis, namespace=NAMESPACE, bucket_bits=args.bucket_bits)
        tune_garbage_collection()
        try:
            leads = leads_of(args.checks, tag, args.identities // 3, random.Random(tag))
            await check_leads(store, leads[:64], 64, now_ms)
            return await check_leads(store, leads[64:], args.in_flight, now_ms)
        finally:
            await redis.aclose()

    return uvloop.run(run())


def side_by_side(settings: RedisSettings, args, now_ms: int, workers: int) -> dict:
    """`workers` worker processes at once: the rate they reach together."""
    with multiprocessing.get_context("spawn").Pool(workers) as pool:
        started = time.perf_counter()
        each = pool.starmap(worker_process, [(settings, args, now_ms, f"P{n}") for n in range(workers)])
        elapsed = time.perf_counter() - started
    leads = sum(worker["leads"] for worker in each)
    return {"workers": workers, "leads": leads, "checks_per_s_together": round(leads / max(w["seconds"] for w in each)),
            "checks_per_s_each": [w["checks_per_s"] for w in each], "wall_seconds_with_start": round(elapsed, 1)}


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
    parser.add_argument("--rounds", type=int, default=5,
                        help="with --cluster: rounds of one worker's checks, the layouts taking turns")
    parser.add_argument("--cluster", action="store_true",
                        help="one Redis beside a three-primary Redis Cluster, one and two workers each")
    args = parser.parse_args()
    if args.cluster:
        compare_with_cluster(args)
        return

    data_dir = Path(tempfile.mkdtemp(prefix="leadx-bench-dedup-"))
    binary = server_binary(args.redis_server)
    with private_redis(binary, data_dir) as port:
        # The event loop the services run on.
        results = uvloop.run(measure(RedisSettings(url=f"redis://127.0.0.1:{port}/0"), args, int(time.time() * 1000)))
        results["baseline_redis_benchmark"] = redis_benchmark(port, args.baseline_requests)
        results["redis_server"] = server_build(binary)
    worker, baseline = results["one_worker"], results["baseline_redis_benchmark"]
    print(f"\nstored identities: {results['stored_identities']:,} across {args.buyers:,} buyers; "
          f"{results['bytes_per_stored_identity']} bytes each (goal <= 64)")
    print(f"one worker: {worker['checks_per_s']:,} lead checks/s (goal >= 20,000), "
          f"{worker['round_trips_per_lead']} round trips per lead at {args.in_flight} in flight, "
          f"{results['one_at_a_time']['round_trips_per_lead']} one at a time (goal: at most 1)")
    print(f"redis-benchmark GET on the same Redis: {baseline}")
    write_results(results, args, RESULTS, ROOT)


@contextlib.contextmanager
def private_redis(binary: str, data_dir: Path):
    """A Redis holding nothing else, on a free port, for the run."""
    port = free_port()
    server = subprocess.Popen([binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "",
                               "--appendonly", "no", "--dir", str(data_dir)], stdout=subprocess.DEVNULL)
    try:
        wait_for_port("127.0.0.1", port, 10, server)
        yield port
    finally:
        server.terminate()
        server.wait(10)


def compare_with_cluster(args) -> None:
    """The same load and checks on one Redis, on the store's 256 shards on one Redis, and on a
    three-primary cluster (no replicas: what the store itself costs; REDIS_WAIT_REPLICAS adds a
    replica's round trip per pipeline)."""
    data_dir = Path(tempfile.mkdtemp(prefix="leadx-bench-dedup-"))
    (data_dir / "sharded").mkdir()
    now_ms = int(time.time() * 1000)
    binary = server_binary(args.redis_server)
    with (private_redis(binary, data_dir) as port,
          private_redis(binary, data_dir / "sharded") as sharded_port,
          LocalRedisCluster(data_dir / "cluster", primaries=3, replicas_per_primary=0) as cluster):
        one = RedisSettings(url=f"redis://127.0.0.1:{port}/0")
        sharded = RedisSettings(url=f"redis://127.0.0.1:{sharded_port}/0")
        clustered = RedisSettings(url=cluster.url, cluster=True)
        # The cluster's layout (a script call per shard) on one Redis: what the sharding costs, apart
        # from what three Redis processes sharing this machine's cores with the worker cost.
        layouts = {"one_redis": (one, None), "one_redis_sharded": (sharded, CLUSTER_SHARDS),
                   "cluster": (clustered, None)}
        results = uvloop.run(measure_side_by_side(layouts, args, now_ms))
        rounds = results.pop("rounds")
        results["one_redis"]["two_workers"] = side_by_side(one, args, now_ms, 2)
        results["cluster"]["two_workers"] = side_by_side(clustered, args, now_ms, 2)

    def by_round(name: str) -> list[float]:
        """The layout's rate over one Redis's, round by round."""
        return [round(mine["checks_per_s"] / base["checks_per_s"], 2)
                for mine, base in zip(rounds[name], rounds["one_redis"], strict=True)]

    def median_ratio(name: str) -> float:
        return sorted(by_round(name))[args.rounds // 2]

    results["cluster_over_one_redis_one_worker"] = median_ratio("cluster")
    results["cluster_over_one_redis_one_worker_by_round"] = by_round("cluster")
    results["sharded_one_redis_over_one_redis_one_worker"] = median_ratio("one_redis_sharded")
    results["cluster_over_one_redis_two_workers"] = round(
        results["cluster"]["two_workers"]["checks_per_s_together"]
        / results["one_redis"]["two_workers"]["checks_per_s_together"], 2)
    for name in ("one_redis", "one_redis_sharded", "cluster"):
        r = results[name]
        together = (f"; two workers together {r['two_workers']['checks_per_s_together']:,}/s"
                    if "two_workers" in r else "")
        print(f"{name}: {r['bytes_per_stored_identity']} bytes per identity; one worker (median of "
              f"{args.rounds} rounds) {r['one_worker']['checks_per_s']:,} checks/s, "
              f"{r['one_worker']['script_calls_per_lead']} script calls and "
              f"{r['one_worker']['round_trips_per_lead']} round trips per lead{together}")
    print(f"cluster / one Redis, per worker: {results['cluster_over_one_redis_one_worker']} (median of the rounds' "
          f"{results['cluster_over_one_redis_one_worker_by_round']}; goal >= 0.7)")
    write_results(results, args, CLUSTER_RESULTS, ROOT)


if __name__ == "__main__":
    main()
