"""The dedup service's keeper of the records (services/dedup/state_keeper.py), on real Redis and
SQLite/PostgreSQL: a first start on an empty database only writes the epoch; a Redis without the
epoch while SQL holds leads is a loss, counted and rebuilt; a replica waits while another holds the
rebuild lock."""

from __future__ import annotations

import asyncio
import uuid

from leadx.dedup.scopes import DedupPolicy, DedupScopes
from leadx.dedup.store import DedupStore
from leadx.leads import pii
from leadx.platform.config import HmacKeyring
from leadx.platform.db.models import Lead
from leadx.platform.redis.client import connect
from leadx.platform.utc_days import DAY_MS
from services.dedup import metrics
from services.dedup.state_keeper import StateKeeper

SECRET = b"keeper-test-secret-0123"
NOW = 1_800_000_000_000
WINDOW = 30 * DAY_MS
POLICY = DedupPolicy({"auto_loan": DedupScopes()})
CONSUMER = {"ssn": "321-54-0001", "email": "kept@example.com", "home_phone": "212-555-0001"}


def run(redis_url: str, sessions, scenario):
    async def main():
        redis = connect(redis_url)
        store = DedupStore(redis, namespace=f"k{uuid.uuid4().hex[:8]}:")
        keeper = StateKeeper(store, sessions, POLICY, HmacKeyring.single(SECRET), clock=lambda: NOW / 1000,
                             wait_s=0.05)
        try:
            return await scenario(store, keeper)
        finally:
            await keeper.stop()
            await redis.aclose()

    return asyncio.run(main())


def lost_count() -> float:
    return metrics.STATE_LOST._value.get()


def test_a_first_start_on_an_empty_database_only_writes_the_epoch(redis_url, sessions):
    async def scenario(store, keeper):
        before = lost_count()
        await keeper.restore()
        return await store.intact(), keeper.complete, lost_count() - before

    assert run(redis_url, sessions, scenario) == (True, True, 0)


def test_a_redis_without_the_epoch_while_sql_holds_leads_is_a_loss_and_is_rebuilt(redis_url, sessions):
    lead_id = f"K{uuid.uuid4().hex[:9].upper()}"
    with sessions.begin() as session:
        session.add(Lead(id=lead_id, seller_id="s_1", vertical="auto_loan", status="sold", status_rank=0,
                         fields=CONSUMER, min_price_cents=0, direct_buyer_id="", seller_reference="",
                         submitted_at_ms=NOW - DAY_MS, updated_at_ms=NOW - DAY_MS, redrives=0))

    async def scenario(store, keeper):
        before = lost_count()
        await keeper.restore()
        again = await store.check_submission("KNEWLEAD01", "auto_loan", pii.identity_keys(SECRET, CONSUMER), NOW,
                                             WINDOW, record=False)
        return keeper.complete, lost_count() - before, again.platform_duplicate_on

    complete, losses, duplicate_on = run(redis_url, sessions, scenario)
    assert complete and losses == 1
    assert duplicate_on == "ssn"  # the consumer's record is back: its next lead is a duplicate


def test_a_replica_waits_while_another_rebuilds(redis_url, sessions):
    async def scenario(store, keeper):
        token = await store.take_rebuild_lock(60_000)  # another replica's rebuild
        restoring = asyncio.create_task(keeper.restore())
        for _ in range(5):  # it keeps looking, and neither writes the epoch nor gives up
            await asyncio.sleep(0.05)
        waited = not restoring.done() and not await store.intact()
        assert await store.seal_epoch(token, NOW)
        await store.release_rebuild_lock(token)
        await restoring
        return waited, keeper.complete

    assert run(redis_url, sessions, scenario) == (True, True)
