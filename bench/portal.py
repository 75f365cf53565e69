"""Benchmark of the web portal's busiest pages (`make bench-portal`).

In one run, on one machine, against the PostgreSQL at LEADX_BENCH_POSTGRES_URL (unset: a private
cluster this bench starts, as the tests do), in a schema of its own that is dropped afterwards:
  * loads N sales (default 1 million) as bench/dashboard.py does, with the lead row of each (the
    portal's search reads leads), and makes BENCH_BUYERS buyers with a person each, owning the sales
    of as many of the bench's buyers (about 900 each);
  * starts the ledger (its gRPC DashboardService) and one portal process as the exchange runs them
    (leadx.dev.stack: tansu, Redis), and logs each person in;
  * requests, `--concurrency` in flight for `--seconds` each, as random logged-in buyers: the buyer
    home (GET /buyer: the session's person read from SQL, then GetBuyerSummary) and the lead search
    (GET /search?status=sold: the person, then SearchLeads for the buyer's sold leads, 25 a page);
  * beside them, in the same run, the gRPC calls behind them sent straight to the DashboardService
    from this process: GetBuyerSummary and SearchLeads with the same arguments.
Figures: pages (calls) per second, p50 and p99, and each page's p99 over its gRPC call's. The goal
(issue 25): a page's p99 at most 100 ms and at most twice its gRPC call's p99. Written to
bench/results/portal.json.
"""

from __future__ import annotations

import argparse
import random
import sys
import tempfile
import time
from pathlib import Path

import grpc
import httpx
import psycopg
import uvloop

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from dashboard import buyer_id, closed_loop, load, postgres_schema
from loadgen import write_results

from leadx.accounts import accounts, people
from leadx.contracts.dashboard.v1 import dashboard_pb2 as pb
from leadx.contracts.dashboard.v1 import dashboard_pb2_grpc
from leadx.dev.stack import LocalStack
from leadx.leads import status as lead_status
from leadx.platform.db.engine import make_engine, session_factory

RESULTS = ROOT / "bench" / "results" / "portal.json"
ADMIN_KEY = "bench-portal-admin-key"  # a local benchmark value, not a secret
PASSWORD = "a long bench password"  # a local benchmark value, not a secret
BENCH_BUYERS = 20
PAGE_P99_GOAL_MS = 100


def add_leads(raw_url: str, schema: str) -> None:
    """The lead row of every sale, as intake and the ledger leave it: sold or unsold."""
    with psycopg.connect(raw_url, options=f"-csearch_path={schema}", autocommit=True) as connection:
        connection.execute(
            """INSERT INTO leads (id, seller_id, vertical, state, status, status_rank, min_price_cents,
               direct_buyer_id, seller_reference, submitted_at_ms, updated_at_ms, redrives)
               SELECT lead_id, seller_id, vertical, state, CASE WHEN sold THEN %(sold)s ELSE %(unsold)s END,
               %(rank)s, 0, '', '', submitted_at_ms, closed_at_ms, 0 FROM sales""",
            {"sold": lead_status.SOLD, "unsold": lead_status.UNSOLD, "rank": lead_status.RANK[lead_status.SOLD]})
        connection.execute("VACUUM ANALYZE leads")


def add_people(url: str, raw_url: str, schema: str) -> list[tuple[str, str]]:
    """BENCH_BUYERS buyers, each taking over one bench buyer's sales, with a person each: (buyer id,
    the person's email)."""
    engine = make_engine(url)
    made = []
    try:
        with session_factory(engine)() as session:
            for n in range(BENCH_BUYERS):
                buyer = accounts.create_buyer(session, f"bench buyer {n}", "", "", kind="autobid").id
                email = f"bench-buyer-{n}@example.com"
                people.create_person(session, email, PASSWORD, people.BUYER, buyer, "read-only")
                made.append((buyer, email))
    finally:
        engine.dispose()
    with psycopg.connect(raw_url, options=f"-csearch_path={schema}", autocommit=True) as connection:
        for n, (buyer, _) in enumerate(made):
            connection.execute("UPDATE sales SET buyer_id = %s WHERE buyer_id = %s", (buyer, buyer_id(n)))
        connection.execute("VACUUM ANALYZE sales")
    return made


def logged_in(portal: str, email: str) -> dict[str, str]:
    """The cookies of a person logged in at the portal, as a browser holds them."""
    with httpx.Client(base_url=portal, timeout=30) as client:
        page = client.get("/login").text
        token = page.split('name="csrf_token" value="', 1)[1].split('"', 1)[0]
        answer = client.post("/login", data={"csrf_token": token, "email": email, "password": PASSWORD})
        assert answer.status_code == 303 and answer.headers["location"] == "/buyer", answer.text[:300]
        return dict(client.cookies)


