"""The web portal's dependencies for tests that drive its app in this process (over httpx's ASGI
transport): real SQL and a real Redis for the login throttle; the dashboard at `dashboard_address`
(a real DashboardService, or an address where nothing listens)."""

from __future__ import annotations

import time
from collections.abc import Callable

from sqlalchemy.engine import Engine

from leadx.accounts.people import SessionPolicy, SessionSigner, ThrottlePolicy
from leadx.platform.db.engine import read_session_factory, session_factory
from leadx.platform.health import Readiness
from leadx.platform.redis.client import connect
from services.portal.app import templates
from services.portal.dashboard import Dashboard
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
