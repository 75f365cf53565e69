"""Benchmark of the ledger's recorder (`make bench-ledger`): the SQL work of recording a sold lead.

The whole exchange's sustained bench (bench/sustained.py) found the ledger the first service to
fall behind on PostgreSQL. This measures its recorder alone, in process, with no broker: the six
events a sold lead sends the ledger (lead.submitted with its PII sealed, lead.verified,
lead.scored, auction.opened to three buyers, auction.closed with three ranked bids, sale.closed
with the sale booked), for --leads leads, on SQLite and on PostgreSQL flushing each commit
(durable, as in production). Ways, in the same run and on the same database:
  - batched: Recorder.apply_many on --batches events at a time, as the ledger's BatchWriter hands
    them over (the events of consecutive leads, in the order they are published): 300 as under
    load, 6 (one sold lead's events) as on a quiet exchange;
  - on PostgreSQL, each batch size also with the batch's insert-only rows written as the ledger
    wrote them before COPY (2026-12-07: one INSERT's executemany, a statement a row): --rounds runs
    of each, the two in turn (A B, B A, ...) so that a drift of the machine weighs on both, and
    COPY's CPU a lead over INSERT's (`copy_against_insert`);
  - baseline: Recorder.apply, one transaction per event (what the ledger did before batching, and
    what it still does when a batch fails), on --baseline-leads leads.
Per way: events and sold leads recorded per second, and CPU per sold lead of this process (the
recorder) and of PostgreSQL (every backend), over all its rounds and per round. Correctness, checked
after each run: every lead sold once, each sale booked with its balanced entries. Figures are
printed and written to bench/results/ledger.json.
"""

from __future__ import annotations

import argparse
import string
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import psutil
from sqlalchemy import Table, func, insert, select
from sqlalchemy.orm import Session

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from comparison import BASELINE, VARIANT, pooled, run_order
from loadgen import write_results

from leadx.contracts import topics
from leadx.contracts.events.v1 import events_pb2 as ev
from leadx.dev.postgres import LocalPostgres
from leadx.leads.sealing import PiiKeyring, new_key
from leadx.platform.db.engine import create_schema, make_engine, session_factory
from leadx.platform.db.models import Lead, LedgerEntry, Sale
from leadx.platform.kafka.envelope import Envelope
from services.ledger import recorder as recorder_module
from services.ledger.recorder import Recorder

BUYERS = ("b_bench_1", "b_bench_2", "b_bench_3")
KEYRING = PiiKeyring.parse(new_key("bench"))


def sold_lead_events(number: int, run: str) -> list[Envelope]:
    """The six events of one sold lead, as the services publish them."""
    lead_id = f"{run}{number:08d}"
    at = 1_764_000_000_000 + number
    lead = KEYRING.seal(ev.Lead(
        lead_id=lead_id, seller_id="s_bench", vertical="auto_loan", min_price_cents=500, submitted_at_ms=at,
        fields={"first_name": "Pat", "last_name": "Doe", "email": f"pat{number}@example.com",
                "home_phone": "2125550100", "zip": "10001", "state": "NY", "ssn": "078051120"}))
    verified = ev.LeadVerified(lead=lead)
    bids = [ev.RankedBid(rank=rank, buyer_id=buyer, bid_cents=1500 - rank * 100, amount_cents=1500 - rank * 100,
                         weight=1.0) for rank, buyer in enumerate(BUYERS, 1)]
    messages = [
        (topics.LEAD_SUBMITTED, ev.LeadSubmitted(lead=lead)),
        (topics.LEAD_VERIFIED, verified),
        (topics.LEAD_SCORED, ev.LeadScored(verified=verified, probability=0.3, cluster="renter-new")),
        (topics.AUCTION_OPENED, ev.AuctionOpened(auction_id=lead_id, lead_id=lead_id, offered_buyer_ids=BUYERS,
                                                 opened_at_ms=at + 50, closes_at_ms=at + 1_050)),
        (topics.AUCTION_CLOSED, ev.AuctionClosed(auction_id=lead_id, lead=lead, ranked_bids=bids, bids_received=3,
                                                 closed_at_ms=at + 1_050)),
        (topics.SALE_CLOSED, ev.SaleClosed(lead_id=lead_id, auction_id=lead_id, outcome=ev.SALE_OUTCOME_SOLD,
                                           buyer_id=BUYERS[0], price_cents=1400, seller_fee_cents=140,
                                           seller_id="s_bench", vertical="auto_loan", state="NY", attempts=1,
                                           closed_at_ms=at + 1_200, posted_buyer_ids=[BUYERS[0]],
                                           submitted_at_ms=at)),
    ]
    return [Envelope(topic=topic, key=lead_id, event_id=f"{lead_id}-{index}", message=message, partition=0,
                     offset=0) for index, (topic, message) in enumerate(messages)]


