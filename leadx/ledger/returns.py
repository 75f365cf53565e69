"""A buyer's return of a lead it bought: when it may send one back (within the return window, and
without taking its return rate over the cap), and the return decided and recorded in SQL.

The rules (`ReturnPolicy`, `reason_problem`) are pure. `claim_return` applies them in one
transaction, holding the buyer's row locked so that two returns at once cannot both fit under the
cap, and writes the claim: the lead_returns row (its primary key allows one return per lead). The
intake then publishes the event it returns as lead.returned for the ledger to book. A repeated
return of the same lead by its buyer gets the same event again (published under the same event id)
and is answered as the first was: if the intake stopped between the claim and the publish, the
buyer's retry completes the return, and the ledger books it once whatever it receives.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Protocol

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from google.protobuf.message import Message

from leadx.contracts import topics
from leadx.contracts.events.v1 import events_pb2 as ev
from leadx.ledger.reports import buyer_return_counts
from leadx.platform.config import env_float, env_int
from leadx.platform.db.models import Buyer, Lead, LeadReturn, Sale
from leadx.platform.ids import derived_event_id
from leadx.platform.utc_days import DAY_MS

MAX_REASON_CHARS = 500
NOT_FOUND = "LEAD_NOT_FOUND"


@dataclass(frozen=True)
class Refusal:
    http_status: int
    code: str
    message: str


@dataclass(frozen=True)
class ReturnPolicy:
    window_days: int = 7  # a lead may be returned up to this long after its sale (inclusive)
    rate_cap_percent: float = 25.0  # returns may be at most this share of a buyer's purchases...
    rate_period_days: int = 30  # ...counted over this many days back

    def __post_init__(self) -> None:
        if self.window_days < 0 or self.rate_period_days < 1 or not 0 <= self.rate_cap_percent <= 100:
            raise ValueError("return policy: window >= 0 days, period >= 1 day, cap between 0 and 100 percent")

    @classmethod
    def from_env(cls) -> ReturnPolicy:
        return cls(window_days=env_int("RETURN_WINDOW_DAYS", 7),
                   rate_cap_percent=env_float("RETURN_RATE_CAP_PERCENT", 25.0),
                   rate_period_days=env_int("RETURN_RATE_PERIOD_DAYS", 30))

    @property
    def period_ms(self) -> int:
        return self.rate_period_days * DAY_MS

    def refusal(self, sold_at_ms: int, now_ms: int, purchases: int, returns: int) -> Refusal | None:
        """Why this return is refused, or None. `purchases` and `returns` are the buyer's over the
        rate period, this lead's sale included and this return not yet counted."""
        if now_ms - sold_at_ms > self.window_days * DAY_MS:
            return Refusal(422, "RETURN_WINDOW_CLOSED",
                           f"a lead can be returned up to {self.window_days} days after its sale")
        # The rate after this return must not exceed the cap (integers: no rounding at the edge).
        if (returns + 1) * 100 > self.rate_cap_percent * purchases:
            return Refusal(422, "RETURN_RATE_EXCEEDED",
                           f"returns may be at most {self.rate_cap_percent:g}% of your purchases over the last "
                           f"{self.rate_period_days} days; this return would make {returns + 1} of {purchases}")
        return None


def reason_problem(reason: str) -> str | None:
    if not reason.strip():
        return "reason is required: say why the lead is returned"
    if len(reason) > MAX_REASON_CHARS:
        return f"reason must be at most {MAX_REASON_CHARS} characters"
    return None


