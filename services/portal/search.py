"""The search form's fields, checked before anything is asked of the dashboard: each mistake is
said beside its field, and the values typed are kept."""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass

from leadx.leads import status as lead_status
from leadx.platform.ids import is_lead_id

STATUSES = tuple(dict.fromkeys(lead_status.PUBLIC.values()))  # in the life cycle's order, once each
_STATE = re.compile(r"[A-Z]{2}")
MAX_TOKEN_CHARS = 200
MAX_RANGE_DAYS = 366  # as the dashboard allows


@dataclass(frozen=True)
class SearchQuery:
    lead_id: str = ""
    day: str = ""  # the first day, or the only one
    to_day: str = ""  # the last day of a range (empty: `day` alone)
    state: str = ""
    status: str = ""
    page: str = ""  # the dashboard's token of the next page

    @property
    def empty(self) -> bool:
        return not (self.lead_id or self.day or self.to_day or self.state or self.status)


def check_search(params: dict[str, str]) -> tuple[SearchQuery, dict[str, str]]:
    """The query and the errors by field (none: the query may be asked)."""
    errors: dict[str, str] = {}
    lead_id = params.get("lead_id", "").strip().upper()
    if lead_id and not is_lead_id(lead_id):
        errors["lead_id"] = "a lead id is 10 letters and digits, e.g. Q8ZK2M4T1B"
    day, to_day = params.get("day", "").strip(), params.get("to_day", "").strip()
    first, last = _day(day, "day", errors), _day(to_day, "to_day", errors)
    if last and not day:
        errors["day"] = "give the first day of the range too"
    elif first and last and last < first:
        errors["to_day"] = "the last day cannot be before the first"
    elif first and last and (last - first).days >= MAX_RANGE_DAYS:
        errors["to_day"] = f"a range is at most {MAX_RANGE_DAYS} days"
    state = params.get("state", "").strip().upper()
    if state and not _STATE.fullmatch(state):
        errors["state"] = "a state is its two-letter code, e.g. NY"
    status = params.get("status", "").strip()
    if status and status not in STATUSES:
        errors["status"] = "choose a status from the list"
    page = params.get("page", "")
    if len(page) > MAX_TOKEN_CHARS:
        errors["page"] = "this page of results is not one the portal gave; search again"
    return SearchQuery(lead_id, day, to_day, state, status, page), errors


def _day(text: str, field: str, errors: dict[str, str]) -> dt.date | None:
    """The day typed in `field` (None when empty or wrong, the error then noted)."""
    if not text:
        return None
    try:
        if len(text) != 10:
            raise ValueError(text)
        return dt.date.fromisoformat(text)
    except ValueError:
        errors[field] = "a day is YYYY-MM-DD, e.g. 2026-12-04"
        return None
