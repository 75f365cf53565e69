"""When a buyer may send back a lead it bought: within the return window, and without taking its
return rate over the cap. Pure rules; services.intake applies them to SQL under a lock."""

from __future__ import annotations

from dataclasses import dataclass

from leadx.platform.config import env_float, env_int
from leadx.platform.utc_days import DAY_MS

MAX_REASON_CHARS = 500


@dataclass(frozen=True)
class Refusal:
    http_status: int
    code: str
    message: str


@dataclass(frozen=True)
class ReturnPolicy:
    window_days: int = 7  # a lead may be returned up to this long after its sale (inclusive)
    rate_cap_percent: float = 25.0  # returns may be at most this share of a buyer's purchases...
    rate_period_days: int = 30  # ...counted over this many days back

    def __post_init__(self) -> None:
        if self.window_days < 0 or self.rate_period_days < 1 or not 0 <= self.rate_cap_percent <= 100:
            raise ValueError("return policy: window >= 0 days, period >= 1 day, cap between 0 and 100 percent")

    @classmethod
    def from_env(cls) -> ReturnPolicy:
        return cls(window_days=env_int("RETURN_WINDOW_DAYS", 7),
                   rate_cap_percent=env_float("RETURN_RATE_CAP_PERCENT", 25.0),
                   rate_period_days=env_int("RETURN_RATE_PERIOD_DAYS", 30))

    @property
    def period_ms(self) -> int:
        return self.rate_period_days * DAY_MS

    def refusal(self, sold_at_ms: int, now_ms: int, purchases: int, returns: int) -> Refusal | None:
        """Why this return is refused, or None. `purchases` and `returns` are the buyer's over the
        rate period, this lead's sale included and this return not yet counted."""
        if now_ms - sold_at_ms > self.window_days * DAY_MS:
            return Refusal(422, "RETURN_WINDOW_CLOSED",
                           f"a lead can be returned up to {self.window_days} days after its sale")
        # The rate after this return must not exceed the cap (integers: no rounding at the edge).
        if (returns + 1) * 100 > self.rate_cap_percent * purchases:
            return Refusal(422, "RETURN_RATE_EXCEEDED",
                           f"returns may be at most {self.rate_cap_percent:g}% of your purchases over the last "
                           f"{self.rate_period_days} days; this return would make {returns + 1} of {purchases}")
        return None


def reason_problem(reason: str) -> str | None:
    if not reason.strip():
        return "reason is required: say why the lead is returned"
    if len(reason) > MAX_REASON_CHARS:
        return f"reason must be at most {MAX_REASON_CHARS} characters"
    return None
