"""The buyer home's live list: leads as they are won, pushed to the open page as server-sent events.

The portal asks the dashboard for the buyer's newest purchases every PORTAL_LIVE_POLL_SECONDS
(ListRecentSales: the indexed query behind the home's own list) and sends each one it has not sent
in this stream. A stream lasts PORTAL_LIVE_STREAM_SECONDS at most; the browser's EventSource then
reconnects by itself (after `retry`) and the session is checked again, so a person who logged out,
or whose session expired, stops receiving within that time. Each event's id is the sale's time: a
reconnecting EventSource sends the last one back (Last-Event-ID) and the new stream starts from it.
The page drops an event for a lead it already shows, so a sale at the very millisecond of a
reconnect is shown once."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator

from starlette.requests import Request
from starlette.responses import Response, StreamingResponse

from leadx.accounts import people
from services.portal.dashboard import DashboardUnavailable
from services.portal.pages import person_of_kind, money, utc_time
from services.portal.web import PortalDeps

RETRY_MS = 3000
RECENT = 10  # as many as the home lists


def _since(request: Request) -> int:
    """Where the stream starts: the last event the browser saw, or the newest sale the page shows."""
    for text in (request.headers.get("last-event-id", ""), request.query_params.get("since", "")):
        if text.isdigit() and len(text) <= 16:
            return int(text)
    return 0


def _event(sale, event_id: int) -> str:
    lead = {"lead_id": sale.lead_id, "price": money(sale.price_cents), "vertical": sale.vertical,
            "state": sale.state, "bought": utc_time(sale.closed_at_ms)}
    return f"event: bought\nid: {event_id}\ndata: {json.dumps(lead)}\n\n"


async def purchases(deps: PortalDeps, request: Request) -> Response:
    current, refused = await person_of_kind(deps, request, people.BUYER)
    if refused is not None:
        return refused
    assert current.person is not None
    buyer_id, since = current.person.account_id, _since(request)

    async def events() -> AsyncIterator[str]:
        yield f"retry: {RETRY_MS}\n\n"
        loop = asyncio.get_running_loop()
        sent: set[str] = set()
        newest, ends_at = since, loop.time() + deps.live_stream_s
        while loop.time() < ends_at:
            try:
                sales = await deps.dashboard.recent_purchases(buyer_id, RECENT)
            except DashboardUnavailable:
                sales = []  # asked again at the next poll: the page keeps what it shows
            fresh = sorted((s for s in sales if s.closed_at_ms >= since and s.lead_id not in sent),
                           key=lambda s: (s.closed_at_ms, s.lead_id))
            for sale in fresh:
                sent.add(sale.lead_id)
                newest = max(newest, sale.closed_at_ms)
                yield _event(sale, newest)
            if not fresh:
                yield ": waiting\n\n"  # a comment: lets a proxy, and the server, see a closed connection
            await asyncio.sleep(deps.live_poll_s)

    # No cookie refresh here: a stream's headers go before its events. The page that opened it did.
    return StreamingResponse(events(), media_type="text/event-stream",
                             headers={"cache-control": "no-store", "x-accel-buffering": "no"})
