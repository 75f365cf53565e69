"""The portal's routes, each a function of the portal's dependencies and the request (app.py binds
the first). A page checks on the server who may open it: a person of another kind of account gets
404, as the API answers for what is not one's own."""

from __future__ import annotations

import asyncio
import csv
import datetime as dt
import io
import logging

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response

from leadx.accounts import people
from leadx.accounts.people import PersonError
from leadx.contracts.dashboard.v1 import dashboard_pb2 as pb
from leadx.ledger import returns
from leadx.platform.ids import is_lead_id
from leadx.platform.logs import log_event
from services.portal.dashboard import TRANSACTION_WINDOWS, WINDOW_NAMES, DashboardRefused, DashboardUnavailable
from services.portal.search import STATUSES, check_search
from services.portal.web import PersonView, PortalDeps, Visitor, form_of, render, visitor, with_session

log = logging.getLogger(__name__)

# One message for every failed login, whatever failed: an unknown email, a wrong password, a
# disabled person or too many attempts. It tells a guesser nothing.
LOGIN_FAILED = "That email and password do not match a login, or there were too many attempts. " \
               "Check them, or wait a few minutes and try again."
HOME = {people.BUYER: "/buyer", people.SELLER: "/seller", people.OPERATOR: "/operator"}


def redirect(deps: PortalDeps, current: Visitor, to: str) -> Response:
    return with_session(deps, RedirectResponse(to, status_code=303), current.state)


def to_login(deps: PortalDeps, current: Visitor) -> Response:
    return redirect(deps, current, "/login?ended=1" if current.ended else "/login")


def source_address(request: Request) -> str:
    return request.client.host if request.client is not None else "unknown"


# ---------------------------------------------------------------- login and logout

async def login_page(deps: PortalDeps, request: Request) -> Response:
    current = await visitor(deps, request)
    if current.person is not None:
        return redirect(deps, current, HOME[current.person.kind])
    notice = "Your session has ended. Log in again." if current.ended or request.query_params.get("ended") else ""
    if request.query_params.get("password") == "set":
        notice = "Your password is set: log in with it."
    return render(deps, request, current, "login.html", {"title": "Log in", "notice": notice, "email": "",
                                                         "errors": {}})


def _check_login_form(fields: dict[str, str]) -> tuple[str, str, dict[str, str]]:
    errors: dict[str, str] = {}
    email = ""
    try:
        email = people.normalise_email(fields.get("email", ""))
    except PersonError as error:
        errors[error.field] = error.message
    password = fields.get("password", "")
    if not password:
        errors["password"] = "enter your password"
    elif len(password) > people.MAX_PASSWORD_CHARS:
        errors["password"] = f"a password has at most {people.MAX_PASSWORD_CHARS} characters"
    return email, password, errors


def _authenticate(deps: PortalDeps, email: str, password: str) -> PersonView | None:
    with deps.sessions() as session:
        person = people.authenticate(session, email, password)
        return None if person is None else PersonView(person.id, person.kind, person.account_id or "", person.role)


def _epoch_of(deps: PortalDeps, person_id: str) -> int:
    with deps.sessions() as session:
        person = people.person_by_id(session, person_id)
        return person.session_epoch if person is not None else -1


async def login(deps: PortalDeps, request: Request) -> Response:
    current = await visitor(deps, request)
    fields = await form_of(deps, request, current)
    email, password, errors = _check_login_form(fields)
    if errors:
        return render(deps, request, current, "login.html",
                      {"title": "Log in", "notice": "", "email": fields.get("email", "")[:people.MAX_EMAIL_CHARS],
                       "errors": errors}, status_code=400)
    address = source_address(request)
    person = None
    if not await deps.throttle.blocked(email, address):
        # argon2 costs tens of milliseconds of CPU: off the event loop.
        person = await asyncio.to_thread(_authenticate, deps, email, password)
    if person is None:
        await deps.throttle.failed(email, address)
        log_event(log, "portal login refused")
        return render(deps, request, current, "login.html",
                      {"title": "Log in", "notice": "", "failed": LOGIN_FAILED, "email": email, "errors": {}},
                      status_code=401)
    epoch = await asyncio.to_thread(_epoch_of, deps, person.id)
    log_event(log, "portal login", person=person.id, kind=person.kind)
    state = people.logged_in_session(person.id, epoch, deps.clock())
    return with_session(deps, RedirectResponse(HOME[person.kind], status_code=303), state)