async def measure(args, portal: str, grpc_address: str, buyers: list[tuple[str, str]]) -> dict:
    sessions = [(buyer, logged_in(portal, email)) for buyer, email in buyers]
    results: dict = {}
    # A client per person, as each browser holds its own session cookie (the portal refreshes it).
    clients = [httpx.AsyncClient(base_url=portal, timeout=30, cookies=cookies) for _, cookies in sessions]
    try:

        async def page(path: str, must_show: str, rng: random.Random) -> None:
            answer = await rng.choice(clients).get(path)
            assert answer.status_code == 200 and must_show in answer.text, (path, answer.status_code)

        async def buyer_home(rng):
            await page("/buyer", "The last 10 leads bought", rng)

        async def search(rng):
            await page("/search?status=sold", '<td class="status">sold</td>', rng)

        for name, call in (("buyer_home", buyer_home), ("search", search)):
            await closed_loop(call, args.concurrency, 2)  # warm-up: connections, plans, caches
            results[f"page_{name}"] = await closed_loop(call, args.concurrency, args.seconds)
            print(name, "page", results[f"page_{name}"], flush=True)
    finally:
        for client in clients:
            await client.aclose()

    metadata = [("authorization", f"Bearer {ADMIN_KEY}")]
    async with grpc.aio.insecure_channel(grpc_address) as channel:
        stub = dashboard_pb2_grpc.DashboardServiceStub(channel)

        async def grpc_summary(rng):
            reply = await stub.GetBuyerSummary(pb.GetBuyerSummaryRequest(buyer_id=rng.choice(sessions)[0]),
                                               metadata=metadata, timeout=10)
            assert reply.last_leads and len(reply.windows) == 4

        async def grpc_search(rng):
            reply = await stub.SearchLeads(pb.SearchLeadsRequest(account_id=rng.choice(sessions)[0], status="sold",
                                                                 page_size=25), metadata=metadata, timeout=10)
            assert reply.leads and all(lead.status == "sold" for lead in reply.leads)

        for name, call in (("buyer_home", grpc_summary), ("search", grpc_search)):
            await closed_loop(call, args.concurrency, 2)
            results[f"grpc_{name}"] = await closed_loop(call, args.concurrency, args.seconds)
            print(name, "gRPC", results[f"grpc_{name}"], flush=True)
    for name in ("buyer_home", "search"):
        page_p99, grpc_p99 = results[f"page_{name}"]["p99_ms"], results[f"grpc_{name}"]["p99_ms"]
        results[f"{name}_p99_over_grpc_p99"] = round(page_p99 / grpc_p99, 2)
        results[f"{name}_goal_met"] = page_p99 <= PAGE_P99_GOAL_MS and page_p99 <= 2 * grpc_p99
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sales", type=int, default=1_000_000)
    parser.add_argument("--seconds", type=float, default=10, help="measured seconds per page or call")
    parser.add_argument("--concurrency", type=int, default=8, help="requests in flight")
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()

    with postgres_schema() as (schema, raw_url, url):
        stack = LocalStack(Path(tempfile.mkdtemp(prefix="leadx-bench-portal-")), database_url=url,
                           topic_prefix="benchp.",
                           extra_env={"DASHBOARD_ADMIN_API_KEY": ADMIN_KEY, "LOG_LEVEL": "WARNING"})
        try:
            stack.start_infra()  # the schema at this code's revision, a broker and a Redis
            started = time.perf_counter()
            load(raw_url, schema, args.sales, int(time.time() * 1000), random.Random(args.seed))
            add_leads(raw_url, schema)
            buyers = add_people(url, raw_url, schema)
            results = {"sales": args.sales, "buyers_with_people": BENCH_BUYERS,
                       "load_seconds": round(time.perf_counter() - started, 1)}
            print(f"loaded {args.sales:,} sales and their leads in {results['load_seconds']} s", flush=True)
            stack.add_service("ledger")
            stack.add_service("portal", PORTAL_LOGIN_FAILURES_PER_ADDRESS="100000")
            stack.start_services()
            stack.wait_ready(timeout_s=120)
            portal = f"http://127.0.0.1:{stack.port_of('portal', 'PORTAL_PORT')}"
            grpc_address = f"127.0.0.1:{stack.port_of('ledger', 'GRPC_PORT')}"
            results |= uvloop.run(measure(args, portal, grpc_address, buyers))
        finally:
            stack.stop()
    print(f"\n{args.sales:,} sales in PostgreSQL, {args.concurrency} requests in flight, one portal process:")
    for name in ("buyer_home", "search"):
        page, call = results[f"page_{name}"], results[f"grpc_{name}"]
        print(f"  {name}: page {page['calls_per_s']:,}/s p50 {page['p50_ms']} ms p99 {page['p99_ms']} ms; gRPC "
              f"{call['calls_per_s']:,}/s p99 {call['p99_ms']} ms; page p99 / gRPC p99 "
              f"{results[f'{name}_p99_over_grpc_p99']} (goal: page p99 <= {PAGE_P99_GOAL_MS} ms and <= 2x: "
              f"{'met' if results[f'{name}_goal_met'] else 'not met'})")
    write_results(results, args, RESULTS, ROOT)


if __name__ == "__main__":
    main()
