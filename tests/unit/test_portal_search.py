"""The search form's checks (services.portal.search): each mistake beside its field, values kept."""

from __future__ import annotations

import pytest

from services.portal.search import STATUSES, SearchQuery, check_search


def test_a_good_query_is_normalised():
    query, errors = check_search({"lead_id": " q8zk2m4t1b ", "day": "2026-12-04", "state": "ny", "status": "sold"})
    assert errors == {}
    assert query == SearchQuery("Q8ZK2M4T1B", "2026-12-04", "", "NY", "sold", "")
    ranged, errors = check_search({"day": "2026-11-01", "to_day": " 2026-12-04"})
    assert errors == {} and (ranged.day, ranged.to_day) == ("2026-11-01", "2026-12-04") and not ranged.empty
    assert check_search({})[0].empty
    assert STATUSES == ("pending", "accepted", "in_auction", "sold", "unsold", "duplicate", "rejected", "returned")


@pytest.mark.parametrize("field, value, message", [
    ("lead_id", "Q8ZK", "a lead id is 10 letters and digits, e.g. Q8ZK2M4T1B"),
    ("lead_id", "Q8ZK2M4T1!", "a lead id is 10 letters and digits, e.g. Q8ZK2M4T1B"),
    ("day", "2026-13-01", "a day is YYYY-MM-DD, e.g. 2026-12-04"),
    ("day", "yesterday", "a day is YYYY-MM-DD, e.g. 2026-12-04"),
    ("day", "20261204", "a day is YYYY-MM-DD, e.g. 2026-12-04"),
    ("to_day", "2026-12-32", "a day is YYYY-MM-DD, e.g. 2026-12-04"),
    ("state", "New York", "a state is its two-letter code, e.g. NY"),
    ("status", "won", "choose a status from the list"),
    ("page", "x" * 201, "this page of results is not one the portal gave; search again"),
])
def test_each_mistake_is_said_beside_its_field(field, value, message):
    _, errors = check_search({"lead_id": "Q8ZK2M4T1B", "day": "2026-12-01", field: value})
    assert errors == {field: message}


@pytest.mark.parametrize("day, to_day, errors", [
    ("", "2026-12-04", {"day": "give the first day of the range too"}),
    ("2026-12-04", "2026-12-03", {"to_day": "the last day cannot be before the first"}),
    ("2025-12-03", "2026-12-04", {"to_day": "a range is at most 366 days"}),
])
def test_a_range_of_days_runs_forwards_and_at_most_a_year(day, to_day, errors):
    assert check_search({"day": day, "to_day": to_day})[1] == errors
    assert check_search({"day": "2025-12-04", "to_day": "2026-12-04"})[1] == {}  # both ends included: 366 days
