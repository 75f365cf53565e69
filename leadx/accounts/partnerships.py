"""Who may trade with whom (docs/auction.md#buyer-selection): a buyer opts in to a seller's
leads with a partnership; a seller sells to every partnered buyer except those it blocks, or only
to those it names."""

from __future__ import annotations

import time
from typing import cast

from sqlalchemy import delete, select, update
from sqlalchemy.engine import CursorResult
from sqlalchemy.orm import Session

from leadx.accounts.ids import UnknownAccount
from leadx.auction.selection.market import ALLOW, BLOCK, SELLS_TO_ALL, SELLS_TO_NAMED
from leadx.platform.db.models import Buyer, Partnership, Seller, SellerBuyerChoice


class NoPartnership(UnknownAccount):
    """The buyer and seller exist, but the buyer has not partnered with the seller."""


def _require(session: Session, seller_id: str, buyer_id: str | None = None) -> None:
    if session.get(Seller, seller_id) is None:
        raise UnknownAccount(f"no seller {seller_id}")
    if buyer_id is not None and session.get(Buyer, buyer_id) is None:
        raise UnknownAccount(f"no buyer {buyer_id}")


def add_partnership(session: Session, seller_id: str, buyer_id: str) -> bool:
    """The buyer opts in to the seller's leads; False if it already had."""
    _require(session, seller_id, buyer_id)
    if session.get(Partnership, (buyer_id, seller_id)) is not None:
        return False
    session.add(Partnership(buyer_id=buyer_id, seller_id=seller_id, created_at_ms=int(time.time() * 1000)))
    session.commit()
    return True


def remove_partnership(session: Session, seller_id: str, buyer_id: str) -> None:
    _require(session, seller_id, buyer_id)
    statement = delete(Partnership).where(Partnership.buyer_id == buyer_id, Partnership.seller_id == seller_id)
    # Session.execute is typed as returning Result; for a DELETE it is a CursorResult, which counts rows.
    removed = cast(CursorResult, session.execute(statement)).rowcount
    if not removed:
        raise NoPartnership(f"buyer {buyer_id} has no partnership with seller {seller_id}")
    session.commit()


def set_sells_to(session: Session, seller_id: str, sells_to: str) -> None:
    if sells_to not in (SELLS_TO_ALL, SELLS_TO_NAMED):
        raise ValueError(f"a seller sells to '{SELLS_TO_ALL}' buyers (but those it blocks) or only "
                         f"'{SELLS_TO_NAMED}' ones")
    _require(session, seller_id)
    session.execute(update(Seller).where(Seller.id == seller_id).values(sells_to=sells_to))
    session.commit()


def set_choice(session: Session, seller_id: str, buyer_id: str, choice: str | None) -> None:
    """The seller allows or blocks one buyer; None forgets its word on that buyer."""
    if choice not in (ALLOW, BLOCK, None):
        raise ValueError(f"a seller's choice of a buyer is '{ALLOW}' or '{BLOCK}'")
    _require(session, seller_id, buyer_id)
    existing = session.get(SellerBuyerChoice, (seller_id, buyer_id))
    if choice is None:
        if existing is not None:
            session.delete(existing)
    elif existing is None:
        session.add(SellerBuyerChoice(seller_id=seller_id, buyer_id=buyer_id, choice=choice))
    else:
        existing.choice = choice
    session.commit()


def seller_relations(session: Session, seller_id: str) -> dict:
    """A seller's partners and choices, as the admin API shows them."""
    seller = session.get(Seller, seller_id)
    if seller is None:
        raise UnknownAccount(f"no seller {seller_id}")
    partners = session.scalars(select(Partnership.buyer_id).where(Partnership.seller_id == seller_id)
                               .order_by(Partnership.buyer_id)).all()
    choices = session.execute(select(SellerBuyerChoice.buyer_id, SellerBuyerChoice.choice)
                              .where(SellerBuyerChoice.seller_id == seller_id)
                              .order_by(SellerBuyerChoice.buyer_id)).all()
    return {"seller_id": seller_id, "sells_to": seller.sells_to or SELLS_TO_ALL, "partners": list(partners),
            "allowed": [b for b, c in choices if c == ALLOW], "blocked": [b for b, c in choices if c == BLOCK]}
