"""The SQL behind ListPartners: who an account trades with, and the stars on each side.

A buyer reads every active seller (whether it has opted in to its leads); a seller reads the buyers
that opted in to its leads or that it named (allowed or blocked), with its word on each. Both see
their own rating of each partner and the community's average. Three statements whatever the number
of partners: the accounts with their partnership and choice, the reader's ratings of them, and the
averages of the ratings of them."""

from __future__ import annotations

from sqlalchemy import and_, func, or_, select
from sqlalchemy.orm import Session

from leadx.auction.selection.market import SELLS_TO_ALL
from leadx.contracts.dashboard.v1 import dashboard_pb2 as pb
from leadx.platform.db.models import Buyer, Partnership, Rating, Seller, SellerBuyerChoice


def partners(session: Session, *, buyer_id: str | None = None,
             seller_id: str | None = None) -> tuple[list[pb.Partner], str]:
    """The partners of `buyer_id` or of `seller_id` (one of them), by name, and a seller's
    `sells_to` ("" for a buyer)."""
    if buyer_id:
        # A buyer is not told a seller's word on it: whether it is blocked is the seller's business.
        rows = session.execute(
            select(Seller.id, Seller.name, Partnership.buyer_id.is_not(None))
            .outerjoin(Partnership, and_(Partnership.seller_id == Seller.id, Partnership.buyer_id == buyer_id))
            .where(Seller.active.is_(True)).order_by(Seller.name, Seller.id)).all()
        return _with_stars(session, buyer_id, [(account, name, bool(partnered), "") for account, name, partnered
                                               in rows]), ""
    if not seller_id:
        raise ValueError("partners of a buyer or of a seller")
    named = session.execute(
        select(Buyer.id, Buyer.name, Partnership.seller_id.is_not(None), SellerBuyerChoice.choice)
        .outerjoin(Partnership, and_(Partnership.buyer_id == Buyer.id, Partnership.seller_id == seller_id))
        .outerjoin(SellerBuyerChoice, and_(SellerBuyerChoice.buyer_id == Buyer.id,
                                           SellerBuyerChoice.seller_id == seller_id))
        .where(or_(Partnership.seller_id.is_not(None), SellerBuyerChoice.choice.is_not(None)))
        .order_by(Buyer.name, Buyer.id)).all()
    found = [(account, name, bool(partnered), choice or "") for account, name, partnered, choice in named]
    sells_to = session.scalar(select(Seller.sells_to).where(Seller.id == seller_id)) or SELLS_TO_ALL
    return _with_stars(session, seller_id, found), sells_to


def _with_stars(session: Session, reader: str, found: list[tuple[str, str, bool, str]]) -> list[pb.Partner]:
    ids = [account for account, _, _, _ in found]
    mine = dict(session.execute(select(Rating.ratee_id, Rating.stars)
                                .where(Rating.rater_id == reader, Rating.ratee_id.in_(ids))).all()) if ids else {}
    community = {ratee: (count, average) for ratee, count, average in session.execute(
        select(Rating.ratee_id, func.count(), func.avg(Rating.stars))
        .where(Rating.ratee_id.in_(ids)).group_by(Rating.ratee_id))} if ids else {}
    partners = []
    for account, name, partnered, choice in found:
        count, average = community.get(account, (0, None))
        partners.append(pb.Partner(account_id=account, name=name, partnered=partnered, choice=choice,
                                   your_stars=mine.get(account, 0),
                                   average_stars=round(float(average), 2) if average is not None else 0.0,
                                   ratings=count))
    return partners
