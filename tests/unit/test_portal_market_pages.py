"""The Markets pages over HTTP, on the ledger's real DashboardService (gRPC, in this process) reading
market days from SQLite, and a real Redis for the login throttle: the map's colours, hover texts and
links, the table, a state's counties and chart, each checked against what GetMarketPrices answers;
the query's mistakes said beside their fields; who may open the pages."""

from __future__ import annotations

import asyncio
import datetime as dt
import re
from collections.abc import Awaitable, Callable

import grpc
import httpx
import pytest

from leadx.accounts import accounts, people
from leadx.contracts.dashboard.v1 import dashboard_pb2 as pb
from leadx.contracts.dashboard.v1 import dashboard_pb2_grpc
from leadx.platform.db.engine import read_session_factory, session_factory
from leadx.platform.db.models import MarketDay
from leadx.platform.utc_days import period_start
from services.ledger.dashboard import DashboardService
from services.ledger.dashboard_auth import DashboardAuth
from services.portal.app import build_app
from tests.unit.portal_deps import portal_deps

SECRET = b"m" * 32
PASSWORD = "a long test password"
ADMIN_KEY = "the-dashboard-admin-key-of-this-test"
NOW = dt.datetime(2026, 12, 5, 12, 0, tzinfo=dt.UTC).timestamp()
# (day, vertical, state, county, sales, total cents): December's NY is 4 sales for $65.00 over two
# counties and two verticals; TX one county; PR a territory (in the table, not on the map); CA sold
# only in November.
MARKET_DAYS = [
    ("2026-12-01", "auto_loan", "NY", "Kings County", 2, 3000),
    ("2026-12-03", "auto_loan", "NY", "New York County", 1, 2500),
    ("2026-12-04", "auto_insurance", "NY", "Kings County", 1, 1000),
    ("2026-12-02", "auto_loan", "TX", "Harris County", 4, 4000),
    ("2026-12-02", "auto_loan", "PR", "San Juan Municipio", 1, 500),
    ("2026-11-15", "auto_loan", "CA", "Los Angeles County", 1, 9900),
]

Scenario = Callable[[httpx.AsyncClient, dashboard_pb2_grpc.DashboardServiceStub], Awaitable[None]]


@pytest.fixture
def markets(sqlite_engine, redis_url, unique_prefix):
    engine = sqlite_engine
    sessions, reads = session_factory(engine), read_session_factory(engine)
    with sessions() as session:
        for day, vertical, state, county, sales, total in MARKET_DAYS:
            session.add(MarketDay(day=day, vertical=vertical, state=state, county=county, sales=sales,
                                  total_cents=total, week=period_start(day, "week"), month=period_start(day, "month")))
        buyer = accounts.create_buyer(session, "Acme", "https://acme.example/ping", "https://acme.example/post")
        people.create_person(session, "ann@example.com", PASSWORD, "buyer", buyer.id, "read-only")
        people.create_person(session, "ops@example.com", PASSWORD, "operator", "", "operator")
        session.commit()

    def run(scenario: Scenario, email: str = "ann@example.com") -> None:
        async def with_servers() -> None:
            server = grpc.aio.server()
            dashboard_pb2_grpc.add_DashboardServiceServicer_to_server(
                DashboardService(reads, DashboardAuth(reads, ADMIN_KEY)), server)
            port = server.add_insecure_port("127.0.0.1:0")
            await server.start()
            deps = portal_deps(engine, redis_url, unique_prefix, SECRET, f"127.0.0.1:{port}", ADMIN_KEY, lambda: NOW)
            deps.dashboard.start()
            transport = httpx.ASGITransport(app=build_app(deps), client=("203.0.113.9", 40000))
            try:
                async with httpx.AsyncClient(transport=transport, base_url="https://portal.test") as client, \
                        grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
                    if email:
                        token = re.search(r'name="csrf_token" value="([^"]+)"', (await client.get("/login")).text)
                        answer = await client.post("/login", data={"csrf_token": token.group(1), "email": email,
                                                                    "password": PASSWORD})
                        assert answer.status_code == 303
                    await scenario(client, dashboard_pb2_grpc.DashboardServiceStub(channel))
            finally:
                await deps.dashboard.close()
                await server.stop(None)

        asyncio.run(with_servers())

    yield run


