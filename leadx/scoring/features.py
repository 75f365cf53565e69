"""What the scoring models see of a lead: numbers from its fields, and the moment of contact.

Consumer features come from the lead's own fields, so the same function serves live leads, the
simulator's consumers and imported customer lists. A field that is missing or unreadable is NaN:
the gradient-boosted models treat missing values natively, and the clustering fills them with the
training median.

Timing features say *when* a consumer is contacted: the lead's age, and the hour and day of week
in the consumer's own time zone (from the ZIP), because people answer in the evening, not at 3 a.m.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from datetime import UTC, date, datetime
from functools import lru_cache
from zoneinfo import ZoneInfo

import zipcodes

CONSUMER_FEATURES = (
    "log_income",        # ln of gross monthly income in dollars
    "months_employed",
    "loan_to_income",    # requested amount / a year's gross income
    "age_years",
    "owns_home",
    "rents",
    "has_work_phone",
)
TIMING_FEATURES = (
    "age_hours",         # the lead's age when the consumer is contacted
    "local_hour",        # 0..24, fractional, in the consumer's time zone
    "weekend",
)

_FALLBACK_ZONE = "America/Chicago"  # a ZIP the database lacks: the middle of the country


def _number(fields: Mapping[str, object], name: str) -> float:
    try:
        value = float(fields[name])  # type: ignore[arg-type]
    except (KeyError, TypeError, ValueError):
        return math.nan
    return value if math.isfinite(value) else math.nan


def _age_years(fields: Mapping[str, object], on: date) -> float:
    try:
        born = date.fromisoformat(str(fields["date_of_birth"]))
    except (KeyError, ValueError):
        return math.nan
    return (on - born).days / 365.25


def consumer_row(fields: Mapping[str, object], on: date) -> list[float]:
    """The consumer features of one lead, its age counted on `on`."""
    income_cents = _number(fields, "gross_monthly_income")
    requested = _number(fields, "requested_amount")
    log_income = math.log(income_cents / 100) if income_cents > 0 else math.nan
    loan_to_income = requested / (12 * income_cents) if income_cents > 0 else math.nan
    residence = fields.get("residence_type")
    known = residence in ("own", "rent", "other")
    work_phone = fields.get("work_phone")
    return [
        log_income,
        _number(fields, "months_employed"),
        loan_to_income,
        _age_years(fields, on),
        float(residence == "own") if known else math.nan,
        float(residence == "rent") if known else math.nan,
        float(bool(work_phone)),
    ]


@lru_cache(maxsize=1)
def _zones_by_zip() -> dict[str, str]:
    return {z["zip_code"]: z["timezone"] for z in zipcodes.list_all() if z.get("timezone")}


@lru_cache(maxsize=64)
def _zone(name: str) -> ZoneInfo:
    return ZoneInfo(name)


def zone_of(zip_code: object) -> ZoneInfo:
    return _zone(_zones_by_zip().get(str(zip_code)[:5], _FALLBACK_ZONE))


def timing_row(zone: ZoneInfo, created_ms: int, contact_ms: int) -> list[float]:
    """When a consumer created at `created_ms` is contacted at `contact_ms` (both UTC)."""
    local = datetime.fromtimestamp(contact_ms / 1000, UTC).astimezone(zone)
    return [max(contact_ms - created_ms, 0) / 3_600_000,
            local.hour + local.minute / 60,
            float(local.weekday() >= 5)]

