"""Administration's Services page (/admin/services, operators): each service's readiness, each
consumer group's lag per topic and the records set aside on dead.letter, as the portal's
ExchangeWatch last read them (services/portal/exchange_watch.py; docs/portal.md#services)."""

from __future__ import annotations

import datetime as dt

from starlette.requests import Request
from starlette.responses import Response

from leadx.accounts import people
from leadx.platform.exchange_health import describe_dead_letter, unprefixed
from services.portal.pages import person_of_kind
from services.portal.web import PortalDeps, render


async def services_page(deps: PortalDeps, request: Request) -> Response:
    current, refused = await person_of_kind(deps, request, people.OPERATOR)
    if refused is not None:
        return refused
    watch = deps.exchange_watch
    reading = await watch.reading()
    read_at = dt.datetime.fromtimestamp(reading.read_at_ms / 1000, dt.UTC).strftime("%H:%M:%S UTC")
    response = render(deps, request, current, "admin_services.html",
                      {"title": "Services", "reading": reading, "read_at": read_at, "every_s": watch.every_s,
                       "unprefixed": lambda name: unprefixed(name, watch.topic_prefix),
                       "dead_letter": lambda dead: describe_dead_letter(dead, watch.topic_prefix)})
    response.headers["cache-control"] = "no-store"
    return response
