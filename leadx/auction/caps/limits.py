"""Caps and budgets, per buyer and per profile: leads per hour and per day, spend per day and per
month, counted in the buyer's time zone (a buyer's "day" is its own day)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

LIMITS = ("leads_per_hour", "leads_per_day", "spend_per_day_cents", "spend_per_month_cents")


class CapsError(ValueError):
    pass


@dataclass(frozen=True)
class Caps:
    leads_per_hour: int | None = None
    leads_per_day: int | None = None
    spend_per_day_cents: int | None = None
    spend_per_month_cents: int | None = None

    @classmethod
    def parse(cls, spec: object) -> Caps:
        if spec in (None, {}):
            return cls()
        if not isinstance(spec, dict) or set(spec) - set(LIMITS):
            raise CapsError(f"caps may set only {', '.join(LIMITS)}")
        for name, value in spec.items():
            if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 0):
                raise CapsError(f"caps.{name} must be a non-negative whole number")
        return cls(**spec)

    def as_dict(self) -> dict:
        return {name: getattr(self, name) for name in LIMITS if getattr(self, name) is not None}

    @property
    def any(self) -> bool:
        # Asked for every eligible buyer of every lead: plain attribute reads, not asdict's deep copy.
        return any(getattr(self, name) is not None for name in LIMITS)


@dataclass(frozen=True)
class Usage:
    """What one buyer or profile has bought in the current hour, day and month."""

    leads_hour: int = 0
    leads_day: int = 0
    spend_day_cents: int = 0
    spend_month_cents: int = 0


def reached(caps: Caps, usage: Usage) -> str | None:
    """Which cap is reached (nothing more may be bought), or None."""
    for limit, used, what in ((caps.leads_per_hour, usage.leads_hour, "leads per hour"),
                              (caps.leads_per_day, usage.leads_day, "leads per day"),
                              (caps.spend_per_day_cents, usage.spend_day_cents, "spend per day"),
                              (caps.spend_per_month_cents, usage.spend_month_cents, "spend per month")):
        if limit is not None and used >= limit:
            return what
    return None


@dataclass(frozen=True)
class Periods:
    hour: str  # 2026-11-25T08, on the buyer's clock
    day: str  # 2026-11-25
    month: str  # 2026-11


def periods(now_ms: int, tz: ZoneInfo) -> Periods:
    local = datetime.fromtimestamp(now_ms / 1000, tz=UTC).astimezone(tz)
    # The hour is named by its UTC offset too: the repeated hour at a DST change is two hours.
    return Periods(local.strftime("%Y-%m-%dT%H%z"), local.strftime("%Y-%m-%d"), local.strftime("%Y-%m"))
