"""Sale completion: offer a closed auction's lead to its ranked bidders in order.

For each bidder: adapt the lead to the buyer's format (its POST rules; a buyer whose rules are
broken or cannot adapt this lead is passed over), skip a buyer whose circuit is open, reserve the
consumer for that buyer in the dedup store (atomic: a buyer that already has this consumer is
passed over), POST the lead, record the attempt, and stop at the first acceptance. A rejecting
buyer has still seen the lead, so its reservation stays (the patent).

Progress is kept in a Redis hash per auction, `delivery:<auction>`: the buyers that rejected, those
passed over as already having the consumer, the sale once accepted, and `done` once sale.closed is
published (naming the buyers posted to and those passed over, for the ledger). A redelivered
auction.closed resumes from there: it never offers the lead to a buyer that rejected it, never to a second
buyer after an acceptance, and re-posts to a buyer whose answer was lost with the same
Idempotency-Key.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

from redis.asyncio import Redis

from leadx import topics
from leadx.accounts import BuyerEndpoint
from leadx.billing import seller_fee
from leadx.buyer_directory import BuyerDirectory
from leadx.dedup_scopes import DedupPolicy
from leadx.dedup_store import DedupStore
from leadx.events.v1 import events_pb2 as ev
from leadx.ids import derived_event_id
from leadx.kafka import Envelope, EventProducer
from leadx.logs import log_event
from leadx.post_adaptation import PreparedPost, prepare_post
from leadx.post_adaptation.rules import RuleError
from leadx.post_adaptation.syntax import RuleBook
from leadx.seller_fees import SellerFees
from services.delivery.attempts import AttemptLog
from services.delivery.breaker import CircuitBreaker
from services.delivery.buyer_http import BuyerClient

log = logging.getLogger(__name__)
PROGRESS_TTL_S = 7 * 24 * 3600


def sale_event(closed: ev.AuctionClosed, buyer_id: str, price_cents: int, fee_cents: int,
               attempts: int, now_ms: int) -> ev.SaleClosed:
    lead = closed.lead
    return ev.SaleClosed(
        lead_id=lead.lead_id, auction_id=closed.auction_id,
        outcome=ev.SALE_OUTCOME_SOLD if buyer_id else ev.SALE_OUTCOME_UNSOLD,
        buyer_id=buyer_id, price_cents=price_cents, seller_fee_cents=fee_cents,
        seller_id=lead.seller_id, vertical=lead.vertical, state=lead.fields.get("state", ""),
        zip3=lead.fields.get("zip", "")[:3], probability=closed.probability, cluster=closed.cluster,
        attempts=attempts, closed_at_ms=now_ms, submitted_at_ms=lead.submitted_at_ms,
    )


class SaleCompletion:
    def __init__(self, producer: EventProducer, redis: Redis, store: DedupStore, policy: DedupPolicy,
                 directory: BuyerDirectory, client: BuyerClient, fees: SellerFees, namespace: str,
                 rules: RuleBook | None = None, breaker: CircuitBreaker | None = None,
                 attempts: AttemptLog | None = None, clock: Callable[[], float] = time.time) -> None:
        self.producer, self.redis, self.store, self.policy = producer, redis, store, policy
        self.rules = rules or RuleBook()
        self.breaker = breaker or CircuitBreaker()
        self.attempts = attempts or AttemptLog(None)
        self.directory, self.client = directory, client
        self.fees = fees
        self.namespace = namespace
        self.clock = clock

    async def handle(self, envelope: Envelope) -> None:
        closed: ev.AuctionClosed = envelope.message
        key = f"delivery:{self.namespace}{closed.auction_id}"
        progress = {k.decode(): v.decode() for k, v in (await self.redis.hgetall(key)).items()}
        if "done" in progress:
            return
        if "sold" in progress:
            buyer_id, price, attempts = progress["sold"].split("|")
            await self._publish(key, closed, buyer_id, int(price), int(attempts))
            return
        attempts = 0
        for bid in closed.ranked_bids:
            if f"rejected:{bid.buyer_id}" in progress:
                attempts += 1
                continue
            if f"unreached:{bid.buyer_id}" in progress:
                continue
            buyer = self.directory.get(bid.buyer_id)
            if buyer is None:
                continue  # deactivated since it bid
            prepared = self._prepare(closed, buyer, bid.amount_cents)
            if prepared is None:
                continue  # its POST rules cannot adapt this lead: it is never sent a malformed one
            if not self.breaker.allow(buyer.id):
                log_event(log, "buyer passed over: its circuit is open after repeated failures",
                          auction_id=closed.auction_id, buyer_id=buyer.id)
                continue
            if not await self._reserve(closed, buyer.id):
                self.breaker.release(buyer.id)
                log_event(log, "buyer passed over: already has this consumer",
                          auction_id=closed.auction_id, buyer_id=buyer.id)
                await self.redis.hset(key, f"passed:{buyer.id}", "1")
                await self.redis.expire(key, PROGRESS_TTL_S)
                continue
            attempts += 1
            section = self.rules.for_buyer(buyer.id, buyer.name)
            result = await self.client.post(buyer, closed, prepared, section)
            self.breaker.record(buyer.id, ok=not result.failed)
            await self.attempts.record(closed, buyer, prepared, result)
            log_event(log, "lead posted", auction_id=closed.auction_id, buyer_id=buyer.id,
                      accepted=result.accepted, detail=result.detail, latency_ms=result.latency_ms)
            if not result.reached:  # nothing was sent: the buyer has not seen the consumer after all
                attempts -= 1
                await self._release(closed, buyer.id)
                await self.redis.hset(key, f"unreached:{buyer.id}", result.detail)
                await self.redis.expire(key, PROGRESS_TTL_S)
                continue
            if result.accepted:
                await self.redis.hset(key, "sold", f"{buyer.id}|{bid.amount_cents}|{attempts}")
                await self.redis.expire(key, PROGRESS_TTL_S)
                await self._publish(key, closed, buyer.id, bid.amount_cents, attempts)
                return
            await self.redis.hset(key, f"rejected:{buyer.id}", result.detail)
            await self.redis.expire(key, PROGRESS_TTL_S)
        await self._publish(key, closed, "", 0, attempts)

    def _prepare(self, closed: ev.AuctionClosed, buyer: BuyerEndpoint, price_cents: int) -> PreparedPost | None:
        if self.rules.is_broken(buyer.id, buyer.name):
            log_event(log, "buyer passed over: its POST rules are broken", auction_id=closed.auction_id,
                      buyer_id=buyer.id)
            return None
        try:
            return prepare_post(closed.lead, price_cents, self.rules.for_buyer(buyer.id, buyer.name))
        except RuleError as error:
            log_event(log, "buyer passed over: its POST rules cannot adapt this lead",
                      auction_id=closed.auction_id, buyer_id=buyer.id, error=str(error))
            return None

    async def _reserve(self, closed: ev.AuctionClosed, buyer_id: str) -> bool:
        """Reserve the consumer for this buyer before posting: False if it already has it."""
        scopes = self.policy.scopes(closed.lead.vertical)
        if not scopes.per_buyer:
            return True
        return await self.store.reserve_for_buyer(
            buyer_id, closed.lead.lead_id, closed.lead.vertical, list(closed.identity_keys),
            int(self.clock() * 1000), scopes.window_ms)

    async def _release(self, closed: ev.AuctionClosed, buyer_id: str) -> None:
        scopes = self.policy.scopes(closed.lead.vertical)
        if scopes.per_buyer:
            await self.store.release_for_buyer(
                buyer_id, closed.lead.lead_id, closed.lead.vertical, list(closed.identity_keys),
                int(self.clock() * 1000), scopes.window_ms)

    async def _publish(self, key: str, closed: ev.AuctionClosed, buyer_id: str, price_cents: int,
                       attempts: int) -> None:
        fee = seller_fee(price_cents, self.fees.percent_for(closed.lead.seller_id)) if buyer_id else 0
        sale = sale_event(closed, buyer_id, price_cents, fee, attempts, int(self.clock() * 1000))
        progress = [k.decode() for k in await self.redis.hkeys(key)]
        sale.posted_buyer_ids.extend(sorted(k.split(":", 1)[1] for k in progress if k.startswith("rejected:")))
        if buyer_id:
            sale.posted_buyer_ids.append(buyer_id)
        sale.duplicate_buyer_ids.extend(sorted(k.split(":", 1)[1] for k in progress if k.startswith("passed:")))
        await self.producer.publish(topics.SALE_CLOSED, closed.lead.lead_id, sale,
                                    derived_event_id(closed.auction_id, "sale"))
        await self.redis.hset(key, "done", "1")
        await self.redis.expire(key, PROGRESS_TTL_S)
