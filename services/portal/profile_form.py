"""The Buy Profiles form, both ways: a profile document (leadx.auction.selection.profiles, as the
admin API and `leadx profiles import` take it) shown as form fields, and the posted fields turned
back into a document, each mistake said beside its field. The document is then checked by the very
rules of an import (Profile.parse); what they refuse is placed beside the field it concerns.

Pure: no I/O (tests/unit/test_profile_form.py)."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation

from leadx.auction.selection.criteria import FIELD_OPS
from leadx.auction.selection.profiles import Profile, ProfileError
from leadx.auction.selection.windows import DAYS, WeeklyWindow
from leadx.leads.verticals import STATE_CODES

HOURS = 7 * 24  # the weekly grid: one cell per hour, Monday 00:00 first
MAX_CRITERIA = 10
RESIDENCE_TYPES = ("own", "rent", "other")
CAP_COUNTS = ("leads_per_hour", "leads_per_day")
CAP_AMOUNTS = {"spend_per_day": "spend_per_day_cents", "spend_per_month": "spend_per_month_cents"}
# The operators of a field condition as typed ("months_employed >= 12") and as stored.
OPERATORS = {"=": "eq", "==": "eq", "!=": "ne", "<": "lt", "<=": "lte", ">": "gt", ">=": "gte",
             "in": "in", "not in": "not_in", "matches": "matches"}
SYMBOLS = {"eq": "=", "ne": "!=", "lt": "<", "lte": "<=", "gt": ">", "gte": ">=", "in": "in",
           "not_in": "not in", "matches": "matches"}
assert set(SYMBOLS) == set(FIELD_OPS)
_CONDITION = re.compile(r"\s*([A-Za-z_][\w]*)\s*(==|=|!=|<=|>=|<|>|not\s+in\b|in\b|matches\b)\s*(.*?)\s*")
_LIST_SPLIT = re.compile(r"[\s,]+")
# Where a rule of Profile.parse names its place, the form field beside which it is said.
_CRITERION_FIELDS = {"states": "states", "zips": "zips", "zip_radius": "radius_zip", "income": "income_min",
                     "requested_amount": "amount_min", "residence_types": "residence", "probability": "probability_min",
                     "timing": "timing_min", "clusters": "clusters", "fields": "fields", "price": "price"}
CRITERION_INPUTS = ("states", "zips", "radius_zip", "radius_miles", "income_min", "income_max", "amount_min",
                    "amount_max", "probability_min", "probability_max", "timing_min", "timing_max", "clusters",
                    "fields", "price_kind", "price", *(f"residence-{kind}" for kind in RESIDENCE_TYPES))


@dataclass
class ProfileForm:
    """The form's values as typed (strings; a checkbox "1" when ticked) and its errors by field."""

    values: dict[str, str] = field(default_factory=dict)
    errors: dict[str, str] = field(default_factory=dict)
    criteria: int = 1  # criterion blocks to show
    hours: frozenset[int] = frozenset()  # the grid's ticked cells
    off_the_hour: bool = False  # the stored windows do not start and end on whole hours
    too_many: bool = False  # more criteria than the form holds (an import may have any number)
    paused: bool = False  # kept as it is by saving (pausing is its own button)

    def value(self, name: str) -> str:
        return self.values.get(name, "")


# ---------------------------------------------------------------- document → form

def cents_text(cents: int) -> str:
    return f"{cents // 100}.{cents % 100:02d}"


def _number_text(value: object) -> str:
    return f"{value:g}" if isinstance(value, float) else str(value)


def hour_cell(day: int, hour: int) -> str:
    return f"h-{DAYS[day]}-{hour:02d}"


