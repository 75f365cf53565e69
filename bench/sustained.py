"""The whole exchange at fixed offered rates, sustained: what one machine sells, and where its CPU
goes (`make bench-sustained`).

Per database (SQLite, then PostgreSQL flushing each commit as in production), one exchange on this
machine: the broker, Redis, the SQL server, the six services of a lead's path, three buyers each in
a process of its own (bench/buyer.py: every ping bid, every post accepted, so every lead is pinged
to three and sold), and this load generator, all sharing the cores. The per-seller rate limit is off
(INTAKE_RATE_LIMIT_PER_SECOND=0): the load is what is measured, not the limiter.

Per offered rate, open loop (a lead is POSTed on schedule whatever the answers' latency, so a slow
exchange cannot slow the offer) for --seconds:
  * the answers by status, and the seller's answer time p50 / p99;
  * leads sold per second: the phase's leads sold from its start to a window after its end, over
    its length;
  * POST -> sale.closed p50 / p99, minus the auction window (sale.closed's record time against the
    moment the POST was due);
  * the consumer lag summed over every group and topic of the exchange at the middle and at the end
    of the phase (the broker's committed offsets, as `leadx status` reads them), and per group and
    topic at the end;
  * CPU per sold lead of every process (each service, broker, Redis, PostgreSQL with its backends,
    each buyer, the load generator), from the phase's start until its last lead's outcome: all the
    work its leads caused;
  * threads woken (voluntary context switches, every thread of every process above) per sold lead
    over the same span, and preempted: a wake costs a process CPU whatever it then does
    (bench/meters.py).
It is **sustainable** when the lag did not grow from the middle to the end by more than half a
second of offered leads, 20 records, or what the groups' commit interval lets committed offsets
trail their work by (the rate x 14 records read a lead x the interval), whichever is most, the
p99 of POST -> sale.closed stays within the window + 500 ms and at least 99% of the accepted leads
were sold (every buyer bids and accepts: an unsold lead is one the exchange pinged too late). After
each phase the run waits until every accepted lead has its outcome (and checks it has exactly one)
and every consumer group has caught up (the ledger records after the sale), so the next phase starts
idle and the CPU measured is all the work of the phase's leads; it stops after a rate whose leads are
not all out by then (the drain lasts twice the phase, at least 120 s). Before the first rate, once
the warm-up is recorded, each process's CPU at rest (10 s, no lead offered) is measured: the part of
the CPU per sold lead that is polling, not leads.

After the whole, in the same run (unless --no-stages), each stage alone in a short run of its own
bench (bench/stages.py), as leads per second, and the whole's ratio to the slowest of them: its
sustainable rate, and the most it sold per second at any rate.

A change against its baseline, in the same bench run: `--compare NAME=VALUE` (a service setting,
or `broker:NAME=VALUE` for Apache Kafka's server.properties; repeatable, one variant with all of
them) runs the exchange with and without it, `--repeats` times each, alternating A B B A ... so a
drift of the machine weighs on both; `--repeats` alone repeats the baseline. With more than one
run the figures are also given per rate as medians with their lowest and highest
(bench/comparison.py), and each of the variant's as a change from the baseline's, judged only when
the two ranges are apart: one run of the whole moves by up to a fifth from the next identical one
on this machine.

A change of the code against an earlier revision, in the same bench run: `--baseline-code REVISION`
runs the baseline's services from a git worktree of that revision (bench/checkouts.py: the same
interpreter and libraries, in that checkout's directory) and the variant's from this checkout,
alternating as above; the bench itself, the buyers and the load generator are this checkout's. The
database is brought to each side's own schema (the bench writes its seller and buyers with this
checkout's code, so their tables must not differ); the two revisions must use the same libraries.

With `--count-requests` (Apache Kafka only) the broker logs every request it completes, and each
phase counts those of its span (the same as its CPU's: the phase and its drain) by kind and client
id (leadx.dev.broker_requests): requests a sold lead, the broker's mean handling time, the
partitions with records a fetch brought and the partition batches a produce carried. The logging
costs the broker CPU, so such a run's CPU figures are marked (`broker_request_log`) and are not
compared with others'.

Figures are printed and written to bench/results/sustained.json.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import random
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from aiokafka import AIOKafkaConsumer, TopicPartition

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import checkouts
from comparison import BASELINE, VARIANT, changes, run_order, summarize
from loadgen import open_loop, percentile, rate_list, write_results
from stages import run_stages, slowest
from meters import CpuTree, SwitchTree

from leadx.accounts import accounts, partnerships
from leadx.contracts import topics
from leadx.contracts.events.v1 import events_pb2 as ev
from leadx.dev.broker_requests import RequestLog
from leadx.dev.demo.consumers import make_consumer
from leadx.dev.postgres import LocalPostgres
from leadx.dev.stack import LOCAL_BUYER_URLS, LocalStack, free_port, wait_for_port
from leadx.platform.config import DEFAULT_COMMIT_INTERVAL_MS
from leadx.platform.db.engine import make_engine, session_factory
from leadx.platform.exchange_health import GroupLag, read_broker
from leadx.platform.kafka.offsets import end_offsets_with, partitions_of

PREFIX = "bench."
PIPELINE = ("intake", "dedup", "scoring", "auction", "delivery", "ledger")
BUYERS = (("alpha", 1500), ("beta", 1300), ("gamma", 1100))  # cents bid on every ping
MIN_PRICE_CENTS = 500
LATENCY_SLACK_MS = 500
REST_S = 10.0
CAUGHT_UP_RECORDS = 100  # summed over every group and topic
MIN_SOLD_SHARE = 0.99  # of the accepted leads, sold, for a rate to be sustainable
# The summed lag moves by a few records between two reads with no backlog at all (each group
# commits on its own interval; the auction's bid feed commits behind its table's writes): at a few
# leads a second, half a second of leads is within that jitter.
LAG_JITTER_RECORDS = 20
# A sold lead's records read by consumer groups (the next service's and the ledger's six, three
# bids...): each group's committed offsets trail its work by up to its commit interval
# (KAFKA_COMMIT_INTERVAL_MS), so two reads of a lag that is not growing differ by up to about
# rate x this x the interval.
GROUP_READS_PER_LEAD = 14
RESULTS = ROOT / "bench" / "results" / "sustained.json"


# ---------------------------------------------------------------- the exchange

# The bench's own processes, named apart from the exchange's: the buyers stand in for servers
# that are not the exchange's, and the load generator for its sellers.
BUYER_PREFIX, LOAD_GENERATOR = "buyer ", "load generator"


def exchange_only(used: dict[str, float]) -> float:
    """The sum over the exchange's processes (its services, broker, Redis and SQL), not the bench's."""
    return sum(value for name, value in used.items() if not name.startswith(BUYER_PREFIX) and name != LOAD_GENERATOR)


@dataclass
class Exchange:
    stack: LocalStack
    api_key: str
    buyers: dict[str, subprocess.Popen] = field(default_factory=dict)
    postgres: LocalPostgres | None = None
    requests: RequestLog | None = None  # the broker's request log (--count-requests)

    def processes(self) -> dict[str, tuple[int, bool]]:
        """name -> (pid, with its descendants) of every process that works for the exchange."""
        named = {name: (process.process.pid, True) for name, process in self.stack.services.items()
                 if process.process is not None}
        named |= {process.name: (process.process.pid, True) for process in self.stack.infra
                  if process.process is not None}
        if self.postgres is not None:
            named["postgresql"] = (self.postgres.processes()[0], True)  # the postmaster, with its backends
        named |= {f"{BUYER_PREFIX}{name}": (process.pid, False) for name, process in self.buyers.items()}
        named[LOAD_GENERATOR] = (os.getpid(), False)  # not its children: the buyers are
        return named

    def stop(self) -> None:
        self.stack.stop()
        for process in self.buyers.values():
            process.terminate()
            process.wait(10)
        if self.postgres is not None:
            self.postgres.stop()


def replica_names(service: str, count: int) -> list[str]:
    """The process names of a service's replicas: the service's own, then `<service>-2`..."""
    return [service if number == 1 else f"{service}-{number}" for number in range(1, count + 1)]


def env_setting(text: str) -> tuple[str, str]:
    name, equals, value = text.partition("=")
    if not equals or not name:
        raise argparse.ArgumentTypeError(f"expected NAME=VALUE, got {text!r}")
    return name, value


BROKER_SETTING = "broker:"  # a --compare setting of the broker's server.properties, not of the services


@dataclass(frozen=True)
class Settings:
    """What one run sets: the services' environment, Apache Kafka's server.properties, and the
    checkout whose services run (None: this one)."""

    env: dict[str, str] = field(default_factory=dict)
    broker: dict[str, str] = field(default_factory=dict)
    code_dir: Path | None = None

    def with_changes(self, settings: list[tuple[str, str]]) -> Settings:
        """These settings changed, on this checkout's code."""
        env, broker = dict(self.env), dict(self.broker)
        for name, value in settings:
            if name.startswith(BROKER_SETTING):
                broker[name.removeprefix(BROKER_SETTING)] = value
            else:
                env[name] = value
        return Settings(env, broker)


