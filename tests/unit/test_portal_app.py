"""The portal's app on SQLite and a real Redis, its dashboard unreachable: what a person sees when a
part is down (503, still logged in, never a 500), and its answers to requests no page takes."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Awaitable, Callable

import httpx
import pytest

from leadx.accounts import accounts, people
from leadx.dev.ports import free_port
from leadx.platform.db.engine import session_factory
from leadx.platform.health import Readiness
from services.portal.app import build_app
from services.portal.web import MAX_FORM_BYTES
from tests.unit.portal_deps import portal_deps

SECRET = b"s" * 32
PASSWORD = "a long test password"


@pytest.fixture
def portal(sqlite_engine, redis_url, unique_prefix):
    engine = sqlite_engine
    sessions = session_factory(engine)
    with sessions() as session:
        buyer = accounts.create_buyer(session, "Acme", "https://acme.example/ping", "https://acme.example/post")
        people.create_person(session, "ann@example.com", PASSWORD, "buyer", buyer.id, "owner")
    deps = portal_deps(engine, redis_url, unique_prefix, SECRET, f"127.0.0.1:{free_port()}")  # nothing listens there

    app = build_app(deps)

    def run(scenario: Callable[[httpx.AsyncClient], Awaitable[None]]) -> None:
        async def with_client() -> None:
            deps.dashboard.start()  # on this loop, as the portal's lifespan does on uvicorn's
            # An unexpected error is answered as a browser sees it (a 500 page), not raised here.
            transport = httpx.ASGITransport(app=app, client=("203.0.113.8", 40000), raise_app_exceptions=False)
            async with httpx.AsyncClient(transport=transport, base_url="https://portal.test") as client:
                await scenario(client)
            await deps.dashboard.close()

        asyncio.run(with_client())

    run.deps = deps  # type: ignore[attr-defined]  # for a test that breaks one of them
    yield run


async def log_in(client: httpx.AsyncClient, password: str = PASSWORD) -> httpx.Response:
    token = re.search(r'name="csrf_token" value="([^"]+)"', (await client.get("/login")).text).group(1)
    return await client.post("/login", data={"csrf_token": token, "email": "ann@example.com", "password": password})


def test_the_dashboard_down_is_a_503_page_and_the_person_stays_logged_in(portal):
    async def scenario(client: httpx.AsyncClient) -> None:
        assert "secure" in (await client.get("/login")).headers["set-cookie"].lower()
        assert (await log_in(client)).headers["location"] == "/buyer"
        page = await client.get("/buyer")
        assert page.status_code == 503 and "briefly unavailable" in page.text
        assert page.headers["retry-after"] == "5" and "unsafe-inline" not in page.headers["content-security-policy"]
        assert (await client.get("/")).headers["location"] == "/buyer"  # still logged in

    portal(scenario)


def test_the_icon_browsers_ask_for_leaves_the_session_alone(portal):
    """A browser asks for /favicon.ico after each page: the answer sets no cookie (a late one replaced
    a cookie changed meanwhile)."""
    async def scenario(client: httpx.AsyncClient) -> None:
        assert (await log_in(client)).headers["location"] == "/buyer"
        icon = await client.get("/favicon.ico")
        assert icon.status_code == 204 and "set-cookie" not in icon.headers
        assert icon.headers["cache-control"] == "public, max-age=86400"

    portal(scenario)


def test_requests_no_page_takes(portal):
    async def scenario(client: httpx.AsyncClient) -> None:
        assert (await client.get("/logout")).status_code == 405
        assert (await client.get("/nowhere")).status_code == 404
        token = re.search(r'name="csrf_token" value="([^"]+)"', (await client.get("/login")).text).group(1)
        too_large = await client.post("/login", data={"csrf_token": token, "email": "x" * MAX_FORM_BYTES,
                                                      "password": "p"})
        assert too_large.status_code == 413 and "larger than any" in too_large.text
        assert (await log_in(client, "not the password")).status_code == 401
        # A logout whose session has already ended (the cookie is of no one) just goes to the login.
        client.cookies.clear()
        assert (await client.post("/logout", data={})).headers["location"] == "/login"
        # A logged-in person's logout without the form's token is refused.
        assert (await log_in(client)).status_code == 303
        assert (await client.post("/logout", data={})).status_code == 403

    portal(scenario)


def test_a_lead_page_needs_a_login_and_a_lead_id_and_its_return_a_form_token(portal):
    async def scenario(client: httpx.AsyncClient) -> None:
        assert (await client.get("/leads/ABCDEFGHIJ")).headers["location"] == "/login"
        assert (await client.post("/leads/ABCDEFGHIJ/return", data={})).headers["location"] == "/login"
        assert (await log_in(client)).status_code == 303
        # Not a lead id: 404 without asking the dashboard (which is down here).
        for path in ("/leads/not-a-lead", "/leads/not-a-lead/return"):
            page = await client.get(path)
            assert page.status_code == 404 and "no such lead" in page.text
        # A lead id the dashboard cannot be asked about now: 503, never a 500.
        assert (await client.get("/leads/ABCDEFGHIJ")).status_code == 503

    portal(scenario)


class _BrokenReadiness(Readiness):
    def failing(self) -> list[str]:
        raise RuntimeError("a bug, carrying ann@example.com")


def test_an_unexpected_error_is_a_plain_500_page_with_the_security_headers(portal):
    portal.deps.readiness = _BrokenReadiness()

    async def scenario(client: httpx.AsyncClient) -> None:
        page = await client.get("/readyz")
        assert page.status_code == 500 and "Something went wrong on our side" in page.text
        assert "RuntimeError" not in page.text and "ann@example.com" not in page.text
        assert "unsafe-inline" not in page.headers["content-security-policy"]
        assert page.headers["x-frame-options"] == "DENY" and page.headers["x-content-type-options"] == "nosniff"
        assert page.headers["cache-control"] == "no-store"

    portal(scenario)
