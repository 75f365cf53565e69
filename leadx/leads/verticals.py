"""Vertical field schemas and field verification (pure: no I/O beyond reading the schema file).

Verification order (docs/integration-spec.md#verification-order): a missing required field stops at
once with FIELD_MISSING; every other problem is collected so the seller sees all of them together.
Field types and bounds come from verticals.toml; the regular-expression constraint rules of each
vertical (and each seller's overrides) come from leadx.leads.rules and are applied here too.
"""

from __future__ import annotations

import datetime as dt
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from types import MappingProxyType

import zipcodes

from leadx.leads.phone_areas import state_of_area_code

SCHEMA_FILE = Path(__file__).with_name("verticals.toml")
MAX_FIELD_LENGTH = 200

_EMAIL = re.compile(r"^[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]+@[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)+$")
STATE_CODES = frozenset(  # the states, DC and the territories the ZIP database covers
    "AL AK AZ AR CA CO CT DE DC FL GA HI ID IL IN IA KS KY LA ME MD MA MI MN MS MO MT NE NV NH NJ "
    "NM NY NC ND OH OK OR PA RI SC SD TN TX UT VT VA WA WV WI WY PR VI GU AS MP".split()
)


@dataclass(frozen=True)
class FieldSpec:
    name: str
    type: str
    required: bool
    values: tuple[str, ...] = ()
    minimum: int | None = None  # money and integer fields
    maximum: int | None = None
    min_age: int | None = None  # date fields holding a birth date: age in whole years, today
    max_age: int | None = None


@dataclass(frozen=True)
class Vertical:
    name: str
    fields: tuple[FieldSpec, ...]
    # The vertical's other tables (`[auto_loan.dedup]`, `[auto_loan.auction]`), read and checked by
    # the package each belongs to (leadx.dedup.scopes, leadx.auction.terms).
    sections: Mapping[str, Mapping[str, object]] = field(default_factory=dict)

    def section(self, name: str) -> dict[str, object]:
        return dict(self.sections.get(name, {}))


@dataclass(frozen=True)
class FieldError:
    code: str
    field: str
    message: str

    def as_dict(self) -> dict[str, str]:
        return {"code": self.code, "field": self.field, "message": self.message}


@dataclass(frozen=True)
class Rule:
    """A constraint rule (docs/integration-spec.md#constraint-rules): a field must match a pattern."""

    name: str
    field: str
    pattern: re.Pattern[str]
    message: str


@dataclass
class Verification:
    errors: list[FieldError] = field(default_factory=list)
    warnings: list[FieldError] = field(default_factory=list)  # reported to the seller, not blocking
    fields: dict[str, str] = field(default_factory=dict)  # normalised values, known fields only

    @property
    def ok(self) -> bool:
        return not self.errors


@lru_cache(maxsize=1)
def zip_states() -> dict[str, str]:
    """Every US ZIP code → its state, from the national ZIP database (the `zipcodes` package).
    Built once: `zipcodes.matching` scans the whole list on every call (0.3 ms here)."""
    return {z["zip_code"]: z["state"] for z in zipcodes.list_all()}


@lru_cache(maxsize=1)
def zip_counties() -> dict[str, str]:
    """Every US ZIP code → its county (the metro area of the market data)."""
    return {z["zip_code"]: z["county"] or "" for z in zipcodes.list_all()}


@lru_cache(maxsize=1)
def load_verticals(path: Path = SCHEMA_FILE) -> dict[str, Vertical]:
    raw = tomllib.loads(path.read_text())
    return {
        name: Vertical(name, tuple(
            FieldSpec(f["name"], f["type"], bool(f.get("required", False)), tuple(f.get("values", ())),
                      f.get("min"), f.get("max"), f.get("min_age"), f.get("max_age"))
            for f in spec["fields"]),
            MappingProxyType({key: MappingProxyType(table) for key, table in spec.items() if key != "fields"}))
        for name, spec in raw.items()
    }


def _as_text(value: object) -> str | None:
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, (str, int)):
        return str(value).strip()
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return None


# Compiled once: through re's cache each call cost a lookup, on every field of every lead.
_NOT_DIGIT = re.compile(r"\D")
_SSN_SEPARATOR = re.compile(r"[\s-]")
_NINE_DIGITS = re.compile(r"\d{9}")
_FIVE_DIGITS = re.compile(r"\d{5}")
_WHOLE_NUMBER = re.compile(r"\d{1,12}")


