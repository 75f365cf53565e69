"""Delivery progress (leadx.delivery.progress): the typed record of an auction's progress hash in
Redis, read from the values delivery workers have always written, and kept in step with every note."""

from __future__ import annotations

import asyncio
import uuid

from leadx.auction.caps.counters import Reservation
from leadx.contracts import topics
from leadx.contracts.events.v1 import events_pb2 as ev
from leadx.delivery.progress import DeliveryProgress, Sale
from leadx.platform.kafka.envelope import Envelope
from leadx.platform.redis.client import connect
from services.delivery.sale import Progress, SaleCompletion
from tests.conftest import TEST_KEYRING

# A progress hash as delivery wrote it before the record was typed: a shared sale taken by b1 and
# b4 (price|attempts), b2 rejected it, b3 could not be reached, b5 already had the consumer, b4's
# caps reservation is held, and not all sale.closed events are published yet.
EARLIER_HASH = {"sold:b1": "1999|1", "rejected:b2": "HTTP 200: not accepted", "unreached:b3": "connect timeout",
                "passed:b5": "1", "sold:b4": "1500|3", "caps:b4": "1500|caps:x:b4:h:1 caps:x:b4:d:2 caps:x:b4:m:3"}


def test_a_sale_is_encoded_as_price_and_attempts_and_read_back():
    assert Sale(1999, 2).encode() == "1999|2"
    assert Sale.decode("1999|2") == Sale(1999, 2)
    assert Sale.decode(Sale(0, 1).encode()) == Sale(0, 1)


def test_the_earlier_progress_hash_is_read_whole():
    progress = DeliveryProgress.decode(EARLIER_HASH)
    assert progress.sold == {"b1": Sale(1999, 1), "b4": Sale(1500, 3)}
    assert progress.rejected == {"b2": "HTTP 200: not accepted"}
    assert progress.unreached == {"b3": "connect timeout"}
    assert progress.passed == {"b5"}
    assert progress.caps == {"b4": Reservation(("caps:x:b4:h:1", "caps:x:b4:d:2", "caps:x:b4:m:3"), 1500)}
    assert not progress.done and DeliveryProgress.decode({**EARLIER_HASH, "done": "1"}).done
    assert [progress.answered(b) for b in ("b1", "b2", "b3", "b4", "b5", "b6")] == [
        True, True, True, True, False, False]


def test_every_note_is_the_field_and_value_it_is_read_back_from():
    progress = DeliveryProgress()
    notes = dict([progress.note_sold("b1", Sale(1999, 1)), progress.note_rejected("b2", "HTTP 200: not accepted"),
                  progress.note_unreached("b3", "connect timeout"), progress.note_passed("b5"),
                  progress.note_sold("b4", Sale(1500, 3)),
                  progress.note_caps("b4", Reservation.decode(EARLIER_HASH["caps:b4"]))])
    assert notes == EARLIER_HASH
    assert DeliveryProgress.decode(notes) == progress
    assert progress.forget_caps("b4") == "caps:b4" and progress.caps == {}
    assert progress.note_done() == ("done", "1") and progress.done


class Published:
    def __init__(self) -> None:
        self.events: list[tuple[str, str, ev.SaleClosed, str]] = []

    async def publish(self, topic: str, key: str, message: ev.SaleClosed, event_id: str) -> None:
        self.events.append((topic, key, message, event_id))


class NoFees:
    def percent_for(self, seller_id: str) -> float:
        return 0.0


def test_a_redelivered_auction_publishes_the_sales_an_earlier_worker_left_in_redis(redis_url):
    """A shared sale whose shares were all taken before a crash, in the earlier hash's values: the
    sales are published with their prices and attempts, and the progress is done."""

    async def scenario() -> None:
        redis = connect(redis_url)
        namespace = f"p{uuid.uuid4().hex[:8]}:"
        try:
            closed = ev.AuctionClosed(auction_id="A1", shares=2, lead=ev.Lead(lead_id="L1", seller_id="s_1"),
                                      ranked_bids=[ev.RankedBid(buyer_id=b, amount_cents=c, rank=i + 1)
                                                   for i, (b, c) in enumerate([("b4", 1500), ("b2", 1400),
                                                                               ("b1", 1999), ("b3", 900)])])
            key = f"delivery:{namespace}A1"
            await redis.hset(key, mapping=EARLIER_HASH)
            assert (await Progress.load(redis, key)).state == DeliveryProgress.decode(EARLIER_HASH)
            producer = Published()
            sales = SaleCompletion(producer, redis, None, None, None, None, NoFees(), namespace, TEST_KEYRING)
            await sales.handle(Envelope(topics.AUCTION_CLOSED, "A1", "e1", closed, 0, 0))
            sold = [(m.buyer_id, m.price_cents, m.attempts) for _, _, m, _ in producer.events]
            assert sold == [("b4", 1500, 3), ("b1", 1999, 1)]  # best-ranked first
            first = producer.events[0][2]
            assert sorted(first.posted_buyer_ids) == ["b1", "b2", "b4"] and list(first.duplicate_buyer_ids) == ["b5"]
            assert (await redis.hget(key, "done")) == b"1"
        finally:
            await redis.aclose()

    asyncio.run(scenario())
