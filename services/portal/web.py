"""What every portal page shares: the security headers on every answer, the session cookie (read,
checked against the person's row, refreshed), the CSRF check of every form, and rendering.

A session is a signed cookie (leadx.accounts.people.SessionSigner), HttpOnly and SameSite=Lax,
Secure unless PORTAL_SECURE_COOKIES=false (plain http on a developer's machine only). Each page
checks it again: idle or too old (SessionPolicy), or made before the person's last logout or
password reset (the session epoch), it has ended and the person is sent to the login page."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from sqlalchemy.orm import Session, sessionmaker
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.templating import Jinja2Templates
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from leadx.accounts import people
from leadx.accounts.people import SessionPolicy, SessionSigner, SessionState
from leadx.ledger.returns import Publisher, ReturnPolicy
from leadx.platform.health import Readiness
from services.portal.dashboard import Dashboard, DashboardUnavailable
from services.portal.exchange_watch import ExchangeWatch
from services.portal.settings import LIVE_POLL_S, LIVE_STREAM_S
from services.portal.throttle import LoginThrottle

COOKIE = "leadx_session"
MAX_FORM_BYTES = 16_384
# No inline script or style anywhere, and nothing from another origin: the pages' CSS and script
# are /static, and the script's one connection is the buyer home's event stream (/buyer/live).
CONTENT_SECURITY_POLICY = ("default-src 'none'; style-src 'self'; script-src 'self'; connect-src 'self'; "
                           "img-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'")
SECURITY_HEADERS = [
    (b"content-security-policy", CONTENT_SECURITY_POLICY.encode()),
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"same-origin"),
    (b"cross-origin-opener-policy", b"same-origin"),
]


class SecurityHeaders:
    """Adds SECURITY_HEADERS to every HTTP answer, pages, static files and errors alike."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", []), *SECURITY_HEADERS]
            await send(message)

        await self.app(scope, receive, with_headers)


@dataclass(frozen=True)
class PersonView:
    """Who is logged in, as the pages need it: never the email (no PII in logs or titles)."""

    id: str
    kind: str
    account_id: str
    role: str
    returns_seen_at_ms: int = 0  # a seller's person: the returns of its leads up to here are read


@dataclass
class PortalDeps:
    sessions: sessionmaker[Session]  # writes: logins, logouts, returns, partnerships and ratings
    reads: sessionmaker[Session]  # every page's session check (leadx.platform.db.engine.read_session_factory)
    signer: SessionSigner
    policy: SessionPolicy
    throttle: LoginThrottle
    dashboard: Dashboard
    templates: Jinja2Templates
    readiness: Readiness
    secure_cookies: bool = True
    clock: Callable[[], float] = field(default=time.time)
    return_policy: ReturnPolicy = field(default_factory=ReturnPolicy)
    publisher: Publisher | None = None  # lead.returned; None: returns are refused as not recorded
    live_poll_s: float = LIVE_POLL_S  # the homes' live streams (live.py)
    live_stream_s: float = LIVE_STREAM_S
    # Administration's Services page (operations.py); by default it is given no service and no broker.
    exchange_watch: ExchangeWatch = field(default_factory=lambda: ExchangeWatch({}, None, ""))


@dataclass
class Visitor:
    state: SessionState
    person: PersonView | None = None
    ended: bool = False  # came with a session that has ended (expired, logged out elsewhere, reset)
    unread: int = 0  # a seller's person: returns of its account's leads it has not seen


def _current_person(sessions: sessionmaker[Session], state: SessionState) -> PersonView | None:
    with sessions() as session:
        person = people.person_by_id(session, state.person_id)
        if person is None or not person.active or person.session_epoch != state.epoch:
            return None
        return PersonView(person.id, person.kind, person.account_id or "", person.role, person.returns_seen_at_ms)


async def unread_returns(deps: PortalDeps, person: PersonView) -> int:
    """How many returns of the seller's leads the person has not seen; 0 when the dashboard does not
    answer (the count is a courtesy: the page itself still shows, or says why not)."""
    if person.kind != people.SELLER:
        return 0
    try:
        return (await deps.dashboard.return_notices(person.account_id, person.returns_seen_at_ms, 1)).unread
    except DashboardUnavailable:
        return 0


async def visitor(deps: PortalDeps, request: Request) -> Visitor:
    cookie = request.cookies.get(COOKIE, "")
    state = deps.signer.loads(cookie) if cookie else None
    if state is None:
        return Visitor(people.anonymous_session())
    if not state.logged_in:
        return Visitor(state)
    now = deps.clock()
    if state.expired(deps.policy, now):
        return Visitor(people.anonymous_session(), ended=True)
    person = await asyncio.to_thread(_current_person, deps.reads, state)
    if person is None:
        return Visitor(people.anonymous_session(), ended=True)
    return Visitor(state.seen(now), person, unread=await unread_returns(deps, person))


def with_session(deps: PortalDeps, response: Response, state: SessionState) -> Response:
    # No Max-Age: the browser forgets it when it closes; the server ends it after the policy's times.
    response.set_cookie(COOKIE, deps.signer.dumps(state), httponly=True, samesite="lax",
                        secure=deps.secure_cookies, path="/")
    response.headers["cache-control"] = "no-store"
    return response


async def form_of(deps: PortalDeps, request: Request, current: Visitor, max_fields: int = 20,
                  max_bytes: int = MAX_FORM_BYTES) -> dict[str, str]:
    """The posted form's fields, once its CSRF token is checked: 403 without it or with another's,
    413 for a body larger than any form of the portal, 400 for more fields than the form has."""
    length = request.headers.get("content-length", "")
    if not length.isdigit():
        raise HTTPException(411, "A form is sent with its length (Content-Length).")
    if int(length) > max_bytes:
        raise HTTPException(413, "This form is larger than any the portal takes.")
    form = await request.form(max_files=0, max_fields=max_fields, max_part_size=max_bytes)
    fields = {name: value for name, value in form.items() if isinstance(value, str)}
    if not deps.signer.csrf_valid(current.state, fields.get("csrf_token", "")):
        raise HTTPException(403, "This form did not come from this page of the portal, or it has expired. "
                                 "Go back, reload the page and send it again.")
    return fields


def navigation(person: PersonView | None) -> list[tuple[str, str]]:
    """The navigation bar: only the pages the person may open."""
    if person is None:
        return []
    home = {people.BUYER: [("Home", "/buyer")], people.SELLER: [("Home", "/seller")],
            people.OPERATOR: [("Exchange", "/operator"), ("Administration", "/admin"),
                              ("Services", "/admin/services")]}.get(person.kind, [])
    if not home:
        return []
    partners = [("Partners", "/partners")] if person.kind in (people.BUYER, people.SELLER) else []
    profiles = [("Profiles", "/profiles")] if person.kind == people.BUYER else []
    return [*home, ("Search", "/search"), ("Transactions", "/transactions"), *profiles, *partners,
            ("Markets", "/markets")]


def render(deps: PortalDeps, request: Request, current: Visitor, template: str, context: dict,
           status_code: int = 200) -> Response:
    page = {"person": current.person, "nav": navigation(current.person), "unread": current.unread,
            "csrf_token": deps.signer.csrf_token(current.state), "path": request.url.path, **context}
    response = deps.templates.TemplateResponse(request, template, page, status_code=status_code)
    return with_session(deps, response, current.state)