def _end_sessions(deps: PortalDeps, person_id: str) -> None:
    with deps.sessions() as session:
        people.end_sessions(session, person_id)


async def logout(deps: PortalDeps, request: Request) -> Response:
    current = await visitor(deps, request)
    if current.person is None:
        # Nothing to end (the session ended while the page was open): no form to check either.
        return to_login(deps, current)
    await form_of(deps, request, current)
    # Every session of the person ends, here and in any other browser.
    await asyncio.to_thread(_end_sessions, deps, current.person.id)
    log_event(log, "portal logout", person=current.person.id)
    return with_session(deps, RedirectResponse("/login", status_code=303), people.anonymous_session())


# ---------------------------------------------------------------- pages

async def home(deps: PortalDeps, request: Request) -> Response:
    current = await visitor(deps, request)
    if current.person is None:
        return to_login(deps, current)
    return redirect(deps, current, HOME[current.person.kind])


async def person_of_kind(deps: PortalDeps, request: Request, kind: str) -> tuple[Visitor, Response | None]:
    """The visitor, and the answer instead of the page when it may not open it."""
    current = await visitor(deps, request)
    if current.person is None:
        return current, to_login(deps, current)
    if current.person.kind != kind:
        raise HTTPException(404, "There is no such page.")
    return current, None


def money(cents: int) -> str:
    sign = "-" if cents < 0 else ""
    return f"{sign}${abs(cents) // 100:,}.{abs(cents) % 100:02d}"


def utc_time(ms: int) -> str:
    return dt.datetime.fromtimestamp(ms / 1000, dt.UTC).strftime("%Y-%m-%d %H:%M UTC") if ms else ""


async def buyer_home(deps: PortalDeps, request: Request) -> Response:
    current, refused = await person_of_kind(deps, request, people.BUYER)
    if refused is not None:
        return refused
    assert current.person is not None
    home = await deps.dashboard.buyer_home(current.person.account_id)
    return render(deps, request, current, "buyer_home.html",
                  {"title": "Buyer home", "windows": home.summary.windows, "window_names": WINDOW_NAMES,
                   "leads": home.summary.last_leads})


async def seller_home(deps: PortalDeps, request: Request) -> Response:
    current, refused = await person_of_kind(deps, request, people.SELLER)
    if refused is not None:
        return refused
    assert current.person is not None
    person = current.person
    home = await deps.dashboard.seller_home(person.account_id)
    notices = await deps.dashboard.return_notices(person.account_id, person.returns_seen_at_ms)
    if notices.unread:
        # Shown here, so read: up to the newest shown (a return booked after this page stays unread).
        await asyncio.to_thread(_mark_returns_seen, deps, person.id, notices.notices[0].returned_at_ms)
        current.unread = 0
    return render(deps, request, current, "seller_home.html",
                  {"title": "Seller home", "windows": home.summary.windows, "window_names": WINDOW_NAMES,
                   "leads": home.latest, "notices": notices.notices, "seen_at_ms": person.returns_seen_at_ms})


def _mark_returns_seen(deps: PortalDeps, person_id: str, at_ms: int) -> None:
    with deps.sessions() as session:
        people.mark_returns_seen(session, person_id, at_ms)


