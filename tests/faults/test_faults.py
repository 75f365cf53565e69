"""The fault suite: leads flow from two sellers to three buyers while, one after another, each
service is killed with SIGKILL and started again, services, a partition's leading broker and Redis
are frozen with SIGSTOP (`LEADX_FAULT_STOP_S`, 30 s by default) and resumed, one broker of the
three is killed and started again, Redis is restarted with its data and then without it, and
PostgreSQL is frozen and then restarted.
The checker (tests/faults/checker.py) then reads the whole history and fails the test on any lead
lost or doubled, any consumer sold or posted twice to one buyer, any lead refused and then sold,
books that do not balance, a POST with no post_attempts row, or a 5xx but 503. The table per fault (leads, lost,
doubled, delivered twice, the sellers' p99, unanswered requests, time to recover) is written to
`LEADX_FAULT_REPORT` (build/faults.md by default).

It runs on a Kafka cluster of three brokers (replication factor 3, min.insync.replicas 2, as
production runs), a Redis and a PostgreSQL of its own: freezing the session's would stall every
other test."""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from aiokafka.admin import AIOKafkaAdminClient
from sqlalchemy import select

from leadx.contracts import topics
from leadx.dev.postgres import LocalPostgres
from leadx.dev.stack import LocalStack, ManagedProcess, free_port, redis_binary
from leadx.leads import status as lead_status
from leadx.platform.db.models import Lead
from tests.conftest import fetch_min_bytes_for, poll_until, session_timeout_for
from tests.faults.checker import OUTCOMES, Fault, Submission, fault_rows, sold_since, table, violations
from tests.faults.workload import CLIENT_TIMEOUT_S, Workload, history_of, public_statuses
from tests.integration.harness import Exchange, start_exchange

pytestmark = pytest.mark.integration

SERVICES = ["intake", "dedup", "scoring", "auction", "delivery", "ledger"]
STOP_S = float(os.environ.get("LEADX_FAULT_STOP_S", "30"))
SETTLE_S = 3.0  # leads flowing normally between two faults
# After the last fault: RECOVERY_S for the exchange to catch up, then the leads sent in the
# LAST_WATCH_S that follow must sell as on a healthy exchange: at least SOLD_SHARE of them (a repeat
# consumer every sixth lead may find all three buyers have it already). The catching up includes,
# by design, a buyer circuit's cool-down (DELIVERY_BREAKER_COOLDOWN_SECONDS, 30 s): when PostgreSQL
# resumes, the leads and posts it held back reach this rig's buyers (served inside the test
# process) at once, some pings go unanswered in time, and delivery skips those buyers for the
# cool-down, so that no lead sent in it is pinged. Runs have shown 27-31 s from the end of the
# PostgreSQL faults to the first sale of a lead sent after them.
RECOVERY_S = 40.0
LAST_WATCH_S = 20.0
SOLD_SHARE = 0.75
REPORT = Path(os.environ.get("LEADX_FAULT_REPORT", "build/faults.md"))
# Apache Kafka, as production runs it: three brokers, idempotent producers. LEADX_FAULT_BROKER=tansu
# for the development broker (one, whose freeze stands in for the broker faults).
BROKER = os.environ.get("LEADX_FAULT_BROKER", "kafka")
KAFKA_NODES = 3 if BROKER == "kafka" else 1
PREFIX = "f."
# Only the faults whose names hold one of these words (comma-separated, any case), to look into
# one fault without the whole run: LEADX_FAULTS=postgresql. Empty: all of them.
ONLY = [word.strip().lower() for word in os.environ.get("LEADX_FAULTS", "").split(",") if word.strip()]


def persistent_redis(stack: LocalStack) -> ManagedProcess:
    """A Redis that keeps its data across a restart: every write in its append-only file at once."""
    port = free_port()
    folder = stack.run_dir / "redis"
    folder.mkdir(parents=True, exist_ok=True)
    redis = ManagedProcess("redis", [redis_binary(), "--port", str(port), "--bind", "127.0.0.1", "--save", "",
                                     "--appendonly", "yes", "--appendfsync", "always", "--dir", str(folder)],
                           dict(os.environ), stack.run_dir / "logs" / "redis.log", port=port, stop_timeout_s=10)
    stack.infra.append(redis)
    stack.start_infra_process(redis)
    stack.redis_url = f"redis://127.0.0.1:{port}/0"
    return redis


@dataclass
class Rig:
    exchange: Exchange
    infra: LocalStack  # the broker and Redis the exchange runs on
    postgres: LocalPostgres  # its database

    def part(self, name: str) -> ManagedProcess:
        return next(process for process in self.infra.infra if process.name == name)

    def leader_of(self, base: str, partition: int = 0) -> ManagedProcess:
        """The broker that leads this partition of one of the exchange's topics now."""
        async def describe() -> int:
            admin = AIOKafkaAdminClient(bootstrap_servers=self.infra.kafka_bootstrap)
            await admin.start()
            try:
                [described] = await admin.describe_topics([topics.name(PREFIX, base)])
            finally:
                await admin.close()
            return next(part["leader"] for part in described["partitions"] if part["partition"] == partition)
        return self.part(f"broker-{asyncio.run(describe())}")


