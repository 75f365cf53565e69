"""The dedup scripts refuse to check or award on a Redis that lost its data (no epoch), in the same
atomic run as their reads and writes; a rebuild writes under its lock and then the epoch (real Redis,
on each layout of tests/unit/conftest.py's `dedup_target`: on a cluster, every shard's epoch and lock)."""

from __future__ import annotations

import asyncio
import uuid

import pytest

from leadx.dedup.rebuild import RebuildBusy, flush, rebuild
from leadx.dedup.scopes import DedupPolicy, DedupScopes
from leadx.dedup.store import DedupStateLost, DedupStore
from leadx.leads import pii
from leadx.platform.utc_days import DAY_MS
from tests.unit.conftest import DedupTarget

SECRET = b"epoch-test-secret-0123"
NOW = 1_800_000_000_000
WINDOW = 30 * DAY_MS
CONSUMER = {"ssn": "123-45-6789", "email": "ana@example.com", "home_phone": "212-555-0142"}
IDENTITIES = pii.identity_keys(SECRET, CONSUMER)


def run(target: DedupTarget, scenario):
    async def main():
        redis = target.connect()
        try:
            return await scenario(target.store(redis, f"e{uuid.uuid4().hex[:8]}:"), redis)
        finally:
            await redis.aclose()

    return asyncio.run(main())


async def keys_of(store: DedupStore, redis) -> list[bytes]:
    return [key async for key in redis.scan_iter(match=f"dd*{store.namespace}*")]


async def submit(store: DedupStore, lead_id: str, **options):
    return await store.check_submission(lead_id, "auto_loan", IDENTITIES, NOW, WINDOW, **options)


async def award(store: DedupStore, buyer_id: str, lead_id: str) -> bool:
    return await store.reserve_for_buyer(buyer_id, lead_id, "auto_loan", list(IDENTITIES.values()), NOW, WINDOW)


def test_without_an_epoch_every_check_and_award_is_refused_and_writes_nothing(dedup_target):
    async def scenario(store, redis):
        refused = []
        for call in (submit(store, "LEAD000001"), submit(store, "", record=False), award(store, "b1", "LEAD000001")):
            with pytest.raises(DedupStateLost) as caught:
                await call
            refused.append(str(caught.value))
        return refused, await keys_of(store, redis)

    refused, keys = run(dedup_target, scenario)
    assert all("no epoch" in reason for reason in refused)
    assert keys == []  # not a record, not a buyer number: the refusal is in the script, before any write


def test_once_the_records_are_flushed_the_same_calls_are_refused(dedup_target):
    async def scenario(store, _redis):
        assert await store.declare_intact(NOW)
        first = await submit(store, "LEAD000001")
        sold = await award(store, "b1", "LEAD000001")
        await flush(store)  # what a Redis restarted without its data looks like to the scripts
        assert not await store.intact()
        with pytest.raises(DedupStateLost):
            await submit(store, "LEAD000002")
        with pytest.raises(DedupStateLost):
            await award(store, "b1", "LEAD000002")
        return first, sold

    first, sold = run(dedup_target, scenario)
    assert first.platform_duplicate_on is None and sold is True


def test_a_rebuild_writes_under_its_lock_only(dedup_target):
    async def scenario(store, _redis):
        token = await store.take_rebuild_lock(10_000)
        assert token is not None
        assert await store.take_rebuild_lock(10_000) is None  # one rebuild at a time
        with pytest.raises(DedupStateLost):
            await award(store.rebuilding("not-the-token"), "b1", "LEAD000001")
        rebuilt = await award(store.rebuilding(token), "b1", "LEAD000001")
        with pytest.raises(DedupStateLost):  # the services still wait for the epoch
            await award(store, "b2", "LEAD000001")
        assert not await store.seal_epoch("not-the-token", NOW)
        assert await store.seal_epoch(token, NOW)
        await store.release_rebuild_lock(token)
        await flush(store)
        with pytest.raises(DedupStateLost):  # its lock released, a leftover rebuild view writes nothing more
            await award(store.rebuilding(token), "b1", "LEAD000003")
        return rebuilt

    assert run(dedup_target, scenario) is True


def test_rebuild_refuses_to_run_beside_another_and_writes_the_epoch_when_done(dedup_target, sessions):
    policy = DedupPolicy({"auto_loan": DedupScopes()})

    async def scenario(store, _redis):
        token = await store.take_rebuild_lock(10_000)
        with pytest.raises(RebuildBusy):
            await rebuild(sessions, store, policy, SECRET, NOW)
        assert not await store.intact()
        await store.release_rebuild_lock(token)
        report = await rebuild(sessions, store, policy, SECRET, NOW)
        return report, await store.intact(), await award(store, "b1", "LEAD000001")

    report, intact, sold = run(dedup_target, scenario)
    assert intact and sold is True
    assert report.conflicts == 0