async def search(deps: PortalDeps, request: Request) -> Response:
    """The leads the person's account bought or sold (an operator: every account's), by id, day or
    range of days of submission, state and status, a page at a time. A GET form: nothing changes, so no CSRF token."""
    current = await visitor(deps, request)
    if current.person is None:
        return to_login(deps, current)
    params = {name: value[:200] for name, value in request.query_params.items()}
    query, errors = check_search(params)
    leads: list = []
    next_page = ""
    if not errors and params:
        try:
            leads, next_page = await deps.dashboard.search(current.person.account_id, query)
        except DashboardRefused as refused:
            errors["page"] = f"the search was refused: {refused}; search again"
    kept = {name: params.get(name, "") for name in ("lead_id", "day", "to_day", "state", "status")}
    return render(deps, request, current, "search.html",
                  {"title": "Search", "errors": errors, "form": kept, "statuses": STATUSES, "searched": bool(params),
                   "leads": leads, "next_query": {**{k: v for k, v in kept.items() if v}, "page": next_page}
                   if next_page else None, "kind": current.person.kind},
                  status_code=400 if errors else 200)


CSV_MAX_ROWS = 50_000  # a month of a busy account; the CSV says when it stopped there


def _window_of(request: Request) -> tuple[str, dict[str, str]]:
    window = request.query_params.get("window", "day")
    if window not in TRANSACTION_WINDOWS:
        return "day", {"window": "choose the last day, week or month"}
    return window, {}


async def transactions(deps: PortalDeps, request: Request) -> Response:
    """The account's sales and returns in the last day, week or month, newest first, with what each
    did to its balance and the balance after it (an operator: every account's, without balances), a
    page at a time; and the same as CSV."""
    current = await visitor(deps, request)
    if current.person is None:
        return to_login(deps, current)
    window, errors = _window_of(request)
    page = request.query_params.get("page", "")[:200]
    rows: list = []
    next_page = ""
    if not errors:
        try:
            rows, next_page = await deps.dashboard.transactions(current.person.account_id, TRANSACTION_WINDOWS[window],
                                                                page)
        except DashboardRefused as refused:
            errors["page"] = f"the list was refused: {refused}; start again"
    return render(deps, request, current, "transactions.html",
                  {"title": "Transactions", "window": window, "errors": errors, "rows": rows, "next_page": next_page,
                   "windows": list(TRANSACTION_WINDOWS), "operator": not current.person.account_id},
                  status_code=400 if errors else 200)


async def transactions_csv(deps: PortalDeps, request: Request) -> Response:
    current = await visitor(deps, request)
    if current.person is None:
        return to_login(deps, current)
    window, errors = _window_of(request)
    if errors:
        raise HTTPException(400, errors["window"])
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(["at_utc", "kind", "lead_id", "buyer_id", "seller_id", "price_cents", "fee_cents",
                     "your_balance_change_cents", "your_balance_after_cents"])
    page, written = "", 0
    while written < CSV_MAX_ROWS:
        rows, page = await deps.dashboard.transactions(current.person.account_id, TRANSACTION_WINDOWS[window], page,
                                                       size=500)
        for row in rows:
            writer.writerow([utc_time(row.at_ms), row.kind, row.lead_id, row.buyer_id, row.seller_id,
                             row.amount_cents, row.fee_cents, row.account_amount_cents,
                             row.account_balance_after_cents])
        written += len(rows)
        if not page:
            break
    else:
        writer.writerow([f"stopped at {CSV_MAX_ROWS} rows"])
    response = Response(out.getvalue(), media_type="text/csv; charset=utf-8",
                        headers={"content-disposition": f'attachment; filename="transactions-{window}.csv"'})
    return with_session(deps, response, current.state)


async def operator_home(deps: PortalDeps, request: Request) -> Response:
    current, refused = await person_of_kind(deps, request, people.OPERATOR)
    if refused is not None:
        return refused
    sales = await deps.dashboard.recent_sales()
    try:
        totals = await deps.dashboard.platform_totals()
    except DashboardUnavailable:
        totals = None  # the day's sum did not come in time: the page shows the sales, and says so
    return render(deps, request, current, "operator_home.html", {"title": "Exchange", "sales": sales, "totals": totals})