@pytest.fixture(scope="module")
def rig(tmp_path_factory) -> Iterator[Rig]:
    postgres = LocalPostgres()
    database_url = postgres.start()
    infra = LocalStack(tmp_path_factory.mktemp("fault-infra"), broker=BROKER, kafka_nodes=KAFKA_NODES,
                       database_url=database_url)
    persistent_redis(infra)
    infra.start_infra()  # the broker (Redis is given)
    assert infra.kafka_bootstrap and infra.redis_url
    # The ledger's stall threshold as production has it (60 s): a lead a restarted consumer lost is
    # re-driven well within the test's patience (it waits 240 s for every outcome), and a 30 s
    # freeze does not re-drive every lead in flight (15 s did: hundreds of re-drives a minute, load
    # that starved the buyers' answers on this two-core machine).
    market = start_exchange(tmp_path_factory.mktemp("faults"), infra.kafka_bootstrap, infra.redis_url, PREFIX,
                            ["alpha", "beta", "gamma"], SERVICES, window_s=1.0, database_url=database_url,
                            LEDGER_REDRIVE_AFTER_SECONDS="60", KAFKA_IDEMPOTENCE=str(BROKER == "kafka").lower(),
                            KAFKA_REPLICATION_FACTOR=str(KAFKA_NODES),
                            KAFKA_SESSION_TIMEOUT_MS=str(session_timeout_for(BROKER)),
                            KAFKA_FETCH_MIN_BYTES=str(fetch_min_bytes_for(BROKER)))
    try:
        yield Rig(market, infra, postgres)
    finally:
        market.stop()
        infra.stop()
        postgres.stop()


def kill_and_restart(exchange: Exchange, name: str) -> None:
    service = exchange.stack.services[name]
    service.signal(signal.SIGKILL)
    assert service.process is not None
    service.process.wait(10)
    exchange.stack.restart(name)


def frozen(process: ManagedProcess) -> None:
    process.signal(signal.SIGSTOP)
    try:
        time.sleep(STOP_S)
    finally:
        process.signal(signal.SIGCONT)


def frozen_postgres(postgres: LocalPostgres) -> None:
    """Every process of the server frozen at once, as a paused VM would be."""
    processes = postgres.processes()
    for pid in processes:
        os.kill(pid, signal.SIGSTOP)
    try:
        time.sleep(STOP_S)
    finally:
        for pid in processes:
            os.kill(pid, signal.SIGCONT)


def killed_and_restarted(stack: LocalStack, process: ManagedProcess) -> None:
    """SIGKILL, then started again on its data (a broker keeps its log folder)."""
    process.signal(signal.SIGKILL)
    assert process.process is not None
    process.process.wait(10)
    stack.start_infra_process(process)


def restarted_with_its_data(stack: LocalStack, process: ManagedProcess) -> None:
    process.stop()  # SIGTERM: Redis finishes its append-only file and exits
    stack.start_infra_process(process)


def restarted_without_its_data(stack: LocalStack, process: ManagedProcess) -> None:
    """A Redis lost with its disk (a node replaced, a volume gone): killed, its files deleted, started
    empty. The exchange must notice and restore the dedup records from SQL before it sells again."""
    process.signal(signal.SIGKILL)
    assert process.process is not None
    process.process.wait(10)
    folder = stack.run_dir / "redis"
    shutil.rmtree(folder)
    folder.mkdir()
    stack.start_infra_process(process)


def undecided(exchange: Exchange, submissions: list[Submission], faults: list[Fault]) -> str:
    """Which accepted leads have no outcome, where the ledger has them, and when each was sent
    beside the faults: what a failure of the wait above needs to be looked into."""
    sent = {s.lead_id: s.sent_at for s in submissions if s.accepted and s.lead_id}
    with exchange.sql() as session:
        status = dict(session.execute(select(Lead.id, Lead.status).where(Lead.id.in_(list(sent)))).all())
    waiting = sorted((at, lead_id) for lead_id, at in sent.items()
                     if lead_status.PUBLIC.get(status.get(lead_id) or "") not in OUTCOMES)
    first = min((s.sent_at for s in submissions), default=0.0)  # the origin of timeline's times
    leads = [f"  {lead_id} sent at +{at - first:.1f} s, ledger status {status.get(lead_id) or 'none'}"
             for at, lead_id in waiting[:20]]
    return "\n".join([f"{len(waiting)} accepted leads without an outcome:", *leads, timeline(submissions, faults)])


def timeline(submissions: list[Submission], faults: list[Fault]) -> str:
    """Each fault's start and end, in seconds from the first submission and as the services' logs
    time them (UTC): to read the logs of a run beside its table."""
    first = min((s.sent_at for s in submissions), default=0.0)

    def at(moment: float) -> str:
        return f"+{moment - first:.1f} s ({time.strftime('%H:%M:%S', time.gmtime(moment))})"
    return "\n".join(["faults:", *(f"  {f.name}: {at(f.started_at)} to {at(f.ended_at)}" for f in faults)])


