"""A buyer's report of what became of a lead it bought (leadx.ledger.outcomes), stored in SQL;
the route (`POST /v1/leads/{lead_id}/outcome`, services.intake.buyers) then publishes it as
lead.outcome, like a return.

The claim is the lead_outcomes row (one per lead, buyer and outcome). A repeated report answers
as the first did, from the stored row, and publishes the same event again under the same event id:
if intake stopped between the claim and the publish, the buyer's retry completes the report. A
claim whose event could not be published is taken back, so the buyer's retry starts afresh.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from leadx.contracts.events.v1 import events_pb2 as ev
from leadx.ledger.outcomes import Report, at_problem
from leadx.platform.db.models import Lead, LeadOutcome, Sale
from services.intake.requests import ApiError

NOT_FOUND = "LEAD_NOT_FOUND"


@dataclass(frozen=True)
class Claim:
    stored: LeadOutcome
    event: ev.LeadOutcome
    created: bool  # False: a repeat of a report already stored


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
