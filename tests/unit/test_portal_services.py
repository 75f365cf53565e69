"""Administration's Services page over HTTP (the portal's app in this process, SQLite, a real Redis
for the login throttle) against real health servers (leadx.platform.health): each service's state
and the checks that fail, one that does not answer, a broker that cannot be read said in one line;
one read shared however many look; only operators see it. With a real broker and every service:
tests/integration/test_portal.py."""

from __future__ import annotations

import asyncio
import re

import httpx
import pytest

from leadx.accounts import accounts, people
from leadx.dev.ports import free_port
from leadx.platform.config import KafkaSettings
from leadx.platform.exchange_health import ServiceHealth, parse_health_urls, read_services
from leadx.platform.db.engine import session_factory
from leadx.platform.health import HealthServer, Readiness
from services.portal.exchange_watch import ExchangeWatch
from tests.unit.portal_deps import Scenario, run_scenario

SECRET = b"s" * 32
PASSWORD = "a long test password"


@pytest.fixture
def portal(sqlite_engine, redis_url, unique_prefix):
    engine = sqlite_engine
    with session_factory(engine)() as session:
        people.create_person(session, "ops@example.com", PASSWORD, "operator", "", "operator")
        seller = accounts.create_seller(session, "A seller")
        people.create_person(session, "seller@example.com", PASSWORD, "seller", seller.id, "owner")

    def run(scenario: Scenario, watch: ExchangeWatch | None = None, email: str = "ops@example.com") -> None:
        run_scenario(engine, redis_url, unique_prefix, SECRET, scenario, email, PASSWORD, exchange_watch=watch)

    yield run


def row(html: str, name: str) -> str:
    match = re.search(rf'<tr id="service-{name}">(.*?)</tr>', html, re.S)
    assert match, f"no row for {name}"
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", match.group(1))).strip()


def nowhere_kafka() -> KafkaSettings:
    return KafkaSettings(bootstrap_servers=f"127.0.0.1:{free_port()}", topic_prefix="t-", partitions=1,
                         replication_factor=1, idempotence=False)


def test_an_operator_sees_each_services_readiness_and_why_the_lag_is_not_read(portal):
    ready_port, failing_port, down_port = free_port(), free_port(), free_port()
    kafka = nowhere_kafka()
    # As the portal's settings read LEADX_HEALTH_URLS (a trailing /readyz is taken off).
    watch = ExchangeWatch(parse_health_urls(f"dedup=http://127.0.0.1:{ready_port},"
                                            f"auction=http://127.0.0.1:{failing_port}/readyz,"
                                            f"delivery=http://127.0.0.1:{down_port}"), kafka, "t-")

    async def scenario(client: httpx.AsyncClient) -> None:
        failing = Readiness()
        failing.add("broker", lambda: False)
        failing.add("table recovered", lambda: True)
        failing.add("partitions assigned", lambda: False)
        servers = [HealthServer(Readiness(), ready_port, "127.0.0.1"), HealthServer(failing, failing_port, "127.0.0.1")]
        for server in servers:
            await server.start()
        try:
            page = await client.get("/admin/services")
        finally:
            for server in servers:
                await server.stop()
        assert page.status_code == 200 and page.headers["cache-control"] == "no-store"
        assert '<a href="/admin/services" aria-current="page">Services</a>' in page.text
        assert "2 of 3 services are not ready." in page.text
        assert row(page.text, "dedup") == f"dedup ready http://127.0.0.1:{ready_port}"
        assert row(page.text, "auction") == \
            f"auction not ready failing: broker, partitions assigned http://127.0.0.1:{failing_port}"
        assert row(page.text, "delivery") == f"delivery down connection refused http://127.0.0.1:{down_port}"
        # The broker is read as `leadx status` reads it; one that cannot be read is said, not a 500.
        lag = re.search(r'<p class="failed" id="lag-unread">([^<]+)</p>', page.text)
        assert lag and lag.group(1) == \
            f"the broker at {kafka.bootstrap_servers}: cannot connect (nothing answers there)"
    portal(scenario, watch)


