"""The homes, live: what a buyer's, a seller's or an operator's home shows, brought up to date as
sales happen, pushed to the open page as server-sent events (static/live.js applies them).

Each stream polls the dashboard every PORTAL_LIVE_POLL_SECONDS with one cheap, indexed read (the
home's own list: the buyer's newest purchases, the seller's newest leads, the exchange's newest
sales), and reads the figures again only when that list changed, or FIGURES_EVERY_S after it last
read them (a return or a kept duplicate changes a figure without a sale). A part of the page that
changed is sent whole, rendered by the template the page itself includes (`event: fragment`, the
element's id and its HTML), and only when it differs from what this stream last sent.

The buyer's list also gets each lead won as its own event (`event: bought`), which the page puts at
the top of its table. A stream lasts PORTAL_LIVE_STREAM_SECONDS at most; the browser's EventSource
then reconnects by itself (after `retry`) and the session is checked again, so a person who logged
out, or whose session expired, stops receiving within that time: such a reconnection is answered
204 No Content, which tells an EventSource to stop, and with no cookie, so that the page the person
opens next says the session has ended (a login redirect would have set a new, anonymous one).
Each `bought` event's id is the sale's time: a reconnecting EventSource sends the last one back
(Last-Event-ID) and the new stream starts from it. The page drops an event for a lead it already
shows, so a sale at the very millisecond of a reconnect is shown once."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Awaitable, Callable, Hashable

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse

from leadx.accounts import people
from services.portal.dashboard import WINDOW_NAMES, DashboardUnavailable
from services.portal.pages import money, utc_time
from services.portal.web import PortalDeps, Visitor, visitor

RETRY_MS = 3000
RECENT = 10  # as many as the buyer home lists
FIGURES_EVERY_S = 30.0

# One poll: what the home's list looks like now (compared with the last poll's), and how to render
# the parts of the page once it changed.
Fragments = Callable[[], Awaitable[dict[str, str]]]
Watch = Callable[[PortalDeps, str], Awaitable[tuple[Hashable, Fragments]]]


def _since(request: Request) -> int:
    """Where the buyer's stream starts: the last event the browser saw, or the newest sale the page shows."""
    for text in (request.headers.get("last-event-id", ""), request.query_params.get("since", "")):
        if text.isdigit() and len(text) <= 16:
            return int(text)
    return 0


def _event(sale, event_id: int) -> str:
    lead = {"lead_id": sale.lead_id, "price": money(sale.price_cents), "vertical": sale.vertical,
            "state": sale.state, "bought": utc_time(sale.closed_at_ms)}
    return f"event: bought\nid: {event_id}\ndata: {json.dumps(lead)}\n\n"


def fragment_event(element_id: str, html: str) -> str:
    return f"event: fragment\ndata: {json.dumps({'id': element_id, 'html': html})}\n\n"


def _render(deps: PortalDeps, template: str, **context) -> str:
    return deps.templates.get_template(template).render(**context)


class FragmentsSent:
    """What one stream has sent of each part of the page: a part goes again only when it changed."""

    def __init__(self) -> None:
        self.sent: dict[str, str] = {}

    def changed(self, rendered: dict[str, str]) -> list[str]:
        events = []
        for element_id, html in rendered.items():
            if self.sent.get(element_id) != html:
                self.sent[element_id] = html
                events.append(fragment_event(element_id, html))
        return events


async def _streams_person(deps: PortalDeps, request: Request, kind: str) -> tuple[Visitor, Response | None]:
    """The visitor, and the answer instead of a stream: 204 without a logged-in person (an
    EventSource stops; the cookie is left as it came), 404 for a person of another kind."""
    current = await visitor(deps, request)
    if current.person is None:
        return current, Response(status_code=204, headers={"cache-control": "no-store"})
    if current.person.kind != kind:
        raise HTTPException(404, "There is no such page.")
    return current, None


def _stream(events: AsyncIterator[str]) -> Response:
    # No cookie refresh here: a stream's headers go before its events. The page that opened it did.
    return StreamingResponse(events, media_type="text/event-stream",
                             headers={"cache-control": "no-store", "x-accel-buffering": "no"})


# ---------------------------------------------------------------- the buyer