# ---------------------------------------------------------------- one lead, and its return

NO_LEAD = "There is no such lead."


async def _lead_for(deps: PortalDeps, request: Request) -> tuple[Visitor, pb.LeadDetail | None, Response | None]:
    """The visitor and the lead of the URL as the visitor's account reads it (an operator: any
    lead); 404 when it is not one's to read, exactly as when it does not exist."""
    current = await visitor(deps, request)
    if current.person is None:
        return current, None, to_login(deps, current)
    lead_id = request.path_params["lead_id"]
    detail = await deps.dashboard.lead(current.person.account_id, lead_id) if is_lead_id(lead_id) else None
    if detail is None:
        raise HTTPException(404, NO_LEAD)
    return current, detail, None


def _may_return(person: PersonView | None, detail: pb.LeadDetail) -> bool:
    return person is not None and people.may_return_leads(person.kind, person.role) and detail.returnable


async def lead_page(deps: PortalDeps, request: Request) -> Response:
    current, detail, refused = await _lead_for(deps, request)
    if refused is not None:
        return refused
    assert detail is not None
    notice = "The lead is returned: its price is credited to your account." \
        if request.query_params.get("returned") and not detail.returnable else ""
    return render(deps, request, current, "lead.html",
                  {"title": f"Lead {detail.lead_id}", "lead": detail, "notice": notice,
                   "may_return": _may_return(current.person, detail),
                   "reader": current.person.kind if current.person else ""})


def _return_form(deps: PortalDeps, request: Request, current: Visitor, detail: pb.LeadDetail, reason: str,
                 errors: dict[str, str], status_code: int = 200) -> Response:
    return render(deps, request, current, "lead_return.html",
                  {"title": f"Return lead {detail.lead_id}", "lead": detail, "reason": reason, "errors": errors,
                   "max_reason": returns.MAX_REASON_CHARS}, status_code=status_code)


async def _returnable_lead(deps: PortalDeps, request: Request) -> tuple[Visitor, pb.LeadDetail | None,
                                                                        Response | None]:
    current, detail, refused = await _lead_for(deps, request)
    if refused is not None or detail is None or current.person is None:
        return current, detail, refused
    if not people.may_return_leads(current.person.kind, current.person.role):
        raise HTTPException(403, "Your role may read this account's leads, not return them.")
    return current, detail, None


async def return_page(deps: PortalDeps, request: Request) -> Response:
    current, detail, refused = await _returnable_lead(deps, request)
    if refused is not None:
        return refused
    assert detail is not None
    if not detail.returnable:
        return redirect(deps, current, f"/leads/{detail.lead_id}")
    return _return_form(deps, request, current, detail, "", {})


async def return_lead(deps: PortalDeps, request: Request) -> Response:
    """Books the return as the API does (leadx.ledger.returns.return_lead: the window, the rate cap,
    one return per lead), then shows the lead; a refusal is said beside the form, nothing saved."""
    current, detail, refused = await _returnable_lead(deps, request)
    if refused is not None:
        return refused
    assert detail is not None and current.person is not None
    fields = await form_of(deps, request, current)
    reason = fields.get("reason", "")
    problem = returns.reason_problem(reason)
    if problem:
        return _return_form(deps, request, current, detail, reason[:returns.MAX_REASON_CHARS * 2],
                            {"reason": problem}, status_code=400)
    buyer_id = current.person.account_id
    try:
        if deps.publisher is None:
            raise returns.NotRecorded(detail.lead_id)
        claimed = await returns.return_lead(deps.sessions, deps.return_policy, deps.publisher, detail.lead_id,
                                            buyer_id, reason.strip(), int(deps.clock() * 1000))
    except returns.NotRecorded:
        return _return_form(deps, request, current, detail, reason,
                            {"lead": "The exchange could not record the return just now; nothing was saved. "
                                     "Send it again in a moment."}, status_code=503)
    if isinstance(claimed, returns.Refusal):
        if claimed.http_status == 404:
            raise HTTPException(404, NO_LEAD)
        return _return_form(deps, request, current, detail, reason, {"lead": claimed.message[:1].upper() +
                                                                      claimed.message[1:] + "."}, status_code=422)
    log_event(log, "portal lead returned", person=current.person.id, lead_id=detail.lead_id, buyer_id=buyer_id)
    return redirect(deps, current, f"/leads/{detail.lead_id}?returned=1")


