"""Calendar days in UTC, as the ledger's per-day tables and the dashboards count them."""

from __future__ import annotations

import datetime as dt

DAY_MS = 24 * 3600 * 1000


def utc_day(ms: int) -> str:
    """The UTC day (YYYY-MM-DD) of a Unix time in milliseconds."""
    return dt.datetime.fromtimestamp(ms / 1000, dt.UTC).date().isoformat()


def period_start(day: str, period: str) -> str:
    """The first day of the day's period: itself, its ISO week's Monday, or its month's first."""
    date = dt.date.fromisoformat(day)
    if period == "week":
        date -= dt.timedelta(days=date.weekday())
    elif period == "month":
        date = date.replace(day=1)
    return date.isoformat()


def shift_period(start: str, period: str, count: int) -> str:
    """The first day of the period `count` periods after (before, when negative) the one starting on
    `start`, itself a period's first day."""
    date = dt.date.fromisoformat(start)
    if period == "month":
        months = date.year * 12 + date.month - 1 + count
        return dt.date(months // 12, months % 12 + 1, 1).isoformat()
    return (date + dt.timedelta(days=count * (7 if period == "week" else 1))).isoformat()


def period_end(start: str, period: str) -> str:
    """The last day of the period starting on `start`."""
    return (dt.date.fromisoformat(shift_period(start, period, 1)) - dt.timedelta(days=1)).isoformat()


MAX_RANGE_DAYS = 366  # a search over days covers at most a year, both ends included
BAD_DAY = "a day is YYYY-MM-DD, e.g. 2026-12-04"


class DayRangeError(ValueError):
    """A day or a range of days that cannot be searched: the field at fault and why."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field, self.message = field, message


def parse_day(text: str, field: str = "day") -> dt.date:
    """A day typed as YYYY-MM-DD, exactly (no time, no other form)."""
    try:
        if len(text) != 10:
            raise ValueError(text)
        return dt.date.fromisoformat(text)
    except ValueError:
        raise DayRangeError(field, BAD_DAY) from None


def check_day_range(first: dt.date | None, last: dt.date | None) -> None:
    """The rule of a range of days, `first` to `last` (None: not given): a last day needs a first, comes
    no earlier, and the range spans at most MAX_RANGE_DAYS days."""
    if last is None:
        return
    if first is None:
        raise DayRangeError("day", "give the first day of the range too")
    if last < first:
        raise DayRangeError("to_day", "the last day cannot be before the first")
    if (last - first).days >= MAX_RANGE_DAYS:
        raise DayRangeError("to_day", f"a range is at most {MAX_RANGE_DAYS} days")


def day_range_ms(day: str, to_day: str = "") -> tuple[int, int]:
    """The [start, end) in Unix ms of the UTC days from `day` to `to_day` (empty: `day` alone), both
    included; DayRangeError names the field at fault."""
    first = parse_day(day, "day") if day else None
    last = parse_day(to_day, "to_day") if to_day else first
    check_day_range(first, last)
    assert first is not None and last is not None
    start = dt.datetime.combine(first, dt.time(), dt.UTC)
    end = dt.datetime.combine(last, dt.time(), dt.UTC) + dt.timedelta(days=1)
    return int(start.timestamp() * 1000), int(end.timestamp() * 1000)
