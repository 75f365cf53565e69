"""Ratings between trading partners (docs/ledger.md#ratings): a buyer rates a seller it bought
from, a seller may rate a buyer it sold to, 1 to 5 stars. Each sees its own rating of the other
and the community's average."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from leadx.accounts.ids import UnknownAccount
from leadx.platform.db.models import Buyer, Rating, Sale, Seller

MIN_STARS, MAX_STARS = 1, 5


class RatingRefused(ValueError):
    pass


class NotTradingPartners(RatingRefused):
    """The rater has not traded with the account it rates."""


@dataclass(frozen=True)
class RatingView:
    ratee_id: str
    your_stars: int | None
    average_stars: float | None  # over every party that rated this account; None if nobody has
    ratings: int


def stars_problem(stars: object) -> str | None:
    if isinstance(stars, str) and stars.strip().isdigit():
        stars = int(stars.strip())
    if isinstance(stars, bool) or not isinstance(stars, int) or not MIN_STARS <= stars <= MAX_STARS:
        return f"stars must be a whole number from {MIN_STARS} to {MAX_STARS}"
    return None


def have_traded(session: Session, buyer_id: str, seller_id: str) -> bool:
    return session.scalar(select(Sale.lead_id).where(Sale.buyer_id == buyer_id, Sale.seller_id == seller_id,
                                                      Sale.sold.is_(True)).limit(1)) is not None


def rate(session: Session, rater_id: str, ratee_id: str, stars: int, now_ms: int) -> None:
    """Record (or replace) the rater's stars for the ratee. The caller checks they have traded."""
    problem = stars_problem(stars)
    if problem:
        raise RatingRefused(problem)
    rating = session.get(Rating, (rater_id, ratee_id))
    if rating is None:
        session.add(Rating(rater_id=rater_id, ratee_id=ratee_id, stars=stars, rated_at_ms=now_ms))
    else:
        rating.stars, rating.rated_at_ms = stars, now_ms


def rate_trading_partner(session: Session, ratee_kind: str, rater_id: str, ratee_id: str, stars: int,
                         now_ms: int) -> None:
    """The rule every way of rating goes through (the API, the portal): a buyer rates a seller it
    bought from (`ratee_kind` "seller"), a seller a buyer it sold to ("buyer"). UnknownAccount for a
    ratee that does not exist, NotTradingPartners for one not traded with, RatingRefused for stars
    out of range."""
    if session.get(Seller if ratee_kind == "seller" else Buyer, ratee_id) is None:
        raise UnknownAccount(f"no {ratee_kind} {ratee_id}")
    buyer_id, seller_id = (rater_id, ratee_id) if ratee_kind == "seller" else (ratee_id, rater_id)
    if not have_traded(session, buyer_id, seller_id):
        raise NotTradingPartners(f"you can rate a {ratee_kind} once you have traded with it")
    rate(session, rater_id, ratee_id, stars, now_ms)


def view(session: Session, rater_id: str, ratee_id: str) -> RatingView:
    mine = session.get(Rating, (rater_id, ratee_id))
    count, average = session.execute(select(func.count(), func.avg(Rating.stars))
                                     .where(Rating.ratee_id == ratee_id)).one()
    return RatingView(ratee_id, mine.stars if mine else None,
                      round(float(average), 2) if average is not None else None, count)
