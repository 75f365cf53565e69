"""Per-vertical auction terms, from `[<vertical>.auction]` in verticals.toml:

    window_seconds = 120     # how long buyers may bid; absent: AUCTION_WINDOW_SECONDS (3 s)
    pricing = "second"       # "first" (default): the winner pays its bid; "second": what beats the next
    shares = 3               # a shared sale: sold to up to 3 of the ranked bidders; 1 (default): exclusive
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from leadx.leads.verticals import Vertical

PRICINGS = ("first", "second")
MAX_WINDOW_SECONDS = 24 * 3600
MAX_SHARES = 10


@dataclass(frozen=True)
class AuctionTerms:
    window_seconds: float | None = None
    pricing: str = "first"
    shares: int = 1

    @classmethod
    def from_table(cls, vertical: str, table: dict) -> AuctionTerms:
        unknown = set(table) - {"window_seconds", "pricing", "shares"}
        if unknown:
            raise ValueError(f"[{vertical}.auction]: unknown setting(s) {', '.join(sorted(unknown))}")
        terms = cls(**table)
        window = terms.window_seconds
        if window is not None and (isinstance(window, bool) or not isinstance(window, (int, float))
                                   or not 0 < window <= MAX_WINDOW_SECONDS):
            raise ValueError(f"[{vertical}.auction]: window_seconds must be a number of seconds above 0")
        if terms.pricing not in PRICINGS:
            raise ValueError(f"[{vertical}.auction]: pricing must be one of {', '.join(PRICINGS)}")
        if isinstance(terms.shares, bool) or not isinstance(terms.shares, int) or not 1 <= terms.shares <= MAX_SHARES:
            raise ValueError(f"[{vertical}.auction]: shares must be a whole number from 1 to {MAX_SHARES}")
        return terms

    def window_ms(self, default_ms: int) -> int:
        return default_ms if self.window_seconds is None else int(self.window_seconds * 1000)


def terms_by_vertical(verticals: Mapping[str, Vertical]) -> dict[str, AuctionTerms]:
    """Every vertical's terms, checked once at start so a bad table stops the service with its name."""
    return {name: AuctionTerms.from_table(name, vertical.section("auction")) for name, vertical in verticals.items()}
