"""A buyer's return of a lead it bought: checked and claimed in SQL in one transaction, then
published as lead.returned for the ledger to book.

The claim is the lead_returns row (its primary key allows one return per lead). A repeated
return of the same lead by its buyer publishes the same event again under the same event id and
is answered as the first was: if intake stopped between the claim and the publish, the buyer's
retry completes the return, and the ledger books it once whatever it receives.
"""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from leadx.contracts.events.v1 import events_pb2 as ev
from leadx.ledger.reports import buyer_return_counts
from leadx.ledger.returns import Refusal, ReturnPolicy
from leadx.platform.db.models import Buyer, Lead, LeadReturn, Sale

NOT_FOUND = "LEAD_NOT_FOUND"


def claim_return(sessions: sessionmaker[Session], policy: ReturnPolicy, lead_id: str, buyer_id: str,
                 reason: str, now_ms: int) -> ev.LeadReturned | Refusal:
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


def unclaim(sessions: sessionmaker[Session], lead_id: str, buyer_id: str, returned_at_ms: int) -> None:
    """Undo a claim whose event could not be published (the buyer is told to retry)."""
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
