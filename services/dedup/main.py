"""dedup: lead.submitted → lead.verified | lead.rejected."""

from __future__ import annotations

import asyncio

from leadx.contracts import topics
from leadx.contracts.events.v1 import events_pb2 as ev
from leadx.dedup.scopes import DedupPolicy
from leadx.dedup.store import DEFAULT_BUCKET_BITS, DedupStore
from leadx.leads.sealing import PiiKeyring
from leadx.platform.config import CommonSettings, env_int
from leadx.platform.db.engine import make_engine, session_factory
from leadx.platform.db.schema import exit_unless_current
from leadx.platform.redis.client import connect as connect_redis
from leadx.platform.runtime import ServiceRuntime, run
from services.dedup.checker import DuplicateChecker
from services.dedup.state_keeper import StateKeeper


async def main(stop: asyncio.Event) -> None:
    # SQL: the record the dedup state is rebuilt from when Redis loses it.
    settings = CommonSettings.from_env("dedup")
    runtime = ServiceRuntime(settings, producer_waiting="answer")  # a seller's answer waits on its verdicts
    redis = connect_redis(settings.redis)
    engine = make_engine(settings.database_url)
    await asyncio.to_thread(exit_unless_current, engine, "dedup")
    store = DedupStore(redis, namespace=settings.kafka.topic_prefix,
                       bucket_bits=env_int("DEDUP_BUCKET_BITS", DEFAULT_BUCKET_BITS),
                       wait_replicas=settings.redis.wait_replicas, wait_timeout_ms=settings.redis.wait_timeout_ms)
    policy = DedupPolicy.from_env()
    keeper = StateKeeper(store, session_factory(engine), policy, settings.hmac_keys, settings.email_provider_rules)
    keeper.look()  # a first start writes the epoch; a Redis that lost its records is rebuilt
    runtime.readiness.add("dedup-records", lambda: keeper.complete)
    checker = DuplicateChecker(store, runtime.producer, settings.hmac_keys, PiiKeyring.from_env(), policy, keeper,
                               email_provider_rules=settings.email_provider_rules)
    runtime.consume("dedup", {topics.LEAD_SUBMITTED: ev.LeadSubmitted}, checker.handle, waiting="answer")

    async def close_resources() -> None:
        await keeper.stop()
        await redis.aclose()
        engine.dispose()

    runtime.on_stop(close_resources)
    await runtime.run(stop)


if __name__ == "__main__":
    run(main)
