"""Wholesale PING: offer the minimal subset to every wholesale buyer offered an auction, concurrently,
and turn each bid in a reply into bid.placed. Pings stop at the auction's close: a later bid
could not count anyway."""

from __future__ import annotations

import asyncio
import time

from leadx.accounts.directory import BuyerDirectory
from leadx.contracts import topics
from leadx.contracts.events.v1 import events_pb2 as ev
from leadx.delivery.post_adaptation.syntax import RuleBook
from leadx.platform.ids import derived_event_id
from leadx.platform.kafka.envelope import Envelope
from leadx.platform.kafka.producer import EventProducer
from leadx.platform.redis.client import RedisClient
from services.delivery import metrics
from services.delivery.breaker import CircuitBreaker
from services.delivery.buyer_http import BuyerClient

PINGED_TTL_S = 24 * 3600


class PingFanout:
    def __init__(self, producer: EventProducer, redis: RedisClient, directory: BuyerDirectory,
                 client: BuyerClient, namespace: str, rules: RuleBook | None = None,
                 breaker: CircuitBreaker | None = None, post_breaker: CircuitBreaker | None = None) -> None:
        self.producer, self.redis, self.directory, self.client = producer, redis, directory, client
        self.namespace = namespace
        self.rules = rules or RuleBook()
        self.breaker = breaker or CircuitBreaker()
        self.post_breaker = post_breaker or CircuitBreaker()

    async def handle(self, envelope: Envelope) -> None:
        opened: ev.AuctionOpened = envelope.message
        marker = f"pinged:{self.namespace}{opened.auction_id}"
        if opened.direct or await self.redis.exists(marker):
            return
        remaining_s = opened.closes_at_ms / 1000 - time.time()
        if remaining_s > 0:
            await asyncio.gather(*(self._ping(buyer_id, opened, remaining_s)
                                   for buyer_id in opened.pinged_buyer_ids))
        await self.redis.set(marker, "1", ex=PINGED_TTL_S)

    async def _ping(self, buyer_id: str, opened: ev.AuctionOpened, remaining_s: float) -> None:
        buyer = self.directory.get(buyer_id)
        if buyer is None or self.rules.is_broken(buyer.id, buyer.name):
            return  # a buyer that could not be posted to is not asked for a bid
        if self.post_breaker.is_open(buyer.id) or not self.breaker.allow(buyer.id):
            metrics.pinged(buyer.id, "breaker_open")
            return  # failing lately: skipped for its cool-down (its bids would be passed over anyway)
        result = await self.client.ping(buyer, opened, remaining_s, self.rules.for_buyer(buyer.id, buyer.name))
        if result.answered or result.held_against_buyer:
            self.breaker.record(buyer.id, ok=result.answered)
        else:
            self.breaker.release(buyer.id)  # pinged too late to tell: no verdict (a trial may run again)
        amount = result.bid_cents
        if amount is None:
            return
        bid = ev.BidPlaced(auction_id=opened.auction_id, buyer_id=buyer_id, amount_cents=amount,
                           placed_at_ms=int(time.time() * 1000), source="ping_reply")
        await self.producer.publish(topics.BID_PLACED, opened.auction_id, bid,
                                    derived_event_id(opened.auction_id, buyer_id, "ping"))