def form_of_spec(spec: dict) -> ProfileForm:
    """A stored document as the form shows it (with one blank criterion to add another)."""
    values: dict[str, str] = {"name": str(spec.get("name", ""))}
    windows = [WeeklyWindow.parse(w) for w in spec.get("windows") or []]
    hours = frozenset(h for h in range(HOURS) if any(w.contains(h * 60) for w in windows))
    values["schedule"] = "hours" if windows else "always"
    _price_values(values, "", spec.get("price"))
    for name in CAP_COUNTS:
        if (spec.get("caps") or {}).get(name) is not None:
            values[name] = str(spec["caps"][name])
    for name, key in CAP_AMOUNTS.items():
        if (spec.get("caps") or {}).get(key) is not None:
            values[name] = cents_text(spec["caps"][key])
    criteria = spec.get("criteria") or []
    for i, criterion in enumerate(criteria):
        _criterion_values(values, f"c{i}-", criterion)
    return ProfileForm(values, {}, min(len(criteria) + 1, MAX_CRITERIA), hours,
                       off_the_hour=any(w.start % 60 or w.end % 60 for w in windows),
                       too_many=len(criteria) > MAX_CRITERIA, paused=spec.get("active", True) is False)


def _price_values(values: dict[str, str], prefix: str, price: object) -> None:
    if isinstance(price, dict) and "per_probability" in price:
        values[f"{prefix}price_kind"] = "per_probability"
        values[f"{prefix}price"] = cents_text(price["per_probability"])
    elif isinstance(price, int):
        values[f"{prefix}price_kind"], values[f"{prefix}price"] = "fixed", cents_text(price)


def _criterion_values(values: dict[str, str], prefix: str, criterion: dict) -> None:
    for key in ("states", "zips", "clusters"):
        if key in criterion:
            values[prefix + key] = ", ".join(str(v) for v in criterion[key])
    if "zip_radius" in criterion:
        values[prefix + "radius_zip"] = str(criterion["zip_radius"]["zip"])
        values[prefix + "radius_miles"] = _number_text(criterion["zip_radius"]["miles"])
    for key, name in (("income", "income"), ("requested_amount", "amount")):
        for end in ("min", "max"):
            if end in criterion.get(key, {}):
                values[f"{prefix}{name}_{end}"] = cents_text(int(criterion[key][end]))
    for key in ("probability", "timing"):
        for end in ("min", "max"):
            if end in criterion.get(key, {}):
                values[f"{prefix}{key}_{end}"] = _number_text(criterion[key][end])
    for kind in criterion.get("residence_types", []):
        values[f"{prefix}residence-{kind}"] = "1"
    if "fields" in criterion:
        values[prefix + "fields"] = "\n".join(_condition_text(c) for c in criterion["fields"])
    _price_values(values, prefix, criterion.get("price"))


def _condition_text(condition: dict) -> str:
    value = condition["value"]
    shown = ", ".join(str(v) for v in value) if isinstance(value, list) else _number_text(value)
    return f"{condition['name']} {SYMBOLS[condition.get('op', 'eq')]} {shown}"


# ---------------------------------------------------------------- form → document

