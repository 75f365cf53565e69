"""Delivery after Redis lost its data (real Redis, SQLite and PostgreSQL): an auction's progress is
rebuilt from the posts SQL recorded, so no buyer that took the lead is posted it again; an award
waits while the dedup records are not known to be complete, and goes on once they are."""

from __future__ import annotations

import asyncio
import uuid

import pytest

from leadx.contracts import topics
from leadx.contracts.events.v1 import events_pb2 as ev
from leadx.dedup.scopes import DedupPolicy, DedupScopes
from leadx.dedup.store import DedupStateLost, DedupStore
from leadx.delivery.progress import DeliveryProgress, PostRecord, Sale
from leadx.platform.db.models import PostAttempt
from leadx.platform.kafka.envelope import Envelope
from leadx.platform.redis.client import connect
from services.delivery import metrics
from services.delivery.attempts import AttemptLog
from services.delivery.sale import Progress, SaleCompletion
from tests.conftest import TEST_KEYRING, poll_until_async
from tests.unit.test_delivery_progress import NoFees, Published

NOW_MS = 1_800_000_000_000


def post(buyer_id: str, outcome: str, status: int | None = 200, connects: int = 1, detail: str = "") -> PostRecord:
    return PostRecord(buyer_id, outcome, status, connects, detail)


def test_the_progress_the_posts_show():
    posts = [post("b1", "rejected", detail="HTTP 200: not accepted"),
             post("b2", "failed", status=None, connects=0, detail="not reached: refused"),
             post("b3", "failed", status=None, connects=1, detail="no answer (may have reached the buyer)"),
             post("b4", "failed", status=503, detail="HTTP 503"),
             post("b5", "sending", status=None, detail="sent; no answer recorded yet"),
             post("b6", "accepted")]
    progress, notes = DeliveryProgress.from_posts(posts, {"b6": 1750})
    assert progress.sold == {"b6": Sale(1750, 4)}  # the fourth post that reached a buyer
    assert progress.rejected == {"b1": "HTTP 200: not accepted", "b3": "no answer (may have reached the buyer)",
                                 "b4": "HTTP 503"}
    assert progress.unreached == {"b2": "not reached: refused"}
    assert not progress.answered("b5")  # posted again with the same Idempotency-Key, as after a crash
    assert DeliveryProgress.decode(dict(notes)) == progress


class RecordingClient:
    def __init__(self) -> None:
        self.posted: list[str] = []

    async def post(self, buyer, closed, prepared, rules):
        self.posted.append(buyer.id)
        raise AssertionError(f"posted again to {buyer.id}")


def test_an_auction_whose_progress_redis_lost_is_not_posted_again_to_the_buyer_that_took_it(redis_url, sessions):
    auction_id = f"A{uuid.uuid4().hex[:8]}"
    with sessions.begin() as session:
        for n, (buyer_id, outcome) in enumerate([("b2", "rejected"), ("b1", "accepted")]):
            session.add(PostAttempt(auction_id=auction_id, lead_id="L1", buyer_id=buyer_id, sent_at_ms=NOW_MS + n,
                                    content_type="application/json", request_body="{}", connects=1, status=200,
                                    response_body="{}", latency_ms=5, outcome=outcome, detail=outcome, attempt=1))

    async def scenario():
        redis = connect(redis_url)
        namespace = f"p{uuid.uuid4().hex[:8]}:"
        try:
            closed = ev.AuctionClosed(auction_id=auction_id, shares=1, lead=ev.Lead(lead_id="L1", seller_id="s_1"),
                                      ranked_bids=[ev.RankedBid(buyer_id="b2", amount_cents=1600, rank=1),
                                                   ev.RankedBid(buyer_id="b1", amount_cents=1500, rank=2)])
            producer, client = Published(), RecordingClient()
            sales = SaleCompletion(producer, redis, None, None, None, client, NoFees(), namespace, TEST_KEYRING,
                                   attempts=AttemptLog(sessions.kw["bind"]))
            # Redis restarted without its data: no progress hash for an auction already sold to b1.
            await sales.handle(Envelope(topics.AUCTION_CLOSED, auction_id, "e1", closed, 0, 0))
            kept = await Progress.load(redis, f"delivery:{namespace}{auction_id}")
            return producer.events, client.posted, kept.state
        finally:
            await redis.aclose()

    events, posted, kept = asyncio.run(scenario())
    assert posted == []
    assert [(m.buyer_id, m.price_cents, m.attempts) for _, _, m, _ in events] == [("b1", 1500, 2)]
    assert sorted(events[0][2].posted_buyer_ids) == ["b1", "b2"]
    assert kept.sold == {"b1": Sale(1500, 2)} and kept.rejected == {"b2": "rejected"} and kept.done


def test_an_award_waits_for_the_dedup_records_and_then_goes_on(redis_url):
    closed = ev.AuctionClosed(auction_id="A1", lead=ev.Lead(lead_id="LEAD000001", vertical="auto_loan"),
                              identity_keys=["0123456789abcdef0123456789abcdef"])

    async def scenario():
        redis = connect(redis_url)
        store = DedupStore(redis, namespace=f"h{uuid.uuid4().hex[:8]}:")  # no epoch: Redis lost its data
        try:
            sales = SaleCompletion(Published(), redis, store, DedupPolicy({"auto_loan": DedupScopes()}), None,
                                   None, NoFees(), store.namespace, TEST_KEYRING, clock=lambda: NOW_MS / 1000,
                                   held_retry_s=0.05)
            held_before = metrics.AWARDS_HELD._value.get()
            award = asyncio.create_task(sales._reserve(closed, "b1"))
            await poll_until_async(lambda: metrics.AWARDS_HELD._value.get() > held_before)
            assert not award.done()
            assert await store.declare_intact(NOW_MS)  # the dedup service rebuilt the records
            reserved = await award
            again = await store.reserve_for_buyer("b1", "LEAD000002", "auto_loan", list(closed.identity_keys),
                                                  NOW_MS, 30 * 86_400_000)
            return reserved, again, metrics.AWARDS_HELD._value.get() == held_before
        finally:
            await redis.aclose()

    reserved, again, released = asyncio.run(scenario())
    assert reserved is True and again is False and released


def test_a_held_award_gives_up_when_the_service_stops(redis_url):
    closed = ev.AuctionClosed(auction_id="A1", lead=ev.Lead(lead_id="LEAD000001", vertical="auto_loan"),
                              identity_keys=["0123456789abcdef0123456789abcdef"])

    async def scenario():
        redis = connect(redis_url)
        store = DedupStore(redis, namespace=f"h{uuid.uuid4().hex[:8]}:")
        stop = asyncio.Event()
        try:
            sales = SaleCompletion(Published(), redis, store, DedupPolicy({"auto_loan": DedupScopes()}), None,
                                   None, NoFees(), store.namespace, TEST_KEYRING, stopping=stop, held_retry_s=30)
            award = asyncio.create_task(sales._reserve(closed, "b1"))
            await asyncio.sleep(0)
            stop.set()
            with pytest.raises(DedupStateLost):  # the auction stays uncommitted: the next owner takes it up
                await award
        finally:
            await redis.aclose()

    asyncio.run(scenario())