def _check(spec: FieldSpec, value: str) -> tuple[str | None, str]:
    """Returns (error message or None, normalised value)."""
    kind = spec.type
    if len(value) > MAX_FIELD_LENGTH:
        return f"must be at most {MAX_FIELD_LENGTH} characters", value
    if kind == "text":
        return None, value
    if kind == "email":
        return (None, value) if _EMAIL.match(value) else ("is not a valid email address", value)
    if kind == "phone":
        digits = _NOT_DIGIT.sub("", value)
        if len(digits) == 11 and digits[0] == "1":
            digits = digits[1:]
        if len(digits) != 10 or digits[0] in "01" or digits[3] in "01":
            return "must be a 10-digit US phone number", value
        if state_of_area_code(digits[:3]) is None:
            return f"has area code {digits[:3]}, which is not a geographic US area code", value
        return None, digits
    if kind == "ssn":
        digits = _SSN_SEPARATOR.sub("", value)
        if not _NINE_DIGITS.fullmatch(digits):
            return "must be 9 digits", value
        area, group, serial = digits[:3], digits[3:5], digits[5:]
        if area in {"000", "666"} or area >= "900" or group == "00" or serial == "0000":
            return "is not an issuable social security number", value
        return None, digits
    if kind == "zip":
        return (None, value) if _FIVE_DIGITS.fullmatch(value) else ("must be a 5-digit ZIP code", value)
    if kind == "state":
        upper = value.upper()
        return (None, upper) if upper in STATE_CODES else ("is not a US state code", value)
    if kind in {"money", "integer"}:
        if not _WHOLE_NUMBER.fullmatch(value):
            unit = "cents" if kind == "money" else "a whole number"
            return f"must be a non-negative whole number ({unit})", value
        number = int(value)
        if spec.minimum is not None and number < spec.minimum:
            return f"must be at least {spec.minimum}", value
        if spec.maximum is not None and number > spec.maximum:
            return f"must be at most {spec.maximum}", value
        return None, str(number)
    if kind == "date":
        try:
            parsed = dt.date.fromisoformat(value)
        except ValueError:
            return "must be a date as YYYY-MM-DD", value
        today = dt.date.today()
        if not dt.date(1900, 1, 1) <= parsed <= today:
            return "is not a plausible date", value
        age = today.year - parsed.year - ((today.month, today.day) < (parsed.month, parsed.day))
        if spec.min_age is not None and age < spec.min_age:
            return f"makes the consumer {age}, under the minimum age of {spec.min_age}", value
        if spec.max_age is not None and age > spec.max_age:
            return f"makes the consumer {age}, over the maximum age of {spec.max_age}", value
        return None, parsed.isoformat()
    if kind == "enum":
        lower = value.lower()
        return (None, lower) if lower in spec.values else (f"must be one of {', '.join(spec.values)}", value)
    raise ValueError(f"unknown field type {kind!r} in vertical schema")


def verify(vertical: Vertical, payload: Mapping[str, object], rules: tuple[Rule, ...] = (),
           phone_area_must_match: bool = False, partial: bool = False) -> Verification:
    """Check `payload` against the vertical's fields and `rules`.

    `partial` checks only the fields present (a PING carries a subset: nothing is missing);
    `phone_area_must_match` turns a phone area code outside the ZIP's state from a warning into an error.
    """
    result = Verification()
    for spec in vertical.fields:
        raw = payload.get(spec.name)
        text = _as_text(raw)
        if raw is None or text == "":
            if spec.required and not partial:
                result.errors = [FieldError("FIELD_MISSING", spec.name, f"{spec.name} is required")]
                return result
            continue
        if text is None:
            result.errors.append(FieldError("FIELD_INVALID", spec.name, f"{spec.name} must be a string"))
            continue
        message, normalised = _check(spec, text)
        if message:
            result.errors.append(FieldError("FIELD_INVALID", spec.name, f"{spec.name} {message}"))
        else:
            result.fields[spec.name] = normalised
    _apply_rules(result, payload, rules)
    _check_zip_and_state(result)
    _check_phone_areas(result, phone_area_must_match)
    return result


def _apply_rules(result: Verification, payload: Mapping[str, object], rules: tuple[Rule, ...]) -> None:
    """Each rule whose field is present and well-typed must match; a field already in error is not
    checked again, so the seller gets one clear message per field."""
    failed = {e.field for e in result.errors}
    for rule in rules:
        if rule.field in failed or rule.field not in result.fields:
            continue
        if not rule.pattern.search(_as_text(payload.get(rule.field)) or ""):
            result.errors.append(FieldError("FIELD_INVALID", rule.field, rule.message))
            failed.add(rule.field)


def _check_zip_and_state(result: Verification) -> None:
    zip_code = result.fields.get("zip")
    if not zip_code:
        return
    zip_state = zip_states().get(zip_code)
    if zip_state is None:
        result.errors.append(FieldError("ZIP_UNKNOWN", "zip", f"zip {zip_code} is not a US ZIP code"))
        return
    state = result.fields.get("state")
    if state and state != zip_state:
        result.errors.append(FieldError(
            "ZIP_STATE_MISMATCH", "state", f"zip {zip_code} is in {zip_state}, not {state}"))


def _check_phone_areas(result: Verification, must_match: bool) -> None:
    zip_state = zip_states().get(result.fields.get("zip", ""))
    if zip_state is None:
        return
    for name in ("home_phone", "work_phone"):
        phone = result.fields.get(name)
        if not phone:
            continue
        phone_state = state_of_area_code(phone[:3])
        if phone_state and phone_state != zip_state:
            problem = FieldError("PHONE_AREA_MISMATCH", name,
                                 f"{name} area code {phone[:3]} is in {phone_state}, the zip in {zip_state}")
            if must_match:
                result.errors.append(FieldError("FIELD_INVALID", name, problem.message))
            else:
                result.warnings.append(problem)