def read_form(posted: dict[str, str], paused: bool = False) -> tuple[dict | None, ProfileForm]:
    """The document the posted fields describe (None when a field is wrong) and the form to show
    again, with the values as typed and each error beside its field. `paused` is kept as it was:
    pausing is its own button."""
    values = {name: text.strip() for name, text in posted.items()}
    form = ProfileForm(values, paused=paused)
    errors = form.errors
    spec: dict = {"name": values.get("name", "")}
    if not spec["name"]:
        errors["name"] = "give the profile a name"
    elif len(spec["name"]) > 200:
        errors["name"] = "a name has at most 200 characters"
    if paused:
        spec["active"] = False

    form.hours = frozenset(day * 24 + hour for day in range(7) for hour in range(24)
                           if values.get(hour_cell(day, hour)) == "1")
    schedule = values.get("schedule", "always")
    if schedule == "hours":
        if not form.hours:
            errors["schedule"] = "tick at least one hour, or choose Always"
        elif len(form.hours) < HOURS:
            spec["windows"] = windows_of(form.hours)
    elif schedule != "always":
        errors["schedule"] = "choose Always or the hours ticked"

    price = _price(values, "", errors)
    if price is not None:
        spec["price"] = price
    caps = {}
    for name in CAP_COUNTS:
        if values.get(name):
            if not values[name].isdigit() or not values[name].isascii():
                errors[name] = "a whole number of leads, or empty for no cap"
            else:
                caps[name] = int(values[name])
    for name, key in CAP_AMOUNTS.items():
        if values.get(name):
            cents = dollars(values[name])
            if cents is None:
                errors[name] = "an amount in dollars, e.g. 500.00, or empty for no cap"
            else:
                caps[key] = cents
    if caps:
        spec["caps"] = caps

    criteria = []
    form.criteria = 0
    for i in range(MAX_CRITERIA):
        prefix = f"c{i}-"
        if not any(name.startswith(prefix) for name in values):
            continue
        form.criteria = i + 1
        criterion = _criterion(values, prefix, errors)
        if criterion:
            criteria.append((i, criterion))
    if criteria:
        spec["criteria"] = [criterion for _, criterion in criteria]
    form.criteria = min(max(form.criteria, 1), MAX_CRITERIA)
    if errors:
        return None, form
    try:
        # Under a neutral name: the rules' messages then start alike whatever the profile is called.
        Profile.parse("p_check", "b_check", {**spec, "name": "profile"})
    except ProfileError as error:
        name, message = _place_of(str(error), [i for i, _ in criteria])
        errors[name] = message
        return None, form
    return spec, form


def windows_of(hours: frozenset[int]) -> list[dict[str, str]]:
    """The ticked hours of the week as windows, each run of consecutive hours one window (a run
    may wrap past Sunday midnight)."""
    if len(hours) == HOURS:
        return [{"from": "mon 00:00", "to": "sun 24:00"}]
    start = next(h for h in range(HOURS) if h not in hours)  # begin at a gap, so no run is cut
    windows, run_start = [], None
    for step in range(1, HOURS + 1):
        hour = (start + step) % HOURS
        if hour in hours and run_start is None:
            run_start = hour
        if hour not in hours and run_start is not None:
            windows.append((run_start, hour))
            run_start = None
    return [{"from": _time_of_week(first), "to": _time_of_week(end, end=True)} for first, end in sorted(windows)]


def _time_of_week(hour: int, end: bool = False) -> str:
    if end and hour == 0:
        return "sun 24:00"
    return f"{DAYS[hour // 24]} {hour % 24:02d}:00"


def dollars(text: str) -> int | None:
    """An amount typed in dollars ("25", "25.5", "$1,250.00") in cents; None if it is not one."""
    cleaned = text.replace(",", "").removeprefix("$").strip()
    if not re.fullmatch(r"\d{1,10}(\.\d{1,2})?", cleaned):
        return None
    try:
        return int(Decimal(cleaned) * 100)
    except InvalidOperation:
        return None


def _price(values: dict[str, str], prefix: str, errors: dict[str, str]) -> int | dict | None:
    """A price typed in dollars, fixed or per probability (None when left empty: a criterion then
    pays the profile's price, and the import rules refuse a profile where neither is given)."""
    text = values.get(f"{prefix}price", "")
    if not text:
        return None
    cents = dollars(text)
    if cents is None:
        errors[f"{prefix}price"] = "a price in dollars, e.g. 25.00"
        return None
    return {"per_probability": cents} if values.get(f"{prefix}price_kind") == "per_probability" else cents


def _list(text: str) -> list[str]:
    return [item for item in _LIST_SPLIT.split(text) if item]


def _fraction(text: str, where: str, errors: dict[str, str]) -> float | None:
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not 0 <= value <= 1:
        errors[where] = "a number from 0 to 1, e.g. 0.25"
        return None
    return value