def start_exchange(run_dir: Path, database: str, broker: str, window_s: float, partitions: int,
                   replicas: dict[str, int] | None = None, env: dict[str, str] | None = None,
                   broker_properties: dict[str, str] | None = None, code_dir: Path | None = None,
                   request_log: bool = False) -> Exchange:
    """The exchange, ready. `replicas`: how many processes of a service (1 unless said), the
    first named as the service, the others `<service>-2`, `<service>-3`...; `broker_properties`:
    Apache Kafka's server.properties over the local stack's; `code_dir`: the checkout whose
    services run (bench/checkouts.py; None: this one); `request_log`: Apache Kafka logs every
    request, for the phases to count (leadx.dev.broker_requests)."""
    postgres = LocalPostgres(durable=True) if database == "postgresql" else None
    database_url = postgres.start() if postgres is not None else None
    extra_env = {"INTAKE_RATE_LIMIT_PER_SECOND": "0"}
    if broker == "kafka":
        extra_env["KAFKA_IDEMPOTENCE"] = "true"  # as production runs it (tansu has no InitProducerId)
    extra_env.update(env or {})
    stack = LocalStack(run_dir, broker=broker, topic_prefix=PREFIX, partitions=partitions,
                       auction_window_s=window_s, database_url=database_url, extra_env=extra_env,
                       kafka_properties=dict(broker_properties or {}), code_dir=code_dir,
                       kafka_request_log=request_log)
    exchange = Exchange(stack, api_key="", postgres=postgres,
                        requests=RequestLog(run_dir / "logs" / "broker.log") if request_log else None)
    try:
        stack.start_infra()
        ports = {}
        for name, bid in BUYERS:
            ports[name] = free_port()
            exchange.buyers[name] = subprocess.Popen(
                [sys.executable, str(ROOT / "bench" / "buyer.py"), "--port", str(ports[name]), "--bid", str(bid)])
        for name, process in exchange.buyers.items():
            wait_for_port("127.0.0.1", ports[name], 30, process)
        engine = make_engine(stack.database_url or "")
        with session_factory(engine)() as session:
            seller = accounts.create_seller(session, "bench seller")
            for name, _ in BUYERS:
                base = f"http://127.0.0.1:{ports[name]}"
                buyer = accounts.create_buyer(session, name, f"{base}/ping", f"{base}/post", urls=LOCAL_BUYER_URLS)
                partnerships.add_partnership(session, seller.id, buyer.id)
        engine.dispose()
        exchange.api_key = seller.api_key
        for name in PIPELINE:
            for instance in replica_names(name, (replicas or {}).get(name, 1)):
                stack.add_service(name, instance, LOG_LEVEL="WARNING")
        stack.start_services()
        stack.wait_ready(timeout_s=180)
    except BaseException:
        exchange.stop()
        raise
    return exchange


