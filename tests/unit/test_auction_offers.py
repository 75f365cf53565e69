"""The offer record the auction worker writes and the bid API reads (leadx.auction_offers), against
a real Redis."""

from __future__ import annotations

import asyncio
import uuid

from leadx.auction_offers import OfferWriter, offer_key
from leadx.redis_client import connect


def test_the_offer_record_holds_the_close_reserve_and_buyers_and_expires(redis_url):
    namespace = f"o{uuid.uuid4().hex[:8]}:"

    async def scenario():
        redis = connect(redis_url)
        try:
            await OfferWriter(redis, namespace).write("A1b2C3d4E5", 1_795_000_003_000, 250, ["b_1", "b_2"], 60_000)
            key = offer_key(namespace, "A1b2C3d4E5")
            stored = {k.decode(): v.decode() for k, v in (await redis.hgetall(key)).items()}
            return stored, await redis.pttl(key)
        finally:
            await redis.aclose()

    stored, ttl_ms = asyncio.run(scenario())
    assert stored == {"closes_at_ms": "1795000003000", "min_price_cents": "250", "offered": "b_1 b_2"}
    assert 59_000 < ttl_ms <= 60_000
