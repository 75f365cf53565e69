"""Benchmark of the gRPC dashboard API (`make bench-dashboard`).

In one run, on one machine, against the PostgreSQL at LEADX_BENCH_POSTGRES_URL (unset: a private
cluster this bench starts, as the tests do), in a schema of its own that is dropped afterwards:
  * loads N sales (default 1 million) over the last 365 days, across 1,000 buyers and 200 sellers,
    in real ZIPs' states and counties, 2% of them returned, with the per-day market totals and the
    buyers' duplicate days the ledger keeps beside them (COPY, then the same aggregates in SQL),
    then VACUUM ANALYZE as autovacuum would have run on a live ledger;
  * runs the real DashboardService in a gRPC server process of its own and calls it from this one,
    `--concurrency` calls in flight, for `--seconds` each: GetBuyerSummary for random buyers and
    GetMarketPrices (one month by week, every vertical and state);
  * beside the raw SQL of the same data in the same run: the statements those calls amount to,
    sent with psycopg over `--concurrency` connections, no gRPC, no ORM.
Figures (calls/s, p50, p99) are printed and written to bench/results/dashboard.json.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import random
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import grpc
import psycopg
import uvloop

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from loadgen import percentile, write_results

from leadx.contracts.dashboard.v1 import dashboard_pb2 as pb
from leadx.contracts.dashboard.v1 import dashboard_pb2_grpc
from leadx.dev.postgres import LocalPostgres
from leadx.dev.stack import free_port, wait_for_port
from leadx.leads.verticals import zip_counties, zip_states
from leadx.platform.db.engine import create_schema, make_engine, session_factory
from leadx.platform.utc_days import DAY_MS

RESULTS = ROOT / "bench" / "results" / "dashboard.json"
ADMIN_KEY = "bench-dashboard-admin-key"  # a local benchmark value, not a secret
BUYERS, SELLERS = 1_000, 200
SUBMITTED_BEFORE_CLOSE_MS = 5_000  # each sale's lead was submitted this long before it sold


@contextlib.contextmanager
def postgres_schema() -> Iterator[tuple[str, str, str]]:
    """A schema of its own on the PostgreSQL at LEADX_BENCH_POSTGRES_URL (unset: a private cluster
    started for the run), dropped afterwards: (its name, a psycopg URL, a SQLAlchemy URL into it)."""
    postgres = None
    base = os.environ.get("LEADX_BENCH_POSTGRES_URL", "")
    if not base:
        postgres = LocalPostgres()
        postgres.start()
        base = postgres.url
    schema = f"bench_{uuid.uuid4().hex[:8]}"
    raw_url = base.replace("postgresql+psycopg://", "postgresql://")
    try:
        with psycopg.connect(raw_url, autocommit=True) as admin:
            admin.execute(f"CREATE SCHEMA {schema}")
        try:
            yield schema, raw_url, f"{base}{'&' if '?' in base else '?'}options=-csearch_path%3D{schema}"
        finally:
            with psycopg.connect(raw_url, autocommit=True) as admin:
                admin.execute(f"DROP SCHEMA {schema} CASCADE")
    finally:
        if postgres is not None:
            postgres.stop()


def buyer_id(n: int) -> str:
    return f"b_bench{n:05d}"


def load(raw_url: str, schema: str, sales: int, now_ms: int, rng: random.Random) -> None:
    zips = [(state, zip_counties()[z]) for z, state in sorted(zip_states().items()) if zip_counties().get(z)]
    places = [rng.choice(zips) for _ in range(3_000)]  # a realistic spread: ~3,000 ZIPs' places
    with psycopg.connect(raw_url, options=f"-csearch_path={schema}") as connection:
        with connection.cursor() as cursor:
            columns = ("lead_id, auction_id, sold, buyer_id, seller_id, price_cents, seller_fee_cents, vertical, "
                       "state, county, attempts, closed_at_ms, returned, submitted_at_ms")
            with cursor.copy(f"COPY sales ({columns}) FROM STDIN") as copy:
                for n in range(sales):
                    lead_id = f"B{n:09d}"
                    state, county = places[n % len(places)]
                    sold = n % 10 != 0  # a tenth unsold
                    price = rng.randrange(500, 10_000) if sold else 0
                    closed_at_ms = now_ms - rng.randrange(365 * DAY_MS)
                    copy.write_row((lead_id, lead_id, sold, buyer_id(rng.randrange(BUYERS)) if sold else "",
                                    f"s_bench{rng.randrange(SELLERS):04d}", price, price // 10,
                                    "auto_loan" if n % 3 else "auto_insurance", state, county, 1,
                                    closed_at_ms, sold and n % 50 == 7, closed_at_ms - SUBMITTED_BEFORE_CLOSE_MS))
            # What the ledger keeps beside the sales, computed here in SQL from the same rows.
            cursor.execute("""INSERT INTO lead_returns SELECT lead_id, buyer_id, seller_id, 'bench', price_cents,
                              seller_fee_cents, closed_at_ms, closed_at_ms + 3600000 FROM sales WHERE returned""")
            cursor.execute("""INSERT INTO market_days (day, vertical, state, county, week, month, sales, total_cents)
                              SELECT to_char(d, 'YYYY-MM-DD'), vertical, state, county,
                              to_char(date_trunc('week', d), 'YYYY-MM-DD'),
                              to_char(date_trunc('month', d), 'YYYY-MM-DD'), count(*), sum(price_cents)
                              FROM (SELECT *, to_timestamp(closed_at_ms / 1000) AT TIME ZONE 'UTC' AS d FROM sales) s
                              WHERE sold GROUP BY 1, 2, 3, 4, 5, 6""")
            cursor.execute("""INSERT INTO buyer_duplicate_days SELECT buyer_id, to_char(to_timestamp(closed_at_ms
                              / 1000) AT TIME ZONE 'UTC', 'YYYY-MM-DD'), count(*) FROM sales
                              WHERE sold AND hashtext(lead_id) % 7 = 0 GROUP BY 1, 2""")
        connection.commit()
        connection.autocommit = True
        connection.execute("VACUUM ANALYZE")  # as autovacuum would have by now: index-only scans


# ------------------------------------------------------------------ the server (its own process)

def serve(url: str, port: int) -> None:
    from services.ledger.dashboard import DashboardService
    from services.ledger.dashboard_auth import DashboardAuth

    async def run() -> None:
        engine = make_engine(url)
        sessions = session_factory(engine)
        server = grpc.aio.server()
        dashboard_pb2_grpc.add_DashboardServiceServicer_to_server(
            DashboardService(sessions, DashboardAuth(sessions, ADMIN_KEY)), server)
        server.add_insecure_port(f"127.0.0.1:{port}")
        await server.start()
        await server.wait_for_termination()

    uvloop.run(run())


# ------------------------------------------------------------------ the measured loops

async def closed_loop(call, concurrency: int, seconds: float) -> dict:
    """`concurrency` workers each making one call after another for `seconds`."""
    latencies: list[float] = []
    deadline = time.perf_counter() + seconds

    async def worker(rng: random.Random) -> None:
        while time.perf_counter() < deadline:
            started = time.perf_counter()
            await call(rng)
            latencies.append(time.perf_counter() - started)

    started = time.perf_counter()
    await asyncio.gather(*(worker(random.Random(i)) for i in range(concurrency)))
    elapsed = time.perf_counter() - started
    return {"calls": len(latencies), "calls_per_s": round(len(latencies) / elapsed),
            "p50_ms": round(percentile(latencies, 50) * 1000, 2), "p99_ms": round(percentile(latencies, 99) * 1000, 2)}


def windows_sql() -> str:
    parts = []
    for measure in ("1", "s.price_cents", "CASE WHEN s.returned THEN 1 ELSE 0 END"):
        for days in (1, 7, 30, 365):
            parts.append(f"sum(CASE WHEN s.closed_at_ms >= %(now)s - {days * DAY_MS} THEN {measure} ELSE 0 END)")
    return (f"SELECT {', '.join(parts)} FROM sales s "
            f"WHERE s.buyer_id = %(buyer)s AND s.sold AND s.closed_at_ms >= %(now)s - {365 * DAY_MS}")


RAW_BUYER_SUMMARY = (
    windows_sql(),
    "SELECT day, duplicates FROM buyer_duplicate_days WHERE buyer_id = %(buyer)s AND day >= %(year_ago)s",
    """SELECT s.lead_id, s.price_cents, s.vertical, s.state, s.closed_at_ms, s.returned FROM sales s
       WHERE s.buyer_id = %(buyer)s AND s.sold
       ORDER BY s.closed_at_ms DESC, s.lead_id DESC LIMIT 10""",
)
RAW_MARKET = """SELECT week, vertical, state, sum(sales), sum(total_cents) FROM market_days
                WHERE day >= %(from_day)s AND day <= %(to_day)s GROUP BY week, vertical, state
                ORDER BY week, vertical, state"""


async def measure(args, url: str, raw_url: str, schema: str, port: int) -> dict:
    now_ms = int(time.time() * 1000)
    today = time.strftime("%Y-%m-%d", time.gmtime(now_ms / 1000))
    month_ago = time.strftime("%Y-%m-%d", time.gmtime(now_ms / 1000 - 30 * 86400))
    year_ago = time.strftime("%Y-%m-%d", time.gmtime(now_ms / 1000 - 365 * 86400))
    results: dict = {}
    metadata = [("authorization", f"Bearer {ADMIN_KEY}")]
    async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
        stub = dashboard_pb2_grpc.DashboardServiceStub(channel)

        async def buyer_summary(rng):
            reply = await stub.GetBuyerSummary(pb.GetBuyerSummaryRequest(buyer_id=buyer_id(rng.randrange(BUYERS))),
                                               metadata=metadata, timeout=10)
            assert len(reply.windows) == 4

        async def market(_rng):
            reply = await stub.GetMarketPrices(pb.GetMarketPricesRequest(period=pb.PERIOD_WEEK, from_day=month_ago,
                                                                         to_day=today), metadata=metadata, timeout=10)
            assert reply.prices

        sample = await stub.GetBuyerSummary(pb.GetBuyerSummaryRequest(buyer_id=buyer_id(7)), metadata=metadata)
        results["sample_buyer_year"] = {"leads_bought": sample.windows[3].leads_bought,
                                        "average_cost_cents": sample.windows[3].average_cost_cents}
        for name, call in (("buyer_summary", buyer_summary), ("market_prices", market)):
            await closed_loop(call, args.concurrency, 2)  # warm-up: connections, plans, caches
            results[f"grpc_{name}"] = await closed_loop(call, args.concurrency, args.seconds)
            print(name, "gRPC", results[f"grpc_{name}"], flush=True)

    connections = [await psycopg.AsyncConnection.connect(raw_url, options=f"-csearch_path={schema}", autocommit=True)
                   for _ in range(args.concurrency)]
    free = asyncio.Queue()
    for connection in connections:
        free.put_nowait(connection)

    async def raw(statements, params):
        connection = await free.get()
        try:
            for statement in statements:
                await (await connection.execute(statement, params)).fetchall()
        finally:
            free.put_nowait(connection)

    async def raw_buyer_summary(rng):
        await raw(RAW_BUYER_SUMMARY, {"buyer": buyer_id(rng.randrange(BUYERS)), "now": now_ms, "year_ago": year_ago})

    async def raw_market(_rng):
        await raw((RAW_MARKET,), {"from_day": month_ago, "to_day": today})

    for name, call in (("buyer_summary", raw_buyer_summary), ("market_prices", raw_market)):
        await closed_loop(call, args.concurrency, 2)
        results[f"raw_sql_{name}"] = await closed_loop(call, args.concurrency, args.seconds)
        print(name, "raw SQL", results[f"raw_sql_{name}"], flush=True)
    for connection in connections:
        await connection.close()
    for name in ("buyer_summary", "market_prices"):
        results[f"{name}_grpc_vs_raw_sql"] = round(
            results[f"grpc_{name}"]["calls_per_s"] / results[f"raw_sql_{name}"]["calls_per_s"], 2)
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sales", type=int, default=1_000_000)
    parser.add_argument("--seconds", type=float, default=10, help="measured seconds per query kind")
    parser.add_argument("--concurrency", type=int, default=8, help="calls in flight")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--serve", nargs=2, metavar=("URL", "PORT"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        serve(args.serve[0], int(args.serve[1]))
        return

    server = None
    with postgres_schema() as (schema, raw_url, url):
        try:
            engine = make_engine(url)
            create_schema(engine)
            engine.dispose()
            started = time.perf_counter()
            load(raw_url, schema, args.sales, int(time.time() * 1000), random.Random(args.seed))
            results = {"sales": args.sales, "buyers": BUYERS, "sellers": SELLERS,
                       "load_seconds": round(time.perf_counter() - started, 1)}
            print(f"loaded {args.sales:,} sales in {results['load_seconds']} s", flush=True)
            port = free_port()
            server = subprocess.Popen([sys.executable, __file__, "--serve", url, str(port)])
            wait_for_port("127.0.0.1", port, 30, server)
            results |= uvloop.run(measure(args, url, raw_url, schema, port))
        finally:
            if server is not None:
                server.terminate()
                server.wait(10)
    print(f"\n{args.sales:,} sales in PostgreSQL, {args.concurrency} calls in flight:")
    for name in ("buyer_summary", "market_prices"):
        grpc_figures, raw_figures = results[f"grpc_{name}"], results[f"raw_sql_{name}"]
        ratio = results[f"{name}_grpc_vs_raw_sql"]
        print(f"  {name}: gRPC {grpc_figures['calls_per_s']:,}/s p99 {grpc_figures['p99_ms']} ms; raw SQL "
              f"{raw_figures['calls_per_s']:,}/s p99 {raw_figures['p99_ms']} ms ({ratio}x)")
    write_results(results, args, RESULTS, ROOT)


if __name__ == "__main__":
    main()
