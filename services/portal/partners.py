"""The Partnerships page (/partners): who a buyer or a seller trades with, and the stars on each side.

A buyer sees every active seller and opts in to (or out of) its leads; a seller sees the buyers that
opted in to its leads or that it named, blocks or allows each, and chooses to sell to all of them
(but those it blocks) or only to those it allows (docs/auction.md#buyer-selection). Each rates the
other from here once they have traded: its own rating in orange stars, the community's average in
grey with the count (docs/portal.md#partnerships). The page reads through the dashboard
(ListPartners); every change goes through the same domain code as the admin and ratings APIs
(leadx.accounts.partnerships, leadx.accounts.ratings), and a read-only person may look but not change."""

from __future__ import annotations

import asyncio
import logging
import time

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response

from leadx.accounts import partnerships, people, ratings
from leadx.accounts.ids import UnknownAccount
from leadx.auction.selection.market import ALLOW, BLOCK, SELLS_TO_ALL, SELLS_TO_NAMED
from leadx.platform.logs import log_event
from services.portal.pages import redirect, to_login
from services.portal.web import PortalDeps, Visitor, form_of, render, visitor

log = logging.getLogger(__name__)

# What a person of each kind rates and chooses: the other side.
OTHER = {people.BUYER: people.SELLER, people.SELLER: people.BUYER}
# A change reaches the auction when it next re-reads the accounts (ACCOUNTS_REFRESH_SECONDS, 5 s).
DONE = {"in": "You receive this seller's leads in your auctions within a few seconds.",
        "out": "You no longer receive this seller's leads from a few seconds on.",
        ALLOW: "The buyer is allowed.", BLOCK: "The buyer is blocked: it is never sold your leads.",
        "none": "Your word on the buyer is withdrawn.", "sells_to": "Saved: who you sell to.",
        "rated": "Your rating is saved."}
CHOICES = {ALLOW: ALLOW, BLOCK: BLOCK, "none": None}


async def _partner_person(deps: PortalDeps, request: Request, changing: bool) -> tuple[Visitor, Response | None]:
    """The visitor, a buyer's or seller's person (404 for an operator, as for any page not its
    own); 403 for a read-only person when `changing`."""
    current = await visitor(deps, request)
    if current.person is None:
        return current, to_login(deps, current)
    if current.person.kind not in OTHER:
        raise HTTPException(404, "There is no such page.")
    if changing and current.person.role not in people.CHANGING_ROLES:
        raise HTTPException(403, "Your role may read this account's partnerships, not change them.")
    return current, None


async def _change_form(deps: PortalDeps, request: Request,
                       kind: str | None = None) -> tuple[Visitor, dict[str, str], Response | None]:
    """For a change: the visitor (an owner or member of a buyer or seller, of `kind` when given,
    else 404), the posted form once its CSRF token is checked, and the answer instead when it may
    not change anything."""
    current, refused = await _partner_person(deps, request, changing=True)
    if refused is not None:
        return current, {}, refused
    assert current.person is not None
    if kind is not None and current.person.kind != kind:
        raise HTTPException(404, "There is no such page.")
    return current, await form_of(deps, request, current), None


def _sentence(text: str) -> str:
    return text[:1].upper() + text[1:] + "."


async def _page(deps: PortalDeps, request: Request, current: Visitor, errors: dict[str, str] | None = None,
                status_code: int = 200) -> Response:
    assert current.person is not None
    found, sells_to = await deps.dashboard.partners(current.person.account_id)
    done = DONE.get(request.query_params.get("done", ""), "")
    return render(deps, request, current, "partners.html",
                  {"title": "Partnerships", "partners": found, "sells_to": sells_to, "notice": done,
                   "errors": errors or {}, "other": OTHER[current.person.kind],
                   "may_change": current.person.role in people.CHANGING_ROLES,
                   "sells_to_all": SELLS_TO_ALL, "sells_to_named": SELLS_TO_NAMED}, status_code=status_code)


async def partners_page(deps: PortalDeps, request: Request) -> Response:
    current, refused = await _partner_person(deps, request, changing=False)
    return refused if refused is not None else await _page(deps, request, current)


