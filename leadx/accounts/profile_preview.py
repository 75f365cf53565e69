"""A buy profile's preview: which of the buyer's latest offered leads a profile (saved or not yet)
would have bid on (an AutoBid buyer's) or let through to a ping (a wholesale buyer's), at what price,
and why not the others. The offers are the ledger's record of auction.opened (auction_offers); each
lead is judged as the auction judged it (leadx.auction.selection.market): its fields and scores, the
profile's windows on the buyer's clock at the moment it was offered, and for an AutoBid the seller's
minimum. A paused profile is judged as if resumed. Caps are not replayed (what they had counted then
is not kept), so a capped profile's preview shows what it would do uncapped."""

from __future__ import annotations

from dataclasses import dataclass
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.orm import Session

from leadx.auction.selection.criteria import LeadView
from leadx.auction.selection.profiles import Profile
from leadx.auction.selection.windows import is_active
from leadx.platform.db.models import AuctionOffer, Lead

PREVIEW_LEADS = 100
CLOSED, NO_MATCH, BELOW_MINIMUM = "outside its hours", "no criterion matches", "below the seller's minimum"


@dataclass(frozen=True)
class OfferedLead:
    lead_id: str
    offered_at_ms: int
    vertical: str
    state: str
    min_price_cents: int  # the seller's minimum: an AutoBid under it is not placed
    view: LeadView  # what the criteria read: never shown


@dataclass(frozen=True)
class PreviewRow:
    lead_id: str
    offered_at_ms: int
    vertical: str
    state: str
    takes: bool  # an AutoBid buyer's profile bids; a wholesale buyer's lets the ping through
    bid_cents: int | None  # the profile's price for the lead (None: no criterion matches, or outside its hours)
    why_not: str = ""


def latest_offers(session: Session, buyer_id: str, limit: int = PREVIEW_LEADS) -> list[OfferedLead]:
    """The buyer's latest offered leads, newest first."""
    rows = session.execute(
        select(AuctionOffer.lead_id, AuctionOffer.offered_at_ms, Lead.vertical, Lead.state, Lead.min_price_cents,
               Lead.fields, Lead.probability, Lead.cluster, Lead.timing_factor)
        .join(Lead, Lead.id == AuctionOffer.lead_id).where(AuctionOffer.buyer_id == buyer_id)
        .order_by(AuctionOffer.offered_at_ms.desc(), AuctionOffer.lead_id).limit(limit))
    return [OfferedLead(r.lead_id, r.offered_at_ms, r.vertical, r.state or "", r.min_price_cents or 0,
                        LeadView({k: str(v) for k, v in (r.fields or {}).items()}, r.probability or 0.0,
                                 r.cluster or "", 1.0 if r.timing_factor is None else r.timing_factor))
            for r in rows]


def preview(profile: Profile, tz: ZoneInfo, offers: list[OfferedLead], autobid: bool = True) -> list[PreviewRow]:
    """Each offer as the profile would have met it: its price, whether it bids (or passes the
    ping), or why not."""
    rows = []
    for offer in offers:
        price, why_not = None, CLOSED
        if is_active(profile.windows, tz, offer.offered_at_ms):  # as if resumed, when paused
            price = profile.best_price(offer.view)
            why_not = NO_MATCH if price is None else ""
        if autobid and price is not None and price < offer.min_price_cents:
            why_not = BELOW_MINIMUM
        rows.append(PreviewRow(offer.lead_id, offer.offered_at_ms, offer.vertical, offer.state,
                               takes=not why_not, bid_cents=price, why_not=why_not))
    return rows
