"""Benchmark of delivery's dispute record (`make bench-attempts`): its three statements a sold lead.

Delivery writes every POST to SQL before it goes out and completes the row with the answer
(services/delivery/attempts.py), and reads an auction's earlier posts when it takes the auction up:
for a sold lead a read, an insert and an update. On a local PostgreSQL flushing each commit
(durable, as in production), on uvloop as the services run, --leads sold leads' three statements,
--side-by-side leads at a time (the auctions one fetch brings, handled side by side as delivery
does), each pausing --post-ms between its insert and its update (the POST), in three ways:
  - gathered (the code): on the event loop's own psycopg connections, the statements made while
    one is in flight sent together, one round trip and one transaction
    (leadx.platform.db.gathered_statements), as delivery writes the record since 2026-12-08;
  - alone: the same connections, each statement its own round trip and transaction (2026-12-07);
  - on a thread: the statement engine's Connection through asyncio.to_thread, as it did before
    that and still does on SQLite.
--rounds runs of each, in turn, so that a drift of the machine weighs on all. Per way: this
process's CPU and PostgreSQL's (every backend) a sold lead, over all its rounds and per round,
and the wall time a lead. Each run's rows are checked: every lead's post completed `accepted`.
Figures are printed and written to bench/results/attempts.json.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import time
from pathlib import Path

import uvloop
from sqlalchemy import func, select

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from comparison import pooled
from loadgen import write_results
from meters import CpuTree

from leadx.auction.selection.market import BuyerAccount
from leadx.contracts.events.v1 import events_pb2 as ev
from leadx.delivery.post_adaptation import PreparedPost
from leadx.dev.postgres import LocalPostgres
from leadx.platform.db.engine import create_schema, make_engine, statement_engine
from leadx.platform.db.models import PostAttempt
from services.delivery.attempts import AttemptLog
from services.delivery.buyer_http import PostResult

BUYER = BuyerAccount("b_bench_1", "Bench buyer", "http://127.0.0.1:9/ping", "http://127.0.0.1:9/post")
# A lead as a buyer's rules adapt it: some thirty fields of JSON.
BODY = (b'{"first_name": "Pat", "last_name": "Doe", "email": "pat@example.com", "zip": "10001", '
        b'"state": "NY", "home_phone": "2125550100", "price": "14.00"' + b', "x": "yyyyyyyy"' * 24 + b"}")
ANSWER = PostResult(True, "accepted", 4, status=200, response=b'{"accepted": true, "confirmation": "C-1"}')
# Each way: how AttemptLog is made (on the loop, gathered).
WAYS = {"gathered": (True, True), "alone": (True, False), "on a thread": (False, False)}
FIGURES = ("delivery_cpu_ms_per_lead", "postgresql_cpu_ms_per_lead", "wall_ms_per_lead")


async def sold_lead(log: AttemptLog, auction_id: str, post_s: float) -> None:
    closed = ev.AuctionClosed(auction_id=auction_id, lead=ev.Lead(lead_id=auction_id))
    await log.posts_of(auction_id)  # taking the auction up: nothing posted yet
    row = await log.begin(closed, BUYER, PreparedPost("application/json", BODY, None))
    await asyncio.sleep(post_s)  # the POST
    await log.finish(row, ANSWER)


async def sold_leads(log: AttemptLog, run: str, leads: int, side_by_side: int, post_s: float) -> None:
    for first in range(0, leads, side_by_side):
        await asyncio.gather(*(sold_lead(log, f"{run}{number:08d}", post_s)
                               for number in range(first, min(leads, first + side_by_side))))
    await log.close()


def run_way(engine, way: str, run: str, leads: int, side_by_side: int, post_s: float, postgres: LocalPostgres) -> dict:
    # PostgreSQL's with every backend, those opened and closed during the run too.
    cpu = CpuTree({"delivery": (os.getpid(), False), "postgresql": (postgres.processes()[0], True)})
    on_the_loop, gathered = WAYS[way]
    log = AttemptLog(statement_engine(engine), on_the_loop=on_the_loop, gathered=gathered)
    started = time.perf_counter()
    uvloop.run(sold_leads(log, run, leads, side_by_side, post_s))
    seconds = time.perf_counter() - started
    # The connections were closed as the run ended: their backends exit and are reaped by the
    # postmaster a moment later. Read before, a backend gone but not yet reaped counts in neither.
    time.sleep(0.5)
    used = cpu.stop()
    ours_cpu, sql_cpu = used["delivery"], used["postgresql"]
    with engine.connect() as connection:
        accepted = connection.execute(select(func.count()).select_from(PostAttempt).where(
            PostAttempt.auction_id.like(f"{run}%"), PostAttempt.outcome == "accepted")).scalar_one()
    if accepted != leads:
        raise RuntimeError(f"{run}: {accepted} posts recorded accepted of {leads}")
    return {"leads": leads, "seconds": round(seconds, 2), "delivery_cpu_ms_per_lead": round(1000 * ours_cpu / leads, 3),
            "postgresql_cpu_ms_per_lead": round(1000 * sql_cpu / leads, 3),
            "wall_ms_per_lead": round(1000 * seconds / leads, 3)}


def combined(runs: list[dict]) -> dict:
    return {"leads": sum(r["leads"] for r in runs), "seconds": round(sum(r["seconds"] for r in runs), 2),
            **pooled(runs, FIGURES, weight="leads", digits=3)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--leads", type=int, default=3_000, help="sold leads a way and round")
    parser.add_argument("--rounds", type=int, default=3, help="runs of each way, in turn")
    parser.add_argument("--side-by-side", type=int, default=4, help="leads handled at once (default 4)")
    parser.add_argument("--post-ms", type=float, default=3.0, help="each lead's pause for its POST (default 3)")
    parser.add_argument("--ways", default=",".join(WAYS), help=f"comma-separated, of {', '.join(WAYS)}")
    args = parser.parse_args()
    ways = args.ways.split(",")
    if not ways or set(ways) - set(WAYS):
        parser.error(f"--ways: of {', '.join(WAYS)}")
    postgres = LocalPostgres(durable=True)
    postgres.start()
    engine = make_engine(postgres.url)
    runs: dict[str, list[dict]] = {}
    post_s = args.post_ms / 1000
    try:
        create_schema(engine)
        run_way(engine, ways[0], "WU", 300, args.side_by_side, post_s, postgres)  # warm up: connections, statements
        for round_ in range(args.rounds):
            # Each round in another order (A B C, B C A, ...): no way always follows the same one.
            for index in range(len(ways)):
                way = ways[(index + round_) % len(ways)]
                run = f"{chr(ord('A') + round_)}{list(WAYS).index(way)}"  # a lead id is 10 characters
                runs.setdefault(way, []).append(
                    run_way(engine, way, run, args.leads, args.side_by_side, post_s, postgres))
                print(f"round {round_ + 1}, {way}: {runs[way][-1]}", flush=True)
    finally:
        engine.dispose()
        postgres.stop()
    results: dict = {way: combined(way_runs) for way, way_runs in runs.items()}
    if "gathered" in results and "alone" in results:
        gathered, alone = results["gathered"], results["alone"]
        results["gathered_against_alone"] = {key: round(gathered[key] / alone[key], 2) for key in FIGURES}
    for way, figures in results.items():
        print(f"{way:<24} {figures}")
    write_results(results, args, ROOT / "bench" / "results" / "attempts.json", ROOT)


if __name__ == "__main__":
    main()
