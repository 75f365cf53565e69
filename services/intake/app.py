"""The seller-facing HTTP gateway (Starlette): PING, POST and lead status.

Leads come as JSON, XML or URL-encoded forms (services.intake.formats); every answer is
`{"status", "lead_id", "errors": [{"code", "field", "message"}], ...}` in JSON or XML. Bad input gets
a specific 4xx, never a 500. A lead counts as accepted by the exchange only once the broker has
acknowledged lead.submitted; the seller then gets the pipeline's verdict, or 202 with a status URL
if the verdict takes longer than the configured wait. docs/integration-spec.md is the contract.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from opentelemetry import trace
from redis.asyncio import Redis
from redis.exceptions import RedisError
from sqlalchemy import select
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from leadx.accounts import accounts, ratings
from leadx.accounts.directory import BuyerDirectory
from leadx.contracts import topics
from leadx.contracts.events.v1 import events_pb2 as ev
from leadx.dedup.scopes import DedupPolicy
from leadx.dedup.store import DedupStore
from leadx.leads import pii
from leadx.leads import status as lead_status
from leadx.leads.rules import RuleBook
from leadx.leads.verticals import FieldError, Verification, Vertical, load_verticals, verify
from leadx.ledger import returns
from leadx.ledger.returns import Refusal, ReturnPolicy, reason_problem
from leadx.platform.db.models import Buyer, Lead, Sale, Seller
from leadx.platform.health import Readiness
from leadx.platform.ids import derived_event_id, is_lead_id, new_lead_id
from leadx.platform.kafka.producer import EventProducer
from leadx.platform.logs import log_event
from leadx.platform.redis.pipeline import Pipeliner
from leadx.platform.telemetry import tracer
from services.intake.admin import admin_routes
from services.intake.bids import bid_handler
from services.intake.formats import (
    MEDIA_TYPE,
    Answer,
    PayloadError,
    answer_format,
    parse_body,
    render,
    request_format,
)
from services.intake.guards import IdempotencyStore, RateLimiter
from services.intake.lists import list_routes
from services.intake.openapi import openapi_document
from services.intake.outcomes import outcome_handler
from services.intake.ping_tokens import (
    HASHED_FIELDS,
    PING_FIELDS,
    PingClaims,
    PingTokens,
    TokenError,
    mismatches,
    ping_values,
)
from services.intake.requests import ApiError, ApiKeyAuth, cents_field, read_body, text_field
from services.intake.verdicts import ACCEPTED, DUPLICATE, VerdictWaiter

log = logging.getLogger(__name__)

# Fields of a PING or POST that are about the sale, not the consumer.
RESERVED_KEYS = {"vertical", "min_price", "reference", "ping_token", "buyer"}
OWNER_MARK_TTL_S = 7 * 24 * 3600
_DUPLICATE_ERROR = {"code": "DUPLICATE", "field": None, "message": "the lead is a duplicate and cannot be sold"}


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
    secret: bytes  # the platform's HMAC secret (identity keys, ping tokens)
    rulebook: RuleBook
    buyers: BuyerDirectory
    limiter: RateLimiter
    idempotency: IdempotencyStore
    ping_ttl_s: int
    phone_area_must_match: bool
    dedup: DedupStore
    dedup_policy: DedupPolicy
    return_policy: ReturnPolicy
    admin_api_key: str = ""  # ADMIN_API_KEY: the operators' admin API is off without one


def build_app(deps: IntakeDeps, lifespan=None) -> Starlette:
    auth = ApiKeyAuth(deps.sessions)
    buyer_auth = ApiKeyAuth(deps.sessions, accounts.buyer_for_key)
    verticals = load_verticals()
    tokens = PingTokens(deps.secret)
    dedup = deps.dedup
    # The owner marks of POSTs answered together share one round trip: a SET each through
    # redis-py cost ~15% of a POST's CPU.
    owner_marks = Pipeliner(deps.redis)

    def api(handler: Callable[[Request], Awaitable[Answer | Response]]):
        async def endpoint(request: Request) -> Response:
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
        return endpoint

    async def limited_account(request: Request, key_auth: ApiKeyAuth) -> str:
        """Authenticate and rate-limit a request: the account id. Every account, seller or buyer,
        gets the same per-second allowance, shared by all intake replicas."""
        account_id = await key_auth.account_id(request)
        limited = await deps.limiter.take(account_id)
        if limited:
            raise ApiError(429, "RATE_LIMITED", f"at most {deps.limiter.per_second} requests per second per account",
                           headers={"Retry-After": str(limited.retry_after_s)})
        return account_id

    async def seller_request(request: Request, roots: tuple[str, ...]) -> tuple[str, dict]:
        """Authenticate, rate-limit and parse a PING or POST: (seller id, fields)."""
        seller_id = await limited_account(request, auth)
        kind = request_format(request.headers.get("content-type", ""))
        return seller_id, parse_body(kind, await read_body(request, deps.max_body_bytes), roots)

    def vertical_of(payload: dict) -> Vertical:
        name = payload.get("vertical")
        if name is None or name == "":
            raise ApiError(422, "FIELD_MISSING", "vertical is required", field="vertical")
        vertical = verticals.get(name) if isinstance(name, str) else None
        if vertical is None:
            raise ApiError(422, "FIELD_INVALID", f"vertical must be one of {', '.join(sorted(verticals))}",
                           field="vertical")
        return vertical

    async def direct_sale(payload: dict, seller_id: str) -> tuple[str, int | None]:
        """(buyer id, contract price) for a direct sale; ("", None) for an auction sale."""
        buyer_id = text_field(payload, "buyer")
        if not buyer_id:
            return "", None
        if cents_field(payload, "min_price") is not None:
            raise ApiError(422, "FIELD_INVALID", "give min_price for an auction sale or buyer for a direct sale, "
                           "not both", field="min_price")
        price = await asyncio.to_thread(_contract_price, deps.sessions, seller_id, buyer_id)
        if price is None:
            raise ApiError(422, "FIELD_INVALID", f"you have no direct-sale contract with buyer {buyer_id}",
                           field="buyer")
        return buyer_id, price

    def checked(vertical: Vertical, seller_id: str, fields: dict, partial: bool = False) -> Verification:
        return verify(vertical, fields, deps.rulebook.rules_for(vertical.name, seller_id),
                      phone_area_must_match=deps.phone_area_must_match, partial=partial)

    def rejected(result: Verification) -> Answer:
        return Answer("rejected", 422, errors=[e.as_dict() for e in result.errors], extra=warnings_of(result))

    def warnings_of(result: Verification) -> dict:
        return {"warnings": [w.as_dict() for w in result.warnings]} if result.warnings else {}

    # ------------------------------------------------------------------ PING

    async def ping(request: Request) -> Answer:
        seller_id, payload = await seller_request(request, ("ping", "lead"))
        vertical = vertical_of(payload)
        buyer_id, _ = await direct_sale(payload, seller_id)
        unknown = sorted(set(payload) - set(PING_FIELDS) - set(HASHED_FIELDS) - {"vertical", "buyer"})
        if unknown:
            raise ApiError(422, "FIELD_INVALID", f"a PING carries only the minimal subset; not {', '.join(unknown)}",
                           field=unknown[0])
        result = checked(vertical, seller_id, {k: payload[k] for k in PING_FIELDS if k in payload}, partial=True)
        hashed = {}
        for name in HASHED_FIELDS:
            value = text_field(payload, name).lower()
            if value and (len(value) != 64 or any(c not in "0123456789abcdef" for c in value)):
                result.errors.append(_field_error(name, f"{name} must be the 64-character hex SHA-256 of the value"))
            elif value:
                hashed[name] = value
        if not result.ok:
            return rejected(result)
        # The patent: at PING only the SSN is checked for duplicates (the PING carries no other identity).
        # Wanted: some buyer partnered with this seller, that the seller sells to, lacks this consumer.
        wanted_by = {b.id for b in deps.buyers.market.eligible(seller_id)} if not buyer_id else {buyer_id}
        if "ssn" in result.fields:
            identities = {pii.SSN: pii.identity_key(deps.secret, pii.SSN, result.fields["ssn"])}
            scopes = deps.dedup_policy.scopes(vertical.name)
            seen = await dedup.check_submission(
                "", vertical.name, identities, int(time.time() * 1000), scopes.window_ms,
                platform=scopes.platform and not buyer_id, buyers=scopes.per_buyer, record=False)
            if seen.platform_duplicate_on or (buyer_id and buyer_id in seen.duplicate_buyer_ids):
                # The seller hears only DUPLICATE; the reason is kept here (no identity is logged).
                reason = ("platform duplicate on ssn" if seen.platform_duplicate_on
                          else f"the contracted buyer {buyer_id} already has this consumer")
                log_event(log, "ping duplicate", seller_id=seller_id, vertical=vertical.name, reason=reason)
                return Answer(DUPLICATE, 409, errors=[_DUPLICATE_ERROR])
            wanted_by -= seen.duplicate_buyer_ids
        now_ms = int(time.time() * 1000)
        claims = PingClaims(seller_id, vertical.name, buyer_id, now_ms + deps.ping_ttl_s * 1000,
                            ping_values(result.fields, hashed, deps.secret))
        extra = {"ping_token": tokens.issue(claims), "expires_at_ms": claims.expires_at_ms,
                 "wanted": bool(wanted_by), **warnings_of(result)}
        return Answer(ACCEPTED, 200, extra=extra)

    # ------------------------------------------------------------------ POST

    async def post_lead(request: Request) -> Answer:
        seller_id, payload = await seller_request(request, ("lead",))
        vertical = vertical_of(payload)
        buyer_id, contract_price = await direct_sale(payload, seller_id)
        # A direct sale's price is its contract's; the auction uses it as the contracted buyer's bid.
        min_price = contract_price if buyer_id else (cents_field(payload, "min_price") or 0)
        result = checked(vertical, seller_id, {k: v for k, v in payload.items() if k not in RESERVED_KEYS})
        if not result.ok:
            return rejected(result)
        token = text_field(payload, "ping_token")
        if token:
            try:
                claims = tokens.read(token, seller_id, int(time.time() * 1000))
            except TokenError as exc:
                raise ApiError(422, "FIELD_INVALID", str(exc), field="ping_token") from None
            different = mismatches(claims, vertical.name, buyer_id, result.fields, deps.secret)
            if different:
                return Answer("rejected", 422, errors=[
                    {"code": "PING_MISMATCH", "field": name, "message": f"{name} differs from the PING's"}
                    for name in different])
        reference = payload.get("reference")
        lead = ev.Lead(
            lead_id=new_lead_id(), seller_id=seller_id, vertical=vertical.name, fields=result.fields,
            min_price_cents=min_price, submitted_at_ms=int(time.time() * 1000), direct_buyer_id=buyer_id,
            seller_reference=str(reference)[:100] if reference is not None else "",
        )
        idempotency_key = request.headers.get("idempotency-key", "").strip()[:200] or lead.seller_reference
        if idempotency_key:
            first = await deps.idempotency.claim(seller_id, idempotency_key, lead.lead_id)
            if first is not None:
                return first.answer or pending(first.lead_id)
        try:
            outcome = await submit(lead)
        except Exception:
            # Not accepted (submit fails only before the broker's ack): a retry must be free to
            # submit, not be told about a lead that was never queued.
            if idempotency_key:
                await deps.idempotency.release(seller_id, idempotency_key)
            raise
        if result.warnings and outcome.status != DUPLICATE:
            # A duplicate is answered with DUPLICATE alone: nothing about the lead's identities.
            outcome.extra = {**outcome.extra, **warnings_of(result)}
        if idempotency_key:
            await deps.idempotency.record(seller_id, idempotency_key, outcome)
        return outcome

    def pending(lead_id: str) -> Answer:
        status_url = f"{deps.public_url}/v1/leads/{lead_id}"
        return Answer("pending", 202, lead_id, extra={"status_url": status_url}, headers={"Location": status_url})

    async def submit(lead: ev.Lead) -> Answer:
        # The owner mark lets any replica answer the seller's status query before the ledger
        # has recorded the lead.
        await owner_marks.command("SET", owner_key(lead.lead_id), lead.seller_id, "EX", OWNER_MARK_TTL_S)
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
            return pending(lead.lead_id)
        if outcome.status == ACCEPTED:
            return Answer(ACCEPTED, 200, lead.lead_id)
        if outcome.status == DUPLICATE:
            # The seller is told only DUPLICATE, never which identity matched (the patent).
            return Answer(DUPLICATE, 409, lead.lead_id, [_DUPLICATE_ERROR])
        return Answer("rejected", 422, lead.lead_id,
                      [{"code": "FIELD_INVALID", "field": None, "message": "the lead failed verification"}])

    def owner_key(lead_id: str) -> str:
        return f"lead-owner:{deps.namespace}{lead_id}"

    # ------------------------------------------------------------------ status

    async def get_lead(request: Request) -> Answer:
        lead_id = request.path_params["lead_id"]
        try:
            seller_id = await auth.account_id(request)
        except ApiError:
            # Not a seller's key: a buyer reads a lead it bought (AutoBid buyers have no post URL).
            return await bought_lead(lead_id, await buyer_auth.account_id(request))
        not_found = ApiError(404, "LEAD_NOT_FOUND", f"no lead {lead_id} for this seller", field="lead_id")
        if not is_lead_id(lead_id):
            raise not_found
        row = await asyncio.to_thread(_lead_row, deps.sessions, lead_id)
        if row is not None:
            if row.seller_id != seller_id:
                raise not_found
            return Answer(lead_status.PUBLIC[row.status], 200, lead_id)
        owner = await deps.redis.get(owner_key(lead_id))
        if owner is not None and owner.decode() == seller_id:
            return Answer("pending", 200, lead_id)
        raise not_found

    async def bought_lead(lead_id: str, buyer_id: str) -> Answer:
        bought = None
        if is_lead_id(lead_id):
            bought = await asyncio.to_thread(_bought_lead, deps.sessions, lead_id, buyer_id)
        if bought is None:
            raise ApiError(404, "LEAD_NOT_FOUND", f"you bought no lead {lead_id}", field="lead_id")
        fields, price_cents, status = bought
        return Answer(lead_status.PUBLIC[status], 200, lead_id, extra={"price_cents": price_cents, "lead": fields})

    # ------------------------------------------------------------------ returns (buyers)

    async def return_lead(request: Request) -> Answer:
        buyer_id = await limited_account(request, buyer_auth)
        lead_id = request.path_params["lead_id"]
        if not is_lead_id(lead_id):
            raise ApiError(404, returns.NOT_FOUND, f"you bought no lead {lead_id}", field="lead_id")
        kind = request_format(request.headers.get("content-type", ""))
        payload = parse_body(kind, await read_body(request, deps.max_body_bytes), ("return",))
        reason = payload.get("reason")
        if reason is not None and not isinstance(reason, str):
            raise ApiError(422, "FIELD_INVALID", "reason must be text", field="reason")
        problem = reason_problem(reason or "")
        if problem:
            code = "FIELD_INVALID" if reason and reason.strip() else "FIELD_MISSING"
            raise ApiError(422, code, problem, field="reason")
        now_ms = int(time.time() * 1000)
        claimed = await asyncio.to_thread(returns.claim_return, deps.sessions, deps.return_policy, lead_id,
                                          buyer_id, reason.strip(), now_ms)
        if isinstance(claimed, Refusal):
            raise ApiError(claimed.http_status, claimed.code, claimed.message, field="lead_id")
        try:
            await deps.producer.publish(topics.LEAD_RETURNED, lead_id, claimed,
                                        derived_event_id(lead_id, "return", buyer_id))
        except Exception:
            await asyncio.to_thread(returns.unclaim_return, deps.sessions, lead_id, buyer_id, now_ms)
            raise ApiError(503, "SERVICE_UNAVAILABLE", "the exchange could not record the return; retry",
                           headers={"Retry-After": "1"}) from None
        log_event(log, "lead returned", lead_id=lead_id, buyer_id=buyer_id, seller_id=claimed.seller_id)
        return Answer("returned", 200, lead_id, extra={"credited_cents": claimed.price_cents,
                                                        "returned_at_ms": claimed.returned_at_ms})

    # ------------------------------------------------------------------ ratings (the patent's Partnerships)

    def rating_endpoint(rater_auth: ApiKeyAuth, ratee_model, party: str):
        """GET: your stars for that account and the community's average. PUT {"stars": 1-5}: rate it,
        once you have traded with it (a buyer bought from the seller, a seller sold to the buyer)."""
        async def handler(request: Request) -> Answer:
            rater_id = await limited_account(request, rater_auth)
            ratee_id = request.path_params["account_id"]
            stars = None
            if request.method == "PUT":
                kind = request_format(request.headers.get("content-type", ""))
                stars = parse_body(kind, await read_body(request, deps.max_body_bytes), ("rating",)).get("stars")
                problem = ratings.stars_problem(stars)
                if problem:
                    raise ApiError(422, "FIELD_MISSING" if stars is None else "FIELD_INVALID", problem, field="stars")
            found = await asyncio.to_thread(_rate_or_view, deps.sessions, ratee_model, party, rater_id, ratee_id,
                                            None if stars is None else int(stars))
            if isinstance(found, ApiError):
                raise found
            return Answer("rated" if stars is not None else "ok", 200, None, extra={
                party: found.ratee_id, "your_stars": found.your_stars, "average_stars": found.average_stars,
                "ratings": found.ratings})
        return handler

    async def healthz(_request: Request) -> JSONResponse:
        return JSONResponse({"status": "ok"})

    async def readyz(_request: Request) -> JSONResponse:
        failing = deps.readiness.failing()
        if failing:
            return JSONResponse({"status": "not ready", "failing": failing}, status_code=503)
        return JSONResponse({"status": "ready"})

    async def openapi(_request: Request) -> JSONResponse:
        return JSONResponse(openapi_document())

    async def not_found(request: Request, _exc: Exception) -> Response:
        return respond(request, ApiError(404, "NOT_FOUND", f"no route {request.method} {request.url.path}").answer())

    async def method_not_allowed(request: Request, _exc: Exception) -> Response:
        return respond(request, ApiError(405, "METHOD_NOT_ALLOWED", f"{request.method} is not allowed here").answer())

    return Starlette(
        routes=[
            Route("/v1/ping", api(ping), methods=["POST"]),
            Route("/v1/post", api(post_lead), methods=["POST"]),
            Route("/v1/leads/{lead_id}", api(get_lead), methods=["GET"]),
            Route("/v1/leads/{lead_id}/return", api(return_lead), methods=["POST"]),
            Route("/v1/leads/{lead_id}/outcome", api(outcome_handler(
                deps.sessions, deps.producer, deps.max_body_bytes,
                lambda request: limited_account(request, buyer_auth))), methods=["POST"]),
            Route("/v1/sellers/{account_id}/rating", api(rating_endpoint(buyer_auth, Seller, "seller")),
                  methods=["GET", "PUT"]),
            Route("/v1/buyers/{account_id}/rating", api(rating_endpoint(auth, Buyer, "buyer")),
                  methods=["GET", "PUT"]),
            Route("/v1/auctions/{auction_id}/bids", api(bid_handler(
                deps.redis, deps.producer, deps.namespace, deps.max_body_bytes,
                lambda request: limited_account(request, buyer_auth))), methods=["POST"]),
            # Operators' admin API (services.intake.admin): accounts, partnerships, profiles.
            *admin_routes(deps.sessions, deps.admin_api_key, api),
            # List auctions (services.intake.lists): operators open them, dealers bid and export.
            *list_routes(deps.sessions, deps.admin_api_key, api, lambda request: limited_account(request, buyer_auth),
                         deps.max_body_bytes),
            Route("/openapi.json", openapi, methods=["GET"]),
            Route("/healthz", healthz, methods=["GET"]),
            Route("/readyz", readyz, methods=["GET"]),
        ],
        exception_handlers={404: not_found, 405: method_not_allowed},
        lifespan=lifespan,
    )


def respond(request: Request, result: Answer) -> Response:
    """Render in the format the request's Content-Type and Accept call for."""
    kind = answer_format(request.headers.get("content-type", ""), request.headers.get("accept", ""))
    return Response(render(result, kind), status_code=result.http_status, headers=result.headers,
                    media_type=MEDIA_TYPE[kind])