def test_every_service_ready_is_said_once_above_the_table(portal):
    port = free_port()
    watch = ExchangeWatch({"ledger": f"http://127.0.0.1:{port}", "portal": f"http://127.0.0.1:{port}"},
                          nowhere_kafka(), "t-")

    async def scenario(client: httpx.AsyncClient) -> None:
        server = HealthServer(Readiness(), port, "127.0.0.1")
        await server.start()
        try:
            page = await client.get("/admin/services")
        finally:
            await server.stop()
        assert "All 2 services are ready." in page.text and "not ready" not in page.text
    portal(scenario, watch)


def test_a_portal_given_no_health_urls_and_no_broker_says_so(portal):
    async def scenario(client: httpx.AsyncClient) -> None:
        page = await client.get("/admin/services")
        assert page.status_code == 200
        assert "LEADX_HEALTH_URLS is not set for the portal" in page.text
        assert "the portal is given no broker (KAFKA_BOOTSTRAP_SERVERS)" in page.text
    portal(scenario)


def test_only_operators_see_the_services(portal):
    async def seller(client: httpx.AsyncClient) -> None:
        assert (await client.get("/admin/services")).status_code == 404
        assert "/admin/services" not in (await client.get("/seller")).text  # nor a link to it
    portal(seller, email="seller@example.com")

    async def anonymous(client: httpx.AsyncClient) -> None:
        answer = await client.get("/admin/services")
        assert answer.status_code == 303 and answer.headers["location"] == "/login"
    portal(anonymous, email="")


def test_the_exchange_is_read_once_however_many_look_and_again_after_the_interval():
    asked: list[int] = []
    now = [100.0]
    port = free_port()

    def counted() -> bool:
        asked.append(1)
        return len(asked) == 1  # ready the first time it is asked, not after

    async def scenario() -> None:
        readiness = Readiness()
        readiness.add("counted", counted)
        server = HealthServer(readiness, port, "127.0.0.1")
        await server.start()
        try:
            watch = ExchangeWatch({"scoring": f"http://127.0.0.1:{port}"}, None, "", every_s=5, clock=lambda: now[0])
            first, second, third = await asyncio.gather(watch.reading(), watch.reading(), watch.reading())
            assert first is second is third and len(asked) == 1  # three pages at once: one read
            assert first.services is not None and first.services[0].ready
            now[0] += 4.9
            assert await watch.reading() is first and len(asked) == 1  # within the interval: the same read
            now[0] += 0.1
            again = await watch.reading()
            assert len(asked) == 2 and again.services is not None
            assert [(s.state, s.failing) for s in again.services] == [("not ready", ("counted",))]
            assert again.lag is None and again.broker_error == "the portal is given no broker (KAFKA_BOOTSTRAP_SERVERS)"
        finally:
            await server.stop()
    asyncio.run(scenario())


def test_what_a_health_server_names_is_shown_escaped(portal):
    port = free_port()
    watch = ExchangeWatch({"dedup": f"http://127.0.0.1:{port}"}, None, "")

    async def scenario(client: httpx.AsyncClient) -> None:
        readiness = Readiness()
        readiness.add("<script>alert(1)</script>", lambda: False)
        server = HealthServer(readiness, port, "127.0.0.1")
        await server.start()
        try:
            page = await client.get("/admin/services")
        finally:
            await server.stop()
        assert "1 of 1 service is not ready." in page.text
        assert "<script>alert(1)</script>" not in page.text and "&lt;script&gt;alert(1)&lt;/script&gt;" in page.text
    portal(scenario, watch)


def test_an_address_that_cannot_be_asked_and_an_answer_that_is_not_leadxs_are_said_never_raised():
    port = free_port()

    async def not_leadx(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        body = b'{"failing": 1}'
        writer.write(b"HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json\r\n"
                     b"Content-Length: %d\r\nConnection: close\r\n\r\n%s" % (len(body), body))
        await writer.drain()
        writer.close()

    async def scenario() -> list[ServiceHealth]:
        server = await asyncio.start_server(not_leadx, "127.0.0.1", port)
        async with server:
            return await read_services({"other": f"http://127.0.0.1:{port}",
                                        "unaskable": "http://exa\u200bmple.test:8081"})  # a zero-width space
    other, unaskable = asyncio.run(scenario())
    assert (other.state, other.failing, other.detail) == ("not ready", (), "HTTP 503")
    assert unaskable.state == "down" and unaskable.detail
