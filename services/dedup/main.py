"""dedup: lead.submitted → lead.verified | lead.rejected."""

from __future__ import annotations

import asyncio

from leadx.contracts import topics
from leadx.contracts.events.v1 import events_pb2 as ev
from leadx.dedup.scopes import DedupPolicy
from leadx.dedup.store import DEFAULT_BUCKET_BITS, DedupStore
from leadx.leads.sealing import PiiKeyring
from leadx.platform.config import CommonSettings, env_int
from leadx.platform.redis.client import connect as connect_redis
from leadx.platform.runtime import ServiceRuntime, run
from services.dedup.checker import DuplicateChecker


async def main(stop: asyncio.Event) -> None:
    settings = CommonSettings.from_env("dedup", database=False)
    runtime = ServiceRuntime(settings)
    redis = connect_redis(settings.redis)
    store = DedupStore(redis, namespace=settings.kafka.topic_prefix,
                       bucket_bits=env_int("DEDUP_BUCKET_BITS", DEFAULT_BUCKET_BITS))
    checker = DuplicateChecker(store, runtime.producer, settings.hmac_keys, PiiKeyring.from_env(),
                               DedupPolicy.from_env(),
                               email_provider_rules=settings.email_provider_rules)
    runtime.consume("dedup", {topics.LEAD_SUBMITTED: ev.LeadSubmitted}, checker.handle)
    runtime.on_stop(redis.aclose)
    await runtime.run(stop)


if __name__ == "__main__":
    run(main)
