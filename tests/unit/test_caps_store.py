"""Caps in Redis (leadx.auction.caps.counters), against a real Redis and a real Redis Cluster: usage
read in the buyer's periods, the atomic check-and-count under many simultaneous sales, and the
release of a sale not taken; on one Redis the keys keep their names, on a cluster a buyer's and its
profiles' keys share one hash slot."""

from __future__ import annotations

import asyncio
import uuid
from zoneinfo import ZoneInfo

import pytest
from redis.cluster import key_slot

from leadx.auction.caps.counters import CapOwner, CapsStore, Reservation
from leadx.auction.caps.limits import Caps, Usage
from leadx.platform.config import RedisSettings
from tests.unit.redis_layouts import LAYOUTS, connected, layout

UTC, CHICAGO = ZoneInfo("UTC"), ZoneInfo("America/Chicago")
NOW = 1_795_000_000_000  # 2026-11-18 around 11:06 UTC
HOUR = 3_600_000


@pytest.fixture(params=LAYOUTS)
def redis_target(request) -> RedisSettings:
    return layout(request)


def run(redis: RedisSettings, scenario):
    async def main():
        client = await connected(redis)
        try:
            return await scenario(CapsStore(client, namespace=f"c{uuid.uuid4().hex[:8]}:"))
        finally:
            await client.aclose()
    return asyncio.run(main())


def test_a_sale_is_counted_for_the_buyer_and_its_profile_in_their_periods(redis_target):
    async def scenario(store: CapsStore):
        owners = [CapOwner("b_1", CHICAGO, Caps(leads_per_day=5)),
                  CapOwner("p_1", CHICAGO, Caps(leads_per_hour=5), buyer_id="b_1")]
        reservation = await store.reserve(owners, 1500, NOW, "a1")
        assert isinstance(reservation, Reservation) and len(reservation.keys) == 6
        usage = await store.usage([("b_1", CHICAGO, "b_1"), ("p_1", CHICAGO, "b_1"), ("b_2", CHICAGO, "b_2")], NOW)
        assert usage["b_1"] == usage["p_1"] == Usage(1, 1, 1500, 1500)
        assert usage["b_2"] == Usage()
        # An hour later it is another hour, the same day and month.
        assert (await store.usage([("b_1", CHICAGO, "b_1")], NOW + HOUR))["b_1"] == Usage(0, 1, 1500, 1500)
    run(redis_target, scenario)


def test_simultaneous_sales_never_pass_a_cap(redis_target):
    async def scenario(store: CapsStore):
        owner = [CapOwner("b_1", UTC, Caps(leads_per_day=3))]
        outcomes = await asyncio.gather(*(store.reserve(owner, 1000, NOW, f"a{n}") for n in range(50)))
        assert sum(isinstance(o, Reservation) for o in outcomes) == 3
        assert {o for o in outcomes if isinstance(o, str)} == {"b_1"}  # refused, naming the capped owner
        assert (await store.usage([("b_1", UTC, "b_1")], NOW))["b_1"].leads_day == 3
    run(redis_target, scenario)


def test_a_spend_cap_refuses_the_sale_that_would_pass_it_and_names_the_owner(redis_target):
    async def scenario(store: CapsStore):
        buyer = CapOwner("b_1", UTC, Caps(spend_per_day_cents=5000))
        profile = CapOwner("p_1", UTC, Caps(spend_per_month_cents=2500), buyer_id="b_1")
        assert isinstance(await store.reserve([buyer, profile], 2000, NOW, "a1"), Reservation)
        assert await store.reserve([buyer, profile], 1000, NOW, "a2") == "p_1"  # 3000 > the profile's 2500
        assert isinstance(await store.reserve([buyer], 3000, NOW, "a3"), Reservation)  # exactly 5000
        assert await store.reserve([buyer], 1, NOW, "a4") == "b_1"
        # A refused sale counted nothing anywhere.
        usage = await store.usage([("b_1", UTC, "b_1"), ("p_1", UTC, "b_1")], NOW)
        assert usage["b_1"].spend_day_cents == 5000 and usage["p_1"].spend_month_cents == 2000
    run(redis_target, scenario)


def test_a_released_sale_gives_back_exactly_what_it_took(redis_target):
    async def scenario(store: CapsStore):
        owner = [CapOwner("b_1", UTC, Caps(leads_per_hour=1))]
        reservation = await store.reserve(owner, 1200, NOW, "a1")
        assert await store.reserve(owner, 1200, NOW, "a2") == "b_1"
        await store.release(Reservation.decode(reservation.encode()))  # as delivery keeps it in Redis
        assert (await store.usage([("b_1", UTC, "b_1")], NOW))["b_1"] == Usage()
        assert isinstance(await store.reserve(owner, 1200, NOW, "a2"), Reservation)
    run(redis_target, scenario)


def test_owners_without_caps_cost_no_round_trip(redis_target):
    async def scenario(store: CapsStore):
        assert await store.reserve([], 1000, NOW, "a1") == Reservation((), 1000)
        assert await store.usage([], NOW) == {}
    run(redis_target, scenario)


