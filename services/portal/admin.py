"""Administration (/admin), the operators' pages: create sellers and buyers, rotate their API keys,
set a seller's fee, add and end direct-sale contracts, switch a buyer off and on, invite people and
give them a link to a new password; and /password/<token>, where an invited person, or one given a
new link, chooses a password (docs/portal.md#administration).

Every change goes through the domain's own code, as the admin API and the `leadx` commands do
(leadx.accounts.accounts, leadx.accounts.people). A new API key and a password link are shown once,
on the answer to the form that made them, and never stored in the clear: the key as its hash, the
link not at all (it is signed over the person's password hash, so setting the password spends it)."""

from __future__ import annotations

import asyncio
import functools
import logging
from collections.abc import Awaitable, Callable
from urllib.parse import urlsplit

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from sqlalchemy.orm import Session

from leadx.accounts import accounts, people
from leadx.accounts.buyer_urls import BuyerUrlRefused
from leadx.accounts.ids import UnknownAccount
from leadx.accounts.people import PersonError
from leadx.platform.db.models import Buyer, Seller
from leadx.platform.logs import log_event
from services.portal import profile_form
from services.portal.pages import person_of_kind, redirect
from services.portal.web import PortalDeps, Visitor, form_of, render, visitor

log = logging.getLogger(__name__)

MAX_URL_CHARS = 2000  # as the admin API (services/intake/admin.py) and the buyers table take them
DONE = {"fee": "The seller's fee is saved.", "contract": "The contract is saved.", "ended": "The contract is ended.",
        "active": "The buyer's state is saved."}


async def _operator(deps: PortalDeps, request: Request) -> tuple[Visitor, Response | None]:
    return await person_of_kind(deps, request, people.OPERATOR)


async def _in_thread(deps: PortalDeps, work: Callable[[Session], object], reads: bool = False):
    def run():
        with (deps.reads if reads else deps.sessions)() as session:
            return work(session)
    try:
        return await asyncio.to_thread(run)
    except UnknownAccount:
        raise HTTPException(404, "There is no such account.") from None


Change = Callable[[PortalDeps, Request, Visitor, dict[str, str]], Awaitable[Response]]


def operators_form(change: Change) -> Callable[[PortalDeps, Request], Awaitable[Response]]:
    """A change only an operator makes: the handler gets the visitor and the posted form, its CSRF
    token checked; anyone else is answered as for any page not theirs."""
    @functools.wraps(change)
    async def checked(deps: PortalDeps, request: Request) -> Response:
        current, refused = await _operator(deps, request)
        if refused is not None:
            return refused
        return await change(deps, request, current, await form_of(deps, request, current))
    return checked


def _logged(current: Visitor, what: str, **ids: str) -> None:
    assert current.person is not None
    log_event(log, f"portal admin: {what}", person=current.person.id, **ids)


# ---------------------------------------------------------------- the accounts

async def _accounts_page(deps: PortalDeps, request: Request, current: Visitor, errors: dict[str, str] | None = None,
                         typed: dict[str, str] | None = None, status_code: int = 200) -> Response:
    def read(session: Session):
        return accounts.list_accounts(session), people.people_of(session, None)
    listed, operators = await _in_thread(deps, read, reads=True)
    return render(deps, request, current, "admin.html",
                  {"title": "Administration", "accounts": listed, "operators": operators, "errors": errors or {},
                   "typed": typed or {}, "roles": people.ACCOUNT_ROLES}, status_code=status_code)


async def admin_page(deps: PortalDeps, request: Request) -> Response:
    current, refused = await _operator(deps, request)
    return refused or await _accounts_page(deps, request, current)


def _shown_once(deps: PortalDeps, request: Request, current: Visitor, title: str, what: str, secret: str,
                back: str) -> Response:
    response = render(deps, request, current, "admin_secret.html",
                      {"title": title, "what": what, "secret": secret, "back": back})
    response.headers["cache-control"] = "no-store"
    return response


