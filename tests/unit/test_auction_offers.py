"""The offer record the auction worker writes and the bid API reads (leadx.auction.offers), against
a real Redis and a real Redis Cluster (where a batch's records are spread over the nodes)."""

from __future__ import annotations

import asyncio
import uuid

import pytest

from leadx.auction.offers import OfferWriter, offer_key
from leadx.platform.config import RedisSettings
from tests.unit.redis_layouts import LAYOUTS, connected, layout


@pytest.fixture(params=LAYOUTS)
def redis_target(request) -> RedisSettings:
    return layout(request)


def test_the_offer_record_holds_the_close_reserve_and_buyers_and_expires(redis_target):
    namespace = f"o{uuid.uuid4().hex[:8]}:"

    async def scenario():
        redis = await connected(redis_target)
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


def test_offers_asked_for_together_are_each_written_and_a_failure_is_its_writers_alone(redis_target):
    namespace = f"o{uuid.uuid4().hex[:8]}:"

    async def scenario():
        redis = await connected(redis_target)
        try:
            # A key of another type: the script's HSET fails for that auction only.
            await redis.set(offer_key(namespace, "clash"), "not a hash")
            writer = OfferWriter(redis, namespace)
            ids = [f"auction{i}" for i in range(50)]
            outcomes = await asyncio.gather(
                *(writer.write(a, 1_795_000_000_000 + i, 100 + i, [f"b{i}"], 60_000) for i, a in enumerate(ids)),
                writer.write("clash", 1, 1, ["b"], 60_000), return_exceptions=True)
            stored = [await redis.hgetall(offer_key(namespace, a)) for a in ids]
            return outcomes, stored
        finally:
            await redis.aclose()

    outcomes, stored = asyncio.run(scenario())
    assert outcomes[:50] == [None] * 50
    assert isinstance(outcomes[50], Exception) and "WRONGTYPE" in str(outcomes[50])
    assert [s[b"min_price_cents"] for s in stored] == [str(100 + i).encode() for i in range(50)]
    assert stored[7][b"offered"] == b"b7"
