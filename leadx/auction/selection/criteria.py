"""AutoBid criteria: what a profile buys, and the price it pays for it.

A criterion is a set of conditions that must all hold (an absent condition holds) and a price:
    states: [TX, OK]                     the lead's state
    zips: ["75201", "75202"]             the lead's ZIP
    zip_radius: {zip: "75201", miles: 25}
    income: {min: 300000, max: 900000}   gross_monthly_income, cents, inclusive
    requested_amount: {min: .., max: ..} cents, inclusive
    residence_types: [own]
    probability: {min: 0.2, max: 0.6}    the scored response probability, inclusive (a band)
    timing: {min: 0.5}                   the scored timing factor: how good a moment this is to
                                         call, relative to the best (0..1), inclusive
    clusters: [c2]
    fields: [{name: months_employed, op: gte, value: 12}]   any lead field
    price: 2500  or  {per_probability: 10000}   cents, or cents x probability (a bid that grows
                                                with the response probability); absent: the profile's price
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal
from functools import lru_cache

import zipcodes

from leadx.leads.pii import IDENTIFYING_FIELDS


class CriterionError(ValueError):
    pass


@dataclass(frozen=True)
class LeadView:
    """What criteria see of a lead: its fields (strings, as carried in events), its scores."""

    fields: Mapping[str, str]
    probability: float = 0.0
    cluster: str = ""
    timing_factor: float = 1.0


@dataclass(frozen=True)
class Price:
    cents: int = 0
    per_probability_cents: int | None = None  # the bid is this x the lead's probability

    @classmethod
    def parse(cls, spec: object, where: str) -> Price:
        if isinstance(spec, dict) and set(spec) == {"per_probability"}:
            return cls(per_probability_cents=_non_negative_int(spec["per_probability"], f"{where}.per_probability"))
        return cls(cents=_non_negative_int(spec, where))

    def for_lead(self, lead: LeadView) -> int:
        if self.per_probability_cents is None:
            return self.cents
        value = Decimal(self.per_probability_cents) * Decimal(repr(lead.probability))
        return int(value.quantize(Decimal(1), rounding=ROUND_HALF_UP))


MAX_PRICE_CENTS = 10**12  # ten billion dollars: anything above is a mistake, and overflows SQL's BIGINT later


def _non_negative_int(value: object, where: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise CriterionError(f"{where} must be a non-negative whole number of cents")
    if value > MAX_PRICE_CENTS:
        raise CriterionError(f"{where} is above {MAX_PRICE_CENTS} cents")
    return value


def _number(value: object, where: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise CriterionError(f"{where} must be a number")
    try:
        number = float(value)
    except OverflowError:  # an integer beyond any float, e.g. 10**400
        raise CriterionError(f"{where} is too large") from None
    if not math.isfinite(number):
        raise CriterionError(f"{where} must be a finite number")
    return number


def _strings(value: object, where: str) -> frozenset[str]:
    if not isinstance(value, list) or not value or not all(isinstance(v, (str, int)) for v in value):
        raise CriterionError(f"{where} must be a non-empty list")
    return frozenset(str(v).strip() for v in value)


@lru_cache(maxsize=1)
def zip_locations() -> dict[str, tuple[float, float]]:
    """ZIP → (latitude, longitude) from the national ZIP database, built once."""
    out = {}
    for z in zipcodes.list_all():
        try:
            out[z["zip_code"]] = (float(z["lat"]), float(z["long"]))
        except (KeyError, TypeError, ValueError):
            continue
    return out


def miles_between(a: tuple[float, float], b: tuple[float, float]) -> float:
    """Great-circle distance (haversine), in statute miles."""
    lat1, lon1, lat2, lon2 = map(math.radians, (*a, *b))
    h = math.sin((lat2 - lat1) / 2) ** 2 + math.cos(lat1) * math.cos(lat2) * math.sin((lon2 - lon1) / 2) ** 2
    return 2 * 3958.8 * math.asin(math.sqrt(h))


def _as_number(text: str | None) -> float | None:
    try:
        return float(text) if text not in (None, "") else None
    except ValueError:
        return None


_COMPARISONS: dict[str, Callable[[float, float], bool]] = {
    "lt": lambda a, b: a < b, "lte": lambda a, b: a <= b, "gt": lambda a, b: a > b, "gte": lambda a, b: a >= b,
}
FIELD_OPS = ("eq", "ne", "in", "not_in", "matches", *_COMPARISONS)


def _field_condition(spec: object, where: str) -> Callable[[LeadView], bool]:
    if not isinstance(spec, dict) or not isinstance(spec.get("name"), str) or "value" not in spec:
        raise CriterionError(f"{where} must be {{name: FIELD, op: OP, value: VALUE}}")
    name, op, value = spec["name"], spec.get("op", "eq"), spec["value"]
    if name in IDENTIFYING_FIELDS:
        # AutoBid bids on what a ping shows; these fields travel sealed and no ping shows them.
        raise CriterionError(f"{where}.name: {name} identifies the consumer and cannot be a criterion")
    if not isinstance(op, str) or op not in FIELD_OPS:
        raise CriterionError(f"{where}.op must be one of {', '.join(FIELD_OPS)}")
    if op in ("eq", "ne"):
        expected = str(value)
        return lambda lead: (lead.fields.get(name) == expected) == (op == "eq")
    if op in ("in", "not_in"):
        values = _strings(value, f"{where}.value")
        return lambda lead: (lead.fields.get(name) in values) == (op == "in")
    if op == "matches":
        try:
            pattern = re.compile(str(value))
        except re.error as error:
            raise CriterionError(f"{where}.value is not a regular expression: {error}") from None
        return lambda lead: pattern.fullmatch(lead.fields.get(name, "")) is not None
    if op in _COMPARISONS:
        bound, compare = _number(value, f"{where}.value"), _COMPARISONS[op]

        def holds(lead: LeadView) -> bool:
            actual = _as_number(lead.fields.get(name))
            return actual is not None and compare(actual, bound)
        return holds
    raise CriterionError(f"{where}.op must be one of {', '.join(FIELD_OPS)}")


def _field_number(name: str) -> Callable[[LeadView], float | None]:
    """Reads one field of a lead as a number (None when it is not one)."""
    return lambda lead: _as_number(lead.fields.get(name))


def _range_condition(spec: object, where: str, read: Callable[[LeadView], float | None]) -> Callable[[LeadView], bool]:
    if not isinstance(spec, dict) or not spec or set(spec) - {"min", "max"}:
        raise CriterionError(f"{where} must be {{min: .., max: ..}}")
    low = _number(spec["min"], f"{where}.min") if "min" in spec else -math.inf
    high = _number(spec["max"], f"{where}.max") if "max" in spec else math.inf
    if low > high:
        raise CriterionError(f"{where}.min is above its max")

    def holds(lead: LeadView) -> bool:
        value = read(lead)
        return value is not None and low <= value <= high
    return holds


def _radius_condition(spec: object, where: str) -> Callable[[LeadView], bool]:
    if not isinstance(spec, dict) or set(spec) != {"zip", "miles"}:
        raise CriterionError(f"{where} must be {{zip: '75201', miles: 25}}")
    centre = zip_locations().get(str(spec["zip"]))
    if centre is None:
        raise CriterionError(f"{where}.zip {spec['zip']} is not a US ZIP code with a known location")
    miles = _number(spec["miles"], f"{where}.miles")

    def holds(lead: LeadView) -> bool:
        here = zip_locations().get(lead.fields.get("zip", ""))
        return here is not None and miles_between(centre, here) <= miles
    return holds


CONDITION_KEYS = ("states", "zips", "zip_radius", "income", "requested_amount", "residence_types",
                  "probability", "timing", "clusters", "fields")


@dataclass(frozen=True)
class Criterion:
    conditions: tuple[Callable[[LeadView], bool], ...] = field(default=())
    price: Price | None = None  # None: the profile's price

    @classmethod
    def parse(cls, spec: object, where: str) -> Criterion:
        if not isinstance(spec, dict):
            raise CriterionError(f"{where} must be a mapping of conditions")
        unknown = set(spec) - set(CONDITION_KEYS) - {"price"}
        if unknown:
            raise CriterionError(f"{where} has unknown keys {', '.join(sorted(unknown))}; "
                                 f"conditions are {', '.join(CONDITION_KEYS)}")
        conditions: list[Callable[[LeadView], bool]] = []
        if "states" in spec:
            states = frozenset(s.upper() for s in _strings(spec["states"], f"{where}.states"))
            conditions.append(lambda lead: lead.fields.get("state", "").upper() in states)
        if "zips" in spec:
            zips = _strings(spec["zips"], f"{where}.zips")
            if not all(isinstance(z, str) for z in spec["zips"]) or not all(re.fullmatch(r"\d{5}", z) for z in zips):
                raise CriterionError(f"{where}.zips must be quoted five-digit ZIP codes (\"07302\": a number "
                                     "loses its leading zero)")
            conditions.append(lambda lead: lead.fields.get("zip", "") in zips)
        if "zip_radius" in spec:
            conditions.append(_radius_condition(spec["zip_radius"], f"{where}.zip_radius"))
        for key, name in (("income", "gross_monthly_income"), ("requested_amount", "requested_amount")):
            if key in spec:
                conditions.append(_range_condition(spec[key], f"{where}.{key}", _field_number(name)))
        if "residence_types" in spec:
            kinds = _strings(spec["residence_types"], f"{where}.residence_types")
            conditions.append(lambda lead: lead.fields.get("residence_type", "") in kinds)
        if "probability" in spec:
            conditions.append(_range_condition(spec["probability"], f"{where}.probability",
                                               lambda lead: lead.probability))
        if "timing" in spec:
            conditions.append(_range_condition(spec["timing"], f"{where}.timing", lambda lead: lead.timing_factor))
        if "clusters" in spec:
            clusters = _strings(spec["clusters"], f"{where}.clusters")
            conditions.append(lambda lead: lead.cluster in clusters)
        if "fields" in spec:
            if not isinstance(spec["fields"], list):
                raise CriterionError(f"{where}.fields must be a list")
            conditions.extend(_field_condition(c, f"{where}.fields[{i}]") for i, c in enumerate(spec["fields"]))
        price = Price.parse(spec["price"], f"{where}.price") if "price" in spec else None
        return cls(tuple(conditions), price)

    def matches(self, lead: LeadView) -> bool:
        return all(condition(lead) for condition in self.conditions)
