"""The Buy Profiles pages (/profiles): a buyer's people list, create, change, pause and delete the
profiles its AutoBid bids by (and, for a wholesale buyer, the filters its pings pass), on a weekly
grid in the buyer's time zone, with criteria, prices and caps (docs/portal.md#buy-profiles).

Every profile is checked by the rules of `leadx profiles import` (Profile.parse) and saved in one
commit through leadx.accounts.buyer_settings, as the admin API saves them; the auction and delivery
use it from their next re-read of the accounts (ACCOUNTS_REFRESH_SECONDS). Owners and members
change profiles; a read-only person reads the list only."""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response

from leadx.accounts import buyer_settings, people, profile_preview
from leadx.accounts.buyer_settings import UnknownProfile
from leadx.auction.selection.market import AUTOBID
from leadx.auction.selection.profiles import Profile
from leadx.auction.selection.windows import DAYS, zone
from leadx.ledger.reports import average
from leadx.platform.logs import log_event
from services.portal import profile_form
from services.portal.pages import person_of_kind, redirect
from services.portal.web import PortalDeps, Visitor, form_of, render

log = logging.getLogger(__name__)

DONE = {"saved": "The profile is saved: it bids from the auction's next look at the accounts, within a few seconds.",
        "paused": "The profile is paused: it bids for nothing until you resume it.",
        "resumed": "The profile bids again.", "deleted": "The profile is deleted."}
MAX_FIELDS = 400  # the grid's 168 hours and ten criteria's inputs
MAX_FORM_BYTES = 262_144  # a criterion may list a few thousand ZIP codes
TOO_MANY = (f"This profile has more criteria than the form holds ({profile_form.MAX_CRITERIA}): change it "
            "with `leadx profiles import` or the admin API.")


async def _buyer_person(deps: PortalDeps, request: Request, changing: bool) -> tuple[Visitor, Response | None]:
    current, refused = await person_of_kind(deps, request, people.BUYER)
    if refused is None and changing:
        assert current.person is not None
        if current.person.role not in people.CHANGING_ROLES:
            raise HTTPException(403, "Your role may read this buyer's profiles, not change them.")
    return current, refused


@dataclass(frozen=True)
class BuyerView:
    time_zone: str
    autobid: bool  # bid for by its profiles; otherwise pinged, its profiles its filters
    profiles: list


def _read(deps: PortalDeps, buyer_id: str) -> BuyerView:
    """The buyer's time zone and kind, and its current profiles."""
    with deps.reads() as session:
        settings = buyer_settings.buyer_settings(session, buyer_id)
        return BuyerView(settings["time_zone"] or "UTC", settings["kind"] == AUTOBID,
                         buyer_settings.current_profiles(session, buyer_id))


async def _with_buyer(deps: PortalDeps, request: Request,
                      changing: bool) -> tuple[Visitor, BuyerView | None, Response | None]:
    """The visitor and its buyer as _read gives it, or the answer instead of the page."""
    current, refused = await _buyer_person(deps, request, changing)
    if refused is not None:
        return current, None, refused
    assert current.person is not None
    return current, await asyncio.to_thread(_read, deps, current.person.account_id), None


async def profiles_page(deps: PortalDeps, request: Request) -> Response:
    current, buyer, refused = await _with_buyer(deps, request, changing=False)
    if refused is not None:
        return refused
    assert current.person is not None and buyer is not None
    listed = [(row, profile_summary(row.spec)) for row in buyer.profiles]
    return render(deps, request, current, "profiles.html",
                  {"title": "Buy Profiles", "profiles": listed, "time_zone": buyer.time_zone, "autobid": buyer.autobid,
                   "notice": DONE.get(request.query_params.get("done", ""), ""),
                   "may_change": current.person.role in people.CHANGING_ROLES})


def profile_summary(spec: dict) -> dict[str, str]:
    """One line each for the list: when it bids, at what price, on what, and its caps."""
    form = profile_form.form_of_spec(spec)
    windows = spec.get("windows") or []
    when = "; ".join(f"{w['from']} to {w['to']}" for w in windows) if windows else "always"
    price = _price_text(spec.get("price"))
    criteria = spec.get("criteria") or []
    what = f"{len(criteria)} criteria" if len(criteria) != 1 else "1 criterion"
    caps = ", ".join(f"{name.replace('_', ' ')} {form.value(name)}" for name in
                     (*profile_form.CAP_COUNTS, *profile_form.CAP_AMOUNTS) if form.value(name))
    return {"when": when, "price": price or "per criterion", "what": what if criteria else "every lead",
            "caps": caps or "none", "paused": "yes" if spec.get("active", True) is False else ""}


def _price_text(price: object) -> str:
    if isinstance(price, dict) and "per_probability" in price:
        return f"${profile_form.cents_text(price['per_probability'])} × probability"
    return f"${profile_form.cents_text(price)}" if isinstance(price, int) else ""


def _preview(deps: PortalDeps, buyer_id: str, spec: dict, buyer: BuyerView) -> list[profile_preview.PreviewRow]:
    profile = Profile.parse("p_preview", buyer_id, spec)  # read_form has checked it by these rules
    with deps.reads() as session:
        offers = profile_preview.latest_offers(session, buyer_id)
    return profile_preview.preview(profile, zone(buyer.time_zone), offers, autobid=buyer.autobid)