async def api_states(stub, period: int, from_day: str, to_day: str, vertical: str = "") -> dict[str, tuple[int, int]]:
    """GetMarketPrices' rows added per state, as (sales, total cents)."""
    answer = await stub.GetMarketPrices(pb.GetMarketPricesRequest(period=period, from_day=from_day, to_day=to_day,
                                                                  vertical=vertical),
                                        metadata=[("authorization", f"Bearer {ADMIN_KEY}")])
    states: dict[str, tuple[int, int]] = {}
    for row in answer.prices:
        sales, total = states.get(row.state, (0, 0))
        states[row.state] = (sales + row.sales, total + row.total_cents)
    return states


def shape(html: str, code: str) -> tuple[str, str, str]:
    """A state's link on the map: its href, its path's colour class and its hover text."""
    match = re.search(rf'<a href="([^"]+)" id="state-{code}"[^>]*>\s*<path d="[^"]+" class="state ([\w-]+)">'
                      rf'<title>([^<]+)</title>', html)
    assert match, f"no shape for {code}"
    return match.group(1).replace("&amp;", "&"), match.group(2), match.group(3)


def table_rows(html: str, table_id: str) -> list[list[str]]:
    body = re.search(rf'<table class="figures" id="{table_id}">.*?<tbody>(.*?)</tbody>', html, re.S)
    assert body, f"no table {table_id}"
    return [[re.sub(r"<[^>]+>", "", cell).strip() for cell in re.findall(r"<t[hd][^>]*>(.*?)</t[hd]>", row, re.S)]
            for row in re.findall(r"<tr[^>]*>(.*?)</tr>", body.group(1), re.S)]


def test_the_map_colours_each_state_by_its_average_price_with_the_apis_figures(markets):
    async def scenario(client: httpx.AsyncClient, stub) -> None:
        page = await client.get("/markets")
        assert page.status_code == 200 and '<a href="/markets" aria-current="page">Markets</a>' in page.text
        assert "December 2026" in page.text and 'style="' not in page.text  # the CSP allows no inline style
        # This month, every vertical: NY $16.25 (4 sales), TX $10.00 (4), PR $5.00 (1). The colours
        # span the states drawn (PR is not): bands of $1.25 from $10.00 to $16.25, NY in the darkest,
        # TX in the lightest; CA sold nothing.
        assert shape(page.text, "NY") == ("/markets/NY?period=month&day=2026-12-01", "price-4",
                                          "New York: $16.25 average, 4 sales")
        assert shape(page.text, "TX")[1:] == ("price-0", "Texas: $10.00 average, 4 sales")
        assert shape(page.text, "CA")[1:] == ("price-none", "California: no sales")
        assert "$10.00 – $11.25" in page.text and "$15.00 – $16.25" in page.text and "$5.00 –" not in page.text
        api = await api_states(stub, pb.PERIOD_MONTH, "2026-12-01", "2026-12-31")
        rows = table_rows(page.text, "market-states")
        assert [row[0] for row in rows] == ["New York NY", "Texas TX", "Puerto Rico PR"]
        for row in rows:
            sales, total = api[row[0][-2:]]
            assert (row[2], row[3]) == (str(sales), f"${total // 100:,}.{total % 100:02d}")
        assert [row[1] for row in rows] == ["$16.25", "$10.00", "$5.00"]

        # One vertical, another month: the figures follow the query.
        insurance = await client.get("/markets?vertical=auto_insurance&period=month&day=2026-12-04")
        assert shape(insurance.text, "NY")[1:] == ("price-4", "New York: $10.00 average, 1 sale")
        assert shape(insurance.text, "TX")[1] == "price-none"
        november = await client.get("/markets?period=month&day=2026-11-02")
        assert shape(november.text, "CA")[2] == "California: $99.00 average, 1 sale"
        assert 'rel="next"' in november.text and 'rel="next"' not in page.text  # nothing after this month
        week = await client.get("/markets?period=week&day=2026-12-03")
        assert "the week of 2026-11-30" in week.text
        assert shape(week.text, "NY")[2] == "New York: $16.25 average, 4 sales"

    markets(scenario)


