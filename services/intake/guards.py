"""Per-seller rate limits and idempotent retries, shared by every intake replica through Redis."""

from __future__ import annotations

import json
import math
import time
from dataclasses import dataclass

from redis.asyncio import Redis

from leadx.platform.redis.pipeline import Pipeliner
from services.intake.formats import Answer

# A sliding window of one second, approximated by two fixed windows (the previous one weighted by
# how much of it still overlaps), as most API gateways do: one round trip, no burst of twice the
# limit at a window edge. Returns 0 when allowed, else the milliseconds until a request would be.
_TAKE = """
local now, limit, window = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
local slot = math.floor(now / window)
local current_key, previous_key = KEYS[1] .. ':' .. slot, KEYS[1] .. ':' .. (slot - 1)
local current = tonumber(redis.call('GET', current_key) or '0')
local previous = tonumber(redis.call('GET', previous_key) or '0')
local elapsed = (now % window) / window
if previous * (1 - elapsed) + current + 1 > limit then
  return window - (now % window)
end
redis.call('INCR', current_key)
redis.call('PEXPIRE', current_key, window * 2)
return 0
"""


@dataclass(frozen=True)
class Limited:
    retry_after_s: int


class RateLimiter:
    """At most `per_second` PINGs and POSTs per seller, across all replicas."""

    WINDOW_MS = 1000

    def __init__(self, redis: Redis, namespace: str, per_second: int) -> None:
        self.per_second = per_second
        self.namespace = namespace
        # Pipelined: the checks of requests arriving together share one round trip.
        self._take = Pipeliner(redis).script(_TAKE)

    async def take(self, seller_id: str, now_ms: int | None = None) -> Limited | None:
        if self.per_second <= 0:  # 0 switches the limit off
            return None
        now_ms = int(time.time() * 1000) if now_ms is None else now_ms
        wait_ms = int(await self._take([f"rl:{self.namespace}{seller_id}"], [now_ms, self.per_second, self.WINDOW_MS]))
        return Limited(max(1, math.ceil(wait_ms / 1000))) if wait_ms else None


@dataclass(frozen=True)
class FirstAttempt:
    lead_id: str
    answer: Answer | None  # None while the first attempt is still being answered


class IdempotencyStore:
    """A retried POST with the same key gets the first attempt's answer, never a second lead.

    The key is claimed (SET NX) with the lead id before the lead is published, so two concurrent
    attempts cannot both publish; the final answer replaces the claim once it is known.
    """

    def __init__(self, redis: Redis, namespace: str, ttl_s: int) -> None:
        self.redis, self.namespace, self.ttl_s = redis, namespace, ttl_s

    def _key(self, seller_id: str, key: str) -> str:
        return f"idem:{self.namespace}{seller_id}:{key}"

    async def claim(self, seller_id: str, key: str, lead_id: str) -> FirstAttempt | None:
        """None if this attempt is the first (and now owns the key), else the first attempt."""
        stored_key = self._key(seller_id, key)
        for _ in range(3):  # the claim can expire between SET and GET; then simply claim again
            if await self.redis.set(stored_key, json.dumps({"lead_id": lead_id}), nx=True, ex=self.ttl_s):
                return None
            raw = await self.redis.get(stored_key)
            if raw is not None:
                stored = json.loads(raw)
                answer = stored.get("answer")
                return FirstAttempt(stored["lead_id"], Answer(**answer) if answer else None)
        raise RuntimeError(f"idempotency key {key!r} could neither be claimed nor read")

    async def record(self, seller_id: str, key: str, answer: Answer) -> None:
        stored = {"lead_id": answer.lead_id,
                  "answer": {"status": answer.status, "http_status": answer.http_status, "lead_id": answer.lead_id,
                             "errors": answer.errors, "extra": answer.extra, "headers": answer.headers}}
        await self.redis.set(self._key(seller_id, key), json.dumps(stored), ex=self.ttl_s)

    async def release(self, seller_id: str, key: str) -> None:
        """The first attempt failed before the lead was accepted: let a retry try again."""
        await self.redis.delete(self._key(seller_id, key))
