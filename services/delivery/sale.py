"""Sale completion: offer a closed auction's lead to its ranked bidders in order.

For each bidder: adapt the lead to the buyer's format (its POST rules; a buyer whose rules are
broken or cannot adapt this lead is passed over), skip a buyer whose circuit is open, count the
sale against the buyer's and its profile's caps (atomic: a buyer over a cap is passed over; the
count is taken back if it does not take the lead), reserve the consumer for that buyer in the dedup
store (atomic: a buyer that already has this consumer is passed over), POST the lead, record the
attempt, and stop at the first acceptance (exclusive sale) or once `shares` buyers have accepted
(a shared sale). A rejecting buyer has still seen the lead, so its dedup reservation stays. An
AutoBid buyer without a post URL is not posted to: the platform accepts the lead on its behalf
(an `autobid` buyer).

Progress is kept in a Redis hash per auction, `delivery:<auction>` (leadx.delivery.progress): the
buyers that rejected, those passed over as already having the consumer, each sale once accepted,
and `done` once the sale.closed events are published (one per buyer that bought, the first naming the buyers posted
to and those passed over, for the ledger; one `unsold` if none did). A redelivered auction.closed
resumes from there: it never offers the lead to a buyer that rejected it, never to more buyers
than the sale's shares, and re-posts to a buyer whose answer was lost with the same
Idempotency-Key.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from typing import cast

from leadx.accounts.directory import BuyerDirectory
from leadx.accounts.fees import SellerFees
from leadx.auction.caps.counters import CapOwner, CapsStore, Reservation
from leadx.auction.selection.market import AUTOBID, BuyerAccount
from leadx.contracts import topics
from leadx.contracts.events.v1 import events_pb2 as ev
from leadx.dedup.scopes import DedupPolicy
from leadx.dedup.store import DedupStateLost, DedupStore
from leadx.delivery.post_adaptation import PreparedPost, prepare_post
from leadx.delivery.post_adaptation.rules import RuleError
from leadx.delivery.post_adaptation.syntax import RuleBook
from leadx.delivery.progress import DeliveryProgress, Sale
from leadx.leads.sealing import PiiKeyring
from leadx.ledger.billing import seller_fee
from leadx.platform.ids import derived_event_id
from leadx.platform.kafka.envelope import Envelope
from leadx.platform.kafka.producer import EventProducer
from leadx.platform.logs import log_event
from leadx.platform.redis.client import RedisClient
from services.delivery import metrics
from services.delivery.attempts import AttemptLog, log_fields
from services.delivery.breaker import CircuitBreaker
from services.delivery.buyer_http import BuyerClient, PostResult

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


class Progress:
    """One auction's delivery progress in its Redis hash: read once into `state`
    (leadx.delivery.progress), and each note written as it is made, so that publishing at the end
    needs no second read."""

    def __init__(self, redis: RedisClient, key: str, state: DeliveryProgress, found: bool = True) -> None:
        self.redis, self.key, self.state = redis, key, state
        self.found = found  # whether Redis held any note: a new auction, or one whose notes Redis lost

    @classmethod
    async def load(cls, redis: RedisClient, key: str) -> Progress:
        fields = await redis.hgetall(key)  # bytes: the client does not decode replies
        decoded = {cast(bytes, k).decode(): cast(bytes, v).decode() for k, v in fields.items()}
        return cls(redis, key, DeliveryProgress.decode(decoded), bool(decoded))

    async def restore(self, state: DeliveryProgress, notes: list[tuple[str, str]]) -> None:
        """Take up a progress rebuilt from SQL, its notes written back at once (before any new post)."""
        self.state = state
        async with self.redis.pipeline(transaction=False) as pipe:
            pipe.hset(self.key, mapping=dict(notes))
            pipe.expire(self.key, PROGRESS_TTL_S)
            await pipe.execute()

    async def note(self, note: tuple[str, str]) -> None:
        """Write a note the state made (its DeliveryProgress.note_* answer)."""
        name, value = note
        async with self.redis.pipeline(transaction=False) as pipe:  # one round trip
            pipe.hset(self.key, name, value)
            pipe.expire(self.key, PROGRESS_TTL_S)
            await pipe.execute()

    async def forget_caps(self, buyer_id: str) -> bool:
        """Drop a buyer's caps note; True if it was there (so a caller takes the sale back only once)."""
        return bool(await self.redis.hdel(self.key, self.state.forget_caps(buyer_id)))