def _field_error(field: str, message: str) -> FieldError:
    return FieldError("FIELD_INVALID", field, message)


def _contract_price(sessions: sessionmaker[Session], seller_id: str, buyer_id: str) -> int | None:
    with sessions() as session:
        return accounts.contract_price(session, seller_id, buyer_id)


def _lead_row(sessions: sessionmaker[Session], lead_id: str):
    with sessions() as session:
        return session.execute(select(Lead.seller_id, Lead.status).where(Lead.id == lead_id)).first()


def _bought_lead(sessions: sessionmaker[Session], lead_id: str, buyer_id: str) -> tuple[dict, int, str] | None:
    """The fields, price and status of a lead this buyer bought, or None."""
    with sessions() as session:
        row = session.execute(
            select(Lead.fields, Sale.price_cents, Lead.status).join(Sale, Sale.lead_id == Lead.id)
            .where(Lead.id == lead_id, Sale.buyer_id == buyer_id, Sale.sold.is_(True))).first()
    return (row[0] or {}, row[1], row[2]) if row else None


def _rate_or_view(sessions: sessionmaker[Session], ratee_model, party: str, rater_id: str, ratee_id: str,
                  stars: int | None) -> ratings.RatingView | ApiError:
    with sessions.begin() as session:
        if session.get(ratee_model, ratee_id) is None:
            return ApiError(404, "ACCOUNT_NOT_FOUND", f"no {party} {ratee_id}", field=party)
        if stars is not None:
            buyer_id, seller_id = (rater_id, ratee_id) if party == "seller" else (ratee_id, rater_id)
            if not ratings.have_traded(session, buyer_id, seller_id):
                return ApiError(403, "NOT_A_TRADING_PARTNER",
                                f"you can rate a {party} once you have traded with it", field=party)
            ratings.rate(session, rater_id, ratee_id, stars, int(time.time() * 1000))
            session.flush()
        return ratings.view(session, rater_id, ratee_id)
