"""portal: the web pages where buyers', sellers' and operators' people log in (docs/portal.md)."""

from __future__ import annotations

import asyncio
import contextlib
import logging

from grpc_health.v1 import health_pb2, health_pb2_grpc
from sqlalchemy import text

from leadx.accounts.people import SessionSigner
from leadx.platform.db.engine import make_engine, read_session_factory, session_factory
from leadx.platform.db.schema import exit_unless_current
from leadx.platform.health import HealthServer, Readiness
from leadx.platform.http_service import serve
from leadx.platform.kafka.producer import EventProducer
from leadx.platform.logs import log_event, setup_logging
from leadx.platform.redis.client import connect as connect_redis
from leadx.platform.telemetry import setup_tracing
from services.portal.app import build_app, templates
from services.portal.dashboard import Dashboard
from services.portal.exchange_watch import ExchangeWatch
from services.portal.settings import PortalSettings
from services.portal.throttle import LoginThrottle
from services.portal.web import PortalDeps

log = logging.getLogger(__name__)
DASHBOARD_SERVICE = "leadx.dashboard.v1.DashboardService"
CHECK_EVERY_S = 2.0


class Dependencies:
    """Whether what the pages need answers now: SQL (people), Redis (the login throttle) and the
    dashboard (its gRPC health, SERVING only when the ledger is ready)."""

    def __init__(self) -> None:
        self.sql = self.redis = self.dashboard = False

    async def watch(self, deps: PortalDeps, redis, engine) -> None:
        health = health_pb2_grpc.HealthStub(deps.dashboard.channel)
        while True:
            before = (self.sql, self.redis, self.dashboard)
            self.sql = await asyncio.to_thread(_sql_answers, engine)
            try:
                self.redis = bool(await redis.ping())
            except Exception:
                self.redis = False
            try:
                answer = await health.Check(health_pb2.HealthCheckRequest(service=DASHBOARD_SERVICE), timeout=2)
                self.dashboard = answer.status == health_pb2.HealthCheckResponse.SERVING
            except Exception:
                self.dashboard = False
            if (self.sql, self.redis, self.dashboard) != before:
                log_event(log, "portal dependencies", sql=self.sql, redis=self.redis, dashboard=self.dashboard)
            await asyncio.sleep(CHECK_EVERY_S)


def _sql_answers(engine) -> bool:
    try:
        with engine.connect() as connection:
            connection.execute(text("select 1"))
        return True
    except Exception:
        return False


def create_app(settings: PortalSettings):
    engine = make_engine(settings.database_url)
    exit_unless_current(engine, "portal")
    redis = connect_redis(settings.redis)
    readiness = Readiness()
    dependencies = Dependencies()
    readiness.add("sql", lambda: dependencies.sql)
    readiness.add("redis", lambda: dependencies.redis)
    readiness.add("dashboard", lambda: dependencies.dashboard)
    # A buyer's return made here waits on its publish before the page answers: the short linger.
    producer = EventProducer(settings.kafka, client_id="leadx-portal", waiting="answer")
    readiness.add("producer", lambda: producer.started)
    health = HealthServer(readiness, settings.health_port)
    deps = PortalDeps(
        sessions=session_factory(engine), reads=read_session_factory(engine),
        signer=SessionSigner(settings.session_secret), policy=settings.sessions,
        throttle=LoginThrottle(redis, settings.topic_prefix, settings.throttle, settings.session_secret),
        dashboard=Dashboard(settings.dashboard_address, settings.dashboard_key, settings.dashboard_ca_file),
        templates=templates(), readiness=readiness, secure_cookies=settings.secure_cookies,
        return_policy=settings.return_policy, publisher=producer, live_poll_s=settings.live_poll_s,
        live_stream_s=settings.live_stream_s,
        exchange_watch=ExchangeWatch(settings.health_urls, settings.kafka, settings.topic_prefix))

    @contextlib.asynccontextmanager
    async def lifespan(_app):
        await health.start()
        deps.dashboard.start()
        await producer.start()
        watching = asyncio.create_task(dependencies.watch(deps, redis, engine))
        yield
        watching.cancel()
        await deps.dashboard.close()
        await producer.stop()
        await redis.aclose()
        engine.dispose()
        await health.stop()

    return build_app(deps, lifespan)


def main() -> None:
    settings = PortalSettings.from_env()
    setup_logging("portal", settings.log_level)
    setup_tracing("portal")
    serve(create_app(settings), settings.port)


if __name__ == "__main__":
    main()
