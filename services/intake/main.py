"""intake: the sellers' HTTP gateway → lead.submitted, answered with the pipeline's verdict."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from pathlib import Path


from leadx.accounts.directory import BuyerDirectory
from leadx.dedup.scopes import DedupPolicy
from leadx.dedup.store import DedupStore
from leadx.leads.phone_areas import area_code_states
from leadx.leads.rules import load_rulebook
from leadx.leads.sealing import PiiKeyring
from leadx.leads.verticals import load_verticals, zip_states
from leadx.ledger.returns import ReturnPolicy
from leadx.platform.db.engine import make_engine, session_factory
from leadx.platform.db.schema import exit_unless_current
from leadx.platform.health import HealthServer, Readiness
from leadx.platform.http_service import serve
from leadx.platform.kafka.admin import ensure_topics
from leadx.platform.kafka.producer import EventProducer
from leadx.platform.logs import log_event, setup_logging
from leadx.platform.redis.client import connect as connect_redis
from leadx.platform.runtime import tune_garbage_collection
from leadx.platform.telemetry import setup_tracing
from services.intake.admin import Admin
from services.intake.app import build_app
from services.intake.auth_throttle import FailedAuthThrottle
from services.intake.buyers import BuyerDeps, Buyers
from services.intake.guards import IdempotencyStore, RateLimiter
from services.intake.lists import Lists
from services.intake.publishing import BoundedPublisher
from services.intake.requests import Callers
from services.intake.sellers import SellerDeps, Sellers
from services.intake.settings import IntakeSettings
from services.intake.verdicts import VerdictWaiter

log = logging.getLogger(__name__)


def create_app(settings: IntakeSettings):
    common = settings.common
    readiness = Readiness()
    # A seller's answer waits on lead.submitted (its verdict follows); returns and ratings share the
    # producer and its short linger, being few.
    producer = EventProducer(common.kafka, client_id="leadx-intake", waiting="answer")
    publisher = BoundedPublisher(producer, settings.publish_timeout_s, settings.max_in_flight)
    verdicts = VerdictWaiter(common.kafka)
    redis = connect_redis(common.redis)
    engine = make_engine(common.database_url)
    exit_unless_current(engine, "intake")
    sessions = session_factory(engine)
    # Read and compiled now: a broken rules file stops the start with its file and rule named.
    rulebook = load_rulebook(Path(settings.rules_dir), load_verticals())
    zip_states()  # the ZIP table is built now (~0.5 s) and the area codes read, not during a seller's first request
    area_code_states()
    buyers = BuyerDirectory(sessions, common.accounts_refresh_s)
    namespace = common.kafka.topic_prefix
    readiness.add("producer", lambda: producer.started)
    readiness.add("verdicts", lambda: verdicts.positioned)
    readiness.add("buyers", lambda: buyers.loaded)
    # /metrics (and /healthz, /readyz again) on the health port, as every service: never on the
    # sellers' port.
    health = HealthServer(readiness, common.health_port)

    @contextlib.asynccontextmanager
    async def lifespan(_app):
        await health.start()
        await asyncio.to_thread(buyers.load)
        refresher = asyncio.create_task(buyers.refresh_forever())
        await ensure_topics(common.kafka)
        await producer.start()
        await verdicts.start()
        await redis.ping()
        # Everything allocated so far lives as long as the process (the ZIP and area-code tables
        # above all: ~185,000 objects): frozen here, once it is all loaded.
        tune_garbage_collection()
        yield
        # uvicorn has stopped accepting and finished in-flight requests by now.
        refresher.cancel()
        await verdicts.stop()
        # Leads answered 202 whose publish is still going on get a last chance to be acknowledged.
        left = await publisher.drain(settings.publish_timeout_s)
        if left:
            log_event(log, "stopping with lead publishes unacknowledged", count=left)
        await producer.stop()
        await redis.aclose()
        engine.dispose()
        await health.stop()

    callers = Callers(sessions, RateLimiter(redis, namespace, settings.rate_limit_per_second),
                      FailedAuthThrottle(redis, namespace, settings.auth_failures_per_minute),
                      operators=RateLimiter(redis, namespace, settings.admin_rate_limit_per_second, scope="admin"),
                      addresses=RateLimiter(redis, namespace, settings.address_rate_limit_per_second, scope="address"),
                      key_ttl_s=settings.api_key_cache_s)
    return build_app(
        sellers=Sellers(SellerDeps(
            callers=callers, sessions=sessions, producer=producer, publisher=publisher, verdicts=verdicts, redis=redis,
            idempotency=IdempotencyStore(redis, namespace, settings.idempotency_ttl_s),
            dedup=DedupStore(redis, namespace, settings.dedup_bucket_bits, wait_replicas=common.redis.wait_replicas,
                             wait_timeout_ms=common.redis.wait_timeout_ms), dedup_policy=DedupPolicy.from_env(),
            buyers=buyers, rulebook=rulebook, secret=common.hmac_key, keyring=PiiKeyring.from_env(),
            namespace=namespace, public_url=settings.public_url, verdict_timeout_s=settings.verdict_timeout_s,
            ping_ttl_s=settings.ping_ttl_s, phone_area_must_match=settings.phone_area_must_match,
            max_body_bytes=settings.max_body_bytes), hmac_keys=common.hmac_keys),
        buyers=Buyers(BuyerDeps(
            callers=callers, sessions=sessions, producer=producer, redis=redis, namespace=namespace,
            return_policy=ReturnPolicy.from_env(), max_body_bytes=settings.max_body_bytes)),
        admin=Admin(sessions, settings.admin_api_key, callers=callers),
        lists=Lists(sessions, callers, settings.admin_api_key, settings.max_body_bytes),
        readiness=readiness, lifespan=lifespan, callers=callers)


def main() -> None:
    settings = IntakeSettings.from_env()
    setup_logging("intake", settings.common.log_level)
    setup_tracing("intake")
    serve(create_app(settings), settings.port)


if __name__ == "__main__":
    main()
