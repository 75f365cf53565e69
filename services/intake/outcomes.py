"""`POST /v1/leads/{lead_id}/outcome`: a buyer reports what became of a lead it bought
(leadx.ledger.outcomes). Stored in SQL, then published as lead.outcome, like a return.

The claim is the lead_outcomes row (one per lead, buyer and outcome). A repeated report answers
as the first did, from the stored row, and publishes the same event again under the same event id:
if intake stopped between the claim and the publish, the buyer's retry completes the report. A
claim whose event could not be published is taken back, so the buyer's retry starts afresh.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker
from starlette.requests import Request

from leadx.contracts import topics
from leadx.contracts.events.v1 import events_pb2 as ev
from leadx.ledger.outcomes import FieldProblem, Report, at_problem, read_report
from leadx.platform.db.models import Lead, LeadOutcome, Sale
from leadx.platform.ids import derived_event_id, is_lead_id
from leadx.platform.kafka.producer import EventProducer
from leadx.platform.logs import log_event
from services.intake.formats import Answer, parse_body, request_format
from services.intake.requests import ApiError, read_body

log = logging.getLogger(__name__)
NOT_FOUND = "LEAD_NOT_FOUND"


@dataclass(frozen=True)
class Claim:
    stored: LeadOutcome
    event: ev.LeadOutcome
    created: bool  # False: a repeat of a report already stored


def outcome_handler(sessions: sessionmaker[Session], producer: EventProducer, max_body_bytes: int,
                    authenticate: Callable[[Request], Awaitable[str]]) -> Callable[[Request], Awaitable[Answer]]:
    async def report_outcome(request: Request) -> Answer:
        buyer_id = await authenticate(request)
        lead_id = request.path_params["lead_id"]
        if not is_lead_id(lead_id):
            raise ApiError(404, NOT_FOUND, f"you bought no lead {lead_id}", field="lead_id")
        kind = request_format(request.headers.get("content-type", ""))
        report = read_report(parse_body(kind, await read_body(request, max_body_bytes), ("outcome",)))
        if isinstance(report, FieldProblem):
            raise ApiError(422, report.code, report.message, field=report.field)
        now_ms = int(time.time() * 1000)
        claim = await asyncio.to_thread(claim_outcome, sessions, lead_id, buyer_id, report, now_ms)
        stored = claim.stored
        try:
            await producer.publish(topics.LEAD_OUTCOME, lead_id, claim.event,
                                   derived_event_id(lead_id, "outcome", buyer_id, stored.outcome))
        except Exception:
            if claim.created:
                await asyncio.to_thread(unclaim, sessions, lead_id, buyer_id, stored.outcome, now_ms)
            raise ApiError(503, "SERVICE_UNAVAILABLE", "the exchange could not record the outcome; retry",
                           headers={"Retry-After": "1"}) from None
        log_event(log, "lead outcome reported", lead_id=lead_id, buyer_id=buyer_id, outcome=stored.outcome)
        return Answer("reported", 201 if claim.created else 200, lead_id, extra={
            "outcome": stored.outcome, "at_ms": stored.at_ms, "reported_at_ms": stored.reported_at_ms,
            "note": stored.note})

    return report_outcome


def claim_outcome(sessions: sessionmaker[Session], lead_id: str, buyer_id: str, report: Report,
                  now_ms: int) -> Claim:
    """Store the report unless it is stored already; ApiError when this buyer bought no such lead
    or the time cannot be."""
    try:
        with sessions.begin() as session:
            sale = session.get(Sale, (lead_id, buyer_id))
            if sale is None or not sale.sold:
                raise ApiError(404, NOT_FOUND, f"you bought no lead {lead_id}", field="lead_id")
            stored = session.get(LeadOutcome, (lead_id, buyer_id, report.outcome))
            created = stored is None
            if stored is None:
                # Without a time, now; but never before the sale, should our clock trail the one
                # that recorded it.
                at_ms = report.at_ms if report.at_ms is not None else max(now_ms, sale.closed_at_ms)
                problem = at_problem(at_ms, sale.closed_at_ms, now_ms)
                if problem:
                    raise ApiError(422, "FIELD_INVALID", problem, field="at")
                stored = LeadOutcome(lead_id=lead_id, buyer_id=buyer_id, outcome=report.outcome,
                                     seller_id=sale.seller_id, at_ms=at_ms, reported_at_ms=now_ms, note=report.note)
                session.add(stored)
            return Claim(stored, _event(sale, stored, session.get(Lead, lead_id)), created)
    except IntegrityError:  # the same report stored by a simultaneous request: answer as a repeat
        return claim_outcome(sessions, lead_id, buyer_id, report, now_ms)


def unclaim(sessions: sessionmaker[Session], lead_id: str, buyer_id: str, outcome: str, reported_at_ms: int) -> None:
    """Take back a report whose event could not be published (the buyer is told to retry); only
    the one this request stored, never an earlier report's."""
    with sessions.begin() as session:
        stored = session.get(LeadOutcome, (lead_id, buyer_id, outcome))
        if stored is not None and stored.reported_at_ms == reported_at_ms:
            session.delete(stored)


def _event(sale: Sale, stored: LeadOutcome, lead: Lead | None) -> ev.LeadOutcome:
    """What a response model and analysts read: the outcome, its times and the lead's market;
    no PII, and not the note (free text that may name the consumer)."""
    zip_code = str((lead.fields or {}).get("zip", "")) if lead is not None else ""
    return ev.LeadOutcome(
        lead_id=stored.lead_id, buyer_id=stored.buyer_id, seller_id=stored.seller_id, outcome=stored.outcome,
        at_ms=stored.at_ms, sold_at_ms=sale.closed_at_ms, vertical=sale.vertical, state=sale.state,
        zip3=zip_code[:3], probability=(lead.probability or 0.0) if lead is not None else 0.0,
        cluster=(lead.cluster or "") if lead is not None else "")
