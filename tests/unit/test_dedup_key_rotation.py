"""Rotating the identity HMAC key (docs/dedup.md#rotating-the-identity-key) against a real Redis:
what was recorded under the old key keeps counting while it is listed, platform-wide and per buyer;
new records are made under the current key only; simultaneous copies of one consumer stay exactly
one whichever key each worker holds as current; once the old key is dropped its records no longer
count."""

from __future__ import annotations

import asyncio
import uuid

import pytest

from leadx.dedup.store import DedupStore
from leadx.leads import pii
from leadx.platform.config import HmacKeyring
from leadx.platform.utc_days import DAY_MS
from tests.unit.conftest import DedupTarget

OLD, NEW = "old-secret-0123456789abcdef", "new-secret-fedcba9876543210"
K0 = HmacKeyring.single(OLD.encode())  # LEADX_HMAC_KEY=<old>, as deployed before key ids
STAGED = HmacKeyring.parse(f"k0:{OLD},k1:{NEW}")  # step 1: the new key is listed, the old still current
ROTATING = HmacKeyring.parse(f"k1:{NEW},k0:{OLD}")  # step 2: the new key is current, the old still listed
DONE = HmacKeyring.parse(f"k1:{NEW}")  # step 3, after the window: the old key is dropped
NOW = 1_800_000_000_000
WINDOW = 30 * DAY_MS
V = "auto_loan"
CONSUMER = {"ssn": "123-45-6789", "email": "Ana@Example.com", "home_phone": "212-555-0142"}
OTHER = {"ssn": "987-65-4321", "email": "bob@example.com", "home_phone": "646-555-0199"}


def keys(ring: HmacKeyring, fields: dict | None = None) -> dict[str, list[str]]:
    return pii.identity_keys_under(ring, fields or CONSUMER)


def run(target: DedupTarget, scenario):
    async def main():
        redis = target.connect()
        try:
            store = target.store(redis, f"r{uuid.uuid4().hex[:8]}:")
            await store.declare_intact(NOW)  # a first start: nothing to rebuild
            return await scenario(store, redis)
        finally:
            await redis.aclose()

    return asyncio.run(main())


def submit(store: DedupStore, ring: HmacKeyring, lead_id: str, fields: dict | None = None, at: int = NOW, **flags):
    return store.check_submission(lead_id, V, keys(ring, fields), at, WINDOW, **flags)


def reserve(store: DedupStore, ring: HmacKeyring, buyer: str, lead_id: str, at: int = NOW,
            fields: dict | None = None):
    # As delivery reserves: with the identity keys the lead's events carry.
    return store.reserve_for_buyer(buyer, lead_id, V, pii.listed(keys(ring, fields)), at, WINDOW)


@pytest.mark.parametrize("shared", ["ssn", "email", "home_phone"])
def test_a_consumer_recorded_under_the_old_key_is_a_duplicate_once_the_new_key_is_current(dedup_target, shared):
    async def scenario(store, _redis):
        await submit(store, K0, "LEAD000001")
        return await submit(store, ROTATING, "LEAD000002", OTHER | {shared: CONSUMER[shared]}, NOW + DAY_MS)

    assert run(dedup_target, scenario).platform_duplicate_on == shared


def test_a_buyer_that_has_the_consumer_under_the_old_key_still_has_it(dedup_target):
    async def scenario(store, _redis):
        await submit(store, K0, "LEAD000001")
        assert await reserve(store, K0, "b1", "LEAD000001")
        seen = await submit(store, ROTATING, "LEAD000002", at=NOW + DAY_MS, platform=False, record=False)
        again = await reserve(store, ROTATING, "b1", "LEAD000002", NOW + DAY_MS)
        other_buyer = await reserve(store, ROTATING, "b2", "LEAD000002", NOW + DAY_MS)
        return seen, again, other_buyer

    seen, again, other_buyer = run(dedup_target, scenario)
    assert seen.duplicate_buyer_ids == frozenset({"b1"})
    assert again is False  # the award is refused: b1 got this consumer under the old key
    assert other_buyer is True


def test_records_are_made_under_the_current_key_only(dedup_target):
    async def scenario(store, redis):
        await submit(store, ROTATING, "LEAD000001")
        await reserve(store, ROTATING, "b1", "LEAD000001")
        held = {}
        for ring_id, secret in (("k1", NEW), ("k0", OLD)):
            key, field = store.location(V, pii.identity_key(secret.encode(), "ssn", CONSUMER["ssn"]))
            held[ring_id] = await redis.hget(key, field)
        return held

    held = run(dedup_target, scenario)
    assert held["k0"] is None  # nothing new under the old key: it can be dropped after the window
    assert len(held["k1"]) == 22  # the platform record and b1's, as without a rotation


def test_while_the_rotation_rolls_out_either_current_key_sees_the_other(dedup_target):
    """Step 2 reaches the workers one by one: for a while some record under k0 (STAGED) and some
    under k1 (ROTATING); each reads both, so each finds what the other recorded."""
    async def scenario(store, _redis):
        await submit(store, ROTATING, "LEAD000001")
        await reserve(store, ROTATING, "b1", "LEAD000001")
        await submit(store, STAGED, "LEAD000002", OTHER)
        await reserve(store, STAGED, "b2", "LEAD000002", fields=OTHER)
        return (await submit(store, STAGED, "LEAD000003", at=NOW + 1000),
                await reserve(store, STAGED, "b1", "LEAD000003", NOW + 1000),
                await submit(store, ROTATING, "LEAD000004", OTHER, NOW + 1000),
                await reserve(store, ROTATING, "b2", "LEAD000004", NOW + 1000, OTHER))

    under_k0, award_k0, under_k1, award_k1 = run(dedup_target, scenario)
    assert under_k0.platform_duplicate_on == under_k1.platform_duplicate_on == "ssn"
    assert award_k0 is award_k1 is False