def test_a_buyer_and_its_profiles_are_counted_together_or_not_at_all_under_simultaneous_sales(redis_target):
    async def scenario(store: CapsStore):
        buyer = CapOwner("b_1", UTC, Caps(leads_per_day=10))
        narrow = CapOwner("p_1", UTC, Caps(leads_per_day=4), buyer_id="b_1")
        wide = CapOwner("p_2", UTC, Caps(spend_per_day_cents=100_000), buyer_id="b_1")
        outcomes = await asyncio.gather(*(store.reserve([buyer, narrow if n % 2 else wide], 100, NOW, f"a{n}")
                                          for n in range(60)))
        usage = await store.usage([("b_1", UTC, "b_1"), ("p_1", UTC, "b_1"), ("p_2", UTC, "b_1")], NOW)
        taken = [o for o in outcomes if isinstance(o, Reservation)]
        # Half the sales are given back (their buyer did not take the lead), all at once.
        await asyncio.gather(*(store.release(o) for o in taken[::2]))
        after = await store.usage([("b_1", UTC, "b_1"), ("p_1", UTC, "b_1"), ("p_2", UTC, "b_1")], NOW)
        return outcomes, taken, usage, after

    outcomes, taken, usage, after = run(redis_target, scenario)
    assert len(taken) == 10 and usage["b_1"].leads_day == 10  # the buyer's cap, exactly
    assert usage["p_1"].leads_day <= 4  # the narrow profile's, exactly
    # Every sale counted for the buyer was counted for its profile, and no refused one for either.
    assert usage["p_1"].leads_day + usage["p_2"].leads_day == 10
    assert usage["b_1"].spend_day_cents == usage["p_1"].spend_day_cents + usage["p_2"].spend_day_cents == 1000
    assert {o for o in outcomes if isinstance(o, str)} <= {"b_1", "p_1"}
    released = len(taken[::2])
    assert after["b_1"] == Usage(10 - released, 10 - released, 100 * (10 - released), 100 * (10 - released))
    assert after["p_1"].leads_day + after["p_2"].leads_day == 10 - released


def test_on_one_redis_the_keys_keep_their_names_and_on_a_cluster_a_buyer_s_keys_share_one_slot(redis_target):
    """Deployments on one Redis have live counters (a month's spend) that an upgrade must not reset;
    on a cluster the reserve and release scripts need a buyer's keys, and the sale's marker, in one slot."""
    async def scenario(store: CapsStore):
        reservation = await store.reserve([CapOwner("b_1", CHICAGO, Caps(leads_per_day=5)),
                                           CapOwner("p_1", CHICAGO, Caps(leads_per_day=5), buyer_id="b_1")], 700, NOW,
                                          "a1")
        assert isinstance(reservation, Reservation)
        return store.namespace, reservation.keys, reservation.marker

    namespace, keys, marker = run(redis_target, scenario)
    # NOW is 2026-11-18 05:06 in Chicago.
    periods = (":h:2026-11-18T05-0600", ":d:2026-11-18", ":m:2026-11")
    tag = "{b_1}" if redis_target.cluster else ""
    assert keys == tuple(f"caps:{namespace}{tag}{owner}{period}" for owner in ("b_1", "p_1") for period in periods)
    assert marker == f"caps:{namespace}{tag}b_1:sale:a1"
    if redis_target.cluster:
        assert len({key_slot(key.encode()) for key in (*keys, marker)}) == 1


def test_a_sale_reserved_twice_is_counted_once_and_released_once(redis_target):
    """Two delivery workers can hold one auction during a consumer-group rebalance: both reserve the
    buyer's caps for it, and both release them when the buyer turns the lead down."""
    async def scenario(store: CapsStore):
        owners = [CapOwner("b_1", UTC, Caps(leads_per_day=5)), CapOwner("p_1", UTC, Caps(leads_per_day=5), "b_1")]
        first = await store.reserve(owners, 900, NOW, "a1")
        again = await store.reserve(owners, 900, NOW + 2 * HOUR, "a1")  # even in another hour
        assert isinstance(first, Reservation) and again == first
        both = await asyncio.gather(*(store.reserve(owners, 900, NOW, "a2") for _ in range(20)))
        assert len(set(both)) == 1
        usage = await store.usage([("b_1", UTC, "b_1"), ("p_1", UTC, "b_1")], NOW)
        assert usage["b_1"] == usage["p_1"] == Usage(2, 2, 1800, 1800)
        await asyncio.gather(store.release(first), store.release(again),
                             *(store.release(Reservation.decode(r.encode())) for r in both))
        usage = await store.usage([("b_1", UTC, "b_1"), ("p_1", UTC, "b_1")], NOW)
        assert usage["b_1"] == usage["p_1"] == Usage()
    run(redis_target, scenario)


def test_a_reservation_noted_before_markers_is_still_given_back(redis_target):
    """An auction in flight across the upgrade: delivery's note holds a reservation without a marker."""
    async def scenario(store: CapsStore):
        owner = [CapOwner("b_1", UTC, Caps(leads_per_day=5))]
        counted = await store.reserve(owner, 700, NOW, "a1")
        assert isinstance(counted, Reservation)
        earlier = Reservation.decode(f"{counted.price_cents}|{' '.join(counted.keys)}")
        assert earlier.marker == "" and earlier.keys == counted.keys
        await store.release(earlier)
        assert (await store.usage([("b_1", UTC, "b_1")], NOW))["b_1"] == Usage()
    run(redis_target, scenario)
