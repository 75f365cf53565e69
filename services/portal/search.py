"""The search form's fields, checked before anything is asked of the dashboard: each mistake is
said beside its field, and the values typed are kept."""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass

from leadx.leads import status as lead_status
from leadx.platform.ids import is_lead_id
from leadx.platform.utc_days import DayRangeError, check_day_range, parse_day

STATUSES = tuple(dict.fromkeys(lead_status.PUBLIC.values()))  # in the life cycle's order, once each
_STATE = re.compile(r"[A-Z]{2}")
MAX_TOKEN_CHARS = 200


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
    days: dict[str, dt.date | None] = {}
    for field, text in (("day", day), ("to_day", to_day)):
        try:
            days[field] = parse_day(text, field) if text else None
        except DayRangeError as error:
            errors[field] = error.message
    if len(days) == 2:  # both as typed (or empty): then the range, by the dashboard's own rule
        try:
            check_day_range(days["day"], days["to_day"])
        except DayRangeError as error:
            errors[error.field] = error.message
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

