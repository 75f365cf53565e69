"""dedup: lead.submitted → lead.verified | lead.rejected."""

from __future__ import annotations

import asyncio

from leadx.redis_client import connect as connect_redis

from leadx import service, topics
from leadx.config import CommonSettings, env_bool, env_int
from leadx.dedup_store import DAY_MS, DedupStore
from leadx.events.v1 import events_pb2 as ev
from leadx.runtime import ServiceRuntime
from services.dedup.checker import DedupPolicy, DuplicateChecker


async def main(stop: asyncio.Event) -> None:
    settings = CommonSettings.from_env("dedup")
    runtime = ServiceRuntime(settings)
    redis = connect_redis(settings.redis_url)
    store = DedupStore(redis, namespace=settings.kafka.topic_prefix,
                       window_ms=env_int("DEDUP_WINDOW_DAYS", 30) * DAY_MS)
    checker = DuplicateChecker(store, runtime.producer, settings.hmac_key,
                               DedupPolicy(platform_scope=env_bool("DEDUP_PLATFORM_SCOPE", True)))
    runtime.consume("dedup", {topics.LEAD_SUBMITTED: ev.LeadSubmitted}, checker.handle)
    runtime.on_stop(redis.aclose)
    await runtime.run(stop)


if __name__ == "__main__":
    service.run(main)
