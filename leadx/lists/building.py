"""Customer lists from the prospect pool (docs/list-auctions.md): the customers
matching the chosen profiles, with their probability of responding to an offer, grouped by
behavioural cluster and by probability band, each group sorted by probability, best first.

A profile is a list of criteria in the AutoBid criteria language ([auction](../../docs/auction.md):
states, ZIPs, radius, income, requested amount, residence, probability band, clusters, any field).
A customer matches the profile when any of its criteria matches; an empty profile takes everyone.
For a prospect, `probability` is its probability of answering a direct offer.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from leadx.auction.selection.criteria import Criterion, CriterionError, LeadView

DEFAULT_BAND_WIDTH = 0.05


@dataclass(frozen=True)
class Customer:
    prospect_id: str
    probability: float
    cluster: str
    fields: Mapping[str, str]  # what the profile's criteria read; never shown to bidders


@dataclass(frozen=True)
class Band:
    """Probabilities from `lower` (inclusive) to `upper` (exclusive, but 1.0 is inside the top band)."""
    lower: float
    upper: float

    @property
    def label(self) -> str:
        return f"{self.lower:.2f}-{self.upper:.2f}"

    def holds(self, probability: float) -> bool:
        return self.lower <= probability < self.upper or (self.upper >= 1.0 and probability == 1.0)

    @classmethod
    def parse(cls, label: str) -> Band:
        """A band from its label, "0.10-0.20"; ValueError if it is not one."""
        try:
            lower_text, upper_text = label.split("-")
            lower, upper = float(lower_text), float(upper_text)
        except ValueError:
            raise ValueError(f"{label!r} is not a probability band such as 0.10-0.20") from None
        if not 0.0 <= lower < upper <= 1.0:
            raise ValueError(f"{label!r}: a band needs 0 <= lower < upper <= 1")
        return cls(lower, upper)


def band_of(probability: float, width: float) -> Band:
    index = min(math.floor(probability / width + 1e-9), math.ceil(1 / width - 1e-9) - 1)
    lower = round(index * width, 6)
    return Band(lower, round(min(lower + width, 1.0), 6))


@dataclass(frozen=True)
class ListProfile:
    criteria: tuple[Criterion, ...]
    document: tuple[dict, ...]

    @classmethod
    def parse(cls, spec: object) -> ListProfile:
        """From `{"criteria": [...]}` or a bare list of criteria; CriterionError names a bad one."""
        items = spec.get("criteria", []) if isinstance(spec, dict) else spec
        unknown = sorted(set(spec) - {"criteria"}) if isinstance(spec, dict) else []
        if unknown:
            raise CriterionError(f"a list profile has only 'criteria'; unknown: {', '.join(unknown)}")
        if not isinstance(items, list):
            raise CriterionError("a list profile's criteria must be a list")
        criteria = []
        for index, item in enumerate(items):
            if isinstance(item, dict) and "price" in item:
                raise CriterionError(f"criteria[{index}]: a list profile chooses customers; prices are bids")
            criteria.append(Criterion.parse(item, f"criteria[{index}]"))
        return cls(tuple(criteria), tuple(items))

    def matches(self, customer: Customer) -> bool:
        if not self.criteria:
            return True
        view = LeadView(customer.fields, customer.probability, customer.cluster)
        return any(criterion.matches(view) for criterion in self.criteria)


def profile_problem(document: object) -> str | None:
    """What stops a profile document from being stored (the auction keeps it as JSON), or None:
    numbers too large for a float, or infinite ("1e400", YAML's .inf), which PostgreSQL's JSON
    refuses and no criterion needs, and YAML values JSON has no word for (dates). The operators'
    commands and the intake's list API check a profile with it before ListProfile.parse."""
    pending = [document]
    while pending:
        item = pending.pop()
        if isinstance(item, dict):
            pending.extend(item.values())
        elif isinstance(item, list):
            pending.extend(item)
        elif isinstance(item, float) and not math.isfinite(item) or (
                isinstance(item, int) and not isinstance(item, bool) and abs(item) > 2**53):
            return f"{item!r:.40} is not a number a profile can hold"
        elif not isinstance(item, str | int | float | bool | type(None)):
            # YAML reads 2024-01-01 as a date: quote it.
            return f"{item!r:.40} is not text, a number, true, false or null"
    return None


@dataclass(frozen=True)
class CustomerList:
    customers: tuple[Customer, ...]              # best first
    by_cluster: dict[str, tuple[Customer, ...]]  # each best first; clusters in id order
    by_band: dict[str, tuple[Customer, ...]]     # each best first; bands from the highest
    band_width: float


def _best_first(customers: Iterable[Customer]) -> tuple[Customer, ...]:
    return tuple(sorted(customers, key=lambda c: (-c.probability, c.prospect_id)))


def _cluster_order(cluster_id: str) -> tuple[int, str]:
    digits = cluster_id[1:]
    return (int(digits), cluster_id) if cluster_id[:1] == "c" and digits.isdigit() else (1 << 30, cluster_id)


def build_list(prospects: Iterable[Customer], profile: ListProfile,
               band_width: float = DEFAULT_BAND_WIDTH) -> CustomerList:
    if not 0.0 < band_width <= 1.0 or abs(band_width * 100 - round(band_width * 100)) > 1e-9:
        # Band labels have two decimals: a width of 0.025 would give labels nobody can bid on.
        raise ValueError("the band width is a whole number of hundredths from 0.01 to 1")
    chosen = _best_first(p for p in prospects if profile.matches(p))
    clusters: dict[str, list[Customer]] = {}
    bands: dict[Band, list[Customer]] = {}
    for customer in chosen:  # already best first, so every group is too
        clusters.setdefault(customer.cluster, []).append(customer)
        bands.setdefault(band_of(customer.probability, band_width), []).append(customer)
    return CustomerList(
        customers=chosen,
        by_cluster={c: tuple(clusters[c]) for c in sorted(clusters, key=_cluster_order)},
        by_band={b.label: tuple(bands[b]) for b in sorted(bands, key=lambda b: -b.lower)},
        band_width=band_width,
    )
