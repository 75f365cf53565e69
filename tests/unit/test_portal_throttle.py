"""The portal's login throttle (services.portal.throttle) on a real Redis: failures counted per
account and per address, across every portal replica, for one window."""

from __future__ import annotations

import asyncio

from leadx.accounts.people import ThrottlePolicy
from leadx.platform.redis.client import connect
from services.portal.throttle import LoginThrottle

SECRET = b"s" * 32


def test_failures_block_an_account_or_an_address_for_the_window(redis_url, unique_prefix):
    async def scenario() -> None:
        redis = connect(redis_url)
        throttle = LoginThrottle(redis, unique_prefix, ThrottlePolicy(per_account=3, per_address=5, window_s=60),
                                 SECRET)
        now = 6000.0
        for _ in range(3):
            assert not await throttle.blocked("ann@example.com", "10.0.0.1", now)
            await throttle.failed("ann@example.com", "10.0.0.1", now)
        assert await throttle.blocked("ann@example.com", "10.0.0.2", now)  # the account, from anywhere
        assert not await throttle.blocked("bob@example.com", "10.0.0.2", now)
        for _ in range(2):
            await throttle.failed("bob@example.com", "10.0.0.1", now)
        assert await throttle.blocked("carol@example.com", "10.0.0.1", now)  # the address, for any account
        assert not await throttle.blocked("ann@example.com", "10.0.0.1", now + 60)  # the next window
        keys = [key async for key in redis.scan_iter(f"portal:loginfail:{unique_prefix}*")]
        assert keys and not any(b"example.com" in key for key in keys)  # no email stored in Redis
        ttls = [await redis.ttl(key) for key in keys]
        assert all(0 < ttl <= 120 for ttl in ttls)
        await redis.aclose()

    asyncio.run(scenario())