def run_way(recorder: Recorder, events: list[Envelope], batch: int, sql: list[psutil.Process]) -> dict:
    ours, theirs = psutil.Process(), [p for p in sql if p.is_running()]
    cpu_before = sum(ours.cpu_times()[:2]), sum(sum(p.cpu_times()[:2]) for p in theirs)
    started = time.perf_counter()
    for first in range(0, len(events), batch):
        chunk = events[first:first + batch]
        applied = recorder.apply_many(chunk) if batch > 1 else [recorder.apply(chunk[0])]
        if not all(applied):
            raise RuntimeError("an event of a new lead was taken for a repeat")
    seconds = time.perf_counter() - started
    recorder_cpu = sum(ours.cpu_times()[:2]) - cpu_before[0]
    sql_cpu = sum(sum(p.cpu_times()[:2]) for p in theirs if p.is_running()) - cpu_before[1] if theirs else 0.0
    leads = len(events) / 6
    return {"events": len(events), "seconds": round(seconds, 2), "events_per_s": round(len(events) / seconds),
            "sold_leads_per_s": round(leads / seconds),
            "recorder_cpu_ms_per_lead": round(1000 * recorder_cpu / leads, 2),
            "sql_cpu_ms_per_lead": round(1000 * sql_cpu / leads, 2) if theirs else None}


def check(sessions, run: str, leads: int) -> None:
    """Every lead of the run sold once, each sale's entries balanced."""
    with sessions() as session:
        sold = session.scalar(select(func.count()).select_from(Lead).where(Lead.id.like(f"{run}%"),
                                                                           Lead.status == "sold"))
        sales = session.scalar(select(func.count()).select_from(Sale).where(Sale.lead_id.like(f"{run}%")))
        entries = session.scalar(select(func.coalesce(func.sum(LedgerEntry.amount_cents), 0)))
    if (sold, sales, entries) != (leads, leads, 0):
        raise RuntimeError(f"{run}: {sold} leads sold and {sales} sales of {leads}; entries sum to {entries}")


def rows_by_insert(session: Session, table: Table, rows) -> None:
    """The ledger's insert-only rows as it wrote them before COPY (2026-12-07): each table's rows
    one INSERT's executemany, which psycopg sends a row at a time (the baseline of --rounds)."""
    session.execute(insert(table), list(rows))


# How a batch's insert-only rows are written: as the ledger does (COPY on PostgreSQL), and as it did.
INSERT_WAY = ", each row an INSERT"
ROW_WRITERS = {"": recorder_module.insert_rows, INSERT_WAY: rows_by_insert}
RUN_MARKS = string.digits + string.ascii_uppercase  # a lead id is 10 characters: R, a mark and 8 digits


def run_with_writer(writer, recorder: Recorder, events: list[Envelope], batch: int,
                    sql: list[psutil.Process]) -> dict:
    recorder_module.insert_rows = writer
    try:
        return run_way(recorder, events, batch, sql)
    finally:
        recorder_module.insert_rows = ROW_WRITERS[""]


def combined(runs: list[dict]) -> dict:
    """A way's rounds as one figure: its events over their time, CPU a lead over every round's
    leads (each round's own beside it)."""
    events, seconds = sum(r["events"] for r in runs), sum(r["seconds"] for r in runs)
    return {"events": events, "seconds": round(seconds, 2), "events_per_s": round(events / seconds),
            "sold_leads_per_s": round(events / 6 / seconds),
            **pooled(runs, ("recorder_cpu_ms_per_lead", "sql_cpu_ms_per_lead"), weight="events")}