# ---------------------------------------------------------------- measuring

async def topic_ends(bootstrap: str, topic: str) -> dict[TopicPartition, int]:
    probe = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    await probe.start()
    try:
        return await end_offsets_with(probe, await partitions_of(probe, [topic]))
    finally:
        await probe.stop()


async def read_outcomes(bootstrap: str, starts: dict[TopicPartition, int], wanted: set[str],
                        timeout_s: float) -> dict[str, list[tuple[str, int, bool]]]:
    """sale.closed from `starts` on until every wanted lead has an outcome (or the timeout): per
    lead, (event id, record time in ms, sold) of each record."""
    reader = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False, fetch_max_wait_ms=100)
    await reader.start()
    seen: dict[str, list[tuple[str, int, bool]]] = {}
    try:
        reader.assign(list(starts))
        for partition, offset in starts.items():
            reader.seek(partition, offset)
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline and not wanted <= seen.keys():
            for records in (await reader.getmany(timeout_ms=500, max_records=10_000)).values():
                for record in records:
                    sale = ev.SaleClosed.FromString(record.value)
                    event_id = dict(record.headers or ()).get("event-id", b"").decode()
                    seen.setdefault(sale.lead_id, []).append(
                        (event_id, record.timestamp, sale.outcome == ev.SALE_OUTCOME_SOLD))
    finally:
        await reader.stop()
    return seen


async def lag_now(bootstrap: str) -> list[GroupLag]:
    return (await read_broker(bootstrap, PREFIX))[0]


