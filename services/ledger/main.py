"""ledger: records the lead life cycle and sales in SQL; serves dashboard queries over gRPC."""

from __future__ import annotations

import asyncio

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc

from leadx.accounts.api_keys import cache_ttl_from_env
from leadx.contracts.dashboard.v1 import dashboard_pb2, dashboard_pb2_grpc
from leadx.dedup.scopes import DedupPolicy
from leadx.dedup.store import DEFAULT_BUCKET_BITS, DedupStore
from leadx.leads.sealing import PiiKeyring
from leadx.leads.verticals import zip_counties
from leadx.platform import grpc_tls
from leadx.platform.config import CommonSettings, GrpcServerSettings, env_float, env_int, env_str
from leadx.platform.db.engine import make_engine, read_session_factory, session_factory
from leadx.platform.db.schema import exit_unless_current
from leadx.platform.kafka.envelope import Envelope
from leadx.platform.redis.client import connect as connect_redis
from leadx.platform.runtime import ServiceRuntime, run
from services.ledger import list_closer, redrive
from services.ledger.batching import BatchWriter, linger_s_from_env
from services.ledger.dashboard import DashboardService
from services.ledger.dashboard_auth import DashboardAuth
from services.ledger.list_closer import ListCloser
from services.ledger.recorder import MESSAGE_TYPES, Recorder
from services.ledger.redrive import RedrivePolicy, StallRedriver

SERVICE_NAME = dashboard_pb2.DESCRIPTOR.services_by_name["DashboardService"].full_name


async def main(stop: asyncio.Event) -> None:
    settings = CommonSettings.from_env("ledger")
    grpc_settings = GrpcServerSettings.from_env()
    key_ttl_s = cache_ttl_from_env()
    linger_s = linger_s_from_env()  # read with the other settings: a bad one stops the ledger at once
    runtime = ServiceRuntime(settings)
    engine = make_engine(settings.database_url)
    await asyncio.to_thread(exit_unless_current, engine, "ledger")
    await asyncio.to_thread(zip_counties)  # built now (~0.5 s), not while recording the first sale
    sessions = session_factory(engine)
    keyring = PiiKeyring.from_env()  # opens leads for the lead store, seals those it publishes again
    writer = BatchWriter(Recorder(sessions, keyring), linger_s=linger_s)
    writer.start()

    async def record(envelope: Envelope) -> None:
        await writer.apply(envelope)

    # Many in flight, so that each flush commits a large batch in one transaction.
    runtime.consume("ledger", MESSAGE_TYPES, record, max_in_flight=1000, waiting="background")

    server = grpc.aio.server()
    reads = read_session_factory(engine)  # the dashboard only reads
    auth = DashboardAuth(reads, env_str("DASHBOARD_ADMIN_API_KEY", ""), key_ttl_s)
    dashboard_pb2_grpc.add_DashboardServiceServicer_to_server(DashboardService(reads, auth), server)
    health_servicer = health.aio.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    grpc_tls.enable_reflection(server, (SERVICE_NAME, health.SERVICE_NAME), grpc_settings)
    grpc_tls.listen(server, grpc_settings)
    await server.start()

    async def report_health() -> None:
        # gRPC health mirrors real readiness instead of always answering SERVING.
        while True:
            serving = health_pb2.HealthCheckResponse.SERVING if runtime.readiness.ready() \
                else health_pb2.HealthCheckResponse.NOT_SERVING
            for name in ("", SERVICE_NAME):
                await health_servicer.set(name, serving)
            await asyncio.sleep(1)

    reporter = asyncio.create_task(report_health())
    stall_after_s = env_float("LEDGER_REDRIVE_AFTER_SECONDS", 60)
    policy = RedrivePolicy(stall_after_ms=int(stall_after_s * 1000), max_redrives=env_int("LEDGER_MAX_REDRIVES", 5))
    redriver = StallRedriver(sessions, runtime.producer, keyring, policy)
    runtime.every(max(0.5, min(5.0, stall_after_s / 4)), redriver.sweep, "stall sweep", redrive.log)
    # List auctions (leadx.lists) live in this service's SQL: it closes them and sells their customers.
    redis = connect_redis(settings.redis)
    dedup = DedupStore(redis, namespace=settings.kafka.topic_prefix,
                       bucket_bits=env_int("DEDUP_BUCKET_BITS", DEFAULT_BUCKET_BITS),
                       wait_replicas=settings.redis.wait_replicas, wait_timeout_ms=settings.redis.wait_timeout_ms)
    closer = ListCloser(sessions, runtime.producer, dedup, DedupPolicy.from_env(), keyring,
                        env_float("SELLER_FEE_PERCENT", 10.0))
    runtime.every(env_float("LISTS_CLOSE_INTERVAL_SECONDS", 1.0), closer.sweep, "list auction sweep",
                  list_closer.log)

    async def stop_grpc() -> None:
        reporter.cancel()
        await redis.aclose()
        await writer.stop()
        await server.stop(grace=5)
        engine.dispose()

    runtime.on_stop(stop_grpc)
    await runtime.run(stop)


if __name__ == "__main__":
    run(main)
