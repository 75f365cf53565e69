"""The sellers' routes: PING, POST, a lead's status, and their ratings of buyers.

Leads come as JSON, XML or URL-encoded forms (services.intake.formats); every answer is
`{"status", "lead_id", "errors": [{"code", "field", "message"}], ...}` in JSON or XML. Bad input gets
a specific 4xx, never a 500. A lead counts as accepted by the exchange once the broker has
acknowledged lead.submitted; the seller then gets the pipeline's verdict, or 202 with a status URL
if the verdict takes longer than the configured wait. A lead the broker has not acknowledged within
its bound is answered 202 too, and goes on being published (services.intake.publishing); 503 "not
queued" only when the lead certainly never reached the producer, and at once when too many are in
flight. docs/integration-spec.md is the contract.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass
from typing import cast

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker
from starlette.requests import Request
from starlette.routing import Route

from leadx.accounts import accounts
from leadx.accounts.directory import BuyerDirectory
from leadx.contracts import topics
from leadx.contracts.events.v1 import events_pb2 as ev
from leadx.dedup.scopes import DedupPolicy
from leadx.dedup.store import DedupStore
from leadx.leads import pii
from leadx.leads import status as lead_status
from leadx.leads.rules import RuleBook
from leadx.leads.sealing import PiiKeyring
from leadx.leads.verticals import FieldError, Verification, Vertical, load_verticals, verify
from leadx.platform.config import HmacKeyring
from leadx.platform.db.models import Lead
from leadx.platform.ids import is_lead_id, new_lead_id
from leadx.platform.kafka.producer import EventProducer
from leadx.platform.logs import log_event
from leadx.platform.redis.client import RedisClient, hash_tag
from leadx.platform.redis.pipeline import Pipeliner
from services.intake import ratings
from services.intake.buyers import bought_lead
from services.intake.endpoints import endpoint
from services.intake.formats import Answer, parse_body, request_format
from services.intake.guards import IdempotencyStore, LeadFingerprints
from services.intake.metrics import counted_leads
from services.intake.ping_tokens import (
    HASHED_FIELDS,
    PING_FIELDS,
    PingClaims,
    PingTokens,
    TokenError,
    mismatches,
    ping_values,
)
from services.intake.publishing import ACKED, BoundedPublisher, NotQueued, Overloaded, Slot
from services.intake.requests import ApiError, Callers, cents_field, read_body, text_field
from services.intake.verdicts import ACCEPTED, DUPLICATE, VerdictWaiter

log = logging.getLogger(__name__)

# Fields of a PING or POST that are about the sale, not the consumer.
RESERVED_KEYS = {"vertical", "min_price", "reference", "ping_token", "buyer"}
OWNER_MARK_TTL_S = 7 * 24 * 3600
MAX_REFERENCE = 100
_DUPLICATE_ERROR = {"code": "DUPLICATE", "field": None, "message": "the lead is a duplicate and cannot be sold"}
NOT_QUEUED = "not_queued"  # a lead's status once its publish, answered 202, ended certainly unwritten
_NOT_QUEUED_ERROR = {"code": "NOT_QUEUED", "field": None,
                     "message": "the lead was never queued and will not be sold: submit it again (the same "
                                "Idempotency-Key submits it anew)"}


@dataclass(frozen=True)
class SellerDeps:
    callers: Callers
    sessions: sessionmaker[Session]
    producer: EventProducer
    publisher: BoundedPublisher  # lead.submitted within a bound, and the in-flight limit
    verdicts: VerdictWaiter
    redis: RedisClient  # owner marks: which seller a lead not yet in SQL belongs to
    idempotency: IdempotencyStore
    dedup: DedupStore  # a PING's SSN check
    dedup_policy: DedupPolicy
    buyers: BuyerDirectory  # whether some buyer wants a PING's lead
    rulebook: RuleBook
    secret: bytes  # the platform's HMAC secret (identity keys, ping tokens)
    keyring: PiiKeyring  # seals the consumer's identifying fields before the lead is published
    namespace: str  # the topic prefix, reused to namespace Redis keys
    public_url: str  # base of the status URLs
    verdict_timeout_s: float
    ping_ttl_s: int
    phone_area_must_match: bool
    max_body_bytes: int


class Sellers:
    def __init__(self, deps: SellerDeps, hmac_keys: HmacKeyring | None = None) -> None:
        self.deps = deps
        self.verticals = load_verticals()
        self.tokens = PingTokens(deps.secret)
        # Every listed HMAC key (`deps.secret` alone without): a retried POST's first attempt may
        # have been fingerprinted under any of them while the key is rotated.
        self.fingerprints = LeadFingerprints(hmac_keys or deps.secret)
        # The owner marks of POSTs answered together share one round trip: a SET each through
        # redis-py cost ~15% of a POST's CPU.
        self.owner_marks = Pipeliner(deps.redis)

    def routes(self) -> list[Route]:
        return [
            Route("/v1/ping", endpoint(counted_leads("ping", self.ping)), methods=["POST"]),
            Route("/v1/post", endpoint(counted_leads("post", self.post_lead)), methods=["POST"]),
            Route("/v1/leads/{lead_id}", endpoint(self.get_lead), methods=["GET"]),
            Route("/v1/buyers/{account_id}/rating", endpoint(self.rate_buyer), methods=["GET", "PUT"]),
        ]

    # ------------------------------------------------------------------ PING

    async def ping(self, request: Request) -> Answer:
        deps = self.deps
        seller_id, payload = await self._seller_request(request, ("ping", "lead"))
        vertical = self._vertical_of(payload)
        buyer_id, _ = await self._direct_sale(payload, seller_id)
        unknown = sorted(set(payload) - set(PING_FIELDS) - set(HASHED_FIELDS) - {"vertical", "buyer"})
        if unknown:
            raise ApiError(422, "FIELD_INVALID", f"a PING carries only the minimal subset; not {', '.join(unknown)}",
                           field=unknown[0])
        result = self._checked(vertical, seller_id, {k: payload[k] for k in PING_FIELDS if k in payload},
                               partial=True)
        hashed = {}
        for name in HASHED_FIELDS:
            value = text_field(payload, name).lower()
            if value and (len(value) != 64 or any(c not in "0123456789abcdef" for c in value)):
                result.errors.append(_field_error(name, f"{name} must be the 64-character hex SHA-256 of the value"))
            elif value:
                hashed[name] = value
        if not result.ok:
            return _rejected(result)
        # At PING only the SSN is checked for duplicates: it is the one identity a PING carries.
        # Wanted: some buyer partnered with this seller, that the seller sells to, lacks this consumer.
        wanted_by = {b.id for b in deps.buyers.market.eligible(seller_id)} if not buyer_id else {buyer_id}
        if "ssn" in result.fields:
            identities = {pii.SSN: pii.identity_key(deps.secret, pii.SSN, result.fields["ssn"])}
            scopes = deps.dedup_policy.scopes(vertical.name)
            seen = await deps.dedup.check_submission(
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
        extra = {"ping_token": self.tokens.issue(claims), "expires_at_ms": claims.expires_at_ms,
                 "wanted": bool(wanted_by), **_warnings_of(result)}
        return Answer(ACCEPTED, 200, extra=extra)

    # ------------------------------------------------------------------ POST

    async def post_lead(self, request: Request) -> Answer:
        deps = self.deps
        seller_id, payload = await self._seller_request(request, ("lead",))
        vertical = self._vertical_of(payload)
        buyer_id, contract_price = await self._direct_sale(payload, seller_id)
        # A direct sale's price is its contract's; the auction uses it as the contracted buyer's bid.
        min_price = contract_price if buyer_id else (cents_field(payload, "min_price") or 0)
        result = self._checked(vertical, seller_id, {k: v for k, v in payload.items() if k not in RESERVED_KEYS})
        if not result.ok:
            return _rejected(result)
        token = text_field(payload, "ping_token")
        if token:
            try:
                claims = self.tokens.read(token, seller_id, int(time.time() * 1000))
            except TokenError as exc:
                raise ApiError(422, "FIELD_INVALID", str(exc), field="ping_token") from None
            different = mismatches(claims, vertical.name, buyer_id, result.fields, deps.secret)
            if different:
                return Answer("rejected", 422, errors=[
                    {"code": "PING_MISMATCH", "field": name, "message": f"{name} differs from the PING's"}
                    for name in different])
        reference = _reference(payload)
        lead = ev.Lead(
            lead_id=new_lead_id(), seller_id=seller_id, vertical=vertical.name, fields=result.fields,
            min_price_cents=min_price, submitted_at_ms=int(time.time() * 1000), direct_buyer_id=buyer_id,
            seller_reference=reference,
        )
        # The header is the key; without it the seller's own reference is, so a seller retrying with
        # only its own id never makes a second lead either.
        header_key = request.headers.get("idempotency-key", "").strip()[:200]
        idempotency_key = header_key or lead.seller_reference
        fingerprint = ""
        if idempotency_key:
            # Bound to the lead as the seller gave it: a direct sale's price is the contract's, which
            # may change between two attempts that the seller sent alike.
            fingerprint = self.fingerprints.of(vertical.name, result.fields, 0 if buyer_id else lead.min_price_cents,
                                               buyer_id, lead.seller_reference)
            first = await deps.idempotency.claim(seller_id, idempotency_key, lead.lead_id, fingerprint)
            if first is not None and await self._never_queued(first.lead_id):
                # The first attempt's lead was answered 202 but never queued: the key is free again
                # (its publish released it; this covers a retry that came before the release).
                await deps.idempotency.release(seller_id, idempotency_key, first.lead_id)
                first = await deps.idempotency.claim(seller_id, idempotency_key, lead.lead_id, fingerprint)
            if first is not None:
                if not first.same_lead:
                    # Answering the first lead's answer would tell the seller this consumer was
                    # submitted when it never was.
                    raise _key_reused(idempotency_key, bool(header_key), first.lead_id)
                return first.answer or self._pending(first.lead_id)
        try:
            outcome = await self._submit(lead, idempotency_key)
        except Exception:
            # Not queued (submit raises only when the lead certainly never reached the producer; an
            # unknown outcome is answered 202): a retry must be free to submit, not be told about a
            # lead that was never queued.
            if idempotency_key:
                await deps.idempotency.release(seller_id, idempotency_key)
            raise
        if result.warnings and outcome.status != DUPLICATE:
            # A duplicate is answered with DUPLICATE alone: nothing about the lead's identities.
            outcome.extra = {**outcome.extra, **_warnings_of(result)}
        if idempotency_key:
            await deps.idempotency.record(seller_id, idempotency_key, outcome, fingerprint)
        return outcome

    async def _submit(self, lead: ev.Lead, idempotency_key: str) -> Answer:
        try:
            # Refused at once, before anything is done, when too many leads are in flight. Not
            # before the idempotency key is read: a retry of a lead already answered gets that answer.
            slot = self.deps.publisher.admit()
        except Overloaded as exc:
            raise _not_queued_error(exc, "OVERLOADED") from None
        try:
            return await self._publish_and_wait(lead, slot, idempotency_key)
        finally:
            if not slot.kept:  # a publish going on in the background keeps its place until it ends
                slot.release()

    async def _publish_and_wait(self, lead: ev.Lead, slot: Slot, idempotency_key: str) -> Answer:
        deps = self.deps
        # The owner mark lets any replica answer the seller's status query before the ledger
        # has recorded the lead.
        await self.owner_marks.command("SET", self._owner_key(lead.lead_id), lead.seller_id, "EX", OWNER_MARK_TTL_S)
        verdict = deps.verdicts.expect(lead.lead_id)

        async def lost() -> None:
            await self.mark_never_queued(lead, idempotency_key)

        try:
            published = await deps.publisher.publish(slot, topics.LEAD_SUBMITTED, lead.lead_id,
                                                     ev.LeadSubmitted(lead=deps.keyring.seal(lead)), lost)
        except NotQueued as exc:
            deps.verdicts.forget(lead.lead_id)
            raise _not_queued_error(exc, "SERVICE_UNAVAILABLE") from None
        except BaseException:
            deps.verdicts.forget(lead.lead_id)
            raise
        if published != ACKED:
            # The broker may or may not have it; it goes on being published. Never "not
            # accepted": a seller retrying a lead that is then sold would make a duplicate.
            deps.verdicts.forget(lead.lead_id)
            return self._pending(lead.lead_id)
        try:
            outcome = await asyncio.wait_for(verdict, deps.verdict_timeout_s)
        except TimeoutError:
            deps.verdicts.forget(lead.lead_id)
            return self._pending(lead.lead_id)
        if outcome.status == ACCEPTED:
            return Answer(ACCEPTED, 200, lead.lead_id)
        if outcome.status == DUPLICATE:
            # The seller is told only DUPLICATE, never which identity matched.
            return Answer(DUPLICATE, 409, lead.lead_id, [_DUPLICATE_ERROR])
        return Answer("rejected", 422, lead.lead_id,
                      [{"code": "FIELD_INVALID", "field": None, "message": "the lead failed verification"}])

    def _pending(self, lead_id: str) -> Answer:
        status_url = f"{self.deps.public_url}/v1/leads/{lead_id}"
        return Answer("pending", 202, lead_id, extra={"status_url": status_url}, headers={"Location": status_url})

    def _owner_key(self, lead_id: str) -> str:
        # The owner and never-queued marks are read with one MGET (get_lead): on a cluster the lead id
        # is their hash tag, so they share a slot.
        return f"lead-owner:{self.deps.namespace}{hash_tag(self.deps.redis, lead_id) or lead_id}"

    def _never_queued_key(self, lead_id: str) -> str:
        return f"lead-not-queued:{self.deps.namespace}{hash_tag(self.deps.redis, lead_id) or lead_id}"

    async def mark_never_queued(self, lead: ev.Lead, idempotency_key: str) -> None:
        """A lead answered 202 whose publish ended certainly unwritten: its status says so (next to
        the owner mark, as long), and its idempotency key is released so a retry submits it again."""
        await self.deps.redis.set(self._never_queued_key(lead.lead_id), lead.seller_id, ex=OWNER_MARK_TTL_S)
        if idempotency_key:
            await self.deps.idempotency.release(lead.seller_id, idempotency_key, lead.lead_id)

    async def _never_queued(self, lead_id: str) -> bool:
        return bool(await self.deps.redis.exists(self._never_queued_key(lead_id)))

    # ------------------------------------------------------------------ status

    async def get_lead(self, request: Request) -> Answer:
        """A seller's lead's status; with a buyer's key, a lead it bought (services.intake.buyers)."""
        deps = self.deps
        lead_id = request.path_params["lead_id"]
        seller_id, buyer_id = await deps.callers.seller_or_buyer(request)
        if buyer_id is not None:
            # A buyer reads a lead it bought (AutoBid buyers have no post URL).
            return await bought_lead(deps.sessions, lead_id, buyer_id)
        assert seller_id is not None
        not_found = ApiError(404, "LEAD_NOT_FOUND", f"no lead {lead_id} for this seller", field="lead_id")
        if not is_lead_id(lead_id):
            raise not_found
        row = await asyncio.to_thread(_lead_row, deps.sessions, lead_id)
        if row is not None:
            if row.seller_id != seller_id:
                raise not_found
            return Answer(lead_status.PUBLIC[row.status], 200, lead_id)
        owner, never_queued = await deps.redis.mget(self._owner_key(lead_id), self._never_queued_key(lead_id))
        if owner is not None and cast(bytes, owner).decode() == seller_id:  # bytes: no decode_responses
            if never_queued is not None:
                return Answer(NOT_QUEUED, 200, lead_id, [_NOT_QUEUED_ERROR])
            return Answer("pending", 200, lead_id)
        raise not_found

    # ------------------------------------------------------------------ ratings

    async def rate_buyer(self, request: Request) -> Answer:
        callers = self.deps.callers
        seller_id = await callers.limited(request, callers.seller_keys)
        return await ratings.rating(request, self.deps.sessions, self.deps.max_body_bytes, seller_id, "buyer")

    # ------------------------------------------------------------------ shared by PING and POST

    async def _seller_request(self, request: Request, roots: tuple[str, ...]) -> tuple[str, dict]:
        """Authenticate, rate-limit and parse a PING or POST: (seller id, fields)."""
        callers = self.deps.callers
        seller_id = await callers.limited(request, callers.seller_keys)
        kind = request_format(request.headers.get("content-type", ""))
        return seller_id, parse_body(kind, await read_body(request, self.deps.max_body_bytes), roots)

    def _vertical_of(self, payload: dict) -> Vertical:
        name = payload.get("vertical")
        if name is None or name == "":
            raise ApiError(422, "FIELD_MISSING", "vertical is required", field="vertical")
        vertical = self.verticals.get(name) if isinstance(name, str) else None
        if vertical is None:
            raise ApiError(422, "FIELD_INVALID", f"vertical must be one of {', '.join(sorted(self.verticals))}",
                           field="vertical")
        return vertical

    async def _direct_sale(self, payload: dict, seller_id: str) -> tuple[str, int | None]:
        """(buyer id, contract price) for a direct sale; ("", None) for an auction sale."""
        buyer_id = text_field(payload, "buyer")
        if not buyer_id:
            return "", None
        if cents_field(payload, "min_price") is not None:
            raise ApiError(422, "FIELD_INVALID", "give min_price for an auction sale or buyer for a direct sale, "
                           "not both", field="min_price")
        price = await asyncio.to_thread(_contract_price, self.deps.sessions, seller_id, buyer_id)
        if price is None:
            raise ApiError(422, "FIELD_INVALID", f"you have no direct-sale contract with buyer {buyer_id}",
                           field="buyer")
        return buyer_id, price

    def _checked(self, vertical: Vertical, seller_id: str, fields: dict, partial: bool = False) -> Verification:
        deps = self.deps
        return verify(vertical, fields, deps.rulebook.rules_for(vertical.name, seller_id),
                      phone_area_must_match=deps.phone_area_must_match, partial=partial)


