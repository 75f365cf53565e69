"""Which duplicate checks apply to a vertical, and for how long a consumer counts.

Set per vertical in verticals.toml (`[auto_loan.dedup]`); `DEDUP_PLATFORM_SCOPE` and
`DEDUP_WINDOW_DAYS`, when set, override every vertical (an operator's switch, and the tests').
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, replace

from leadx.leads.verticals import Vertical, load_verticals

from leadx.platform.config import env_bool, env_int
from leadx.platform.utc_days import DAY_MS


@dataclass(frozen=True)
class DedupScopes:
    platform: bool = True  # platform-wide: any lead of this consumer in the window is a duplicate
    per_buyer: bool = True  # per buyer: no buyer receives one consumer twice
    window_days: int = 30

    @property
    def window_ms(self) -> int:
        return self.window_days * DAY_MS

    @classmethod
    def from_table(cls, vertical: str, table: dict) -> DedupScopes:
        unknown = set(table) - {"platform", "per_buyer", "window_days"}
        if unknown:
            raise ValueError(f"[{vertical}.dedup]: unknown setting(s) {', '.join(sorted(unknown))}")
        scopes = cls(**table)
        if not isinstance(scopes.platform, bool) or not isinstance(scopes.per_buyer, bool):
            raise ValueError(f"[{vertical}.dedup]: platform and per_buyer must be true or false")
        if not isinstance(scopes.window_days, int) or scopes.window_days < 1:
            raise ValueError(f"[{vertical}.dedup]: window_days must be a whole number of days, at least 1")
        return scopes


@dataclass(frozen=True)
class ScopeOverrides:
    platform: bool | None = None
    window_days: int | None = None

    @classmethod
    def from_env(cls) -> ScopeOverrides:
        return cls(
            platform=env_bool("DEDUP_PLATFORM_SCOPE", True) if os.environ.get("DEDUP_PLATFORM_SCOPE") else None,
            window_days=env_int("DEDUP_WINDOW_DAYS") if os.environ.get("DEDUP_WINDOW_DAYS") else None,
        )

    def apply(self, scopes: DedupScopes) -> DedupScopes:
        if self.platform is not None:
            scopes = replace(scopes, platform=self.platform)
        if self.window_days is not None:
            scopes = replace(scopes, window_days=self.window_days)
        return scopes


class DedupPolicy:
    """The scopes of every vertical, with the environment's overrides applied; a vertical the
    schema does not know gets the defaults (intake refuses such leads before they get here)."""

    def __init__(self, scopes: dict[str, DedupScopes], overrides: ScopeOverrides = ScopeOverrides()) -> None:
        self._default = overrides.apply(DedupScopes())
        self._scopes = {name: overrides.apply(s) for name, s in scopes.items()}

    @classmethod
    def from_env(cls) -> DedupPolicy:
        return cls(scopes_by_vertical(load_verticals()), ScopeOverrides.from_env())

    def scopes(self, vertical: str) -> DedupScopes:
        return self._scopes.get(vertical, self._default)


def scopes_by_vertical(verticals: Mapping[str, Vertical]) -> dict[str, DedupScopes]:
    """Every vertical's scopes as its `[<vertical>.dedup]` table sets them, before any override."""
    return {name: DedupScopes.from_table(name, vertical.section("dedup")) for name, vertical in verticals.items()}