async def caught_up(bootstrap: str, timeout_s: float) -> int:
    """Wait until every group has caught up (a few records behind at most: the auction's bid feed
    commits behind its table's writes), or the timeout: the records still behind."""
    deadline = time.monotonic() + timeout_s
    while True:
        behind = sum(g.lag for g in await lag_now(bootstrap))
        if behind <= CAUGHT_UP_RECORDS or time.monotonic() > deadline:
            return behind
        await asyncio.sleep(1)


async def phase(exchange: Exchange, rng: random.Random, rate: float, seconds: float, window_s: float,
                commit_interval_s: float = DEFAULT_COMMIT_INTERVAL_MS / 1000) -> dict:
    stack = exchange.stack
    bootstrap = stack.kafka_bootstrap or ""
    url = f"http://127.0.0.1:{stack.port_of('intake', 'INTAKE_PORT')}/v1/post"
    bodies = [make_consumer(rng) | {"min_price": MIN_PRICE_CENTS} for _ in range(int(rate * seconds))]
    starts = await topic_ends(bootstrap, topics.name(PREFIX, topics.SALE_CLOSED))
    cpu, switches = CpuTree(exchange.processes()), SwitchTree(exchange.processes())
    if exchange.requests is not None:
        exchange.requests.mark()
    began_ms = time.time() * 1000

    async def lag_at_middle() -> list[GroupLag]:
        await asyncio.sleep(seconds / 2)
        return await lag_now(bootstrap)

    middle = asyncio.create_task(lag_at_middle())
    answers = await open_loop(url, {"Authorization": f"Bearer {exchange.api_key}"}, bodies, rate, connections=2000)
    ended_ms = time.time() * 1000
    at_end = await lag_now(bootstrap)
    at_middle = await middle
    due = {a.body["lead_id"]: a.due_ms for a in answers if a.status in (200, 202) and a.body.get("lead_id")}
    drain_until = time.monotonic() + max(120.0, 2 * seconds)
    outcomes = await read_outcomes(bootstrap, starts, set(due), timeout_s=drain_until - time.monotonic())
    behind_after = await caught_up(bootstrap, max(0.0, drain_until - time.monotonic()))
    drained_s = time.time() - ended_ms / 1000
    used, switched = cpu.stop(), switches.stop()
    # Over the same span as the CPU: the phase and its drain, all the requests its leads caused.
    requests = exchange.requests.read() if exchange.requests is not None else None
    measured_s = time.time() - began_ms / 1000

    statuses: dict[str, int] = {}
    for answer in answers:
        statuses[str(answer.status)] = statuses.get(str(answer.status), 0) + 1
    answer_ms = [answer.seconds * 1000 for answer in answers]
    firsts = {lead: records[0] for lead, records in outcomes.items() if lead in due}
    sale_ms = [at - due[lead] - window_s * 1000 for lead, (_, at, _) in firsts.items()]
    sold = [lead for lead, (_, _, was_sold) in firsts.items() if was_sold]
    sold_in_phase = sum(1 for lead in sold if firsts[lead][1] <= ended_ms + window_s * 1000)
    middle_total, end_total = sum(g.lag for g in at_middle), sum(g.lag for g in at_end)
    p99_sale = round(percentile(sale_ms, 99), 1) if sale_ms else None
    lag_flat = end_total <= middle_total + max(rate / 2, LAG_JITTER_RECORDS,
                                               rate * GROUP_READS_PER_LEAD * commit_interval_s)
    within = p99_sale is not None and p99_sale <= LATENCY_SLACK_MS
    missing = len(set(due) - outcomes.keys())
    # Every buyer bids on every ping and accepts every post: a lead goes unsold only when the
    # exchange failed it (its pings too late for the window), so a rate that sells less is not kept up.
    sold_share = len(sold) / len(due) if due else 0.0
    return {
        "offered_per_s": rate, "seconds": seconds, "posts": len(answers), "answers_by_status": statuses,
        "answer_p50_ms": round(percentile(answer_ms, 50), 1), "answer_p99_ms": round(percentile(answer_ms, 99), 1),
        "accepted": len(due), "sold": len(sold), "sold_share": round(sold_share, 4),
        "sold_per_s": round(sold_in_phase / seconds, 1),
        "sale_minus_window_p50_ms": round(percentile(sale_ms, 50), 1) if sale_ms else None,
        "sale_minus_window_p99_ms": p99_sale,
        "lag_middle": middle_total, "lag_end": end_total, "lag_after_drain": behind_after,
        "seconds_to_drain": round(drained_s, 1),
        "lag_end_by_group_topic": {f"{g.group.removeprefix(PREFIX)} {g.topic.removeprefix(PREFIX)}": g.lag
                                   for g in at_end if g.lag},
        "without_outcome": missing,
        "with_two_outcomes": sum(1 for lead, records in outcomes.items() if lead in due
                                 and len({event_id for event_id, _, _ in records}) != 1),
        "cpu_s": {name: round(seconds_used, 2) for name, seconds_used in used.items()},
        "cpu_ms_per_sold_lead": {name: round(seconds_used * 1000 / len(sold), 3) if sold else None
                                 for name, seconds_used in used.items()},
        "cpu_ms_per_sold_lead_total": round(sum(used.values()) * 1000 / len(sold), 2) if sold else None,
        # The goal's yardstick: the machine's CPU a sold lead, less what the bench's buyers and load
        # generator took of it (in production neither runs on the exchange's nodes).
        "cpu_ms_per_sold_lead_exchange": round(exchange_only(used) * 1000 / len(sold), 2) if sold else None,
        # Over the same span as the CPU: threads woken, and preempted, a sold lead.
        "wakes_per_sold_lead": {name: round(counts[0] / len(sold), 2) if sold else None
                                for name, counts in switched.items()},
        "preemptions_per_sold_lead": {name: round(counts[1] / len(sold), 2) if sold else None
                                      for name, counts in switched.items()},
        "wakes_per_sold_lead_total": round(sum(c[0] for c in switched.values()) / len(sold), 1) if sold else None,
        "lag_flat": lag_flat, "latency_within_window_plus_500ms": within,
        "sustainable": lag_flat and within and not missing and statuses.keys() <= {"200", "202"}
                       and sold_share >= MIN_SOLD_SHARE,
        "began_ms": began_ms,
    } | ({"broker_requests": requests.summary(measured_s, len(sold), PREFIX)} if requests is not None else {})