@operators_form
async def create_account(deps: PortalDeps, request: Request, current: Visitor, fields: dict[str, str]) -> Response:
    """A new seller (`kind` seller: a name) or buyer (a name, wholesale or AutoBid, its ping and
    post URLs); its API key is shown once."""
    kind, name = fields.get("kind", ""), fields.get("name", "").strip()
    errors: dict[str, str] = {}
    if kind not in (people.SELLER, people.BUYER):
        raise HTTPException(400, "A seller or a buyer: nothing else is made here.")
    if not name or len(name) > 200:
        errors["name"] = "give the account a name (at most 200 characters)"
    buyer_kind = fields.get("buyer_kind", "wholesale")
    ping_url, post_url = fields.get("ping_url", "").strip(), fields.get("post_url", "").strip()
    for field, url in (("ping_url", ping_url), ("post_url", post_url)):
        problem = _url_problem(url)
        if problem:
            errors[field] = problem

    def create(session: Session) -> accounts.Created:
        if kind == people.SELLER:
            return accounts.create_seller(session, name)
        return accounts.create_buyer(session, name, ping_url, post_url, kind=buyer_kind)
    created = None
    if not errors:
        try:
            created = await _in_thread(deps, create)
        except BuyerUrlRefused as refusal:
            errors[getattr(refusal, "field", "ping_url")] = str(refusal)
        except ValueError as refusal:  # the buyer's settings (its kind, a wholesale buyer without a ping URL)
            errors["buyer_kind"] = str(refusal)
    if created is None:
        return await _accounts_page(deps, request, current, errors, {**fields, "form": kind}, status_code=400)
    _logged(current, f"{kind} created", account=created.id)
    return _shown_once(deps, request, current, f"A new {kind}", f"The API key of {name} ({created.id})",
                       created.api_key, f"/admin/accounts/{created.id}")


def _url_problem(url: str) -> str:
    """What the admin API would refuse in a buyer URL before its rules (leadx.accounts.buyer_urls)."""
    if len(url) > MAX_URL_CHARS:
        return f"a URL has at most {MAX_URL_CHARS} characters"
    try:
        urlsplit(url).port  # noqa: B018 (reading it checks the port and the brackets of an IPv6 host)
    except ValueError:
        return "this is not a URL, e.g. https://buyer.example/ping"
    return ""


# ---------------------------------------------------------------- one account

def _account_of(session: Session, account_id: str) -> dict:
    seller, buyer = session.get(Seller, account_id), session.get(Buyer, account_id)
    if seller is None and buyer is None:
        raise UnknownAccount(account_id)
    return {"account": seller or buyer, "kind": people.SELLER if seller is not None else people.BUYER,
            "contracts": accounts.contracts_of(session, account_id) if seller is not None else [],
            "people": people.people_of(session, account_id)}


async def _account_page(deps: PortalDeps, request: Request, current: Visitor, account_id: str,
                        errors: dict[str, str] | None = None, status_code: int = 200) -> Response:
    found = await _in_thread(deps, lambda session: _account_of(session, account_id), reads=True)
    return render(deps, request, current, "admin_account.html",
                  {"title": f"Administration · {found['account'].name}", **found, "errors": errors or {},
                   "roles": people.ACCOUNT_ROLES, "notice": DONE.get(request.query_params.get("done", ""), "")},
                  status_code=status_code)


async def account_page(deps: PortalDeps, request: Request) -> Response:
    current, refused = await _operator(deps, request)
    return refused or await _account_page(deps, request, current, request.path_params["account_id"])


@operators_form
async def rotate_key(deps: PortalDeps, request: Request, current: Visitor, _fields: dict[str, str]) -> Response:
    """A new API key for the account, shown once; the old one stops working."""
    account_id = request.path_params["account_id"]

    def rotate(session: Session) -> accounts.Created:
        if session.get(Seller, account_id) is not None:
            return accounts.rotate_seller_key(session, account_id)
        return accounts.rotate_buyer_key(session, account_id)
    created = await _in_thread(deps, rotate)
    _logged(current, "key rotated", account=account_id)
    return _shown_once(deps, request, current, "A new API key", f"The new API key of {account_id} (the old one no "
                       "longer works)", created.api_key, f"/admin/accounts/{account_id}")