def test_once_the_old_key_is_dropped_its_records_no_longer_count(dedup_target):
    """Documented: drop the old key only after the window, when nothing it recorded counts anyway."""
    async def scenario(store, _redis):
        await submit(store, K0, "LEAD000001")
        await reserve(store, K0, "b1", "LEAD000001")
        platform = await submit(store, DONE, "LEAD000002", at=NOW + DAY_MS)
        award = await reserve(store, DONE, "b1", "LEAD000002", NOW + DAY_MS)
        return platform, award

    platform, award = run(dedup_target, scenario)
    assert platform.platform_duplicate_on is None and platform.duplicate_buyer_ids == frozenset()
    assert award is True


def test_a_single_key_keeps_the_records_made_before_key_ids(dedup_target):
    """LEADX_HMAC_KEY alone (key id k0) computes the very keys the previous version stored, and
    events carry them as it did: bare hex."""
    async def scenario(store, _redis):
        await store.check_submission("LEAD000001", V, pii.identity_keys(OLD.encode(), CONSUMER), NOW, WINDOW)
        await store.reserve_for_buyer("b1", "LEAD000001", V, list(pii.identity_keys(OLD.encode(), CONSUMER).values()),
                                      NOW, WINDOW)
        return await submit(store, K0, "LEAD000002", at=NOW + 1000)

    seen = run(dedup_target, scenario)
    assert seen.platform_duplicate_on == "ssn" and seen.duplicate_buyer_ids == frozenset({"b1"})
    assert pii.listed(keys(K0)) == list(pii.identity_keys(OLD.encode(), CONSUMER).values())


def test_simultaneous_copies_during_the_rollout_let_exactly_one_through(dedup_target):
    """Two dedup workers on their own connections, one still with k0 current, one with k1 current,
    each submitting copies of the same consumers at once: exactly one copy per consumer passes."""
    async def main():
        namespace = f"r{uuid.uuid4().hex[:8]}:"
        clients = [dedup_target.connect(), dedup_target.connect()]
        stores = [dedup_target.store(c, namespace) for c in clients]
        await stores[0].declare_intact(NOW)
        rings = [STAGED, ROTATING]
        consumers = [{"ssn": f"123-45-{i:04d}", "email": f"c{i}@example.com"} for i in range(1, 11)]
        known = {"ssn": "555-12-3456", "email": "known@example.com"}  # recorded under k0 before the rotation
        try:
            await submit(stores[0], K0, "LEADKNOWN0", known, NOW - DAY_MS)
            copies = [submit(stores[n % 2], rings[n % 2], f"L{n:08d}X", consumers[n % 10]) for n in range(300)]
            copies += [submit(stores[n % 2], rings[n % 2], f"K{n:08d}X", known) for n in range(20)]
            results = await asyncio.gather(*copies)
        finally:
            for client in clients:
                await client.aclose()
        return results

    results = asyncio.run(main())
    passed = [n for n, r in enumerate(results[:300]) if r.platform_duplicate_on is None]
    assert sorted(n % 10 for n in passed) == list(range(10))  # one copy of each consumer
    assert all(r.platform_duplicate_on is not None for r in results[300:])  # k0's record still counts


def test_simultaneous_awards_during_the_rollout_let_exactly_one_win(dedup_target):
    """Delivery workers reserving one consumer for one buyer with events from either side of the
    rollout (the current key's identity keys first in each): one award wins."""
    async def main():
        namespace = f"r{uuid.uuid4().hex[:8]}:"
        clients = [dedup_target.connect(), dedup_target.connect()]
        stores = [dedup_target.store(c, namespace) for c in clients]
        await stores[0].declare_intact(NOW)
        rings = [STAGED, ROTATING]
        try:
            return await asyncio.gather(*(reserve(stores[n % 2], rings[n % 2], "b1", f"L{n:08d}X")
                                          for n in range(200)))
        finally:
            for client in clients:
                await client.aclose()

    assert sum(asyncio.run(main())) == 1


def test_a_rotation_costs_no_extra_round_trip(redis_url):
    async def scenario(store, redis):
        await redis.config_resetstat()
        before = store.round_trips
        for n in range(20):  # one at a time: each call is its own round trip
            await submit(store, ROTATING, f"LEAD{n:06d}", {"ssn": f"123-45-{n + 1:04d}"})
            await reserve(store, ROTATING, "b1", f"LEAD{n:06d}", fields={"ssn": f"123-45-{n + 1:04d}"})
        calls = (await redis.info("commandstats"))["cmdstat_evalsha"]["calls"]
        return store.round_trips - before, calls

    round_trips, calls = run(DedupTarget(redis_url), scenario)
    assert round_trips == calls == 40  # one script call per check and per award, both keys read in it


def test_a_release_during_the_rotation_undoes_the_reservation(dedup_target):
    async def scenario(store, _redis):
        await reserve(store, ROTATING, "b1", "LEAD000001")
        released = await store.release_for_buyer("b1", "LEAD000001", V, pii.listed(keys(ROTATING)), NOW, WINDOW)
        return released, await reserve(store, STAGED, "b1", "LEAD000002", NOW + 1000)

    assert run(dedup_target, scenario) == (True, True)
