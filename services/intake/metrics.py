"""The intake's Prometheus metrics (docs/operations.md): every HTTP request by route template and
status, and every PING and POST by what the seller was answered.

The HTTP middleware is plain ASGI (a Starlette BaseHTTPMiddleware costs a task per request); it
reads the route template Starlette's router leaves in the scope, so no path, and so no lead id,
ever becomes a label value."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable

from prometheus_client import Counter, Gauge, Histogram
from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from leadx.platform.metrics import FAST_BUCKETS
from services.intake.formats import Answer, PayloadError
from services.intake.requests import ApiError

HTTP_REQUESTS = Counter("leadx_http_requests", "HTTP requests answered.", ["route", "method", "status"])
HTTP_SECONDS = Histogram("leadx_http_request_duration_seconds", "Time to answer an HTTP request.",
                         ["route", "method"], buckets=(*FAST_BUCKETS, 10.0, 30.0))
LEADS_RECEIVED = Counter("leadx_leads_received", "PINGs and POSTs received.", ["kind"])
LEADS_ACCEPTED = Counter("leadx_leads_accepted", "PINGs and POSTs accepted (a POST queued counts).", ["kind"])
LEADS_REJECTED = Counter("leadx_leads_rejected", "PINGs and POSTs refused, by the answer's first error code.",
                         ["kind", "code"])
LEADS_IN_FLIGHT = Gauge("leadx_intake_leads_in_flight",
                        "Lead submissions in flight: POSTs being answered and publishes not yet acknowledged "
                        "(INTAKE_MAX_IN_FLIGHT refuses more).")
LEAD_PUBLISHES_PAST_BOUND = Counter("leadx_lead_publishes_past_bound",
                                    "Leads answered 202 before the broker acknowledged them "
                                    "(INTAKE_PUBLISH_TIMEOUT_SECONDS); their publish went on.")
LEADS_NOT_QUEUED_AFTER_202 = Counter("leadx_leads_not_queued_after_202",
                                     "Leads answered 202 whose publish then ended certainly unwritten.")

UNMATCHED = "unmatched"  # a request no route matched (answered 404)


class HttpMetrics:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        # The labelled children per (route, method, status), looked up once: `labels()` takes a lock
        # and builds its key on every call, which was most of this middleware's ~9 µs a request.
        self._children: dict[tuple[str, str, int], tuple[Counter, Histogram]] = {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500  # an exception that escapes every handler is answered 500 by Starlette

        async def send_noting_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_noting_status)
        finally:
            template = getattr(scope.get("route"), "path", UNMATCHED)
            key = (template, scope["method"], status)
            children = self._children.get(key)
            if children is None:
                children = self._children[key] = (HTTP_REQUESTS.labels(template, key[1], str(status)),
                                                  HTTP_SECONDS.labels(template, key[1]))
            children[0].inc()
            children[1].observe(time.perf_counter() - started)


def counted_leads(kind: str, handler: Callable[[Request], Awaitable[Answer]]) -> Callable[[Request], Awaitable[Answer]]:
    """`handler` (the PING or the POST), counting what each seller was answered."""
    received, accepted = LEADS_RECEIVED.labels(kind), LEADS_ACCEPTED.labels(kind)

    async def counted(request: Request) -> Answer:
        received.inc()
        try:
            answer = await handler(request)
        except (ApiError, PayloadError) as exc:
            LEADS_REJECTED.labels(kind, exc.code).inc()
            raise
        if answer.http_status < 300:
            accepted.inc()
        elif answer.http_status < 500:
            code = answer.errors[0]["code"] if answer.errors else answer.status.upper()
            LEADS_REJECTED.labels(kind, code).inc()
        return answer
    return counted
