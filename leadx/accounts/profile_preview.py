"""A buy profile's preview: which of the buyer's latest offered leads a profile (saved or not yet)
would have bid on, at what price, and why not the others. The offers are the ledger's record of
auction.opened (auction_offers); each lead is judged as the auction judged it: its fields and scores,
the profile's windows on the buyer's clock at the moment it was offered. Caps are not replayed (what
they had counted then is not kept), so a capped profile's preview shows what it would bid uncapped."""

from __future__ import annotations

from dataclasses import dataclass
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.orm import Session

from leadx.auction.selection.criteria import LeadView
from leadx.auction.selection.profiles import Profile
from leadx.platform.db.models import AuctionOffer, Lead

PREVIEW_LEADS = 100
PAUSED, CLOSED, NO_MATCH = "paused", "outside its hours", "no criterion matches"


@dataclass(frozen=True)
class OfferedLead:
    lead_id: str
    offered_at_ms: int
    vertical: str
    state: str
    view: LeadView  # what the criteria read: never shown


@dataclass(frozen=True)
class PreviewRow:
    lead_id: str
    offered_at_ms: int
    vertical: str
    state: str
    bid_cents: int | None  # None: it would not have bid
    why_not: str = ""


def latest_offers(session: Session, buyer_id: str, limit: int = PREVIEW_LEADS) -> list[OfferedLead]:
    """The buyer's latest offered leads, newest first."""
    rows = session.execute(
        select(AuctionOffer.lead_id, AuctionOffer.offered_at_ms, Lead.vertical, Lead.state, Lead.fields,
               Lead.probability, Lead.cluster, Lead.timing_factor)
        .join(Lead, Lead.id == AuctionOffer.lead_id).where(AuctionOffer.buyer_id == buyer_id)
        .order_by(AuctionOffer.offered_at_ms.desc(), AuctionOffer.lead_id).limit(limit))
    return [OfferedLead(r.lead_id, r.offered_at_ms, r.vertical, r.state or "",
                        LeadView({k: str(v) for k, v in (r.fields or {}).items()}, r.probability or 0.0,
                                 r.cluster or "", 1.0 if r.timing_factor is None else r.timing_factor))
            for r in rows]


def preview(profile: Profile, tz: ZoneInfo, offers: list[OfferedLead]) -> list[PreviewRow]:
    """Each offer as the profile would have met it: its bid, or why not."""
    rows = []
    for offer in offers:
        bid, why_not = None, PAUSED
        if not profile.paused:
            why_not = CLOSED
            if profile.active_at(tz, offer.offered_at_ms):
                bid = profile.best_price(offer.view)
                why_not = "" if bid is not None else NO_MATCH
        rows.append(PreviewRow(offer.lead_id, offer.offered_at_ms, offer.vertical, offer.state, bid, why_not))
    return rows