async def _buyer_figures(deps: PortalDeps, buyer_id: str) -> dict[str, str]:
    home = await deps.dashboard.buyer_home(buyer_id)
    return {"live-figures": _render(deps, "_buyer_figures.html", windows=home.summary.windows,
                                    window_names=WINDOW_NAMES)}


async def purchases(deps: PortalDeps, request: Request) -> Response:
    current, refused = await _streams_person(deps, request, people.BUYER)
    if refused is not None:
        return refused
    assert current.person is not None
    buyer_id, since = current.person.account_id, _since(request)

    async def events() -> AsyncIterator[str]:
        yield f"retry: {RETRY_MS}\n\n"
        loop = asyncio.get_running_loop()
        sent: set[str] = set()
        fragments = FragmentsSent()
        newest, ends_at, figures_at = since, loop.time() + deps.live_stream_s, 0.0
        while loop.time() < ends_at:
            said = False
            try:
                sales = await deps.dashboard.recent_purchases(buyer_id, RECENT)
                fresh = sorted((s for s in sales if s.closed_at_ms >= since and s.lead_id not in sent),
                               key=lambda s: (s.closed_at_ms, s.lead_id))
                for sale in fresh:
                    sent.add(sale.lead_id)
                    newest = max(newest, sale.closed_at_ms)
                    said = True
                    yield _event(sale, newest)
                if fresh or loop.time() >= figures_at:
                    rendered = await _buyer_figures(deps, buyer_id)
                    figures_at = loop.time() + FIGURES_EVERY_S  # once read: a failed read is tried again
                    for event in fragments.changed(rendered):
                        said = True
                        yield event
            except DashboardUnavailable:
                pass  # asked again at the next poll: the page keeps what it shows
            if not said:
                yield ": waiting\n\n"  # a comment: lets a proxy, and the server, see a closed connection
            await asyncio.sleep(deps.live_poll_s)

    return _stream(events())


# ---------------------------------------------------------------- the seller and the operator

async def _seller_watch(deps: PortalDeps, seller_id: str) -> tuple[Hashable, Fragments]:
    leads = await deps.dashboard.latest_leads(seller_id)

    async def fragments() -> dict[str, str]:
        summary = await deps.dashboard.seller_summary(seller_id)
        return {"live-figures": _render(deps, "_seller_figures.html", windows=summary.windows,
                                        window_names=WINDOW_NAMES),
                "live-leads": _render(deps, "_seller_leads.html", leads=leads)}
    return tuple((lead.lead_id, lead.status, lead.price_cents) for lead in leads), fragments


async def _operator_watch(deps: PortalDeps, _account_id: str) -> tuple[Hashable, Fragments]:
    sales = await deps.dashboard.recent_sales()

    async def fragments() -> dict[str, str]:
        return {"live-totals": _render(deps, "_operator_totals.html", totals=await deps.dashboard.platform_totals()),
                "live-sales": _render(deps, "_operator_sales.html", sales=sales)}
    return tuple((sale.lead_id, sale.buyer_id) for sale in sales), fragments


async def _home_stream(deps: PortalDeps, request: Request, kind: str, watch: Watch) -> Response:
    current, refused = await _streams_person(deps, request, kind)
    if refused is not None:
        return refused
    assert current.person is not None
    account_id = current.person.account_id

    async def events() -> AsyncIterator[str]:
        yield f"retry: {RETRY_MS}\n\n"
        loop = asyncio.get_running_loop()
        fragments = FragmentsSent()
        last: Hashable = None
        ends_at, figures_at = loop.time() + deps.live_stream_s, 0.0
        while loop.time() < ends_at:
            said = False
            try:
                signal, render = await watch(deps, account_id)
                if signal != last or loop.time() >= figures_at:
                    rendered = await render()
                    last, figures_at = signal, loop.time() + FIGURES_EVERY_S  # once read: a failure is retried
                    for event in fragments.changed(rendered):
                        said = True
                        yield event
            except DashboardUnavailable:
                pass
            if not said:
                yield ": waiting\n\n"
            await asyncio.sleep(deps.live_poll_s)

    return _stream(events())


async def seller_home(deps: PortalDeps, request: Request) -> Response:
    return await _home_stream(deps, request, people.SELLER, _seller_watch)


async def operator_home(deps: PortalDeps, request: Request) -> Response:
    return await _home_stream(deps, request, people.OPERATOR, _operator_watch)
