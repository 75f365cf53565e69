"""Rate limits and idempotent retries, shared by every intake replica through Redis."""

from __future__ import annotations

import hashlib
import hmac
import json
import math
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass


from leadx.platform.config import HmacKeyring
from leadx.platform.redis.client import RedisClient, hash_tag
from leadx.platform.redis.pipeline import Pipeliner
from services.intake.formats import Answer

# A sliding window of one second, approximated by two fixed windows (the previous one weighted by
# how much of it still overlaps), as most API gateways do: one round trip, no burst of twice the
# limit at a window edge. KEYS: this window's counter, the previous window's. Returns 0 when
# allowed, else the milliseconds until a request would be.
_TAKE = """
local now, limit, window = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
local current = tonumber(redis.call('GET', KEYS[1]) or '0')
local previous = tonumber(redis.call('GET', KEYS[2]) or '0')
local elapsed = (now % window) / window
if previous * (1 - elapsed) + current + 1 > limit then
  return window - (now % window)
end
redis.call('INCR', KEYS[1])
redis.call('PEXPIRE', KEYS[1], window * 2)
return 0
"""


# Deletes an idempotency record only if it names the given lead.
_RELEASE_IF = """
local stored = redis.call('GET', KEYS[1])
if stored and cjson.decode(stored)['lead_id'] == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
"""


@dataclass(frozen=True)
class Limited:
    retry_after_s: int


class RateLimiter:
    """At most `per_second` requests per bucket, across all replicas: a bucket is an account (a
    seller or a buyer), the operators' admin key or a source address, each kind of bucket a limiter
    of its own (`scope` keeps their keys apart)."""

    WINDOW_MS = 1000

    def __init__(self, redis: RedisClient, namespace: str, per_second: int, scope: str = "") -> None:
        self.redis, self.per_second, self.namespace = redis, per_second, namespace
        self._prefix = f"rl:{scope}:{namespace}" if scope else f"rl:{namespace}"
        # A bucket's two windows are one script's keys: on a Redis Cluster, where a script may touch
        # one hash slot only, the bucket is their hash tag. One Redis keeps the names it always had.
        # Pipelined: the checks of requests arriving together share one round trip.
        self._take = Pipeliner(redis).script(_TAKE)

    def keys(self, bucket: str, now_ms: int) -> list[str]:
        """The counters of the window `now_ms` falls in and of the one before it."""
        base = f"{self._prefix}{hash_tag(self.redis, bucket) or bucket}"
        window = now_ms // self.WINDOW_MS
        return [f"{base}:{window}", f"{base}:{window - 1}"]

    async def take(self, bucket: str, now_ms: int | None = None) -> Limited | None:
        if self.per_second <= 0:  # 0 switches the limit off
            return None
        now_ms = int(time.time() * 1000) if now_ms is None else now_ms
        wait_ms = int(await self._take(self.keys(bucket, now_ms), [now_ms, self.per_second, self.WINDOW_MS]))
        return Limited(max(1, math.ceil(wait_ms / 1000))) if wait_ms else None


# What makes two POSTs under one idempotency key "the same lead": the lead as the exchange would
# submit it, not the bytes it came in, so a retry in another format, with its keys in another order
# or a phone written another way is still the same lead. The ping token is left out: it is a proof
# checked against these same fields before the key is used, and a retry after a new PING carries a
# new token for the same lead. docs/integration-spec.md#retries says the same to sellers.
class LeadFingerprints:
    """Keyed hashes of leads: a lead's fields hold raw PII, which reaches Redis only keyed (HMAC)."""

    def __init__(self, platform_keys: HmacKeyring | bytes) -> None:
        keys = platform_keys if isinstance(platform_keys, HmacKeyring) else HmacKeyring.single(platform_keys)
        # A key of its own, so a fingerprint can never be confused with an identity key or a token's
        # signature; one per listed HMAC key, the current first.
        self._keys = [hmac.new(secret, b"leadx idempotency fingerprint v1", hashlib.sha256).digest()
                      for _, secret in keys.keys]

    def of(self, vertical: str, fields: Mapping[str, str], min_price_cents: int, buyer_id: str,
           reference: str) -> LeadFingerprint:
        """`fields` as verified (normalised); `min_price_cents` as the seller gave it (0 when absent)."""
        canonical = json.dumps({"vertical": vertical, "fields": dict(fields), "min_price": min_price_cents,
                                "buyer": buyer_id, "reference": reference}, sort_keys=True, separators=(",", ":"))
        return LeadFingerprint([hmac.new(key, canonical.encode(), hashlib.sha256).hexdigest() for key in self._keys])


