"""Scale-out shown on one machine (`make bench-scaleout`): the rate the whole exchange sustains as
replicas of its bottleneck service are added, each held to a CPU quota as a small node holds it.

Per replica count (--replicas, default 1,2,4), a fresh exchange as bench/sustained.py starts it
(PostgreSQL flushing each commit, the broker, Redis, three buyer processes that always bid and
accept, the per-seller rate limit off), with that many processes of --service (default delivery:
the service with the most CPU per sold lead in bench/sustained.py's table, so the first to run out
of a node) and --partitions per topic (default the largest replica count: every replica has its
share of each topic). Once the services are ready, each replica of the service is put in a control
group of its own with a quota of --quota cores (bench/cpu_quota.py: the kernel's CFS bandwidth
control), a small node of its own; the other services, the broker, Redis and PostgreSQL share the
rest of the machine without a quota.

Then, as bench/sustained.py measures it: a warm-up at the lowest rate, each process's cores at rest,
and open-loop phases of --seconds at offered rates of --rates-per-replica × the replica count,
rising, until the first that is not sustainable (lag flat, p99 of POST -> sale.closed within the
window + 500 ms, every accepted lead with one outcome and 99% of them sold). Per phase it records
sustained.py's figures (answers, sold/s, latencies, lag, CPU per sold lead of every process) and,
per replica, the cores it used and the time the quota held it back: that the quota, not something
else, bounds it. The result per replica count is the highest sustainable offered rate; the rate
should grow with the replicas until the machine's cores (the unquota'd rest of the exchange) run out.

Figures are printed and written to bench/results/scaleout.json.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from cpu_quota import CpuQuota, available
from loadgen import rate_list, write_results
from sustained import PIPELINE, REST_S, at_rest, caught_up, phase, print_phase, replica_names, start_exchange

RESULTS = ROOT / "bench" / "results" / "scaleout.json"
WARMUP_S = 10.0


def run_count(args, count: int) -> dict:
    rng = random.Random(args.seed)
    run_dir = Path(tempfile.mkdtemp(prefix=f"leadx-scaleout-{count}-"))
    partitions = args.partitions or max(args.replicas)
    print(f"--- {count} × {args.service} at {args.quota:g} core each, {partitions} partitions: starting ...",
          flush=True)
    exchange = start_exchange(run_dir, "postgresql", args.broker, args.window, partitions,
                              replicas={args.service: count})
    names = replica_names(args.service, count)
    quotas: dict[str, CpuQuota] = {}
    phases = []
    try:
        for name in names:
            process = exchange.stack.services[name].process
            assert process is not None
            quotas[name] = CpuQuota(name, args.quota)
            quotas[name].add(process.pid)
        rates = [per_replica * count for per_replica in args.rates_per_replica]
        print(f"warm-up: {WARMUP_S:g} s at {rates[0]:g} leads/s (not measured) ...", flush=True)
        asyncio.run(phase(exchange, rng, rates[0], WARMUP_S, args.window))
        asyncio.run(caught_up(exchange.stack.kafka_bootstrap or "", 300))
        idle = at_rest(exchange, REST_S)
        print("at rest, cores: " + ", ".join(f"{name} {cores}" for name, cores in idle.items()), flush=True)
        for rate in rates:
            print(f"{rate:g} leads/s for {args.seconds:g} s ...", flush=True)
            throttled_before = {name: quota.throttled_s() for name, quota in quotas.items()}
            result = asyncio.run(phase(exchange, rng, rate, args.seconds, args.window))
            wall_s = args.seconds + result["seconds_to_drain"]
            result["replicas"] = {name: {
                "cores_used": round(result["cpu_s"][name] / wall_s, 3),
                "throttled_s": round(quotas[name].throttled_s() - throttled_before[name], 2)} for name in names}
            phases.append(result)
            print_phase(result)
            print("  replicas: " + ", ".join(f"{name} {r['cores_used']} cores, held back {r['throttled_s']} s"
                                             for name, r in result["replicas"].items()), flush=True)
            if not result["sustainable"]:
                break  # the rate past the replicas' reach is measured once; higher ones only add backlog
    finally:
        for quota in quotas.values():
            quota.close()
        exchange.stop()
    sustainable = [p["offered_per_s"] for p in phases if p["sustainable"]]
    return {"replicas": count, "quota_cores_each": args.quota, "partitions": partitions, "idle_cores": idle,
            "phases": phases, "sustainable_leads_per_s": max(sustainable) if sustainable else 0}


def report(args, runs: list[dict]) -> None:
    print(f"\n=== {args.service} replicas at {args.quota:g} core each (PostgreSQL, {args.broker})")
    print(f"{'replicas':>8} {'sustainable/s':>13} {'per replica':>11}  offered/s -> sold/s (sustainable)")
    for result in runs:
        steps = ", ".join(f"{p['offered_per_s']:g}->{p['sold_per_s']}{'' if p['sustainable'] else ' (no)'}"
                          for p in result["phases"])
        per_replica = result["sustainable_leads_per_s"] / result["replicas"]
        print(f"{result['replicas']:>8} {result['sustainable_leads_per_s']:>13g} {per_replica:>11.1f}  {steps}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--service", choices=PIPELINE, default="delivery")
    parser.add_argument("--replicas", type=lambda text: [int(n) for n in text.split(",")], default=[1, 2, 4],
                        help="replica counts, comma-separated (default 1,2,4)")
    parser.add_argument("--quota", type=float, default=0.15, help="cores each replica may use (default 0.15)")
    parser.add_argument("--rates-per-replica", type=rate_list, default=[2.0, 4.0, 6.0, 8.0],
                        help="offered leads/s per replica, rising (default 2,4,6,8)")
    parser.add_argument("--seconds", type=float, default=30.0, help="each rate's length (default 30)")
    parser.add_argument("--window", type=float, default=1.0, help="auction window, seconds")
    parser.add_argument("--partitions", type=int, default=0, help="per topic (default: the largest replica count)")
    parser.add_argument("--broker", choices=("tansu", "kafka"), default="tansu")
    parser.add_argument("--seed", type=int, default=42)
    args = parser.parse_args()
    if (reason := available()) is not None:
        parser.error(reason)
    if args.partitions and args.partitions < max(args.replicas):
        parser.error(f"{args.partitions} partitions leave some of {max(args.replicas)} replicas idle")
    started = time.monotonic()
    runs = [run_count(args, count) for count in args.replicas]
    report(args, runs)
    print(f"({time.monotonic() - started:.0f} s in all)")
    write_results({"service": args.service, "runs": runs}, args, RESULTS, ROOT)
    return 0 if all(not p["with_two_outcomes"] for r in runs for p in r["phases"]) else 1


if __name__ == "__main__":
    sys.exit(main())