def run(args, database: str, settings: Settings, label: str = BASELINE, repeat: int = 0,
        labelled: bool = False) -> dict:
    rng = random.Random(args.seed)
    run_dir = Path(tempfile.mkdtemp(prefix="leadx-sustained-"))
    named = f" ({label}, run {repeat + 1} of {args.repeats})" if labelled else ""
    print(f"--- {database}, {args.broker}{named}: starting the exchange ...", flush=True)
    exchange = start_exchange(run_dir, database, args.broker, args.window, args.partitions, env=settings.env,
                              broker_properties=settings.broker, code_dir=settings.code_dir,
                              request_log=args.count_requests)
    commit_interval_s = int(settings.env.get("KAFKA_COMMIT_INTERVAL_MS", DEFAULT_COMMIT_INTERVAL_MS)) / 1000
    phases = []
    requests_at_rest: dict = {}
    try:
        if args.warmup:
            print(f"warm-up: {args.warmup:g} s at 50 leads/s (not measured) ...", flush=True)
            asyncio.run(phase(exchange, rng, 50, args.warmup, args.window, commit_interval_s))
        asyncio.run(caught_up(exchange.stack.kafka_bootstrap or "", 300))
        if exchange.requests is not None:
            exchange.requests.mark()
        idle, idle_wakes = at_rest(exchange, REST_S)
        print("at rest, cores: " + ", ".join(f"{name} {cores}" for name, cores in idle.items()), flush=True)
        print("at rest, wakes a second: " + ", ".join(f"{name} {wakes:g}" for name, wakes in idle_wakes.items()),
              flush=True)
        if exchange.requests is not None:
            requests_at_rest = exchange.requests.read().summary(REST_S, 0, PREFIX)
            print_requests(requests_at_rest)
        for rate in args.rates:
            print(f"{rate:g} leads/s for {args.seconds:g} s ...", flush=True)
            result = asyncio.run(phase(exchange, rng, rate, args.seconds, args.window, commit_interval_s))
            phases.append(result)
            print_phase(result)
            if "broker_requests" in result:
                print_requests(result["broker_requests"])
            if result["without_outcome"]:
                break  # still behind after the drain: a higher rate would measure only the backlog
    finally:
        exchange.stop()
    sustainable = [p["offered_per_s"] for p in phases if p["sustainable"]]
    result = {"database": database, "broker": args.broker, "label": label, "repeat": repeat,
              "env": settings.env, "broker_properties": settings.broker, "idle_cores": idle,
              "idle_wakes_per_s": idle_wakes, "phases": phases,
              # With it the broker logs every request, which costs it CPU: its figures are not comparable.
              "broker_request_log": args.count_requests,
              "sustainable_leads_per_s": max(sustainable) if sustainable else 0}
    if exchange.requests is not None:
        result["requests_at_rest"] = requests_at_rest
    return result