def claim_return(sessions: sessionmaker[Session], policy: ReturnPolicy, lead_id: str, buyer_id: str,
                 reason: str, now_ms: int) -> ev.LeadReturned | Refusal:
    """Decide and record this buyer's return of the lead: the event to publish, or why not."""
    try:
        with sessions.begin() as session:
            # One buyer's returns are claimed one at a time (PostgreSQL), so that two at once
            # cannot both fit under the cap.
            session.execute(select(Buyer.id).where(Buyer.id == buyer_id).with_for_update())
            sale = session.get(Sale, (lead_id, buyer_id))
            if sale is None or not sale.sold:
                return Refusal(404, NOT_FOUND, f"you bought no lead {lead_id}")
            claimed = session.get(LeadReturn, (lead_id, buyer_id))
            if claimed is None:
                since_ms = now_ms - policy.period_ms
                counts = buyer_return_counts(session, buyer_id, since_ms)
                purchases = counts.sold + (0 if sale.closed_at_ms >= since_ms else 1)  # this sale counts
                refusal = policy.refusal(sale.closed_at_ms, now_ms, purchases, counts.returned)
                if refusal is not None:
                    return refusal
                claimed = LeadReturn(lead_id=lead_id, buyer_id=buyer_id, seller_id=sale.seller_id, reason=reason,
                                     price_cents=sale.price_cents, seller_fee_cents=sale.seller_fee_cents,
                                     sold_at_ms=sale.closed_at_ms, returned_at_ms=now_ms)
                session.add(claimed)
            return _event(sale, claimed, session.get(Lead, lead_id))
    except IntegrityError:  # the same lead claimed by a simultaneous request: answer as a repeat
        return claim_return(sessions, policy, lead_id, buyer_id, reason, now_ms)


class Publisher(Protocol):
    async def publish(self, topic: str, key: str, message: Message, event_id: str | None = None) -> str: ...


class NotRecorded(Exception):
    """The return's event could not be published: its claim was taken back, nothing is recorded; retry."""


async def return_lead(sessions: sessionmaker[Session], policy: ReturnPolicy, publisher: Publisher, lead_id: str,
                      buyer_id: str, reason: str, now_ms: int) -> ev.LeadReturned | Refusal:
    """A buyer's return, as every door (the API, the web portal) books it: claimed in SQL under the
    rules, then published as lead.returned for the ledger; the claim is taken back when the publish
    fails (NotRecorded). `reason` has passed `reason_problem`."""
    claimed = await asyncio.to_thread(claim_return, sessions, policy, lead_id, buyer_id, reason, now_ms)
    if isinstance(claimed, Refusal):
        return claimed
    try:
        await publisher.publish(topics.LEAD_RETURNED, lead_id, claimed, derived_event_id(lead_id, "return", buyer_id))
    except Exception:
        await asyncio.to_thread(unclaim_return, sessions, lead_id, buyer_id, now_ms)
        raise NotRecorded(lead_id) from None
    return claimed


def unclaim_return(sessions: sessionmaker[Session], lead_id: str, buyer_id: str, returned_at_ms: int) -> None:
    """Undo a claim whose event could not be published (the buyer is told to retry); only the one
    made at `returned_at_ms`, never an earlier claim's."""
    with sessions.begin() as session:
        claimed = session.get(LeadReturn, (lead_id, buyer_id))
        if claimed is not None and claimed.returned_at_ms == returned_at_ms:
            session.delete(claimed)


def _event(sale: Sale, claimed: LeadReturn, lead: Lead | None) -> ev.LeadReturned:
    """What the ledger books and analysts read: amounts, times and the lead's market, no PII."""
    zip_code = str((lead.fields or {}).get("zip", "")) if lead is not None else ""
    return ev.LeadReturned(
        lead_id=sale.lead_id, auction_id=sale.auction_id, buyer_id=claimed.buyer_id, seller_id=claimed.seller_id,
        price_cents=claimed.price_cents, seller_fee_cents=claimed.seller_fee_cents, reason=claimed.reason,
        vertical=sale.vertical, state=sale.state, zip3=zip_code[:3],
        probability=(lead.probability or 0.0) if lead is not None else 0.0,
        cluster=(lead.cluster or "") if lead is not None else "",
        sold_at_ms=claimed.sold_at_ms, returned_at_ms=claimed.returned_at_ms)
