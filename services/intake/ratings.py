"""Ratings between trading partners over HTTP, the same for both sides: a buyer rates a seller
(`/v1/sellers/{account_id}/rating`, services.intake.buyers) and a seller a buyer
(`/v1/buyers/{account_id}/rating`, services.intake.sellers). GET: your stars for that account and
the community's average. PUT {"stars": 1-5}: rate it, once you have traded with it (a buyer bought
from the seller, a seller sold to the buyer). The rules live in leadx.accounts.ratings.
"""

from __future__ import annotations

import asyncio
import time

from sqlalchemy.orm import Session, sessionmaker
from starlette.requests import Request

from leadx.accounts.ratings import NotTradingPartners, RatingView, rate_trading_partner, stars_problem, view
from leadx.platform.db.models import Buyer, Seller
from services.intake.formats import Answer, parse_body, request_format
from services.intake.requests import ApiError, read_body

RATEES = {"seller": Seller, "buyer": Buyer}


async def rating(request: Request, sessions: sessionmaker[Session], max_body_bytes: int, rater_id: str,
                 party: str) -> Answer:
    """The rater's view of the account in the path (a `party`: "seller" or "buyer"), rated first on a PUT."""
    ratee_id = request.path_params["account_id"]
    stars = None
    if request.method == "PUT":
        kind = request_format(request.headers.get("content-type", ""))
        stars = parse_body(kind, await read_body(request, max_body_bytes), ("rating",)).get("stars")
        # ASCII digits only: "²" and "５" are digits to str.isdigit, and int() takes "５" but not "²".
        problem = stars_problem(stars if not isinstance(stars, str) or stars.strip().isascii() else None)
        if problem:
            raise ApiError(422, "FIELD_MISSING" if stars in (None, "") else "FIELD_INVALID", problem, field="stars")
    found = await asyncio.to_thread(_rate_or_view, sessions, party, rater_id, ratee_id,
                                    None if stars is None else int(str(stars).strip()))
    return Answer("rated" if stars is not None else "ok", 200, None, extra={
        party: found.ratee_id, "your_stars": found.your_stars, "average_stars": found.average_stars,
        "ratings": found.ratings})


def _rate_or_view(sessions: sessionmaker[Session], party: str, rater_id: str, ratee_id: str,
                  stars: int | None) -> RatingView:
    with sessions.begin() as session:
        if session.get(RATEES[party], ratee_id) is None:
            raise ApiError(404, "ACCOUNT_NOT_FOUND", f"no {party} {ratee_id}", field=party)
        if stars is not None:
            try:
                rate_trading_partner(session, party, rater_id, ratee_id, stars, int(time.time() * 1000))
            except NotTradingPartners as refused:
                raise ApiError(403, "NOT_A_TRADING_PARTNER", str(refused), field=party) from None
            session.flush()
        return view(session, rater_id, ratee_id)
