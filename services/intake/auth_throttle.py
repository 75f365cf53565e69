"""Failed authentications per source address, shared by every intake replica through Redis.

A caller that keeps sending keys the exchange does not know is guessing keys, or misconfigured; each
unknown key costs a SQL look-up (a known key is cached). After `per_minute` failures from one
address in a minute, its requests with keys not already known are refused with 429
`AUTH_THROTTLED` before any look-up, until the minute is over. A caller whose key is known (cached
by an earlier success) is never held up by the guesses of another behind the same address.

The address is the one the intake sees: behind a load balancer, uvicorn takes it from
`X-Forwarded-For` only when the balancer is trusted (`FORWARDED_ALLOW_IPS`).
"""

from __future__ import annotations

import asyncio
import time

from starlette.requests import Request

from leadx.platform.redis.client import RedisClient
from leadx.platform.redis.pipeline import Pipeliner

WINDOW_S = 60
UNKNOWN_ADDRESS = "unknown"


class AuthThrottled(Exception):
    def __init__(self, retry_after_s: int) -> None:
        super().__init__(f"too many failed authentications; retry in {retry_after_s} s")
        self.retry_after_s = retry_after_s


class FailedAuthThrottle:
    def __init__(self, redis: RedisClient, namespace: str, per_minute: int) -> None:
        self.per_minute = per_minute
        self.namespace = namespace
        self._redis = Pipeliner(redis)  # checks and counts of requests arriving together share a round trip

    def _key(self, address: str, now_s: float) -> str:
        return f"authfail:{self.namespace}{address}:{int(now_s // WINDOW_S)}"

    async def check(self, address: str, now_s: float | None = None) -> None:
        """Raises AuthThrottled when `address` has failed `per_minute` times in this minute."""
        if self.per_minute <= 0:  # 0 switches it off
            return
        now_s = time.time() if now_s is None else now_s
        failures = await self._redis.command("GET", self._key(address, now_s))
        if failures is not None and int(failures) >= self.per_minute:
            raise AuthThrottled(max(1, WINDOW_S - int(now_s % WINDOW_S)))

    async def failed(self, address: str, now_s: float | None = None) -> None:
        if self.per_minute <= 0:
            return
        key = self._key(address, time.time() if now_s is None else now_s)
        # Both made in one turn of the event loop: one round trip.
        await asyncio.gather(self._redis.command("INCR", key), self._redis.command("EXPIRE", key, WINDOW_S * 2))


def source_address(request: Request) -> str:
    return request.client.host if request.client is not None else UNKNOWN_ADDRESS