def _editor(deps: PortalDeps, request: Request, current: Visitor, profile_id: str, form: profile_form.ProfileForm,
            buyer: BuyerView, status_code: int = 200,
            preview: list[profile_preview.PreviewRow] | None = None) -> Response:
    taken = [row for row in preview or [] if row.takes]
    grid = [(day, [(hour, profile_form.hour_cell(index, hour), index * 24 + hour in form.hours)
                   for hour in range(24)]) for index, day in enumerate(DAYS)]
    return render(deps, request, current, "profile_form.html",
                  {"title": "Buy Profiles · " + ("a new profile" if not profile_id else "change a profile"),
                   "profile_id": profile_id, "form": form, "grid": grid, "time_zone": buyer.time_zone,
                   "autobid": buyer.autobid, "residence_types": profile_form.RESIDENCE_TYPES,
                   "max_criteria": profile_form.MAX_CRITERIA, "preview": preview,
                   "taken": taken, "average_cents": average(sum(r.bid_cents or 0 for r in taken), len(taken))},
                  status_code=status_code)


async def _stored(deps: PortalDeps, buyer_id: str, profile_id: str) -> tuple[BuyerView, dict]:
    buyer = await asyncio.to_thread(_read, deps, buyer_id)
    row = next((row for row in buyer.profiles if row.id == profile_id), None)
    if row is None:
        raise HTTPException(404, "There is no such profile.")
    return buyer, row.spec


async def new_profile_page(deps: PortalDeps, request: Request) -> Response:
    current, buyer, refused = await _with_buyer(deps, request, changing=True)
    if refused is not None:
        return refused
    assert buyer is not None
    return _editor(deps, request, current, "", profile_form.ProfileForm({"schedule": "always", "price_kind": "fixed"}),
                   buyer)


async def profile_page(deps: PortalDeps, request: Request) -> Response:
    current, refused = await _buyer_person(deps, request, changing=True)
    if refused is not None:
        return refused
    assert current.person is not None
    buyer, spec = await _stored(deps, current.person.account_id, request.path_params["profile_id"])
    return _editor(deps, request, current, request.path_params["profile_id"], profile_form.form_of_spec(spec), buyer)


async def save(deps: PortalDeps, request: Request) -> Response:
    """Creates (/profiles/new) or changes a profile; a mistake is said beside its field and nothing
    is saved. With the Preview button, nothing is saved either: the form comes back with which of
    the buyer's last offered leads the profile as filled in would have bid on."""
    current, refused = await _buyer_person(deps, request, changing=True)
    if refused is not None:
        return refused
    assert current.person is not None
    buyer_id, profile_id = current.person.account_id, request.path_params.get("profile_id", "")
    paused = False
    if profile_id:
        buyer, stored = await _stored(deps, buyer_id, profile_id)
        paused = stored.get("active", True) is False
        if len(stored.get("criteria") or []) > profile_form.MAX_CRITERIA:
            raise HTTPException(400, TOO_MANY)
    else:
        buyer = await asyncio.to_thread(_read, deps, buyer_id)
    posted = await form_of(deps, request, current, max_fields=MAX_FIELDS, max_bytes=MAX_FORM_BYTES)
    spec, form = profile_form.read_form(posted, paused)
    if spec is None:
        return _editor(deps, request, current, profile_id, form, buyer, status_code=400)
    if posted.get("preview"):  # the Preview button: the same form, judged against past offers, nothing saved
        rows = await asyncio.to_thread(_preview, deps, buyer_id, spec, buyer)
        return _editor(deps, request, current, profile_id, form, buyer, preview=rows)
    saved = await _change(deps, lambda session: buyer_settings.save_profile(session, buyer_id, profile_id or None,
                                                                            spec))
    log_event(log, "portal profile saved", person=current.person.id, buyer=buyer_id, profile=saved)
    return redirect(deps, current, "/profiles?done=saved")


async def pause(deps: PortalDeps, request: Request) -> Response:
    """Pauses a profile (`action` pause) or resumes it (resume)."""
    current, refused = await _buyer_person(deps, request, changing=True)
    if refused is not None:
        return refused
    assert current.person is not None
    fields = await form_of(deps, request, current)
    action = fields.get("action", "")
    if action not in ("pause", "resume"):
        raise HTTPException(400, "Pause or resume: nothing else is asked here.")
    buyer_id, profile_id = current.person.account_id, request.path_params["profile_id"]
    await _change(deps, lambda session: buyer_settings.set_profile_paused(session, buyer_id, profile_id,
                                                                           action == "pause"))
    log_event(log, f"portal profile {action}d", person=current.person.id, buyer=buyer_id, profile=profile_id)
    return redirect(deps, current, f"/profiles?done={action}d")


async def delete(deps: PortalDeps, request: Request) -> Response:
    current, refused = await _buyer_person(deps, request, changing=True)
    if refused is not None:
        return refused
    assert current.person is not None
    await form_of(deps, request, current)
    buyer_id, profile_id = current.person.account_id, request.path_params["profile_id"]
    await _change(deps, lambda session: buyer_settings.delete_profile(session, buyer_id, profile_id))
    log_event(log, "portal profile deleted", person=current.person.id, buyer=buyer_id, profile=profile_id)
    return redirect(deps, current, "/profiles?done=deleted")


async def _change(deps: PortalDeps, change):
    """`change(session)` in a worker thread (the buyer_settings functions commit themselves); a
    profile that is not the buyer's, or no longer current, is a 404."""
    def run():
        with deps.sessions() as session:
            return change(session)
    try:
        return await asyncio.to_thread(run)
    except UnknownProfile:
        raise HTTPException(404, "There is no such profile.") from None
