"""The simulated market's calendar: the day it starts on unless told otherwise, and a day as the
millisecond it begins. Apart from market.py so that the `leadx` parser can name days without
loading the simulator and NumPy."""

from __future__ import annotations

from datetime import UTC, date, datetime

DEFAULT_START = "2026-01-01"


def day_start_ms(day: str) -> int:
    """Midnight UTC of a YYYY-MM-DD day, in milliseconds since the epoch; ValueError if it is no such day."""
    try:
        parsed = date.fromisoformat(day)
    except ValueError:
        raise ValueError(f"{day!r} is not a date (YYYY-MM-DD)") from None
    return int(datetime(parsed.year, parsed.month, parsed.day, tzinfo=UTC).timestamp() * 1000)
