"""Caps in Redis (leadx.auction.caps.counters), against a real Redis: usage read in the buyer's periods, the
atomic check-and-count under many simultaneous sales, and the release of a sale not taken."""

from __future__ import annotations

import asyncio
import uuid
from zoneinfo import ZoneInfo

from leadx.auction.caps.counters import CapOwner, CapsStore, Reservation
from leadx.auction.caps.limits import Caps, Usage
from leadx.platform.redis.client import connect

UTC, CHICAGO = ZoneInfo("UTC"), ZoneInfo("America/Chicago")
NOW = 1_795_000_000_000  # 2026-11-18 around 11:06 UTC
HOUR = 3_600_000


def run(redis_url: str, scenario):
    async def main():
        redis = connect(redis_url)
        try:
            return await scenario(CapsStore(redis, namespace=f"c{uuid.uuid4().hex[:8]}:"))
        finally:
            await redis.aclose()
    return asyncio.run(main())


def test_a_sale_is_counted_for_the_buyer_and_its_profile_in_their_periods(redis_url):
    async def scenario(store: CapsStore):
        owners = [CapOwner("b_1", CHICAGO, Caps(leads_per_day=5)), CapOwner("p_1", CHICAGO, Caps(leads_per_hour=5))]
        reservation = await store.reserve(owners, 1500, NOW)
        assert isinstance(reservation, Reservation) and len(reservation.keys) == 6
        usage = await store.usage([("b_1", CHICAGO), ("p_1", CHICAGO), ("b_2", CHICAGO)], NOW)
        assert usage["b_1"] == usage["p_1"] == Usage(1, 1, 1500, 1500)
        assert usage["b_2"] == Usage()
        # An hour later it is another hour, the same day and month.
        assert (await store.usage([("b_1", CHICAGO)], NOW + HOUR))["b_1"] == Usage(0, 1, 1500, 1500)
    run(redis_url, scenario)


def test_simultaneous_sales_never_pass_a_cap(redis_url):
    async def scenario(store: CapsStore):
        owner = [CapOwner("b_1", UTC, Caps(leads_per_day=3))]
        outcomes = await asyncio.gather(*(store.reserve(owner, 1000, NOW) for _ in range(50)))
        assert sum(isinstance(o, Reservation) for o in outcomes) == 3
        assert {o for o in outcomes if isinstance(o, str)} == {"b_1"}  # refused, naming the capped owner
        assert (await store.usage([("b_1", UTC)], NOW))["b_1"].leads_day == 3
    run(redis_url, scenario)


def test_a_spend_cap_refuses_the_sale_that_would_pass_it_and_names_the_owner(redis_url):
    async def scenario(store: CapsStore):
        buyer = CapOwner("b_1", UTC, Caps(spend_per_day_cents=5000))
        profile = CapOwner("p_1", UTC, Caps(spend_per_month_cents=2500))
        assert isinstance(await store.reserve([buyer, profile], 2000, NOW), Reservation)
        assert await store.reserve([buyer, profile], 1000, NOW) == "p_1"  # 3000 > the profile's 2500
        assert isinstance(await store.reserve([buyer], 3000, NOW), Reservation)  # exactly 5000
        assert await store.reserve([buyer], 1, NOW) == "b_1"
        # A refused sale counted nothing anywhere.
        usage = await store.usage([("b_1", UTC), ("p_1", UTC)], NOW)
        assert usage["b_1"].spend_day_cents == 5000 and usage["p_1"].spend_month_cents == 2000
    run(redis_url, scenario)


def test_a_released_sale_gives_back_exactly_what_it_took(redis_url):
    async def scenario(store: CapsStore):
        owner = [CapOwner("b_1", UTC, Caps(leads_per_hour=1))]
        reservation = await store.reserve(owner, 1200, NOW)
        assert await store.reserve(owner, 1200, NOW) == "b_1"
        await store.release(Reservation.decode(reservation.encode()))  # as delivery keeps it in Redis
        assert (await store.usage([("b_1", UTC)], NOW))["b_1"] == Usage()
        assert isinstance(await store.reserve(owner, 1200, NOW), Reservation)
    run(redis_url, scenario)


def test_owners_without_caps_cost_no_round_trip(redis_url):
    async def scenario(store: CapsStore):
        assert await store.reserve([], 1000, NOW) == Reservation((), 1000)
        assert await store.usage([], NOW) == {}
    run(redis_url, scenario)
