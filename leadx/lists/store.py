"""List auctions in SQL: opened from the prospect pool, bid on by dealers, closed once when due.

A list auction snapshots its customers when it opens (list_members), so a bid is placed on a list
that does not change under it. Closing is a claim: the status moves from "open" to "closed" in the
transaction that writes the awards, guarded by the old status, so two closers never both close one
auction. Each award is then published as a sale.closed (an outbox: `published` is set after).
"""

from __future__ import annotations

import random
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import cast

from sqlalchemy import and_, select, update
from sqlalchemy.engine import CursorResult
from sqlalchemy.orm import Session

from leadx.lists.award import Award, check_bid
from leadx.lists.award import ListBid as Bid
from leadx.lists.building import Band, Customer, ListProfile, build_list
from leadx.platform.db.models import Buyer, ListAuction, ListAward, ListBid, ListMember, Prospect, Sale
from leadx.platform.ids import new_lead_id

OPEN, CLOSED = "open", "closed"


@dataclass(frozen=True)
class Refusal:
    status: int
    code: str
    field: str
    message: str


def _customer(prospect: Prospect) -> Customer:
    return Customer(prospect.id, prospect.probability, prospect.cluster, prospect.fields or {})


def open_auction(session: Session, vertical: str, profile_document: object, band_width: float,
                 reserve_cents: int, window_ms: int, now_ms: int) -> ListAuction:
    """Snapshots the pool's customers of `vertical` matching the profile into a new list auction.
    Raises CriterionError for a bad profile and ValueError when nobody matches."""
    profile = ListProfile.parse(profile_document)
    if reserve_cents < 0 or window_ms <= 0:
        raise ValueError("the reserve is at least 0 cents and the window longer than 0")
    pool = (_customer(p) for p in session.scalars(select(Prospect).where(Prospect.vertical == vertical)))
    built = build_list(pool, profile, band_width)
    if not built.customers:
        raise ValueError(f"no customer in the {vertical} pool matches this profile")
    auction = ListAuction(id=new_lead_id(), vertical=vertical, profile={"criteria": list(profile.document)},
                          band_width=band_width, reserve_cents=reserve_cents, status=OPEN, opened_at_ms=now_ms,
                          closes_at_ms=now_ms + window_ms, tie_break_seed=random.SystemRandom().getrandbits(62))
    session.add(auction)
    session.add_all(ListMember(auction_id=auction.id, prospect_id=c.prospect_id, probability=c.probability,
                               cluster=c.cluster) for c in built.customers)
    return auction


def members(session: Session, auction_id: str) -> list[Customer]:
    """The auction's customers, best first (fields left out: bidders never see them)."""
    rows = session.execute(select(ListMember.prospect_id, ListMember.probability, ListMember.cluster)
                           .where(ListMember.auction_id == auction_id)
                           .order_by(ListMember.probability.desc(), ListMember.prospect_id))
    return [Customer(pid, probability, cluster, {}) for pid, probability, cluster in rows]


@dataclass(frozen=True)
class Listing:
    """The rows a view of a list auction is made from (leadx.lists.views)."""
    auction: ListAuction
    members: list[Customer]  # all of them, best first, without fields
    page: list[Customer]     # those asked for, with their state and ZIP only
    bids: list[ListBid]
    awards: list[ListAward]


def read_listing(session: Session, list_id: str, offset: int, limit: int, buyer_id: str | None = None
                 ) -> Listing | None:
    """A list auction as the views need it; with `buyer_id`, only that dealer's bids and awards.
    The operators' `leadx lists show` and the intake's list API read an auction with it."""
    auction = session.get(ListAuction, list_id)
    if auction is None:
        return None
    everyone = members(session, list_id)
    chosen = everyone[offset:offset + limit]
    places = {pid: (state, (fields or {}).get("zip", "")) for pid, state, fields in session.execute(
        select(Prospect.id, Prospect.state, Prospect.fields).where(Prospect.id.in_([c.prospect_id for c in chosen])))
    } if chosen else {}
    page = [Customer(c.prospect_id, c.probability, c.cluster,
                     dict(zip(("state", "zip"), places.get(c.prospect_id, ("", "")), strict=True))) for c in chosen]
    bids = select(ListBid).where(ListBid.auction_id == list_id).order_by(ListBid.id)
    awards = select(ListAward).where(ListAward.auction_id == list_id).order_by(ListAward.prospect_id)
    if buyer_id is not None:
        bids, awards = bids.where(ListBid.buyer_id == buyer_id), awards.where(ListAward.buyer_id == buyer_id)
    return Listing(auction, everyone, page, list(session.scalars(bids)), list(session.scalars(awards)))