def _in_thread(deps: PortalDeps, change) -> None:
    """`change(session)`, committed (the partnership functions commit themselves; a rating does not)."""
    with deps.sessions() as session:
        change(session)
        session.commit()


async def _changed(deps: PortalDeps, current: Visitor, what: str, account_id: str, done: str) -> Response:
    assert current.person is not None
    log_event(log, f"portal partnership: {what}", person=current.person.id, account=current.person.account_id,
              partner=account_id)
    return redirect(deps, current, f"/partners?done={done}")


async def opt(deps: PortalDeps, request: Request) -> Response:
    """A buyer opts in to a seller's leads (`action` in) or out of them (out)."""
    current, fields, refused = await _change_form(deps, request, people.BUYER)
    if refused is not None:
        return refused
    assert current.person is not None
    seller_id, action = request.path_params["account_id"], fields.get("action", "")
    if action not in ("in", "out"):
        raise HTTPException(400, "Opt in or out: nothing else is asked here.")
    buyer_id = current.person.account_id

    def change(session) -> None:
        if action == "in":
            partnerships.add_partnership(session, seller_id, buyer_id)
        else:
            try:
                partnerships.remove_partnership(session, seller_id, buyer_id)
            except partnerships.NoPartnership:
                pass  # already out (a second click, another tab)
    await _run(deps, change)
    return await _changed(deps, current, f"opted {action}", seller_id, action)


async def choose(deps: PortalDeps, request: Request) -> Response:
    """A seller allows or blocks a buyer, or withdraws its word on it (`choice` none)."""
    current, fields, refused = await _change_form(deps, request, people.SELLER)
    if refused is not None:
        return refused
    assert current.person is not None
    buyer_id, choice = request.path_params["account_id"], fields.get("choice", "")
    if choice not in CHOICES:
        raise HTTPException(400, "Allow, block or withdraw: nothing else is asked here.")
    seller_id = current.person.account_id
    await _run(deps, lambda session: partnerships.set_choice(session, seller_id, buyer_id, CHOICES[choice]))
    return await _changed(deps, current, f"choice {choice}", buyer_id, choice)


async def sells_to(deps: PortalDeps, request: Request) -> Response:
    """A seller sells to every partnered buyer but those it blocks, or only to those it allows."""
    current, fields, refused = await _change_form(deps, request, people.SELLER)
    if refused is not None:
        return refused
    assert current.person is not None
    chosen = fields.get("sells_to", "")
    if chosen not in (SELLS_TO_ALL, SELLS_TO_NAMED):
        return await _page(deps, request, current, {"sells_to": "choose all buyers or only those you allow"}, 400)
    seller_id = current.person.account_id
    await _run(deps, lambda session: partnerships.set_sells_to(session, seller_id, chosen))
    return await _changed(deps, current, f"sells to {chosen}", seller_id, "sells_to")


async def rate(deps: PortalDeps, request: Request) -> Response:
    """Rates the other party, 1 to 5 stars, once they have traded (leadx.accounts.ratings: the same
    rule as the ratings API); a refusal is said beside the partner, nothing saved."""
    current, fields, refused = await _change_form(deps, request)
    if refused is not None:
        return refused
    assert current.person is not None
    ratee_id, stars = request.path_params["account_id"], fields.get("stars", "").strip()
    problem = ratings.stars_problem(stars if stars.isascii() else None)
    if problem:
        return await _page(deps, request, current, {ratee_id: _sentence(problem)}, 400)
    kind, rater_id = OTHER[current.person.kind], current.person.account_id

    def change(session) -> None:
        ratings.rate_trading_partner(session, kind, rater_id, ratee_id, int(stars), int(time.time() * 1000))
    try:
        await _run(deps, change)
    except ratings.NotTradingPartners as refusal:
        return await _page(deps, request, current, {ratee_id: _sentence(str(refusal))}, 403)
    return await _changed(deps, current, "rated", ratee_id, "rated")


async def _run(deps: PortalDeps, change) -> None:
    """The change in a worker thread; an account that does not exist is a 404, as the API says it."""
    try:
        await asyncio.to_thread(_in_thread, deps, change)
    except UnknownAccount:
        raise HTTPException(404, "There is no such account.") from None
