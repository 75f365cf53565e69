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
