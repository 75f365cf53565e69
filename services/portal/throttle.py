"""Failed logins, counted per account (an HMAC of the email typed) and per client address in Redis,
so every portal replica sees the same counts; the limits are leadx.accounts.people.ThrottlePolicy's.
The address is the one uvicorn reports: behind a load balancer, set FORWARDED_ALLOW_IPS to it."""

from __future__ import annotations

import asyncio
import time

from leadx.accounts.people import ThrottlePolicy, throttle_subject
from leadx.platform.redis.client import RedisClient


class LoginThrottle:
    def __init__(self, redis: RedisClient, namespace: str, policy: ThrottlePolicy, secret: bytes) -> None:
        self.redis = redis
        self.namespace = namespace
        self.policy = policy
        self.secret = secret

    def _keys(self, email: str, address: str, now: float) -> tuple[str, str]:
        window = self.policy.window(now)
        return (f"portal:loginfail:{self.namespace}account:{throttle_subject(email, self.secret)}:{window}",
                f"portal:loginfail:{self.namespace}address:{address}:{window}")

    async def blocked(self, email: str, address: str, now: float | None = None) -> bool:
        account_key, address_key = self._keys(email, address, time.time() if now is None else now)
        # Two GETs, not one MGET: on a Redis Cluster the keys live in different slots.
        account, by_address = await asyncio.gather(self.redis.get(account_key), self.redis.get(address_key))
        return self.policy.blocked(int(account or 0), int(by_address or 0))

    async def failed(self, email: str, address: str, now: float | None = None) -> None:
        async with self.redis.pipeline(transaction=False) as pipe:
            for key in self._keys(email, address, time.time() if now is None else now):
                pipe.incr(key)
                pipe.expire(key, self.policy.window_s * 2)
            await pipe.execute()
