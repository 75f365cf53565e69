"""AutoBid profiles (an `autobid` buyer, docs/auction.md): each active on time-of-week windows, each
with criteria and prices. The AutoBid is the highest price among the matching criteria of the
buyer's active, uncapped profiles.

A profile document (YAML or JSON, `leadx profiles import`, `PUT /v1/admin/buyers/{id}/profiles`):
    name: weekend push
    active: true                                       # false: paused (kept, bids for nothing)
    windows: [{from: "fri 08:00", to: "sun 21:00"}]   # absent: always active
    price: 2500                                        # the default for its criteria
    caps: {leads_per_day: 50, spend_per_day_cents: 100000}
    criteria:                                          # absent: one criterion matching every lead
      - {states: [TX], income: {min: 300000}, price: 3000}
      - {probability: {min: 0.2, max: 0.6}, price: {per_probability: 10000}}
"""

from __future__ import annotations

from dataclasses import dataclass
from zoneinfo import ZoneInfo

from leadx.auction.caps.limits import Caps, CapsError
from leadx.auction.selection.criteria import Criterion, CriterionError, LeadView, Price
from leadx.auction.selection.windows import WeeklyWindow, WindowError, is_active

PROFILE_KEYS = {"name", "windows", "price", "caps", "criteria", "active"}


class ProfileError(ValueError):
    pass


@dataclass(frozen=True)
class Profile:
    id: str
    buyer_id: str
    name: str
    windows: tuple[WeeklyWindow, ...]
    criteria: tuple[Criterion, ...]
    price: Price | None
    caps: Caps
    paused: bool = False  # `active: false`: kept with its buyer, active at no time

    @classmethod
    def parse(cls, profile_id: str, buyer_id: str, spec: object) -> Profile:
        if not isinstance(spec, dict):
            raise ProfileError("a profile must be a mapping")
        name = spec.get("name")
        where = f"profile {name!r}" if name else "profile"
        if not isinstance(name, str) or not name.strip():
            raise ProfileError("a profile needs a name")
        unknown = set(spec) - PROFILE_KEYS
        if unknown:
            raise ProfileError(f"{where} has unknown keys {', '.join(sorted(unknown))}")
        try:
            windows = spec.get("windows") or []
            if not isinstance(windows, list):
                raise WindowError("windows must be a list")
            parsed_windows = tuple(WeeklyWindow.parse(w) for w in windows)
            price = Price.parse(spec["price"], "price") if "price" in spec else None
            criteria_specs = spec.get("criteria", [{}])
            if not isinstance(criteria_specs, list) or not criteria_specs:
                raise CriterionError("criteria must be a non-empty list (leave it out to match every lead)")
            criteria = tuple(Criterion.parse(c, f"criteria[{i}]") for i, c in enumerate(criteria_specs))
            caps = Caps.parse(spec.get("caps"))
        except (WindowError, CriterionError, CapsError) as error:
            raise ProfileError(f"{where}: {error}") from None
        if price is None and any(c.price is None for c in criteria):
            raise ProfileError(f"{where}: every criterion needs a price, or the profile one")
        # Paused only by `active: false`, as stored profiles have always been read; what a new
        # profile may say is checked where it is saved (leadx.accounts.buyer_settings).
        return cls(profile_id, buyer_id, name.strip(), parsed_windows, criteria, price, caps,
                   paused=spec.get("active", True) is False)

    def active_at(self, tz: ZoneInfo, now_ms: int) -> bool:
        # A paused profile neither bids nor, for a wholesale buyer, lets a lead through its filter.
        return not self.paused and is_active(self.windows, tz, now_ms)

    def best_price(self, lead: LeadView) -> int | None:
        """The highest price among this profile's criteria that match the lead."""
        best: int | None = None
        for criterion in self.criteria:
            if criterion.matches(lead):
                price = criterion.price or self.price
                assert price is not None  # parse() refuses a criterion without a price when the profile has none
                amount = price.for_lead(lead)
                best = amount if best is None else max(best, amount)
        return best


@dataclass(frozen=True)
class AutoBid:
    amount_cents: int
    profile_id: str


def autobid(profiles: tuple[Profile, ...], tz: ZoneInfo, lead: LeadView, now_ms: int,
            capped: frozenset[str] = frozenset()) -> AutoBid | None:
    """The bid the platform places for an AutoBid buyer, or None if no active, uncapped profile
    has a criterion matching the lead. Equal prices go to the first profile by id (stable)."""
    best: AutoBid | None = None
    for profile in sorted(profiles, key=lambda p: p.id):
        if profile.id in capped or not profile.active_at(tz, now_ms):
            continue
        price = profile.best_price(lead)
        if price is not None and (best is None or price > best.amount_cents):
            best = AutoBid(price, profile.id)
    return best
