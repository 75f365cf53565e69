"""The Redis dedup store against a real Redis: scopes, window edges, idempotency, atomicity."""

from __future__ import annotations

import asyncio
import uuid

import pytest

from leadx import pii
from leadx.dedup_store import DAY_MS, DedupStore
from leadx.redis_client import connect

SECRET = b"unit-test-secret-0123456789"
NOW = 1_800_000_000_000
CONSUMER = {"ssn": "123-45-6789", "email": "Ana@Example.com", "home_phone": "212-555-0142"}


def identities(fields: dict | None = None) -> dict[str, str]:
    return pii.identity_keys(SECRET, fields or CONSUMER)


def run(redis_url: str, scenario):
    async def main():
        redis = connect(redis_url)  # the services' own pool: many calls share a bounded set
        try:
            return await scenario(DedupStore(redis, namespace=f"u{uuid.uuid4().hex[:8]}:"), redis)
        finally:
            await redis.aclose()

    return asyncio.run(main())


@pytest.mark.parametrize("shared", ["ssn", "email", "home_phone"])
def test_a_repeat_on_any_identity_is_a_platform_duplicate(redis_url, shared):
    async def scenario(store, _redis):
        first = await store.check_submission("LEAD000001", identities(), NOW)
        other = {"ssn": "987-65-4321", "email": "bob@example.com", "home_phone": "646-555-0199"}
        second = await store.check_submission("LEAD000002", identities(other | {shared: CONSUMER[shared]}), NOW + 1)
        return first, second

    first, second = run(redis_url, scenario)
    assert first.platform_duplicate_on is None
    assert second.platform_duplicate_on == shared


def test_a_redelivered_lead_is_not_its_own_duplicate(redis_url):
    async def scenario(store, _redis):
        await store.check_submission("LEAD000001", identities(), NOW)
        return await store.check_submission("LEAD000001", identities(), NOW + 5)

    assert run(redis_url, scenario).platform_duplicate_on is None


def test_without_the_platform_scope_nothing_is_recorded(redis_url):
    async def scenario(store, _redis):
        await store.check_submission("LEAD000001", identities(), NOW, platform_scope=False)
        return await store.check_submission("LEAD000002", identities(), NOW + 1)

    assert run(redis_url, scenario).platform_duplicate_on is None


def test_the_window_is_exact_per_entry(redis_url):
    async def scenario(store, redis):
        await store.check_submission("LEAD000001", identities(), NOW)
        inside = await store.check_submission("LEAD000002", identities(), NOW + 30 * DAY_MS - 3_600_000)
        outside = await store.check_submission("LEAD000003", identities(), NOW + 30 * DAY_MS + 1_000)
        fields = await redis.hgetall(f"dd:{store.namespace}{identities()['ssn']}")
        return inside, outside, fields

    inside, outside, fields = run(redis_url, scenario)
    assert inside.platform_duplicate_on == "ssn"  # 29 days 23 hours later: still a duplicate
    assert outside.platform_duplicate_on is None  # 30 days and 1 second later: no longer
    assert list(fields.values()) == [f"{NOW + 30 * DAY_MS + 1_000}|LEAD000003".encode()]  # stale entry pruned


def test_reservation_per_buyer(redis_url):
    async def scenario(store, _redis):
        keys = list(identities().values())
        results = [
            await store.reserve_for_buyer("b1", "LEAD000001", keys, NOW),
            await store.reserve_for_buyer("b1", "LEAD000001", keys, NOW + 1),  # the same lead again
            await store.reserve_for_buyer("b1", "LEAD000002", keys, NOW + 2),  # same consumer, other lead
            await store.reserve_for_buyer("b2", "LEAD000002", keys, NOW + 3),
        ]
        later = await store.check_submission("LEAD000003", identities(), NOW + 4, platform_scope=False)
        expired = await store.reserve_for_buyer("b1", "LEAD000004", keys, NOW + 30 * DAY_MS + 1)
        return results, later, expired

    results, later, expired = run(redis_url, scenario)
    assert results == [True, True, False, True]
    assert later.duplicate_buyer_ids == frozenset({"b1", "b2"})
    assert expired is True


def test_a_reservation_on_any_one_identity_blocks_the_buyer(redis_url):
    async def scenario(store, _redis):
        await store.reserve_for_buyer("b1", "LEAD000001", [identities()["email"]], NOW)
        return await store.reserve_for_buyer("b1", "LEAD000002", list(identities().values()), NOW + 1)

    assert run(redis_url, scenario) is False


def test_simultaneous_awards_of_one_consumer_to_one_buyer_let_exactly_one_win(redis_url):
    async def scenario(store, _redis):
        keys = list(identities().values())
        return await asyncio.gather(*(store.reserve_for_buyer("b1", f"LEAD{i:06d}", keys, NOW) for i in range(200)))

    assert sum(run(redis_url, scenario)) == 1


def test_simultaneous_submissions_of_one_consumer_let_exactly_one_through(redis_url):
    async def scenario(store, _redis):
        return await asyncio.gather(*(store.check_submission(f"LEAD{i:06d}", identities(), NOW) for i in range(100)))

    results = run(redis_url, scenario)
    assert sum(1 for r in results if r.platform_duplicate_on is None) == 1


def test_no_raw_pii_reaches_redis(redis_url):
    async def scenario(store, redis):
        await store.check_submission("LEAD000001", identities(), NOW)
        await store.reserve_for_buyer("b1", "LEAD000001", list(identities().values()), NOW)
        dump = []
        async for key in redis.scan_iter(match=f"dd:{store.namespace}*"):
            dump.append(key)
            dump.extend(k + v for k, v in (await redis.hgetall(key)).items())
        return b" ".join(dump)

    dump = run(redis_url, scenario).lower()
    assert dump
    for raw in ("123456789", "123-45-6789", "ana@example.com", "2125550142", "212-555-0142"):
        assert raw.encode() not in dump


def test_a_ping_only_asks_and_a_direct_sale_is_recorded_without_the_platform_check(redis_url):
    async def scenario(store, _redis):
        ping = await store.check_submission("", identities(), NOW, platform_scope=True, record=False)
        after_ping = await store.check_submission("LEAD000001", identities(), NOW + 1)
        direct = await store.check_submission("LEAD000002", identities(), NOW + 2, platform_scope=False, record=True)
        auction_after_direct = await store.check_submission("LEAD000003", identities(), NOW + 3)
        return ping, after_ping, direct, auction_after_direct

    ping, after_ping, direct, auction_after_direct = run(redis_url, scenario)
    assert ping.platform_duplicate_on is None
    assert after_ping.platform_duplicate_on is None  # the PING left no record behind
    assert direct.platform_duplicate_on is None  # not checked platform-wide...
    assert auction_after_direct.platform_duplicate_on == "ssn"  # ...but recorded, so later leads are caught