def bench_database(name: str, url: str, args, sql: Callable[[], list[psutil.Process]]) -> dict:
    engine = make_engine(url)
    create_schema(engine)
    sessions = session_factory(engine)
    recorder = Recorder(sessions, KEYRING)
    run_way(recorder, [e for n in range(200) for e in sold_lead_events(n, "WU")], 300, [])  # warm up
    runs: dict[str, list[dict]] = {}

    def record(way: str, leads: int, batch: int, writer) -> None:
        run = f"R{RUN_MARKS[sum(len(r) for r in runs.values())]}"
        events = [e for n in range(leads) for e in sold_lead_events(n, run)]
        runs.setdefault(way, []).append(run_with_writer(writer, recorder, events, batch, sql()))
        check(sessions, run, leads)

    # Each batch size with the rows written both ways, in turn A B, then B A, ... so that a drift
    # of the machine weighs on both (one run moves by a fifth from the next on this machine).
    # On SQLite both ways are one executemany: only PostgreSQL's are compared.
    comparing = engine.dialect.name == "postgresql"
    # The ledger's rows as they were (the comparison's baseline) and as they are; alone, as they are.
    ways = {BASELINE: INSERT_WAY, VARIANT: ""} if comparing else {BASELINE: ""}
    for batch in args.batches:
        for label, _ in run_order(args.rounds, comparing):
            record(f"batches of {batch}{ways[label]}", args.leads, batch, ROW_WRITERS[ways[label]])
    record("one event per transaction", args.baseline_leads, 1, ROW_WRITERS[""])
    out = {way: combined(way_runs) for way, way_runs in runs.items()}
    for way, figures in out.items():
        print(f"{name:<10} {way:<40} {figures}")
    baseline = out["one event per transaction"]["events_per_s"]
    out["over_baseline"] = {way: round(figures["events_per_s"] / baseline, 1)
                            for way, figures in out.items() if way.startswith("batches")}
    if comparing:  # the change's own figure: COPY's CPU a lead over INSERT's, per batch size
        out["copy_against_insert"] = {f"batches of {batch}": {
            key: round(out[f"batches of {batch}"][key] / out[f"batches of {batch}{INSERT_WAY}"][key], 2)
            for key in ("recorder_cpu_ms_per_lead", "sql_cpu_ms_per_lead") if out[f"batches of {batch}"][key]}
            for batch in args.batches}
    engine.dispose()
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--leads", type=int, default=5_000, help="sold leads recorded in batches")
    parser.add_argument("--baseline-leads", type=int, default=500, help="sold leads recorded one event at a time")
    parser.add_argument("--batches", type=lambda text: [int(n) for n in text.split(",")], default=[300, 6],
                        help="events per transaction when batched: 300, as under load; 6, one sold lead's")
    parser.add_argument("--rounds", type=int, default=2,
                        help="runs of each batched way, the rows by COPY and by INSERT in turn (A B, B A, ...)")
    args = parser.parse_args()
    if len(args.batches) * args.rounds * len(ROW_WRITERS) + 1 > len(RUN_MARKS):
        parser.error(f"at most {len(RUN_MARKS)} runs a database: fewer --rounds or --batches")
    results: dict = {}
    with tempfile.TemporaryDirectory() as scratch:
        results["sqlite"] = bench_database("SQLite", f"sqlite:///{scratch}/ledger.db", args, list)
    postgres = LocalPostgres(durable=True)
    postgres.start()
    try:
        def backends() -> list[psutil.Process]:
            return [psutil.Process(pid) for pid in postgres.processes()]
        results["postgresql"] = bench_database("PostgreSQL", postgres.url, args, backends)
    finally:
        postgres.stop()
    write_results(results, args, ROOT / "bench" / "results" / "ledger.json", ROOT)


if __name__ == "__main__":
    main()