def test_a_states_page_ranks_its_counties_and_charts_its_price_over_time(markets):
    async def scenario(client: httpx.AsyncClient, stub) -> None:
        page = await client.get("/markets/NY?period=month&day=2026-12-01")
        assert page.status_code == 200 and "<h1>New York" in page.text
        assert "4 sales, $16.25 on average, $65.00 in all." in page.text
        # Kings County: 3 sales, $40.00 (average $13.33); New York County: 1 sale, $25.00.
        assert table_rows(page.text, "market-counties") == [
            ["New York County", "1", "2", "$25.00", "1", "$25.00"], ["Kings County", "2", "1", "$13.33", "3", "$40.00"]]
        by_volume = await client.get("/markets/NY?period=month&day=2026-12-01&rank=volume")
        assert [row[0] for row in table_rows(by_volume.text, "market-counties")] == ["Kings County", "New York County"]
        answer = await stub.GetMarketPrices(pb.GetMarketPricesRequest(
            period=pb.PERIOD_MONTH, from_day="2026-12-01", to_day="2026-12-31", state="NY", by_county=True),
            metadata=[("authorization", f"Bearer {ADMIN_KEY}")])
        assert sum(r.sales for r in answer.prices) == 4 and sum(r.total_cents for r in answer.prices) == 6500

        history = table_rows(page.text, "market-history")
        assert len(history) == 12 and history[0] == ["2026-01-01", "—", "0"]
        assert history[-1] == ["2026-12-01", "$16.25", "4"]
        bars = re.findall(r'<rect x="[\d.]+" y="([\d.]+)" width="[\d.]+" height="([\d.]+)" class="bar( chosen)?">',
                          page.text)
        assert len(bars) == 12 and bars[-1][2] == " chosen" and float(bars[-1][1]) > 0
        assert all(float(height) == 0 for _, height, _ in bars[:-1])
        assert "<title>2026-12-01: $16.25 average, 4 sales</title>" in page.text

        # California in December: a page that says nothing sold, its chart showing November.
        california = await client.get("/markets/CA?period=month&day=2026-12-01")
        assert "No lead was sold here in this period." in california.text
        assert ["2026-11-01", "$99.00", "1"] in table_rows(california.text, "market-history")
        assert (await client.get("/markets/pr")).status_code == 200  # the code in either case

    markets(scenario)


def test_mistakes_are_said_beside_their_fields_and_unknown_states_are_404(markets):
    async def scenario(client: httpx.AsyncClient, stub) -> None:
        bad = await client.get("/markets?period=year&day=2027-01-01&vertical=mortgage")
        assert bad.status_code == 400 and 'id="state-NY"' not in bad.text
        for field, message in (("period", "choose a day, a week or a month"),
                               ("vertical", "choose a vertical from the list"),
                               ("day", "choose a day from 2000-01-01 to today")):
            assert f'<span class="error" id="{field}-error">{message}</span>' in bad.text
        assert 'value="2027-01-01"' in bad.text  # what was typed stays in the field
        assert (await client.get("/markets/NY?rank=size")).status_code == 400
        for path in ("/markets/ZZ", "/markets/New%20York", "/markets/NY/more"):
            missing = await client.get(path)
            assert missing.status_code == 404, path

    markets(scenario)


def test_every_logged_in_person_may_open_the_pages_and_nobody_else(markets):
    async def as_operator(client: httpx.AsyncClient, stub) -> None:
        page = await client.get("/markets/TX")
        assert page.status_code == 200 and "Harris County" in page.text
        assert '<a href="/markets">Markets</a>' in page.text  # in the operator's navigation too

    async def as_nobody(client: httpx.AsyncClient, stub) -> None:
        for path in ("/markets", "/markets/NY"):
            answer = await client.get(path)
            assert (answer.status_code, answer.headers["location"]) == (303, "/login"), path

    markets(as_operator, email="ops@example.com")
    markets(as_nobody, email="")