def at_rest(exchange: Exchange, seconds: float) -> tuple[dict[str, float], dict[str, float]]:
    """Each process's cores used, and threads woken a second, while no lead is offered: its polling
    and timers."""
    cpu, switches = CpuTree(exchange.processes()), SwitchTree(exchange.processes())
    time.sleep(seconds)
    return ({name: round(used / seconds, 3) for name, used in cpu.stop().items()},
            {name: round(counts[0] / seconds, 1) for name, counts in switches.stop().items()})


def print_phase(p: dict) -> None:
    print(f"  answers {p['answers_by_status']}, answer p50 {p['answer_p50_ms']} ms p99 {p['answer_p99_ms']} ms;"
          f" sold {p['sold_per_s']}/s ({p['sold']} of {p['accepted']} accepted);"
          f" POST->sale.closed minus window p50 {p['sale_minus_window_p50_ms']} ms"
          f" p99 {p['sale_minus_window_p99_ms']} ms; lag {p['lag_middle']} -> {p['lag_end']};"
          f" most behind at the end: {behind(p)}; drained in {p['seconds_to_drain']} s"
          f" ({p['lag_after_drain']} behind then);"
          f" {p['without_outcome']} without an outcome, {p['with_two_outcomes']} with two;"
          f" CPU {p['cpu_ms_per_sold_lead_total']} ms ({p['cpu_ms_per_sold_lead_exchange']} the exchange's) and"
          f" {p['wakes_per_sold_lead_total']} thread wakes per sold lead;"
          f" {'sustainable' if p['sustainable'] else 'NOT sustainable'}", flush=True)


def print_requests(counted: dict) -> None:
    """The broker's requests of a phase (or at rest) by kind and client (--count-requests)."""
    leads = counted["a_sold_lead"] is not None
    by_api = ", ".join(f"{api} {figure}" for api, figure
                       in counted["a_sold_lead_by_api" if leads else "per_s_by_api"].items())
    print(f"  broker requests: {counted['per_s']}/s over {counted['seconds']} s"
          + (f", {counted['a_sold_lead']} a sold lead ({by_api})" if leads else f" ({by_api} a second)"))
    for row in counted["by_api_and_client"]:
        carried = ""
        if "partitions_with_records_a_fetch" in row:
            carried = (f"; {row['partitions_with_records_a_fetch']} partitions with records a fetch,"
                       f" {round(100 * row['empty_share'])}% empty")
        elif "partition_batches_by_topic" in row:
            carried = "; partition batches: " + ", ".join(
                f"{topic} {batches}" for topic, batches in row["partition_batches_by_topic"].items())
        per_lead = f"{row['a_sold_lead']!s:>6} a sold lead " if leads else ""
        print(f"    {per_lead}{row['per_s']:>7}/s  {row['api']:<16} {row['client_id']:<28}"
              f" handled in {row['local_ms_mean']} ms{carried}")


def behind(p: dict, top: int = 3) -> str:
    lags = sorted(p["lag_end_by_group_topic"].items(), key=lambda item: -item[1])[:top]
    return ", ".join(f"{where} {lag}" for where, lag in lags) or "none"


def against_the_stages(result: dict, stages: dict[str, dict]) -> dict:
    """The whole against its slowest stage alone, on this database: by the rate it sustains and
    by the most it sold per second at any rate."""
    name, rate = slowest(stages, result["database"])
    best_sold = max((p["sold_per_s"] for p in result["phases"]), default=0.0)
    return {"slowest_stage": name, "slowest_stage_leads_per_s": rate,
            "sustainable_over_slowest": round(result["sustainable_leads_per_s"] / rate, 3),
            "best_sold_per_s": best_sold, "best_sold_over_slowest": round(best_sold / rate, 3)}


