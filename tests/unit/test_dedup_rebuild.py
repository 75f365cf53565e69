"""`leadx dedup rebuild` restores protection from the SQL record after Redis lost it (real Redis on
each layout of tests/unit/conftest.py's `dedup_target`, a Redis Cluster included; SQLite and
PostgreSQL)."""

from __future__ import annotations

import asyncio
import uuid

import pytest

from leadx.dedup.rebuild import flush, rebuild
from leadx.dedup.scopes import DedupPolicy, DedupScopes
from leadx.dedup.store import DedupStateLost
from leadx.leads import pii
from leadx.platform.db.models import BuyerPosting, Lead
from leadx.platform.utc_days import DAY_MS

SECRET = b"rebuild-test-secret-0123"
NOW = 1_800_000_000_000
WINDOW = 30 * DAY_MS
POLICY = DedupPolicy({"auto_loan": DedupScopes(), "auto_insurance": DedupScopes(platform=False)})


def consumer(n: int) -> dict:
    return {"ssn": f"321-54-{n:04d}", "email": f"Person.{n}+x@gmail.com", "home_phone": f"212-555-{n:04d}"}


def lead(lead_id: str, n: int, age_ms: int, status: str = "sold", vertical: str = "auto_loan") -> Lead:
    return Lead(id=lead_id, seller_id="s_1", vertical=vertical, status=status, status_rank=0, fields=consumer(n),
                min_price_cents=0, direct_buyer_id="", seller_reference="", submitted_at_ms=NOW - age_ms,
                updated_at_ms=NOW - age_ms, redrives=0)


def test_a_flushed_store_is_rebuilt_from_sql(sessions, dedup_target):
    run_id = uuid.uuid4().hex[:4].upper()

    def lid(n: int) -> str:
        return f"{run_id}R{n:05d}"

    with sessions.begin() as session:
        session.add_all([
            lead(lid(1), 1, 5 * DAY_MS),                       # sold to b1 five days ago
            lead(lid(2), 2, WINDOW - 3_600_000),               # 29 days 23 hours old: still protects
            lead(lid(3), 3, WINDOW + 1_000),                   # 30 days 1 second: no longer
            lead(lid(4), 4, DAY_MS, status="duplicate"),       # refused as a duplicate: never recorded
            lead(lid(5), 5, DAY_MS, vertical="auto_insurance"),  # no platform scope in that vertical
        ])
        session.add_all([
            BuyerPosting(lead_id=lid(1), buyer_id="b1", posted_at_ms=NOW - 5 * DAY_MS),
            BuyerPosting(lead_id=lid(1), buyer_id="b2", posted_at_ms=NOW - 5 * DAY_MS),  # rejected it
            BuyerPosting(lead_id=lid(5), buyer_id="b1", posted_at_ms=NOW - DAY_MS),
        ])

    async def scenario():
        redis = dedup_target.connect()
        store = dedup_target.store(redis, f"r{run_id}:")
        try:
            async def check(n: int, vertical: str = "auto_loan"):
                return await store.check_submission(f"{run_id}NEW{n:02d}", vertical,
                                                    pii.identity_keys(SECRET, consumer(n)), NOW, WINDOW,
                                                    record=False)

            await rebuild(sessions, store, POLICY, SECRET, NOW)  # some state, then Redis is lost
            assert await flush(store) > 0
            with pytest.raises(DedupStateLost):  # flushed: nothing is answered until the rebuild
                await check(1)
            report = await rebuild(sessions, store, POLICY, SECRET, NOW)
            again = await rebuild(sessions, store, POLICY, SECRET, NOW)  # replaying changes nothing
            results = {n: await check(n) for n in (1, 2, 3, 4)}
            insurance = await check(5, "auto_insurance")
            award = await store.reserve_for_buyer("b1", f"{run_id}NEW99", "auto_loan",
                                                  list(pii.identity_keys(SECRET, consumer(1)).values()), NOW, WINDOW)
            return report, again, results, insurance, award
        finally:
            await redis.aclose()

    report, again, results, insurance, award = asyncio.run(scenario())
    assert (report.leads, report.postings, report.conflicts) == (2, 3, 0)
    assert again.conflicts == 0
    assert results[1].platform_duplicate_on == "ssn"
    assert results[1].duplicate_buyer_ids == frozenset({"b1", "b2"})
    assert results[2].platform_duplicate_on == "ssn"
    assert results[3].platform_duplicate_on is None
    assert results[4].platform_duplicate_on is None
    assert insurance.platform_duplicate_on is None and insurance.duplicate_buyer_ids == frozenset({"b1"})
    assert award is False  # b1 is still never sold consumer 1 twice


def test_a_repeat_held_while_redis_was_empty_is_still_a_duplicate_after_the_rebuild(sessions, dedup_target):
    # Lead A sold the consumer; Redis lost its data; lead B, the same consumer from another seller,
    # arrived and waits for dedup (its row says submitted). The rebuild must leave A standing for
    # the consumer: recorded, B would be taken for its own record, accepted and sold again.
    run_id = uuid.uuid4().hex[:4].upper()
    sold, held, alone = f"{run_id}H00001", f"{run_id}H00002", f"{run_id}H00003"
    with sessions.begin() as session:
        session.add_all([lead(sold, 7, 2 * DAY_MS),
                         lead(held, 7, 60_000, status="submitted"),
                         lead(alone, 8, 30_000, status="submitted")])  # a new consumer, also waiting

    async def scenario():
        redis = dedup_target.connect()
        store = dedup_target.store(redis, f"h{run_id}:")
        try:
            await rebuild(sessions, store, POLICY, SECRET, NOW)

            async def judged(lead_id: str, n: int):  # as the dedup worker checks a lead
                return await store.check_submission(lead_id, "auto_loan", pii.identity_keys(SECRET, consumer(n)),
                                                    NOW, WINDOW)
            return await judged(held, 7), await judged(alone, 8), await judged(sold, 7)
        finally:
            await redis.aclose()

    held_check, alone_check, sold_check = asyncio.run(scenario())
    assert held_check.platform_duplicate_on == "ssn"  # the repeat is refused
    assert alone_check.platform_duplicate_on is None  # a waiting lead of its own is accepted
    assert sold_check.platform_duplicate_on is None  # checked again, a lead is no duplicate of itself
