"""Calendar days in UTC (leadx.platform.utc_days): the range of days a search covers, one rule for the
dashboard's SearchLeads and the portal's search form."""

from __future__ import annotations

import pytest

from leadx.platform.utc_days import DAY_MS, DayRangeError, day_range_ms

JAN_15_2027_MS = 1_800_000_000_000 - 8 * 3_600_000  # 2027-01-15T00:00:00Z


def test_one_day_or_a_range_of_days_both_ends_included():
    assert day_range_ms("2027-01-15") == (JAN_15_2027_MS, JAN_15_2027_MS + DAY_MS)
    assert day_range_ms("2027-01-14", "2027-01-15") == (JAN_15_2027_MS - DAY_MS, JAN_15_2027_MS + DAY_MS)
    assert day_range_ms("2026-01-15", "2027-01-15")[1] - day_range_ms("2026-01-15")[0] == 366 * DAY_MS


@pytest.mark.parametrize("day, to_day, field, message", [
    ("yesterday", "", "day", "a day is YYYY-MM-DD, e.g. 2026-12-04"),
    ("2027-01-15T10:00", "", "day", "a day is YYYY-MM-DD, e.g. 2026-12-04"),
    ("2027-01-14", "2027-02-30", "to_day", "a day is YYYY-MM-DD, e.g. 2026-12-04"),
    ("", "2027-01-15", "day", "give the first day of the range too"),
    ("2027-01-15", "2027-01-14", "to_day", "the last day cannot be before the first"),
    ("2026-01-14", "2027-01-15", "to_day", "a range is at most 366 days"),
])
def test_a_range_that_cannot_be_searched_names_its_field(day, to_day, field, message):
    with pytest.raises(DayRangeError) as refused:
        day_range_ms(day, to_day)
    assert (refused.value.field, refused.value.message) == (field, message)
