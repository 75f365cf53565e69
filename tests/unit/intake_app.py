"""The real intake app served in-process for unit tests of its HTTP edge: SQLite and a real Redis,
and only what its routes read before anything is published."""

from __future__ import annotations

import contextlib
import uuid
from types import SimpleNamespace

import httpx

from leadx.leads.rules import PACKAGED_RULES, load_rulebook
from leadx.leads.verticals import load_verticals
from leadx.platform.db.engine import create_schema, make_engine, session_factory
from leadx.platform.health import Readiness
from leadx.platform.config import RedisSettings
from services.intake.admin import Admin
from services.intake.app import build_app
from services.intake.auth_throttle import FailedAuthThrottle
from services.intake.buyers import Buyers
from services.intake.guards import IdempotencyStore, RateLimiter
from services.intake.lists import Lists
from services.intake.publishing import BoundedPublisher
from services.intake.requests import Callers
from services.intake.sellers import Sellers
from tests.unit.redis_layouts import connected

ADMIN_KEY = "intake-unit-test-admin-key"  # a test value, not a secret


@contextlib.asynccontextmanager
async def intake(sqlite_url: str, redis_url: str | RedisSettings, accounts_per_second: int = 0,
                 admin_per_second: int = 0, address_per_second: int = 0, max_in_flight: int = 0):
    """The real intake app (only what these routes read), its limits as given (0: off), with no
    broker: a lead that passes every check gets as far as the in-flight limit (`max_in_flight`).
    `redis_url`: one Redis's URL, or settings (a Redis Cluster's, tests.unit.redis_layouts)."""
    engine = make_engine(sqlite_url)
    create_schema(engine)
    sessions = session_factory(engine)
    redis = await connected(RedisSettings(url=redis_url) if isinstance(redis_url, str) else redis_url)
    namespace = f"t{uuid.uuid4().hex[:8]}."
    callers = Callers(sessions, RateLimiter(redis, namespace, accounts_per_second),
                      FailedAuthThrottle(redis, namespace, 1000),
                      operators=RateLimiter(redis, namespace, admin_per_second, scope="admin"),
                      addresses=RateLimiter(redis, namespace, address_per_second, scope="address"))
    deps = SimpleNamespace(sessions=sessions, secret=b"k" * 32, dedup=None, redis=redis, producer=None,
                           publisher=BoundedPublisher(None, 1.0, max_in_flight),
                           idempotency=IdempotencyStore(redis, namespace, 60), namespace=namespace,
                           max_body_bytes=64 * 1024, callers=callers,
                           rulebook=load_rulebook(PACKAGED_RULES, load_verticals()), phone_area_must_match=False)
    sellers = Sellers(deps)
    app = build_app(sellers, Buyers(deps), Admin(sessions, ADMIN_KEY, callers=callers),
                    Lists(sessions, callers, ADMIN_KEY, deps.max_body_bytes), Readiness(), callers=callers)

    def client(address: str = "203.0.113.7") -> httpx.AsyncClient:
        return httpx.AsyncClient(transport=httpx.ASGITransport(app=app, client=(address, 40000)),
                                 base_url="http://intake")
    try:
        yield SimpleNamespace(client=client, sessions=sessions, sellers=sellers, redis=redis, deps=deps)
    finally:
        await redis.aclose()
        engine.dispose()