class SaleCompletion:
    def __init__(self, producer: EventProducer, redis: RedisClient, store: DedupStore, policy: DedupPolicy,
                 directory: BuyerDirectory, client: BuyerClient, fees: SellerFees, namespace: str,
                 keyring: PiiKeyring, rules: RuleBook | None = None, breaker: CircuitBreaker | None = None,
                 attempts: AttemptLog | None = None, clock: Callable[[], float] = time.time,
                 caps: CapsStore | None = None, stopping: asyncio.Event | None = None,
                 held_retry_s: float = 1.0) -> None:
        self.producer, self.redis, self.store, self.policy = producer, redis, store, policy
        self.rules = rules or RuleBook()
        self.breaker = breaker or CircuitBreaker()
        self.attempts = attempts or AttemptLog(None)
        self.directory, self.client = directory, client
        self.fees = fees
        self.namespace = namespace
        self.keyring = keyring  # opens the consumer's fields for the POST
        self.clock = clock
        self.caps = caps or CapsStore(redis, namespace)
        self.stopping = stopping or asyncio.Event()  # the service's stop: an award held for dedup gives up
        self.held_retry_s = held_retry_s

    async def handle(self, envelope: Envelope) -> None:
        closed: ev.AuctionClosed = envelope.message
        progress = await Progress.load(self.redis, f"delivery:{self.namespace}{closed.auction_id}")
        if not progress.found:
            await self._recover(progress, closed)
        state = progress.state
        if state.done:
            return
        sold = state.sold  # each sale so far, and those made below as they are noted
        shares = max(1, closed.shares)
        attempts = len(state.rejected) + len(sold)
        for bid in closed.ranked_bids:
            if len(sold) >= shares:
                break
            if state.answered(bid.buyer_id):
                continue
            buyer = self.directory.get(bid.buyer_id)
            if buyer is None:
                continue  # deactivated since it bid
            prepared = self._prepare(closed, buyer, bid.amount_cents)
            if prepared is None:
                continue  # its POST rules cannot adapt this lead: it is never sent a malformed one
            if not self.breaker.allow(buyer.id):
                metrics.posted(buyer.id, "breaker_open")
                log_event(log, "buyer passed over: its circuit is open after repeated failures",
                          auction_id=closed.auction_id, buyer_id=buyer.id)
                continue
            reservation = await self._count_against_caps(progress, closed, bid, buyer)
            if reservation is None:
                self.breaker.release(buyer.id)
                continue
            if not await self._reserve(closed, buyer.id):
                self.breaker.release(buyer.id)
                await self._uncount(progress, buyer.id, reservation)
                log_event(log, "buyer passed over: already has this consumer",
                          auction_id=closed.auction_id, buyer_id=buyer.id)
                await progress.note(state.note_passed(buyer.id))
                continue
            attempts += 1
            attempt_id = await self.attempts.begin(closed, buyer, prepared)
            if not buyer.post_url and buyer.kind == AUTOBID:
                result = PostResult(True, "accepted on the buyer's behalf (AutoBid, no post URL)", 0)
            else:
                result = await self.client.post(buyer, closed, prepared, self.rules.for_buyer(buyer.id, buyer.name))
            self.breaker.record(buyer.id, ok=not result.failed)
            await self.attempts.finish(attempt_id, result)
            log_event(log, "lead posted", auction_id=closed.auction_id, buyer_id=buyer.id, **log_fields(result))
            if not result.reached:  # nothing was sent: the buyer has not seen the consumer after all
                attempts -= 1
                await self._release(closed, buyer.id)
                await self._uncount(progress, buyer.id, reservation)
                await progress.note(state.note_unreached(buyer.id, result.detail))
                continue
            if result.accepted:
                await progress.note(state.note_sold(buyer.id, Sale(bid.amount_cents, attempts)))
                continue
            await progress.note(state.note_rejected(buyer.id, result.detail))
            await self._uncount(progress, buyer.id, reservation)
        await self._publish(progress, closed, attempts)

    async def _recover(self, progress: Progress, closed: ev.AuctionClosed) -> None:
        """No note in Redis: a new auction, or Redis lost them. The posts SQL recorded for this
        auction say which: any there rebuild the progress, so no buyer that took or saw the lead is
        posted it again."""
        posts = await self.attempts.posts_of(closed.auction_id)
        if not posts:
            return
        prices: dict[str, int] = {}
        for bid in closed.ranked_bids:
            prices.setdefault(bid.buyer_id, bid.amount_cents)
        state, notes = DeliveryProgress.from_posts(posts, prices)
        if notes:
            await progress.restore(state, notes)
        metrics.PROGRESS_RESTORED.inc()
        log.warning("delivery progress missing from Redis: rebuilt from the posts recorded in SQL", extra={
            "fields": {"auction_id": closed.auction_id, "posts": len(posts), "sold": sorted(state.sold),
                       "rejected": sorted(state.rejected), "unreached": sorted(state.unreached)}})

    async def _count_against_caps(self, progress: Progress, closed: ev.AuctionClosed,
                                  bid: ev.RankedBid, buyer: BuyerAccount) -> Reservation | None:
        """Count this sale against the buyer's and its bidding profile's caps before posting: the
        reservation, or None (the buyer is passed over) if a cap refuses it. A direct sale is a
        contract, not counted. A redelivered auction reuses the reservation it recorded."""
        if closed.lead.direct_buyer_id:
            return Reservation((), 0)
        recorded = progress.state.caps.get(buyer.id)
        if recorded is not None:
            return recorded
        owners = [CapOwner(buyer.id, buyer.tz, buyer.caps)]
        owners += [CapOwner(p.id, buyer.tz, p.caps, buyer.id) for p in buyer.profiles if p.id == bid.profile_id]
        owners = [o for o in owners if o.caps.any]
        outcome = await self.caps.reserve(owners, bid.amount_cents, int(self.clock() * 1000), closed.auction_id)
        if isinstance(outcome, str):
            log_event(log, "buyer passed over: a cap is reached", auction_id=closed.auction_id,
                      buyer_id=buyer.id, capped=outcome)
            return None
        if outcome.keys:
            await progress.note(progress.state.note_caps(buyer.id, outcome))
        return outcome

    async def _uncount(self, progress: Progress, buyer_id: str, reservation: Reservation) -> None:
        """The buyer did not take the lead: its caps get the sale back, once. A reservation with a
        marker is released at most once whoever calls (two workers can hold one auction during a
        rebalance), so it is released first and the note dropped after: a crash between repeats a
        no-op. One noted before markers is dropped first, so only the caller that drops it releases."""
        if not reservation.keys:
            return
        if reservation.marker:
            await self.caps.release(reservation)
            await progress.forget_caps(buyer_id)
        elif await progress.forget_caps(buyer_id):
            await self.caps.release(reservation)

    def _prepare(self, closed: ev.AuctionClosed, buyer: BuyerAccount, price_cents: int) -> PreparedPost | None:
        if self.rules.is_broken(buyer.id, buyer.name):
            log_event(log, "buyer passed over: its POST rules are broken", auction_id=closed.auction_id,
                      buyer_id=buyer.id)
            return None
        try:
            return prepare_post(self.keyring.opened(closed.lead), price_cents,
                                self.rules.for_buyer(buyer.id, buyer.name))
        except RuleError as error:
            log_event(log, "buyer passed over: its POST rules cannot adapt this lead",
                      auction_id=closed.auction_id, buyer_id=buyer.id, error=str(error))
            return None

    async def _reserve(self, closed: ev.AuctionClosed, buyer_id: str) -> bool:
        """Reserve the consumer for this buyer before posting: False if it already has it. While
        Redis has lost the dedup records (no epoch) the award waits here until the dedup service
        has rebuilt them, rather than fail: the consumer would set the auction aside on dead.letter
        after a few failures while other auctions (unsold ones) succeed. Raises at shutdown, so
        the auction stays uncommitted and is taken up again."""
        scopes = self.policy.scopes(closed.lead.vertical)
        if not scopes.per_buyer:
            return True
        held = False
        try:
            while True:
                try:
                    return await self.store.reserve_for_buyer(
                        buyer_id, closed.lead.lead_id, closed.lead.vertical, list(closed.identity_keys),
                        int(self.clock() * 1000), scopes.window_ms)
                except DedupStateLost:
                    if not held:
                        held = True
                        metrics.AWARDS_HELD.inc()
                        log.warning("award held: Redis lost the dedup records; waiting for their rebuild",
                                    extra={"fields": {"auction_id": closed.auction_id, "buyer_id": buyer_id}})
                    if await self._stopping_within(self.held_retry_s):
                        raise
        finally:
            if held:
                metrics.AWARDS_HELD.dec()

    async def _stopping_within(self, seconds: float) -> bool:
        """Wait `seconds`, or less if the service is stopping: whether it is."""
        try:
            await asyncio.wait_for(self.stopping.wait(), seconds)
        except TimeoutError:
            return False
        return True

    async def _release(self, closed: ev.AuctionClosed, buyer_id: str) -> None:
        scopes = self.policy.scopes(closed.lead.vertical)
        if scopes.per_buyer:
            await self.store.release_for_buyer(
                buyer_id, closed.lead.lead_id, closed.lead.vertical, list(closed.identity_keys),
                int(self.clock() * 1000), scopes.window_ms)

    async def _publish(self, progress: Progress, closed: ev.AuctionClosed, attempts: int) -> None:
        """One sale.closed per buyer that bought, best-ranked first (its event id is the one an
        exclusive sale has), or one unsold; then `done`."""
        state = progress.state
        rejected, passed = sorted(state.rejected), sorted(state.passed)
        rank = {bid.buyer_id: i for i, bid in enumerate(closed.ranked_bids)}
        in_rank_order = sorted(state.sold, key=lambda buyer_id: rank.get(buyer_id, len(rank)))
        outcomes = [(buyer_id, state.sold[buyer_id]) for buyer_id in in_rank_order]
        outcomes = outcomes or [("", Sale(0, attempts))]
        now_ms = int(self.clock() * 1000)
        for share, (buyer_id, bought) in enumerate(outcomes):
            fee = seller_fee(bought.price_cents, self.fees.percent_for(closed.lead.seller_id)) if buyer_id else 0
            sale = sale_event(closed, buyer_id, bought.price_cents, fee, bought.attempts, now_ms)
            if share == 0:  # the ledger records who was posted to and passed over once per lead
                sale.posted_buyer_ids.extend(rejected + [buyer for buyer, _ in outcomes if buyer])
                sale.duplicate_buyer_ids.extend(passed)
            event_id = derived_event_id(closed.auction_id, "sale") if share == 0 else \
                derived_event_id(closed.auction_id, "sale", buyer_id)
            await self.producer.publish(topics.SALE_CLOSED, closed.lead.lead_id, sale, event_id)
        await progress.note(state.note_done())