def _not_queued_error(exc: NotQueued, code: str) -> ApiError:
    """503 "not queued, retry": only ever for a lead certainly not handed to the broker."""
    reason = "too many leads are in flight" if code == "OVERLOADED" else "the exchange could not queue the lead"
    return ApiError(503, code, f"{reason}; nothing was queued: retry after Retry-After seconds",
                    headers={"Retry-After": str(exc.retry_after_s)})


def _rejected(result: Verification) -> Answer:
    return Answer("rejected", 422, errors=[e.as_dict() for e in result.errors], extra=_warnings_of(result))


def _warnings_of(result: Verification) -> dict:
    return {"warnings": [w.as_dict() for w in result.warnings]} if result.warnings else {}


def _key_reused(key: str, from_header: bool, first_lead_id: str) -> ApiError:
    named = f"Idempotency-Key '{key}'" if from_header else (
        f"reference '{key}' (your idempotency key when no Idempotency-Key header is sent)")
    own = "a key of its own" if from_header else "a reference of its own"
    return ApiError(422, "IDEMPOTENCY_KEY_REUSED",
                    f"{named} was first used for lead {first_lead_id}, with a different body; this lead was not "
                    f"submitted. Send it with {own}, or resend lead {first_lead_id}'s body unchanged to get its "
                    "answer", field=None if from_header else "reference")


def _reference(payload: dict) -> str:
    """The seller's own id for the lead: text, or a whole number, of at most MAX_REFERENCE characters."""
    value = payload.get("reference")
    if value is None:
        return ""
    if isinstance(value, bool) or not isinstance(value, str | int) or len(str(value)) > MAX_REFERENCE:
        raise ApiError(422, "FIELD_INVALID", f"reference must be text (or a whole number) of at most "
                       f"{MAX_REFERENCE} characters", field="reference")
    return str(value)


def _field_error(field: str, message: str) -> FieldError:
    return FieldError("FIELD_INVALID", field, message)


def _contract_price(sessions: sessionmaker[Session], seller_id: str, buyer_id: str) -> int | None:
    with sessions() as session:
        return accounts.contract_price(session, seller_id, buyer_id)


def _lead_row(sessions: sessionmaker[Session], lead_id: str):
    with sessions() as session:
        return session.execute(select(Lead.seller_id, Lead.status).where(Lead.id == lead_id)).first()