def report(runs: list[dict], labelled: bool = False) -> None:
    for result in runs:
        named = f" ({result['label']}, run {result['repeat'] + 1})" if labelled else ""
        print(f"\n=== {result['database']} on {result['broker']}{named}:"
              f" sustainable up to {result['sustainable_leads_per_s']:g} leads/s offered")
        print(f"{'offered/s':>9} {'sold/s':>7} {'answer p50/p99 ms':>18} {'sale-window p50/p99 ms':>23}"
              f" {'lag mid->end':>13} {'CPU ms/sold':>11}  sustainable")
        for p in result["phases"]:
            print(f"{p['offered_per_s']:>9g} {p['sold_per_s']:>7} {p['answer_p50_ms']:>8}/{p['answer_p99_ms']:<9}"
                  f" {p['sale_minus_window_p50_ms']!s:>11}/{p['sale_minus_window_p99_ms']!s:<11}"
                  f" {p['lag_middle']:>6}->{p['lag_end']:<6} {p['cpu_ms_per_sold_lead_total']!s:>11}"
                  f"  {'yes' if p['sustainable'] else 'no'}")
        if "against_the_stages" in result:
            versus = result["against_the_stages"]
            print(f"against the slowest stage alone, {versus['slowest_stage']} at"
                  f" {versus['slowest_stage_leads_per_s']:g} leads/s: sustained {versus['sustainable_over_slowest']},"
                  f" best sold {versus['best_sold_per_s']}/s {versus['best_sold_over_slowest']}")
        names = list(result["phases"][0]["cpu_ms_per_sold_lead"]) if result["phases"] else []
        print("CPU ms per sold lead, by process (and the cores it uses at rest):")
        print(f"{'process':>18} {'at rest':>8} " + " ".join(f"{p['offered_per_s']:>9g}/s" for p in result["phases"]))
        for name in names:
            print(f"{name:>18} {result['idle_cores'].get(name, 0):>8} "
                  + " ".join(f"{p['cpu_ms_per_sold_lead'][name]!s:>11}" for p in result["phases"]))
        print("Threads woken (and preempted) a sold lead, by process (and wakes a second at rest):")
        print(f"{'process':>18} {'at rest':>8} " + " ".join(f"{p['offered_per_s']:>13g}/s" for p in result["phases"]))
        for name in names:
            print(f"{name:>18} {result['idle_wakes_per_s'].get(name, 0):>8g} "
                  + " ".join(f"{p['wakes_per_sold_lead'][name]!s:>7} ({p['preemptions_per_sold_lead'][name]!s:>5})"
                             for p in result["phases"]))


