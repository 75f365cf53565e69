"""How every intake route answers: a server span named by its method and path, refusals and
unreadable bodies as answers with codes, a failing Redis or SQL as 503, and the answer rendered in
the format the request calls for; a method the path does not serve as 405 with the `Allow` header
naming those it does. Also the routes that are no audience's, which take no key and are held to
their caller's address's rate limit: health, readiness and the OpenAPI document.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

from opentelemetry import trace
from redis.exceptions import RedisError
from sqlalchemy.exc import SQLAlchemyError
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Match

from leadx.platform.health import Readiness
from leadx.platform.telemetry import tracer
from services.intake.formats import MEDIA_TYPE, Answer, PayloadError, answer_format, render
from services.intake.openapi import openapi_document
from services.intake.requests import ApiError, Callers

log = logging.getLogger(__name__)

Handler = Callable[[Request], Awaitable[Answer | Response]]


def endpoint(handler: Handler) -> Callable[[Request], Awaitable[Response]]:
    """The route's endpoint for a handler that returns an Answer (or a ready Response) or raises."""
    async def answered(request: Request) -> Response:
        with tracer().start_as_current_span(
            # The path from the scope: request.url builds a URL object, ~3% of a POST.
            f"{request.method} {request.scope['path']}", kind=trace.SpanKind.SERVER
        ):
            try:
                result = await handler(request)
            except ApiError as exc:
                result = exc.answer()
            except PayloadError as exc:
                status = 415 if exc.code == "UNSUPPORTED_MEDIA_TYPE" else 400
                result = ApiError(status, exc.code, exc.message).answer()
            except (RedisError, SQLAlchemyError):
                # Our own dependency failed, not the seller's request: 503, retry (with the same Idempotency-Key).
                log.warning("intake dependency unavailable", exc_info=True)
                result = ApiError(503, "SERVICE_UNAVAILABLE",
                                  "the exchange is briefly unavailable; retry with the same Idempotency-Key",
                                  headers={"Retry-After": "1"}).answer()
        # A ready Response is a download (a list auction's CSV export); errors are still answers.
        return result if isinstance(result, Response) else respond(request, result)
    return answered


def respond(request: Request, result: Answer) -> Response:
    """Render in the format the request's Content-Type and Accept call for."""
    kind = answer_format(request.headers.get("content-type", ""), request.headers.get("accept", ""))
    return Response(render(result, kind), status_code=result.http_status, headers=result.headers,
                    media_type=MEDIA_TYPE[kind])


async def not_found(request: Request, _exc: Exception) -> Response:
    return respond(request, ApiError(404, "NOT_FOUND", f"no route {request.method} {request.url.path}").answer())


async def method_not_allowed(request: Request, _exc: Exception) -> Response:
    # Every route of the path, not only the first that matched it (Starlette's own Allow): a path
    # may be served by several routes, one per method.
    allowed = sorted({method for route in request.app.routes
                      if route.matches(request.scope)[0] != Match.NONE for method in getattr(route, "methods", ())})
    return respond(request, ApiError(405, "METHOD_NOT_ALLOWED",
                                     f"{request.method} is not allowed here; {', '.join(allowed)} are",
                                     headers={"Allow": ", ".join(allowed)}).answer())


def open_endpoint(handler: Handler, callers: Callers | None) -> Callable[[Request], Awaitable[Response]]:
    """The endpoint of a route that takes no key, held to its caller's address's rate limit
    (`callers`; None: no limit)."""
    async def limited(request: Request) -> Answer | Response:
        if callers is not None:
            await callers.anonymous(request)
        return await handler(request)
    return endpoint(limited)


async def healthz(_request: Request) -> JSONResponse:
    return JSONResponse({"status": "ok"})


async def readyz(request: Request) -> JSONResponse:
    readiness: Readiness = request.app.state.readiness
    failing = readiness.failing()
    if failing:
        return JSONResponse({"status": "not ready", "failing": failing}, status_code=503)
    return JSONResponse({"status": "ready"})


async def openapi(request: Request) -> Response:
    """The document for the constraint rules this intake applies (`app.state.rulebook`), built on the
    first request (in a thread: a third of a second) and kept."""
    state = request.app.state
    rendered = getattr(state, "openapi", None)
    if rendered is None:
        def build() -> bytes:
            return bytes(JSONResponse(openapi_document(getattr(state, "rulebook", None))).body)
        rendered = state.openapi = await asyncio.to_thread(build)
    return Response(rendered, media_type="application/json")