# ---------------------------------------------------------------- probes and errors

async def favicon(request: Request) -> Response:
    """The portal has no icon. Browsers ask for /favicon.ico after every page they load; as a 404
    page, each answer read the person from SQL and set the session cookie again, and one that
    arrived late replaced a cookie changed meanwhile (the browser test that alters its session's
    cookie then waited in vain for its session to end). Answered at once, without a cookie, and
    kept by the browser for a day."""
    return Response(status_code=204, headers={"cache-control": "public, max-age=86400"})


async def healthz(deps: PortalDeps, request: Request) -> Response:
    return JSONResponse({"status": "ok"})


async def readyz(deps: PortalDeps, request: Request) -> Response:
    failing = deps.readiness.failing()
    if failing:
        return JSONResponse({"status": "not ready", "failing": failing}, status_code=503)
    return JSONResponse({"status": "ready"})


TITLES = {400: "Bad request", 403: "Forbidden", 404: "Not found", 405: "Method not allowed",
          411: "Length required", 413: "Too large", 500: "Error", 503: "Briefly unavailable"}


async def error_page(deps: PortalDeps, request: Request, status: int, message: str) -> Response:
    current = await visitor(deps, request)
    return render(deps, request, current, "error.html",
                  {"title": TITLES.get(status, "Error"), "message": message}, status_code=status)


async def http_error(deps: PortalDeps, request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    message = exc.detail if exc.status_code != 404 or exc.detail != "Not Found" else "There is no such page."
    if exc.status_code == 405:
        message = "This page does not take that kind of request."
    return await error_page(deps, request, exc.status_code, message)


def _plain_error(deps: PortalDeps, request: Request, status: int, message: str) -> Response:
    """An error page rendered without reading the session again (what failed may be what reads it)
    and without touching the cookie, so the person stays logged in for the reload."""
    response = deps.templates.TemplateResponse(
        request, "error.html", {"title": TITLES[status], "message": message, "person": None, "nav": [],
                                "csrf_token": "", "path": request.url.path}, status_code=status)
    response.headers["cache-control"] = "no-store"
    return response


def unavailable(deps: PortalDeps, request: Request, message: str) -> Response:
    response = _plain_error(deps, request, 503, message)
    response.headers["retry-after"] = "5"
    return response


async def unexpected_error(deps: PortalDeps, request: Request, exc: Exception) -> Response:
    """What no handler expected (a bug): a plain 500 page that says nothing of the cause. Logged
    by the exception's type only: its message may carry a consumer's data (the server still logs
    the traceback, as Starlette raises the exception again once this page is sent)."""
    log_event(log, "portal: unexpected error", error=type(exc).__name__)
    return _plain_error(deps, request, 500, "Something went wrong on our side. Reload the page in a moment; "
                                            "if it happens again, tell the exchange's operators.")


async def dashboard_unavailable(deps: PortalDeps, request: Request, exc: Exception) -> Response:
    log_event(log, "portal: the dashboard did not answer", error=str(exc))
    return unavailable(deps, request, "The exchange's figures are briefly unavailable. Reload the page in a moment.")


async def store_unavailable(deps: PortalDeps, request: Request, exc: Exception) -> Response:
    log_event(log, "portal: SQL or Redis did not answer", error=type(exc).__name__)
    return unavailable(deps, request, "The portal is briefly unavailable. Reload the page in a moment.")