def place_bid(session: Session, auction_id: str, buyer_id: str, spec: Mapping[str, object],
              now_ms: int) -> ListBid | Refusal:
    # Locked (PostgreSQL) until this bid commits: a closer claiming the auction waits for it, and a
    # bid that comes after the claim finds the auction closed.
    auction = session.get(ListAuction, auction_id, with_for_update=True)
    if auction is None:
        return Refusal(404, "LIST_NOT_FOUND", "", f"there is no list auction {auction_id}")
    if auction.status != OPEN or now_ms >= auction.closes_at_ms:
        return Refusal(409, "LIST_CLOSED", "", f"list auction {auction_id} closed for bids")
    scope, target = spec.get("scope"), spec.get("target")
    price, max_count, max_budget = spec.get("price"), spec.get("max_count"), spec.get("max_budget")
    problems = check_bid(scope, target, price, max_count, max_budget)
    if problems:
        field, message = problems[0]
        return Refusal(422, "FIELD_INVALID", field, "; ".join(m for _, m in problems))
    # check_bid found nothing wrong, so each value has the type it checks for.
    assert isinstance(price, int)
    assert max_count is None or isinstance(max_count, int)
    assert max_budget is None or isinstance(max_budget, int)
    if price < auction.reserve_cents:
        return Refusal(422, "BELOW_RESERVE", "price",
                       f"the reserve is {auction.reserve_cents} cents per customer")
    if not _names_a_customer(session, auction_id, str(scope), str(target)):
        return Refusal(422, "FIELD_INVALID", "target", f"no customer of this list is in {scope} {target}")
    buyer = session.get(Buyer, buyer_id)
    if buyer is None or not buyer.active:
        return Refusal(403, "AUTH_INVALID", "", "only an active buyer may bid")
    bid = ListBid(auction_id=auction_id, buyer_id=buyer_id, scope=str(scope), target=str(target).strip(),
                  price_cents=int(price), max_count=max_count, max_budget_cents=max_budget,
                  placed_at_ms=now_ms)
    session.add(bid)
    session.flush()
    return bid


def _names_a_customer(session: Session, auction_id: str, scope: str, target: str) -> bool:
    """A bid that could not win anybody is refused, so a dealer hears of a mistyped target at once."""
    target = target.strip()
    query = select(ListMember.prospect_id).where(ListMember.auction_id == auction_id)
    if scope == "customer":
        query = query.where(ListMember.prospect_id == target)
    elif scope == "cluster":
        query = query.where(ListMember.cluster == target)
    elif "-" in target:
        band = Band.parse(target)
        upper = ListMember.probability <= band.upper if band.upper >= 1.0 else ListMember.probability < band.upper
        query = query.where(ListMember.probability >= band.lower, upper)
    else:  # one probability, at two decimals
        value = float(target)
        query = query.where(ListMember.probability >= value - 0.005, ListMember.probability < value + 0.005)
    return session.execute(query.limit(1)).first() is not None


def due(session: Session, now_ms: int) -> list[str]:
    return list(session.scalars(select(ListAuction.id).where(ListAuction.status == OPEN,
                                                             ListAuction.closes_at_ms <= now_ms)))


def bids_of(session: Session, auction_id: str) -> list[Bid]:
    rows = session.scalars(select(ListBid).where(ListBid.auction_id == auction_id).order_by(ListBid.id))
    return [Bid(b.id, b.buyer_id, b.scope, b.target, b.price_cents, b.max_count, b.max_budget_cents) for b in rows]


def bought_already(session: Session, prospect_ids: Iterable[str]) -> dict[str, set[str]]:
    """The buyers that already have each customer from the platform: a list sale, or the sale of the
    lead itself (an aged or unsold lead's prospect id is its lead id)."""
    ids = list(prospect_ids)
    had: dict[str, set[str]] = {}
    for start in range(0, len(ids), 500):
        chunk = ids[start:start + 500]
        for pid, buyer in session.execute(select(ListAward.prospect_id, ListAward.buyer_id)
                                          .where(ListAward.prospect_id.in_(chunk))):
            had.setdefault(pid, set()).add(buyer)
        for pid, buyer in session.execute(select(Sale.lead_id, Sale.buyer_id)
                                          .where(Sale.lead_id.in_(chunk), Sale.sold.is_(True))):
            had.setdefault(pid, set()).add(buyer)
    return had


def claim(session: Session, auction_id: str, now_ms: int) -> bool:
    """Marks the auction closed; False if another closer did. From here no bid is accepted, and
    every bid accepted before is committed (place_bid holds the auction's row until it commits)."""
    statement = (update(ListAuction).where(ListAuction.id == auction_id, ListAuction.status == OPEN)
                 .values(status=CLOSED, closed_at_ms=now_ms))
    # Session.execute is typed as returning Result; for an UPDATE it is a CursorResult, which counts rows.
    return cast(CursorResult, session.execute(statement)).rowcount == 1


def record_close(session: Session, auction_id: str, awards: list[Award], now_ms: int) -> bool:
    """Closes the auction with these awards; False (and nothing written) if another closer did."""
    if not claim(session, auction_id, now_ms):
        return False
    add_awards(session, auction_id, awards, now_ms)
    return True


def add_awards(session: Session, auction_id: str, awards: list[Award], now_ms: int) -> None:
    session.add_all(ListAward(auction_id=auction_id, prospect_id=a.prospect_id, buyer_id=a.buyer_id,
                              bid_id=a.bid_id, price_cents=a.price_cents, awarded_at_ms=now_ms, published=False)
                    for a in awards)


def unpublished(session: Session, limit: int = 500) -> list[tuple[ListAward, Prospect]]:
    rows = session.execute(select(ListAward, Prospect).join(Prospect, Prospect.id == ListAward.prospect_id)
                           .where(ListAward.published.is_(False))
                           .order_by(ListAward.awarded_at_ms, ListAward.prospect_id).limit(limit))
    return [(award, prospect) for award, prospect in rows]


def won(session: Session, auction_id: str, buyer_id: str) -> list[tuple[ListAward, Prospect]]:
    """What a buyer won in a list auction, best first, with the customers' fields: it bought them."""
    rows = session.execute(select(ListAward, Prospect).join(Prospect, Prospect.id == ListAward.prospect_id)
                           .join(ListMember, and_(ListMember.auction_id == ListAward.auction_id,
                                                  ListMember.prospect_id == ListAward.prospect_id))
                           .where(ListAward.auction_id == auction_id, ListAward.buyer_id == buyer_id)
                           .order_by(ListMember.probability.desc(), Prospect.id))
    return [(award, prospect) for award, prospect in rows]
