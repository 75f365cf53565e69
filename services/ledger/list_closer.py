"""Closes list auctions when their window ends, and sells their customers (leadx.lists).

It runs in the ledger, the service that owns the SQL the auctions live in. Every sweep:
1. closes each due auction once: the winners of its bids (leadx.lists.award), leaving out, per
   customer, the buyers that already have it (from the platform: SQL; or from anywhere in the
   dedup window: the same per-buyer Redis records lead dedup keeps) and the buyers its seller does
   not sell to (partnerships and the seller's choices, as for leads);
2. publishes every award not yet published: the consumer is recorded as the buyer's in Redis
   (so a later lead of the same consumer is a duplicate for it), then list.awarded (for delivery
   to POST the customer to the dealer) and sale.closed go out with derived event ids, and the
   award is marked published. A crash in between repeats the publish under the same ids; the
   ledger books a sale once per lead and buyer, and delivery posts a customer once.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable

from sqlalchemy import select, update
from sqlalchemy.orm import Session, sessionmaker

from leadx.accounts.accounts import seller_fee_overrides
from leadx.accounts.directory import load_market
from leadx.contracts import topics
from leadx.contracts.events.v1 import events_pb2 as ev
from leadx.dedup.scopes import DedupPolicy
from leadx.dedup.store import DedupStore
from leadx.leads.sealing import PiiKeyring
from leadx.ledger.billing import seller_fee
from leadx.lists import store
from leadx.lists.award import award
from leadx.lists.building import Customer
from leadx.platform.db.models import ListAuction, ListAward, ListMember, Prospect
from leadx.platform.ids import derived_event_id
from leadx.platform.kafka.producer import EventProducer
from leadx.platform.logs import log_event

log = logging.getLogger("leadx.ledger.lists")
IDENTITY_COLUMNS = {"ssn": "ssn_key", "email": "email_key", "home_phone": "home_phone_key"}


def _identities(prospect: Prospect) -> dict[str, str]:
    return {kind: getattr(prospect, column) for kind, column in IDENTITY_COLUMNS.items() if getattr(prospect, column)}


class ListCloser:
    def __init__(self, sessions: sessionmaker[Session], producer: EventProducer, dedup: DedupStore,
                 policy: DedupPolicy, keyring: PiiKeyring, default_fee_percent: float,
                 clock: Callable[[], float] = time.time) -> None:
        self.sessions, self.producer, self.dedup, self.policy = sessions, producer, dedup, policy
        self.keyring = keyring  # seals the customer's identifying fields in list.awarded
        self.default_fee_percent = default_fee_percent
        self.clock = clock

    async def sweep(self) -> int:
        now_ms = int(self.clock() * 1000)
        closed = 0
        for auction_id in await asyncio.to_thread(self._read, lambda s: store.due(s, now_ms)):
            closed += await self.close(auction_id, now_ms)
        await self.publish_awards()
        return closed

    def _read(self, query):
        with self.sessions() as session:
            return query(session)

    async def close(self, auction_id: str, now_ms: int) -> bool:
        auction, rows, had, market = await asyncio.to_thread(self._read, lambda s: _load(s, auction_id))
        if auction is None or auction.status != store.OPEN:
            return False
        window_ms = self.policy.scopes(auction.vertical).window_ms
        duplicates = await asyncio.gather(*(
            self.dedup.check_submission(prospect.id, auction.vertical, _identities(prospect), now_ms, window_ms,
                                        platform=False, buyers=True, record=False)
            for _, prospect in rows))
        # Per customer: the buyers that have it, and those its seller sells to.
        has_it = {member.prospect_id: had.get(member.prospect_id, set()) | set(check.duplicate_buyer_ids)
                  for (member, _), check in zip(rows, duplicates, strict=True)}
        sells_to = {prospect.seller_id: {b.id for b in market.eligible(prospect.seller_id)} for _, prospect in rows}
        customers = [Customer(m.prospect_id, m.probability, m.cluster, {}) for m, _ in rows]

        def write(session: Session) -> tuple[bool, int, int]:
            with session.begin():
                if not store.claim(session, auction_id, now_ms):
                    return False, 0, 0
                # Read after the claim: every bid accepted before it is in, none can come after.
                bids = store.bids_of(session, auction_id)
                bidders = {bid.buyer_id for bid in bids}
                excluded = {member.prospect_id: frozenset(has_it[member.prospect_id]
                                                          | (bidders - sells_to[prospect.seller_id]))
                            for member, prospect in rows}
                awards = award(customers, bids, auction.reserve_cents, excluded, auction.tie_break_seed)
                store.add_awards(session, auction_id, awards, now_ms)
                return True, len(bids), len(awards)
        closed, bid_count, sold = await asyncio.to_thread(self._read, write)
        if closed:
            log_event(log, "list auction closed", auction_id=auction_id, customers=len(customers),
                      bids=bid_count, sold=sold)
        return closed

    async def publish_awards(self) -> int:
        rows, fees = await asyncio.to_thread(self._read, lambda s: (store.unpublished(s), seller_fee_overrides(s)))
        for listed, prospect in rows:
            window_ms = self.policy.scopes(prospect.vertical).window_ms
            identities = list(_identities(prospect).values())
            if identities:
                # False when the buyer already has it: still its sale (it was checked at the close).
                await self.dedup.reserve_for_buyer(listed.buyer_id, prospect.id, prospect.vertical, identities,
                                                   int(self.clock() * 1000), window_ms)
            percent = fees.get(prospect.seller_id, self.default_fee_percent)
            awarded = _awarded(listed, prospect)
            self.keyring.seal(awarded.lead)
            await self.producer.publish(topics.LIST_AWARDED, prospect.id, awarded,
                                        derived_event_id(prospect.id, "list-award", listed.buyer_id))
            await self.producer.publish(topics.SALE_CLOSED, prospect.id, _sale(listed, prospect, percent),
                                        derived_event_id(prospect.id, "list-sale", listed.buyer_id))
            await asyncio.to_thread(self._read, lambda s, a=listed: _mark_published(s, a.auction_id, a.prospect_id))
        return len(rows)


def _load(session: Session, auction_id: str):
    """What a close decides from, besides the bids: the auction, its customers, who already bought
    whom, and the buyers and partnerships."""
    rows = _members_with_prospects(session, auction_id)
    return (session.get(ListAuction, auction_id), rows,
            store.bought_already(session, [member.prospect_id for member, _ in rows]), load_market(session))


def _members_with_prospects(session: Session, auction_id: str) -> list[tuple[ListMember, Prospect]]:
    rows = session.execute(select(ListMember, Prospect).join(Prospect, Prospect.id == ListMember.prospect_id)
                           .where(ListMember.auction_id == auction_id)
                           .order_by(ListMember.probability.desc(), ListMember.prospect_id))
    return [(member, prospect) for member, prospect in rows]


def _mark_published(session: Session, auction_id: str, prospect_id: str) -> None:
    with session.begin():
        session.execute(update(ListAward).where(ListAward.auction_id == auction_id,
                                                ListAward.prospect_id == prospect_id).values(published=True))


def _awarded(listed: ListAward, prospect: Prospect) -> ev.ListAwarded:
    lead = ev.Lead(lead_id=prospect.id, seller_id=prospect.seller_id, vertical=prospect.vertical,
                   fields={k: str(v) for k, v in (prospect.fields or {}).items()},
                   submitted_at_ms=prospect.consumer_since_ms)
    return ev.ListAwarded(auction_id=listed.auction_id, buyer_id=listed.buyer_id, price_cents=listed.price_cents,
                          lead=lead, probability=prospect.probability, cluster=prospect.cluster)


def _sale(listed: ListAward, prospect: Prospect, fee_percent: float) -> ev.SaleClosed:
    """A list sale as analysts and the ledger read any sale: no PII."""
    fields = prospect.fields or {}
    return ev.SaleClosed(
        lead_id=prospect.id, auction_id=listed.auction_id, outcome=ev.SALE_OUTCOME_SOLD, buyer_id=listed.buyer_id,
        price_cents=listed.price_cents, seller_fee_cents=seller_fee(listed.price_cents, fee_percent),
        seller_id=prospect.seller_id, vertical=prospect.vertical, state=prospect.state,
        zip3=str(fields.get("zip", ""))[:3], probability=prospect.probability, cluster=prospect.cluster,
        attempts=0, closed_at_ms=listed.awarded_at_ms, submitted_at_ms=prospect.consumer_since_ms)
