"""The web portal's dependencies for tests that drive its app in this process (over httpx's ASGI
transport): real SQL and a real Redis for the login throttle; the dashboard at `dashboard_address`
(a real DashboardService, or an address where nothing listens)."""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import Awaitable, Callable

import httpx

from sqlalchemy.engine import Engine

from leadx.accounts.people import SessionPolicy, SessionSigner, ThrottlePolicy
from leadx.platform.db.engine import read_session_factory, session_factory
from leadx.platform.health import Readiness
from leadx.platform.redis.client import connect
from leadx.dev.ports import free_port
from services.portal.app import build_app, templates
from services.portal.dashboard import Dashboard
from services.portal.exchange_watch import ExchangeWatch
from services.portal.throttle import LoginThrottle
from services.portal.web import PortalDeps


def portal_deps(engine: Engine, redis_url: str, prefix: str, secret: bytes, dashboard_address: str,
                dashboard_key: str = "a-test-key", clock: Callable[[], float] = time.time) -> PortalDeps:
    """Made on the event loop the test runs the app on: the throttle's Redis client and the
    dashboard's channel belong to the loop they start on."""
    return PortalDeps(sessions=session_factory(engine), reads=read_session_factory(engine),
                      signer=SessionSigner(secret), policy=SessionPolicy(),
                      throttle=LoginThrottle(connect(redis_url), prefix, ThrottlePolicy(), secret),
                      dashboard=Dashboard(dashboard_address, dashboard_key), templates=templates(),
                      readiness=Readiness(), clock=clock)


Scenario = Callable[[httpx.AsyncClient], Awaitable[None]]


def csrf(html: str) -> str:
    """The CSRF token of the page's (first) form."""
    match = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert match, "the page has no form with a CSRF token"
    return match.group(1)


async def log_in(client: httpx.AsyncClient, email: str, password: str) -> httpx.Response:
    token = csrf((await client.get("/login")).text)
    return await client.post("/login", data={"csrf_token": token, "email": email, "password": password})


def run_scenario(engine: Engine, redis_url: str, prefix: str, secret: bytes, scenario: Scenario,
                 email: str = "", password: str = "", exchange_watch: ExchangeWatch | None = None) -> None:
    """`scenario` with a client of the portal's app, on a loop of its own, logged in as `email`
    first when given; the dashboard at an address where nothing listens (pages that read it 503)."""
    async def with_client() -> None:
        deps = portal_deps(engine, redis_url, prefix, secret, f"127.0.0.1:{free_port()}")
        if exchange_watch is not None:
            deps.exchange_watch = exchange_watch
        deps.dashboard.start()
        transport = httpx.ASGITransport(app=build_app(deps), client=("203.0.113.10", 40000))
        async with httpx.AsyncClient(transport=transport, base_url="https://portal.test") as client:
            if email:
                assert (await log_in(client, email, password)).status_code == 303
            await scenario(client)
        await deps.dashboard.close()
    asyncio.run(with_client())