class LeadFingerprint(str):
    """A lead's fingerprint under the current HMAC key, which is what is stored, knowing its
    fingerprints under every listed key: a retry that straddles a rotation of the key (the first
    attempt answered by a replica with the old key current, the retry by one with the new) is
    still the same lead."""

    under_every_key: frozenset[str]

    def __new__(cls, fingerprints: Sequence[str]) -> LeadFingerprint:
        made = super().__new__(cls, fingerprints[0])
        made.under_every_key = frozenset(fingerprints)
        return made


def _same_lead(stored: str, fingerprint: str) -> bool:
    return stored in (fingerprint.under_every_key if isinstance(fingerprint, LeadFingerprint) else {fingerprint})


@dataclass(frozen=True)
class FirstAttempt:
    """The attempt that first used a key."""

    lead_id: str
    answer: Answer | None  # None while the first attempt is still being answered
    same_lead: bool = True  # False: the key was first used for a different lead; nothing may be answered from it


class IdempotencyStore:
    """A retried POST with the same key gets the first attempt's answer, never a second lead; the
    same key with a different lead is told so, never answered with the first lead's answer.

    The key is claimed (SET NX) with the lead id and the lead's fingerprint in one value before the
    lead is published, so two concurrent attempts cannot both publish, and whoever loses the claim
    compares against the fingerprint of the one that won it; the final answer replaces the claim
    once it is known, keeping the fingerprint. A record without a fingerprint was written by an
    earlier version (upgrades happen with keys live): it is answered as that version answered it.
    """

    def __init__(self, redis: RedisClient, namespace: str, ttl_s: int) -> None:
        self.redis, self.namespace, self.ttl_s = redis, namespace, ttl_s

    def _key(self, seller_id: str, key: str) -> str:
        return f"idem:{self.namespace}{seller_id}:{key}"

    async def claim(self, seller_id: str, key: str, lead_id: str, fingerprint: str) -> FirstAttempt | None:
        """None if this attempt is the first (and now owns the key), else the first attempt. The
        first attempt's fingerprint may have been made under any listed HMAC key (LeadFingerprint)."""
        stored_key = self._key(seller_id, key)
        claim = json.dumps({"lead_id": lead_id, "fingerprint": fingerprint})
        for _ in range(3):  # the claim can expire between SET and GET; then simply claim again
            if await self.redis.set(stored_key, claim, nx=True, ex=self.ttl_s):
                return None
            raw = await self.redis.get(stored_key)
            if raw is not None:
                stored = json.loads(raw)
                answer = stored.get("answer")
                first = stored.get("fingerprint")
                return FirstAttempt(stored["lead_id"], Answer(**answer) if answer else None,
                                    same_lead=first is None or _same_lead(first, fingerprint))
        raise RuntimeError(f"idempotency key {key!r} could neither be claimed nor read")

    async def record(self, seller_id: str, key: str, answer: Answer, fingerprint: str) -> None:
        stored = {"lead_id": answer.lead_id, "fingerprint": fingerprint,
                  "answer": {"status": answer.status, "http_status": answer.http_status, "lead_id": answer.lead_id,
                             "errors": answer.errors, "extra": answer.extra, "headers": answer.headers}}
        await self.redis.set(self._key(seller_id, key), json.dumps(stored), ex=self.ttl_s)

    async def release(self, seller_id: str, key: str, lead_id: str | None = None) -> None:
        """The first attempt's lead was not queued: let a retry try again. With `lead_id`, only if
        the key still names that lead (it may have expired and been claimed for another since)."""
        if lead_id is None:
            await self.redis.delete(self._key(seller_id, key))
        else:
            await self.redis.eval(_RELEASE_IF, 1, self._key(seller_id, key), lead_id)
