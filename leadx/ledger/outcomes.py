"""Outcome feedback: what a buyer reports became of a lead it bought (contacted, converted,
returned, not contacted), and the rows a response model trains on.

The rules for a report are pure; services.intake.outcomes applies them against the sale in SQL.
`training_rows` only reads. A "returned" report moves no money: the return that credits the buyer
is the return endpoint's (leadx.ledger.returns), and the trainer counts either as returned.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass

from sqlalchemy import and_, select
from sqlalchemy.orm import Session

from leadx.platform.db.models import Lead, LeadOutcome, Sale

CONTACTED, CONVERTED, RETURNED, NOT_CONTACTED = "contacted", "converted", "returned", "not_contacted"
OUTCOMES = (CONTACTED, CONVERTED, RETURNED, NOT_CONTACTED)
MAX_NOTE_CHARS = 500
# Buyers' clocks drift from ours: a time a little ahead of ours is theirs, not a mistake.
FUTURE_SLACK_MS = 5 * 60 * 1000
_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
AT_FORMAT = "an ISO-8601 time with its zone, e.g. 2024-05-01T14:30:00Z"


@dataclass(frozen=True)
class Report:
    outcome: str
    at_ms: int | None  # None: now
    note: str


@dataclass(frozen=True)
class FieldProblem:
    code: str  # FIELD_MISSING or FIELD_INVALID
    field: str
    message: str


def read_report(payload: Mapping[str, object]) -> Report | FieldProblem:
    """A report from a request's fields (JSON keeps types; XML and forms give strings, so an empty
    `at` or `note` means not given)."""
    outcome = payload.get("outcome")
    if outcome is None or outcome == "":
        return FieldProblem("FIELD_MISSING", "outcome", f"outcome is required: one of {', '.join(OUTCOMES)}")
    if not isinstance(outcome, str) or outcome.strip().lower() not in OUTCOMES:
        return FieldProblem("FIELD_INVALID", "outcome", f"outcome must be one of {', '.join(OUTCOMES)}")
    at = payload.get("at")
    at_ms = None
    if at is not None and at != "":
        at_ms = parse_at(at)
        if at_ms is None:
            return FieldProblem("FIELD_INVALID", "at", f"at must be {AT_FORMAT}")
    note = payload.get("note")
    if note is not None and not isinstance(note, str):
        return FieldProblem("FIELD_INVALID", "note", "note must be text")
    if note is not None and len(note) > MAX_NOTE_CHARS:
        return FieldProblem("FIELD_INVALID", "note", f"note must be at most {MAX_NOTE_CHARS} characters")
    return Report(outcome.strip().lower(), at_ms, (note or "").strip())


def parse_at(value: object) -> int | None:
    """Unix ms of an ISO-8601 time that says its zone, or None. A time without a zone is refused
    rather than guessed: the buyer's local time and UTC differ by hours."""
    if not isinstance(value, str):
        return None
    try:
        parsed = dt.datetime.fromisoformat(value.strip())
        if parsed.tzinfo is None or parsed.utcoffset() is None:
            return None
        return (parsed - _EPOCH) // dt.timedelta(milliseconds=1)
    except (ValueError, OverflowError):
        return None


def at_problem(at_ms: int, sold_at_ms: int, now_ms: int) -> str | None:
    """Why a reported time cannot be: before the sale, or ahead of now by more than the slack."""
    if at_ms < sold_at_ms:
        return f"at must not be before the lead was sold ({iso(sold_at_ms)})"
    if at_ms > now_ms + FUTURE_SLACK_MS:
        return f"at must not be in the future (now is {iso(now_ms)})"
    return None


def iso(ms: int) -> str:
    return (_EPOCH + dt.timedelta(milliseconds=ms)).isoformat(timespec="milliseconds").replace("+00:00", "Z")


@dataclass(frozen=True)
class OutcomeRow:
    """One sold lead and what its buyer reported of it. `fields` is the lead as stored, raw PII
    included: for training in the platform, never for logs."""

    lead_id: str
    buyer_id: str
    fields: dict
    vertical: str
    sold_at_ms: int
    contacted: bool
    contacted_at_ms: int | None
    converted: bool
    converted_at_ms: int | None
    returned: bool
    not_contacted_at_ms: int | None = None  # when the buyer said it tried and failed

    @property
    def attempt_at_ms(self) -> int | None:
        """When the buyer tried to reach the consumer, if it said: the timing model needs it."""
        return self.contacted_at_ms if self.contacted else self.not_contacted_at_ms


def training_rows(session: Session, since_ms: int | None = None, until_ms: int | None = None) -> list[OutcomeRow]:
    """One row per sold (lead, buyer) with at least one outcome reported, for sales in
    [since_ms, until_ms), oldest sale first."""
    query = (select(Sale.lead_id, Sale.buyer_id, Sale.vertical, Sale.closed_at_ms, Sale.returned, Lead.fields,
                    LeadOutcome.outcome, LeadOutcome.at_ms)
             .join(LeadOutcome, and_(LeadOutcome.lead_id == Sale.lead_id, LeadOutcome.buyer_id == Sale.buyer_id))
             .outerjoin(Lead, Lead.id == Sale.lead_id)
             .where(Sale.sold.is_(True))
             .order_by(Sale.closed_at_ms, Sale.lead_id, Sale.buyer_id))
    if since_ms is not None:
        query = query.where(Sale.closed_at_ms >= since_ms)
    if until_ms is not None:
        query = query.where(Sale.closed_at_ms < until_ms)
    sales: dict[tuple[str, str], tuple[str, int, bool, dict]] = {}
    reported: dict[tuple[str, str], dict[str, int]] = {}
    for lead_id, buyer_id, vertical, sold_at_ms, booked_return, fields, outcome, at_ms in session.execute(query):
        sales.setdefault((lead_id, buyer_id), (vertical, sold_at_ms, booked_return, fields or {}))
        reported.setdefault((lead_id, buyer_id), {})[outcome] = at_ms
    return [_row(key, *sales[key], reported[key]) for key in sales]


def _row(key: tuple[str, str], vertical: str, sold_at_ms: int, booked_return: bool, fields: dict,
         at: dict[str, int]) -> OutcomeRow:
    # A conversion implies a contact, at the latest when it converted; a later "not_contacted"
    # report does not undo a contact.
    contacts = [at[o] for o in (CONTACTED, CONVERTED) if o in at]
    return OutcomeRow(
        lead_id=key[0], buyer_id=key[1], fields=dict(fields), vertical=vertical, sold_at_ms=sold_at_ms,
        contacted=bool(contacts), contacted_at_ms=min(contacts) if contacts else None,
        converted=CONVERTED in at, converted_at_ms=at.get(CONVERTED),
        returned=RETURNED in at or bool(booked_return), not_contacted_at_ms=at.get(NOT_CONTACTED))