def _criterion(values: dict[str, str], prefix: str, errors: dict[str, str]) -> dict:
    """A criterion block as a document (empty when nothing is filled in: the block is dropped)."""
    def text(name: str) -> str:
        return values.get(prefix + name, "")
    criterion: dict = {}
    if text("states"):
        states = [s.upper() for s in _list(text("states"))]
        unknown = [s for s in states if s not in STATE_CODES]
        if unknown:
            errors[prefix + "states"] = f"{', '.join(unknown)}: not a US state code (e.g. TX, NY)"
        criterion["states"] = states
    if text("zips"):
        zips = _list(text("zips"))
        wrong = [z for z in zips if not re.fullmatch(r"\d{5}", z)]
        if wrong:
            errors[prefix + "zips"] = f"{', '.join(wrong)}: a ZIP code is five digits"
        criterion["zips"] = zips
    if text("radius_zip") or text("radius_miles"):
        miles = text("radius_miles")
        if not re.fullmatch(r"\d{1,4}(\.\d+)?", miles):
            errors[prefix + "radius_miles"] = "the radius in miles, e.g. 25"
        elif not re.fullmatch(r"\d{5}", text("radius_zip")):
            errors[prefix + "radius_zip"] = "the ZIP code at the centre, five digits"
        else:
            criterion["zip_radius"] = {"zip": text("radius_zip"), "miles": float(miles) if "." in miles else int(miles)}
    for key, name in (("income", "income"), ("requested_amount", "amount")):
        bounds = {}
        for end in ("min", "max"):
            typed = text(f"{name}_{end}")
            if typed:
                cents = dollars(typed)
                if cents is None:
                    errors[f"{prefix}{name}_{end}"] = "an amount in dollars, e.g. 4000.00"
                else:
                    bounds[end] = cents
        if bounds:
            criterion[key] = bounds
    for key in ("probability", "timing"):
        fractions: dict[str, float] = {}
        for end in ("min", "max"):
            if text(f"{key}_{end}"):
                number = _fraction(text(f"{key}_{end}"), f"{prefix}{key}_{end}", errors)
                if number is not None:
                    fractions[end] = number
        if fractions:
            criterion[key] = fractions
    kinds = [kind for kind in RESIDENCE_TYPES if text(f"residence-{kind}") == "1"]
    if kinds:
        criterion["residence_types"] = kinds
    if text("clusters"):
        criterion["clusters"] = _list(text("clusters"))
    if text("fields").strip():
        conditions = []
        for number, line in enumerate(text("fields").splitlines(), 1):
            if not line.strip():
                continue
            condition = _condition(line)
            if condition is None:
                errors[prefix + "fields"] = (f"line {number}: write a condition as FIELD OPERATOR VALUE, e.g. "
                                             "months_employed >= 12 (operators: = != < <= > >= in, not in, matches)")
                break
            conditions.append(condition)
        criterion["fields"] = conditions
    price = _price(values, prefix, errors)
    if price is not None:
        criterion["price"] = price
    return criterion


def _condition(line: str) -> dict | None:
    match = _CONDITION.fullmatch(line)
    if match is None or not match.group(3):
        return None
    name, symbol, value = match.group(1), " ".join(match.group(2).split()), match.group(3)
    op = OPERATORS[symbol]
    if op in ("in", "not_in"):
        return {"name": name, "op": op, "value": [item.strip() for item in value.split(",") if item.strip()]}
    if op in ("lt", "lte", "gt", "gte"):
        try:
            number = float(value)
        except ValueError:
            return None
        return {"name": name, "op": op, "value": int(number) if number.is_integer() else number}
    return {"name": name, "op": op, "value": value}


def _place_of(message: str, kept: list[int]) -> tuple[str, str]:
    """The form field an import rule's message concerns, and the message without the profile's
    name. `kept`: the form's criterion blocks, in the document's order (empty ones were dropped)."""
    message = message.removeprefix("profile 'profile': ")
    found = re.match(r"criteria\[(\d+)\]\.(\w+)", message)
    if found and int(found.group(1)) < len(kept):
        block = kept[int(found.group(1))]
        return f"c{block}-{_CRITERION_FIELDS.get(found.group(2), 'states')}", message[found.start(2):]
    if message.startswith("windows") or "window" in message:
        return "schedule", message
    if message.startswith("caps"):
        return "leads_per_hour", message
    if "needs a price" in message or message.startswith("price"):
        return "price", message
    return "name", message