@pytest.mark.timeout(2400)  # its own: it runs some 8 minutes of faults, well past the suite-wide limit
def test_no_lead_is_lost_or_sold_twice_whatever_fails(rig: Rig):
    exchange = rig.exchange
    alpha, beta, gamma = (exchange.buyers.buyers[name] for name in ("alpha", "beta", "gamma"))
    alpha.bid, beta.bid, gamma.bid = 1500, 1200, 1100
    alpha.accept = lambda lead: int(lead["lead_id"], 36) % 3 != 0  # a third pass to the next bidder
    redis = rig.part("redis")
    if KAFKA_NODES > 1:
        # The broker that leads the intake's topic (its first hop), then the one that leads the
        # winners' topic, chosen when their fault comes (leadership moves as brokers fail).
        broker_faults: list[tuple[str, Callable[[], None]]] = [
            (f"leader of {topics.LEAD_SUBMITTED} SIGSTOP {STOP_S:.0f} s",
             lambda: frozen(rig.leader_of(topics.LEAD_SUBMITTED))),
            (f"leader of {topics.AUCTION_CLOSED} SIGKILL, restarted",
             lambda: killed_and_restarted(rig.infra, rig.leader_of(topics.AUCTION_CLOSED))),
        ]
    else:
        broker_faults = [(f"broker SIGSTOP {STOP_S:.0f} s", lambda: frozen(rig.part("broker")))]
    faults_to_inject: list[tuple[str, Callable[[], None]]] = [
        *[(f"{name} SIGKILL, restarted", lambda name=name: kill_and_restart(exchange, name)) for name in SERVICES],
        *[(f"{name} SIGSTOP {STOP_S:.0f} s", lambda name=name: frozen(exchange.stack.services[name]))
          for name in SERVICES],
        *broker_faults,
        (f"Redis SIGSTOP {STOP_S:.0f} s", lambda: frozen(redis)),
        ("Redis restarted with its data", lambda: restarted_with_its_data(rig.infra, redis)),
        ("Redis restarted without its data", lambda: restarted_without_its_data(rig.infra, redis)),
        (f"PostgreSQL SIGSTOP {STOP_S:.0f} s", lambda: frozen_postgres(rig.postgres)),
        ("PostgreSQL restarted", rig.postgres.restart),
    ]
    faults_to_inject = [(name, inject) for name, inject in faults_to_inject
                        if not ONLY or any(word in name.lower() for word in ONLY)]
    assert faults_to_inject, f"no fault's name holds any of {ONLY}"

    workload = Workload(exchange)
    workload.start()
    faults: list[Fault] = []
    started = time.monotonic()
    try:
        time.sleep(SETTLE_S)
        for name, inject in faults_to_inject:
            began = time.time()
            inject()
            exchange.stack.wait_ready(timeout_s=120)
            faults.append(Fault(name, began, time.time()))  # it lasts until every service is ready again
            time.sleep(SETTLE_S)
        # Leads after the last fault too (SETTLE_S of it already slept), so its recovery is measured.
        time.sleep(RECOVERY_S + LAST_WATCH_S - SETTLE_S)
    finally:
        submissions = workload.stop()

    accepted = {s.lead_id for s in submissions if s.accepted and s.lead_id}
    assert len(accepted) >= 50, f"only {len(accepted)} leads accepted: the workload did not run"
    try:
        poll_until(lambda: all(status in OUTCOMES for status in public_statuses(exchange, accepted).values())
                   and len(public_statuses(exchange, accepted)) == len(accepted),
                   timeout_s=240, interval_s=1, message="an outcome for every accepted lead")
    except AssertionError as timeout:
        raise AssertionError(f"{timeout}\n{undecided(exchange, submissions, faults)}") from None
    time.sleep(2)  # the ledger's last batch and the buyers' last answers
    history = history_of(exchange, submissions, faults)

    rows = fault_rows(history, CLIENT_TIMEOUT_S)
    watched, sold = sold_since(history, faults[-1].ended_at + RECOVERY_S)
    report = (f"Fault run on {BROKER}: {len(submissions)} submissions, {len(accepted)} accepted, "
              f"freezes of {STOP_S:.0f} s, {time.monotonic() - started:.0f} s in all.\n\n{table(rows)}\n\n"
              f"Sent from {RECOVERY_S:.0f} s after the last fault: {watched} leads accepted, {sold} sold.\n\n"
              f"{timeline(submissions, faults)}\n")
    REPORT.parent.mkdir(parents=True, exist_ok=True)
    REPORT.write_text(report)
    print(report)
    found = violations(history)
    assert found == [], "\n".join(f"{v.rule}: {v.detail}" for v in found) + "\n\n" + report
    # Every fault was recovered from: a lead sent after it was sold, and once the faults were over
    # (and a time to catch up) the exchange sold as a healthy one does.
    assert not [row.fault for row in rows if row.recovered_s is None], report
    assert watched >= LAST_WATCH_S / workload.interval_s / 2, f"only {watched} leads accepted after the faults"
    assert sold >= SOLD_SHARE * watched, report
    # The checker saw every kind of record it reads.
    assert history.posts and history.attempts and history.charges and history.transaction_sums