async def _of_kind(deps: PortalDeps, account_id: str, kind: str) -> None:
    """404 for an account that does not exist, 400 for one of the other kind (a fee on a buyer...)."""
    model = Seller if kind == people.SELLER else Buyer
    other = Buyer if kind == people.SELLER else Seller
    found = await _in_thread(deps, lambda session: (session.get(model, account_id) is not None,
                                                    session.get(other, account_id) is not None), reads=True)
    if not found[0]:
        raise HTTPException(400 if found[1] else 404,
                            f"Only a {kind} has this." if found[1] else "There is no such account.")


@operators_form
async def set_fee(deps: PortalDeps, request: Request, current: Visitor, fields: dict[str, str]) -> Response:
    """A seller's own platform fee in percent, or empty for the exchange's default."""
    seller_id, typed = request.path_params["account_id"], fields.get("fee_percent", "").strip()
    await _of_kind(deps, seller_id, people.SELLER)
    try:
        percent = float(typed) if typed else None
        if percent is not None and not 0 <= percent <= 100:
            raise ValueError
    except ValueError:
        return await _account_page(deps, request, current, seller_id,
                                   {"fee_percent": "a percent from 0 to 100, or empty for the default"}, 400)
    await _in_thread(deps, lambda session: accounts.set_seller_fee(session, seller_id, percent))
    _logged(current, "seller fee set", account=seller_id)
    return redirect(deps, current, f"/admin/accounts/{seller_id}?done=fee")


@operators_form
async def add_contract(deps: PortalDeps, request: Request, current: Visitor, fields: dict[str, str]) -> Response:
    seller_id, buyer_id = request.path_params["account_id"], fields.get("buyer_id", "").strip()
    await _of_kind(deps, seller_id, people.SELLER)
    cents = profile_form.dollars(fields.get("price", ""))
    errors = {}
    if cents is None:
        errors["price"] = "the contract price in dollars, e.g. 25.00"
    if not buyer_id:
        errors["buyer_id"] = "the buyer's id, e.g. b_0123456789"
    if not errors:
        try:
            await asyncio.to_thread(_add_contract, deps, seller_id, buyer_id, cents or 0)
        except UnknownAccount as unknown:
            errors["buyer_id"] = str(unknown)
    if errors:
        return await _account_page(deps, request, current, seller_id, errors, 400)
    _logged(current, "contract added", account=seller_id, buyer=buyer_id)
    return redirect(deps, current, f"/admin/accounts/{seller_id}?done=contract")


def _add_contract(deps: PortalDeps, seller_id: str, buyer_id: str, cents: int) -> None:
    with deps.sessions() as session:
        accounts.add_contract(session, seller_id, buyer_id, cents)


@operators_form
async def end_contract(deps: PortalDeps, request: Request, current: Visitor, _fields: dict[str, str]) -> Response:
    seller_id, buyer_id = request.path_params["account_id"], request.path_params["buyer_id"]
    try:
        await _in_thread(deps, lambda session: accounts.end_contract(session, seller_id, buyer_id))
    except HTTPException:
        raise HTTPException(404, "There is no such contract.") from None
    _logged(current, "contract ended", account=seller_id, buyer=buyer_id)
    return redirect(deps, current, f"/admin/accounts/{seller_id}?done=ended")


@operators_form
async def set_active(deps: PortalDeps, request: Request, current: Visitor, fields: dict[str, str]) -> Response:
    """A buyer switched off (offered no lead, its key refused) or back on."""
    buyer_id, active = request.path_params["account_id"], fields.get("active", "")
    await _of_kind(deps, buyer_id, people.BUYER)
    if active not in ("yes", "no"):
        raise HTTPException(400, "On or off: nothing else is asked here.")
    await _in_thread(deps, lambda session: accounts.set_buyer_active(session, buyer_id, active == "yes"))
    _logged(current, f"buyer {'reactivated' if active == 'yes' else 'deactivated'}", account=buyer_id)
    return redirect(deps, current, f"/admin/accounts/{buyer_id}?done=active")


