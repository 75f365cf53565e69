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


@dataclass(frozen=True)
class SearchQuery:
    lead_id: str = ""
    day: str = ""
    state: str = ""
    status: str = ""
    page: str = ""  # the dashboard's token of the next page

    @property
    def empty(self) -> bool:
        return not (self.lead_id or self.day or self.state or self.status)


def check_search(params: dict[str, str]) -> tuple[SearchQuery, dict[str, str]]:
    """The query and the errors by field (none: the query may be asked)."""
    errors: dict[str, str] = {}
    lead_id = params.get("lead_id", "").strip().upper()
    if lead_id and not is_lead_id(lead_id):
        errors["lead_id"] = "a lead id is 10 letters and digits, e.g. Q8ZK2M4T1B"
    day = params.get("day", "").strip()
    if day:
        try:
            dt.date.fromisoformat(day)
            if len(day) != 10:
                raise ValueError(day)
        except ValueError:
            errors["day"] = "a day is YYYY-MM-DD, e.g. 2026-12-04"
    state = params.get("state", "").strip().upper()
    if state and not _STATE.fullmatch(state):
        errors["state"] = "a state is its two-letter code, e.g. NY"
    status = params.get("status", "").strip()
    if status and status not in STATUSES:
        errors["status"] = "choose a status from the list"
    page = params.get("page", "")
    if len(page) > MAX_TOKEN_CHARS:
        errors["page"] = "this page of results is not one the portal gave; search again"
    return SearchQuery(lead_id, day, state, status, page), errors
