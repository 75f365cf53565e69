"""Time-of-week windows in a buyer's time zone ("fri 08:00" to "sun 21:00").

A window is judged on the buyer's wall clock: "Friday 08:00 in America/Chicago" is 14:00 UTC in
winter and 13:00 UTC in summer, and zoneinfo makes the conversion exact across DST changes. A
window may wrap past the end of the week (sun 22:00 to mon 06:00). The end is exclusive.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
MINUTES_PER_WEEK = 7 * 24 * 60


class WindowError(ValueError):
    pass


def minute_of_week(text: str) -> int:
    """'fri 08:00' → minutes since Monday 00:00."""
    parts = text.strip().lower().split()
    if len(parts) != 2 or parts[0][:3] not in DAYS:
        raise WindowError(f"{text!r} is not a time of week like 'fri 08:00'")
    hours, _, minutes = parts[1].partition(":")
    if not (hours.isascii() and hours.isdigit() and minutes.isascii() and minutes.isdigit() and len(minutes) == 2):
        raise WindowError(f"{text!r} is not a time of week like 'fri 08:00'")
    hour, minute = int(hours), int(minutes)
    if hour > 24 or minute > 59 or (hour == 24 and minute):
        raise WindowError(f"{text!r} has no such time of day")
    return DAYS.index(parts[0][:3]) * 24 * 60 + hour * 60 + minute  # "sun 24:00" is the week's end


def zone(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, OSError, TypeError):  # OSError: "America" is a directory
        raise WindowError(f"{name!r} is not an IANA time zone such as 'America/Chicago'") from None


@dataclass(frozen=True)
class WeeklyWindow:
    start: int  # minute of the week, inclusive
    end: int  # minute of the week, exclusive

    @classmethod
    def parse(cls, spec: dict) -> WeeklyWindow:
        if not isinstance(spec, dict) or "from" not in spec or "to" not in spec:
            raise WindowError("a window is {from: 'fri 08:00', to: 'sun 21:00'}")
        start, end = minute_of_week(str(spec["from"])), minute_of_week(str(spec["to"]))
        whole_week = (start, end) == (0, MINUTES_PER_WEEK)
        # "sun 24:00" and "mon 00:00" are one instant of the week.
        if start % MINUTES_PER_WEEK == end % MINUTES_PER_WEEK and not whole_week:
            raise WindowError("a window's start and end must differ")
        return cls(start, end)

    def contains(self, minute: int) -> bool:
        if self.start < self.end:
            return self.start <= minute < self.end
        return minute >= self.start or minute < self.end  # wraps past Sunday midnight


def local_minute_of_week(now_ms: int, tz: ZoneInfo) -> int:
    local = datetime.fromtimestamp(now_ms / 1000, tz=UTC).astimezone(tz)
    return local.weekday() * 24 * 60 + local.hour * 60 + local.minute


def is_active(windows: tuple[WeeklyWindow, ...], tz: ZoneInfo, now_ms: int) -> bool:
    """A profile without windows is always active."""
    if not windows:
        return True
    minute = local_minute_of_week(now_ms, tz)
    return any(window.contains(minute) for window in windows)