def report_repeats(summary: dict, found: dict, variant: list[tuple[str, str]],
                   baseline_code: dict | None = None) -> None:
    """Each figure's median over the runs (lowest-highest), the variant's against the baseline's."""
    if variant or baseline_code:
        what = " ".join(f"{name}={value}" for name, value in variant)
        if baseline_code:
            what = f"this checkout's code{', ' + what if what else ''} (the baseline: {baseline_code['revision']}'s)"
        print(f"\n=== the variant, {what}, against the baseline (medians of the runs, lowest-highest; better"
              " or worse only where the ranges are apart):")
    for database, labels in summary.items():
        for label, rates in labels.items():
            for rate, figures in rates.items():
                if rate == "at rest":
                    print(f"{database} {label:>8} at rest, cores: " + ", ".join(
                        f"{name} {cores['median']} ({cores['min']}-{cores['max']})" for name, cores in figures.items()))
                    continue
                cpu, sold = figures["cpu_ms_per_sold_lead_total"], figures["sold_per_s"]
                sale = figures["sale_minus_window_p99_ms"]
                print(f"{database} {label:>8} {rate:>5}/s: CPU {cpu['median']} ms a sold lead"
                      f" ({cpu['min']}-{cpu['max']}), sold {sold['median']}/s ({sold['min']}-{sold['max']}),"
                      f" sale p99 - window {sale['median']} ms ({sale['min']}-{sale['max']});"
                      f" reached in {figures['reached_in']} of {figures['runs_made']} runs,"
                      f" sustainable in {figures['sustainable_runs']}")
        for rate, row in found.get(database, {}).items():
            print(f"{database} variant against baseline at {rate}/s: " + "; ".join(
                f"{name} {'n/a' if change['change_percent'] is None else format(change['change_percent'], '+')}%"
                f" ({change['verdict']})" for name, change in row.items()))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rates", type=rate_list, default=[100.0, 200.0, 400.0, 600.0, 800.0],
                        help="offered leads/s, comma-separated, in rising order (default 100,200,400,600,800)")
    parser.add_argument("--seconds", type=float, default=60.0, help="each rate's length (default 60)")
    parser.add_argument("--warmup", type=float, default=10.0, help="seconds at 50 leads/s first, not measured")
    parser.add_argument("--window", type=float, default=1.0, help="auction window, seconds")
    parser.add_argument("--partitions", type=int, default=6)
    parser.add_argument("--databases", default="sqlite,postgresql",
                        help="comma-separated: sqlite, postgresql (default both, one after the other)")
    parser.add_argument("--broker", choices=("tansu", "kafka"), default="tansu")
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--no-stages", dest="stages", action="store_false",
                        help="skip the stage benches' short runs after the whole (bench/stages.py)")
    parser.add_argument("--env", type=env_setting, action="append", default=[], metavar="NAME=VALUE",
                        help="a setting for every service (repeatable), e.g. KAFKA_FETCH_MAX_WAIT_MS=500,"
                             " KAFKA_FETCH_MIN_BYTES=1 or KAFKA_COMMIT_INTERVAL_MS=0")
    parser.add_argument("--broker-property", type=env_setting, action="append", default=[], metavar="NAME=VALUE",
                        help="Apache Kafka's server.properties (repeatable), e.g. num.io.threads=2")
    parser.add_argument("--compare", type=env_setting, action="append", default=[], metavar="NAME=VALUE",
                        help="run a variant beside the baseline, with this service setting (or broker:NAME=VALUE,"
                             " a server.property) over --env and --broker-property (repeatable: one variant"
                             " with all of them); the runs alternate, baseline first (see --repeats)")
    parser.add_argument("--baseline-code", metavar="REVISION",
                        help="the baseline runs the services of this git revision (a worktree of it,"
                             " bench/checkouts.py), the variant this checkout's, over the same settings"
                             " (and --compare's, if given); the runs alternate as with --compare")
    parser.add_argument("--count-requests", action="store_true",
                        help="Apache Kafka logs every request it completes, and each phase counts them by kind and"
                             " client (leadx.dev.broker_requests); the logging costs the broker CPU, so the CPU"
                             " figures of such a run are not comparable with others'")
    parser.add_argument("--repeats", type=int, default=1,
                        help="runs of each (the baseline, and the variant when comparing), alternating A B B A ...;"
                             " the figures are then given as medians with their range (default 1)")
    args = parser.parse_args()
    if args.repeats < 1:
        parser.error("--repeats: at least 1")
    setting_broker = args.broker_property or any(name.startswith(BROKER_SETTING) for name, _ in args.compare)
    if setting_broker and args.broker != "kafka":
        parser.error("broker properties are Apache Kafka's: add --broker kafka")
    if args.count_requests and args.broker != "kafka":
        parser.error("--count-requests reads Apache Kafka's request log: add --broker kafka")
    databases = [name.strip() for name in args.databases.split(",") if name.strip()]
    unknown = set(databases) - {"sqlite", "postgresql"}
    if unknown:
        parser.error(f"unknown databases: {', '.join(sorted(unknown))}")
    if args.baseline_code is not None:
        try:
            checkouts.commit_of(args.baseline_code)
        except ValueError as error:
            parser.error(f"--baseline-code: {error}")
    comparing = bool(args.compare) or args.baseline_code is not None
    order = run_order(args.repeats, comparing=comparing)
    repeated = len(order) > 1
    with contextlib.ExitStack() as stack:
        baseline_code, code_dir = None, None
        if args.baseline_code is not None:
            code_dir, commit = stack.enter_context(checkouts.checkout(args.baseline_code))
            baseline_code = {"revision": args.baseline_code, "commit": commit}
            print(f"baseline: the services of {args.baseline_code} ({commit[:12]}), checked out in {code_dir}")
        baseline = Settings(dict(args.env), dict(args.broker_property), code_dir)
        settings = {BASELINE: baseline, VARIANT: baseline.with_changes(args.compare)}
        runs = [run(args, database, settings[label], label, repeat, labelled=repeated)
                for database in databases for label, repeat in order]
    stages = run_stages(databases) if args.stages else {}
    for result in runs:
        if any("leads_per_s" in stage for stage in stages.values()):
            result["against_the_stages"] = against_the_stages(result, stages)
    report(runs, labelled=repeated)
    summary = summarize(runs) if repeated else {}
    found = changes(summary) if repeated else {}
    if repeated:
        report_repeats(summary, found, args.compare, baseline_code)
    for name, stage in stages.items():
        if "error" in stage:
            print(f"stage alone: {name:>9} FAILED: {stage['error'][0]}")
            continue
        rates = ", ".join(f"{rate:g} on {database}" for database, rate in stage["leads_per_s"].items())
        print(f"stage alone: {name:>9} {rates} ({stage['unit']}; {stage['seconds']:g} s run)")
    results: dict = {"runs": runs, "stages_alone": stages}
    if repeated:
        results |= {"summary": summary, "variant": dict(args.compare), "variant_against_baseline": found}
    if baseline_code is not None:
        results |= {"baseline_code": baseline_code, "variant_code": checkouts.this_checkout()}
    write_results(results, args, RESULTS, ROOT)
    # A lead with two outcomes is wrong at any rate; one without, only "not yet" past the sustainable rate.
    sound = all(not p["with_two_outcomes"] for r in runs for p in r["phases"])
    return 0 if sound and not any("error" in stage for stage in stages.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