# ---------------------------------------------------------------- people and their password links

@operators_form
async def invite(deps: PortalDeps, request: Request, current: Visitor, fields: dict[str, str]) -> Response:
    """A new person of an account (`account_id`, with a role) or a new operator (no account); the
    link with which it chooses its password is shown once."""
    account_id, email, role = (fields.get(name, "").strip() for name in ("account_id", "email", "role"))

    def make(session: Session):
        kind = people.account_kind(session, account_id) if account_id else people.OPERATOR
        person = people.invite_person(session, email, kind, account_id, role if account_id else people.OPERATOR)
        return person, people.password_link_token(deps.signer, person, deps.clock())
    try:
        person, token = await _in_thread(deps, make)
    except PersonError as error:
        errors = {error.field: error.message}
        if account_id:
            return await _account_page(deps, request, current, account_id, errors, 400)
        return await _accounts_page(deps, request, current, errors, {**fields, "form": "operator"}, 400)
    _logged(current, "person invited", invited=person.id, account=account_id)
    return _shown_once(deps, request, current, "An invitation", f"The link with which {person.email} chooses a "
                       f"password (for {_days(people.PASSWORD_LINK_S)}, once)", _link(request, token),
                       f"/admin/accounts/{account_id}" if account_id else "/admin")


@operators_form
async def password_link(deps: PortalDeps, request: Request, current: Visitor, _fields: dict[str, str]) -> Response:
    """A link with which a person chooses a new password (its old one keeps working until then)."""
    person_id = request.path_params["person_id"]

    def make(session: Session):
        person = people.person_by_id(session, person_id)
        if person is None:
            raise HTTPException(404, "There is no such person.")
        return person, people.password_link_token(deps.signer, person, deps.clock())
    person, token = await _in_thread(deps, make)
    _logged(current, "password link made", for_person=person.id)
    return _shown_once(deps, request, current, "A new password", f"The link with which {person.email} chooses a new "
                       f"password (for {_days(people.PASSWORD_LINK_S)}, once)", _link(request, token),
                       f"/admin/accounts/{person.account_id}" if person.account_id else "/admin")


def _link(request: Request, token: str) -> str:
    return str(request.url_for("password", token=token))


def _days(seconds: int) -> str:
    return f"{seconds // 86400} days"


GONE = "This link has expired or has been used. Ask an operator of the exchange for a new one."


async def password_page(deps: PortalDeps, request: Request) -> Response:
    """Where a person chooses its password, from its invitation or a new password link."""
    current = await visitor(deps, request)
    token = request.path_params["token"]
    person = await _in_thread(deps, lambda s: people.person_for_link(s, deps.signer, token, deps.clock()), reads=True)
    if person is None:
        raise HTTPException(404, GONE)
    return render(deps, request, current, "password.html", {"title": "Choose a password", "email": person.email,
                                                           "errors": {}})


async def choose_password(deps: PortalDeps, request: Request) -> Response:
    current = await visitor(deps, request)
    token = request.path_params["token"]
    fields = await form_of(deps, request, current)
    password, again = fields.get("password", ""), fields.get("password_again", "")

    def choose(session: Session):
        person = people.person_for_link(session, deps.signer, token, deps.clock())
        if person is None:
            raise HTTPException(404, GONE)
        if password != again:
            return person, {"password_again": "the two passwords differ"}
        try:
            if not people.set_password(session, person, password):
                raise HTTPException(404, GONE)  # the other of two submits at once set it
        except PersonError as error:
            return person, {"password": error.message}
        return person, {}
    person, errors = await _in_thread(deps, choose)
    if errors:
        return render(deps, request, current, "password.html", {"title": "Choose a password", "email": person.email,
                                                               "errors": errors}, status_code=400)
    log_event(log, "portal password chosen", person=person.id)
    return redirect(deps, current, "/login?password=set")
