"""The seller-facing HTTP gateway (Starlette).

Every answer is JSON `{"status", "lead_id", "errors": [{"code", "field", "message"}]}`; bad input
gets a specific 4xx, never a 500. A lead counts as accepted by the exchange only once the broker
has acknowledged lead.submitted; the seller then gets the pipeline's verdict, or 202 with a status
URL if the verdict takes longer than the configured wait.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from opentelemetry import trace
from redis.asyncio import Redis
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker
from starlette.applications import Starlette
from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from leadx import accounts, lead_status, topics
from leadx.db.models import Lead
from leadx.events.v1 import events_pb2 as ev
from leadx.health import Readiness
from leadx.ids import is_lead_id, new_lead_id
from leadx.kafka import EventProducer
from leadx.telemetry import tracer
from leadx.verticals import FieldError, load_verticals, verify
from services.intake.verdicts import ACCEPTED, DUPLICATE, VerdictWaiter

RESERVED_KEYS = {"vertical", "min_price", "reference"}
OWNER_MARK_TTL_S = 7 * 24 * 3600
_VERDICT_HTTP = {ACCEPTED: 200, DUPLICATE: 409}


@dataclass
class IntakeDeps:
    producer: EventProducer
    verdicts: VerdictWaiter
    redis: Redis
    sessions: sessionmaker[Session]
    readiness: Readiness
    verdict_timeout_s: float
    max_body_bytes: int
    public_url: str
    namespace: str  # the topic prefix, reused to namespace Redis keys


class ApiError(Exception):
    def __init__(self, http_status: int, code: str, message: str, field: str | None = None,
                 headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.http_status, self.code, self.message, self.field = http_status, code, message, field
        self.headers = headers


def answer(status: str, http_status: int, lead_id: str | None = None,
           errors: list[dict] | None = None, **extra: object) -> JSONResponse:
    body = {"status": status, "lead_id": lead_id, "errors": errors or [], **extra}
    return JSONResponse(body, status_code=http_status)


def error_answer(exc: ApiError) -> JSONResponse:
    response = answer("rejected", exc.http_status,
                      errors=[{"code": exc.code, "field": exc.field, "message": exc.message}])
    for name, value in (exc.headers or {}).items():
        response.headers[name] = value
    return response


class SellerAuth:
    """Bearer API key → seller id, cached briefly so the hot path does not hit SQL per request."""

    TTL_S = 30.0
    MAX_CACHED = 10_000  # bounded, so a flood of made-up keys cannot grow it without limit

    def __init__(self, sessions: sessionmaker[Session]) -> None:
        self.sessions = sessions
        self._cache: dict[str, tuple[str | None, float]] = {}

    async def seller_id(self, request: Request) -> str:
        header = request.headers.get("authorization", "")
        scheme, _, key = header.partition(" ")
        if scheme.lower() != "bearer" or not key.strip():
            raise ApiError(401, "AUTH_INVALID", "send your API key as 'Authorization: Bearer <key>'")
        key = key.strip()
        cached = self._cache.get(key)
        now = time.monotonic()
        if cached is None or cached[1] < now:
            seller = await asyncio.to_thread(self._lookup, key)
            cached = (seller, now + self.TTL_S)
            if len(self._cache) >= self.MAX_CACHED:
                self._cache.clear()
            self._cache[key] = cached
        if cached[0] is None:
            raise ApiError(401, "AUTH_INVALID", "the API key is not valid or has been revoked")
        return cached[0]

    def _lookup(self, key: str) -> str | None:
        with self.sessions() as session:
            return accounts.seller_for_key(session, key)


async def read_json_object(request: Request, max_bytes: int) -> dict:
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type != "application/json":
        raise ApiError(415, "UNSUPPORTED_MEDIA_TYPE",
                       f"content type {content_type or '(none)'} is not supported; send application/json")
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > max_bytes:
        raise ApiError(413, "PAYLOAD_TOO_LARGE", f"the body must be at most {max_bytes} bytes")
    body = bytearray()
    try:
        async for chunk in request.stream():
            body += chunk
            if len(body) > max_bytes:
                raise ApiError(413, "PAYLOAD_TOO_LARGE", f"the body must be at most {max_bytes} bytes")
    except ClientDisconnect:
        raise ApiError(400, "PAYLOAD_MALFORMED", "the client disconnected mid-body") from None
    try:
        payload = json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as exc:
        raise ApiError(400, "PAYLOAD_MALFORMED", f"the body is not valid JSON: {exc}") from None
    if not isinstance(payload, dict):
        raise ApiError(400, "PAYLOAD_MALFORMED", "the body must be a JSON object of lead fields")
    return payload


def parse_min_price(payload: dict) -> int:
    value = payload.get("min_price", 0)
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ApiError(422, "FIELD_INVALID", "min_price must be a non-negative whole number of cents",
                       field="min_price")
    return value


def build_app(deps: IntakeDeps, lifespan=None) -> Starlette:
    auth = SellerAuth(deps.sessions)
    verticals = load_verticals()

    def api(handler: Callable[[Request], Awaitable[JSONResponse]]):
        async def endpoint(request: Request) -> JSONResponse:
            with tracer().start_as_current_span(
                f"{request.method} {request.url.path}", kind=trace.SpanKind.SERVER
            ):
                try:
                    return await handler(request)
                except ApiError as exc:
                    return error_answer(exc)
        return endpoint

    async def post_lead(request: Request) -> JSONResponse:
        seller_id = await auth.seller_id(request)
        payload = await read_json_object(request, deps.max_body_bytes)
        vertical_name = payload.get("vertical")
        if not vertical_name:
            raise ApiError(422, "FIELD_MISSING", "vertical is required", field="vertical")
        vertical = verticals.get(vertical_name) if isinstance(vertical_name, str) else None
        if vertical is None:
            raise ApiError(422, "FIELD_INVALID",
                           f"vertical must be one of {', '.join(sorted(verticals))}", field="vertical")
        min_price = parse_min_price(payload)
        checked = verify(vertical, {k: v for k, v in payload.items() if k not in RESERVED_KEYS})
        if not checked.ok:
            return answer("rejected", 422, errors=[e.as_dict() for e in checked.errors])
        reference = payload.get("reference")
        lead = ev.Lead(
            lead_id=new_lead_id(), seller_id=seller_id, vertical=vertical.name, fields=checked.fields,
            min_price_cents=min_price, submitted_at_ms=int(time.time() * 1000),
            seller_reference=str(reference)[:100] if reference is not None else "",
        )
        return await submit(lead)

    async def submit(lead: ev.Lead) -> JSONResponse:
        # The owner mark lets any replica answer the seller's status query before the ledger
        # has recorded the lead.
        await deps.redis.set(owner_key(lead.lead_id), lead.seller_id, ex=OWNER_MARK_TTL_S)
        verdict = deps.verdicts.expect(lead.lead_id)
        try:
            await deps.producer.publish(topics.LEAD_SUBMITTED, lead.lead_id, ev.LeadSubmitted(lead=lead))
        except Exception:
            deps.verdicts.forget(lead.lead_id)
            raise ApiError(503, "SERVICE_UNAVAILABLE", "the exchange could not queue the lead; retry",
                           headers={"Retry-After": "1"}) from None
        try:
            outcome = await asyncio.wait_for(verdict, deps.verdict_timeout_s)
        except TimeoutError:
            deps.verdicts.forget(lead.lead_id)
            status_url = f"{deps.public_url}/v1/leads/{lead.lead_id}"
            response = answer("pending", 202, lead.lead_id, status_url=status_url)
            response.headers["Location"] = status_url
            return response
        if outcome.status == ACCEPTED:
            return answer(ACCEPTED, 200, lead.lead_id)
        if outcome.status == DUPLICATE:
            # The seller is told only DUPLICATE, never which identity matched (the patent).
            error = FieldError("DUPLICATE", "", "the lead is a duplicate and cannot be sold")
            return answer(DUPLICATE, 409, lead.lead_id, [{**error.as_dict(), "field": None}])
        return answer("rejected", 422, lead.lead_id,
                      [{"code": "FIELD_INVALID", "field": None, "message": "the lead failed verification"}])

    def owner_key(lead_id: str) -> str:
        return f"lead-owner:{deps.namespace}{lead_id}"

    async def get_lead(request: Request) -> JSONResponse:
        seller_id = await auth.seller_id(request)
        lead_id = request.path_params["lead_id"]
        not_found = ApiError(404, "LEAD_NOT_FOUND", f"no lead {lead_id} for this seller", field="lead_id")
        if not is_lead_id(lead_id):
            raise not_found
        row = await asyncio.to_thread(_lead_row, deps.sessions, lead_id)
        if row is not None:
            if row.seller_id != seller_id:
                raise not_found
            return answer(lead_status.PUBLIC[row.status], 200, lead_id)
        owner = await deps.redis.get(owner_key(lead_id))
        if owner is not None and owner.decode() == seller_id:
            return answer("pending", 200, lead_id)
        raise not_found

    async def healthz(_request: Request) -> JSONResponse:
        return JSONResponse({"status": "ok"})

    async def readyz(_request: Request) -> JSONResponse:
        failing = deps.readiness.failing()
        if failing:
            return JSONResponse({"status": "not ready", "failing": failing}, status_code=503)
        return JSONResponse({"status": "ready"})

    async def not_found(request: Request, _exc: Exception) -> JSONResponse:
        return error_answer(ApiError(404, "NOT_FOUND", f"no route {request.method} {request.url.path}"))

    async def method_not_allowed(request: Request, _exc: Exception) -> JSONResponse:
        return error_answer(ApiError(405, "METHOD_NOT_ALLOWED", f"{request.method} is not allowed here"))

    return Starlette(
        routes=[
            Route("/v1/post", api(post_lead), methods=["POST"]),
            Route("/v1/leads/{lead_id}", api(get_lead), methods=["GET"]),
            Route("/healthz", healthz, methods=["GET"]),
            Route("/readyz", readyz, methods=["GET"]),
        ],
        exception_handlers={404: not_found, 405: method_not_allowed},
        lifespan=lifespan,
    )


def _lead_row(sessions: sessionmaker[Session], lead_id: str):
    with sessions() as session:
        return session.execute(select(Lead.seller_id, Lead.status).where(Lead.id == lead_id)).first()
