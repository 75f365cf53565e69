"""The intake's API as an OpenAPI 3.1 document, served at /openapi.json: the sellers' PING, POST
and status, the buyers' returns, outcome reports and bids, ratings, list auctions
(docs/list-auctions.md), and the operators' admin API (docs/admin-api.md).

Written by hand (the app is plain Starlette) and exact: a request the document accepts is one the
intake accepts, one it refuses the intake refuses with a 4xx, and every answer each operation can
give is listed, with its headers (`Allow` on 405, `Retry-After` on 429 and 503, `Location` on 202).
The field patterns are built from the rules the intake applies (leadx.leads.verticals, the vertical's
constraint rules, leadx.auction.selection), in characters both regular-expression engines a reader
may use (ECMA-262's and Python's) read alike. Each request format has its own schema, as each reads
the same fields differently: JSON keeps numbers and null (an absent optional field), forms carry
text, XML trims every value and cannot carry control characters.

What no schema can say — whether a ZIP code exists and is in the state given, a consumer's age
today, a direct-sale contract, a ping token's signature — an operation lists under
`x-refusals-beyond-schema`: the answers a request this document accepts may still get, each with
its status, code, field and (when the code alone does not tell) a part of its message.
tests/integration/test_openapi_contract.py runs schemathesis against a running intake with that list
as the only slack; tests/unit/test_intake_openapi.py holds the document to the app's routes.
"""

from __future__ import annotations

import re
import unicodedata
import zoneinfo
from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from leadx.accounts.buyer_settings import MAX_WEIGHT, SETTINGS
from leadx.auction.caps.limits import LIMITS
from leadx.auction.selection.criteria import CONDITION_KEYS, FIELD_OPS, MAX_PRICE_CENTS
from leadx.auction.selection.market import BUYER_KINDS, WHOLESALE
from leadx.auction.selection.windows import DAYS
from leadx.leads.pii import IDENTIFYING_FIELDS
from leadx.leads.rules import PACKAGED_RULES, Rule, RuleBook, load_rulebook
from leadx.leads.verticals import _EMAIL, STATE_CODES, MAX_FIELD_LENGTH, FieldSpec, Vertical, load_verticals
from leadx.ledger.outcomes import MAX_NOTE_CHARS, OUTCOMES
from leadx.ledger.returns import MAX_REASON_CHARS
from leadx.lists.award import SCOPES

ERROR_CODES = [
    "FIELD_MISSING", "FIELD_INVALID", "ZIP_UNKNOWN", "ZIP_STATE_MISMATCH", "DUPLICATE", "AUTH_INVALID",
    "AUTH_THROTTLED", "PAYLOAD_MALFORMED", "PAYLOAD_TOO_LARGE", "UNSUPPORTED_MEDIA_TYPE", "RATE_LIMITED",
    "PING_MISMATCH",
    "IDEMPOTENCY_KEY_REUSED", "LEAD_NOT_FOUND", "NOT_FOUND", "METHOD_NOT_ALLOWED", "SERVICE_UNAVAILABLE",
    "RETURN_WINDOW_CLOSED", "RETURN_RATE_EXCEEDED", "ACCOUNT_NOT_FOUND", "NOT_A_TRADING_PARTNER",
    "AUCTION_NOT_FOUND", "AUCTION_CLOSED", "BID_TOO_LOW", "PARTNERSHIP_NOT_FOUND",
    "LIST_NOT_FOUND", "LIST_CLOSED", "LIST_OPEN", "LIST_EMPTY", "BELOW_RESERVE",
    "URL_NOT_HTTPS", "URL_ADDRESS_FORBIDDEN", "OVERLOADED", "NOT_QUEUED",
]
WARNING_CODES = ["PHONE_AREA_MISMATCH"]
BEYOND_SCHEMA = "x-refusals-beyond-schema"

MAX_REFERENCE = 100  # services.intake.sellers.MAX_REFERENCE
MAX_CENTS = 10**12  # services.intake.requests.MAX_CENTS
MAX_JSON_NUMBER = 2**53 - 1  # services.intake.admin.MAX_JSON_NUMBER
MAX_NAME = 200  # services.intake.admin.MAX_NAME
MAX_URL = 2000  # services.intake.admin.MAX_URL
MAX_LIST_TARGET, MAX_LIST_COUNT, MAX_LIST_WINDOW_S, MAX_LIST_TOP = 64, 2**31 - 1, 30 * 86_400, 1000
LEAD_ID = "^[A-Z0-9]{10}$"  # leadx.platform.ids: list auctions' ids too


# ---------------------------------------------------------------------- characters and patterns

# What Python's str.strip() and str.split() take for white space (str.isspace), spelled out: `\s` is
# Unicode's in Python, ASCII's in schemathesis's reading, and neither quite ECMA-262's.
_SPACE = r"\t\n\x0b\x0c\r\x1c-\x1f \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000"
# Characters XML 1.0 cannot carry: an XML body holding one is malformed.
_NOT_XML = r"\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff"
# The same white space as XML can carry it.
_XML_SPACE = r"\t\n\r \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000"


@lru_cache(maxsize=1)
def _decimal_digits() -> str:
    """Python's `\\d`: every decimal digit of Unicode (category Nd), as class ranges."""
    ranges: list[list[int]] = []
    for code in range(0x110000):
        if unicodedata.category(chr(code)) == "Nd":
            if ranges and ranges[-1][1] == code - 1:
                ranges[-1][1] = code
            else:
                ranges.append([code, code])
    return "".join(f"{chr(low)}-{chr(high)}" for low, high in ranges)


@dataclass(frozen=True)
class Wire:
    """How one request format carries a field's value to the rules that read it."""

    name: str
    media_types: tuple[str, ...]
    space: str  # the white space the rules trim, as a class
    nonspace: str  # any other character the format can carry, as a class
    anything: str  # any character the format can carry, as a class
    line: str  # Python's `.`: any of those but a line break (XML turns a lone CR into one)
    trims_all: bool  # every value arrives trimmed (XML's parser), not only those the rules trim
    nulls: bool  # JSON: null stands for an absent optional field

    def trimmed(self, core: str) -> str:
        """An anchored pattern of a value the intake reads trimmed: `core`, the value as read, with
        white space around it."""
        return f"^[{self.space}]*(?:{core})[{self.space}]*$"

    def text(self, most: int) -> str:
        """The core of trimmed text of 1 to `most` characters."""
        return f"[{self.nonspace}](?:[{self.anything}]{{0,{most - 2}}}[{self.nonspace}])?"


JSON = Wire("json", ("application/json",), _SPACE, f"^{_SPACE}", r"\s\S", r"^\n", False, True)
FORM = Wire("form", ("application/x-www-form-urlencoded",), _SPACE, f"^{_SPACE}", r"\s\S", r"^\n", False, False)
# text/xml is read as application/xml; the document names one of the two, as tools test each it names.
XML = Wire("xml", ("application/xml",), _XML_SPACE, f"^{_SPACE}{_NOT_XML}", f"^{_NOT_XML}",
           rf"^\n\r{_NOT_XML}", True, False)
WIRES = (JSON, FORM, XML)


def _caseless(values: list[str] | tuple[str, ...]) -> str:
    """An alternation of `values`, in any case."""
    def letters(value: str) -> str:
        return "".join(f"[{c.upper()}{c.lower()}]" if c.isalpha() else re.escape(c) for c in value)
    return "|".join(letters(value) for value in values)


def _numerals(low: int, high: int, most_digits: int | None = None) -> str:
    """The decimal numerals of the whole numbers `low` to `high`, with leading zeros up to
    `most_digits` digits in all (None: any number of them)."""
    def same_length(a: str, b: str) -> list[str]:
        if a == b:
            return [a]
        if a[0] == b[0]:
            return [a[0] + rest for rest in same_length(a[1:], b[1:])]
        tail = len(a) - 1
        if set(a[1:]) <= {"0"} and set(b[1:]) <= {"9"}:
            return [f"[{a[0]}-{b[0]}]" + (f"[0-9]{{{tail}}}" if tail else "")]
        parts = [a[0] + rest for rest in same_length(a[1:], "9" * tail)]
        if int(b[0]) - int(a[0]) > 1:
            parts.append(f"[{int(a[0]) + 1}-{int(b[0]) - 1}][0-9]{{{tail}}}")
        return parts + [b[0] + rest for rest in same_length("0" * tail, b[1:])]

    groups = []
    for length in range(len(str(low)), len(str(high)) + 1):
        a, b = max(low, 10 ** (length - 1) if length > 1 else 0), min(high, 10**length - 1)
        if a > b:
            continue
        zeros = "0*" if most_digits is None else f"0{{0,{most_digits - length}}}" if most_digits > length else ""
        groups.append(f"{zeros}(?:{'|'.join(same_length(str(a), str(b)))})")
    return "|".join(groups)


class Untranslatable(ValueError):
    """A rule pattern using what the translation does not spell for both readings."""


def _translated(pattern: str, wire: Wire) -> str:
    """A constraint rule's pattern, which Python searches in the trimmed value, as a pattern of the
    value as sent: `^` and `$` take the trimmed white space, and Python's `\\d`, `\\s`, `\\S` and
    `.` are spelled out. Untranslatable for what is not needed yet (`\\w`, `\\b`, flags, ...)."""
    digits = _decimal_digits()
    out, index, in_class = [], 0, False
    while index < len(pattern):
        char = pattern[index]
        if char == "\\":
            escape = pattern[index:index + 2]
            spelled = {"\\d": digits, "\\s": wire.space}.get(escape)
            if spelled is not None:
                out.append(spelled if in_class else f"[{spelled}]")
            elif escape in ("\\S", "\\D") and not in_class:
                out.append(f"[{wire.nonspace}]" if escape == "\\S" else f"[^{digits}]")
            elif escape[1:].isalnum():
                raise Untranslatable(f"{escape} in {pattern!r}")
            else:
                out.append(escape)
            index += 2
            continue
        if in_class:
            in_class = char != "]"
        elif char == "[":
            in_class = True
            if pattern[index + 1:index + 2] == "^":
                raise Untranslatable(f"a negated class in {pattern!r}")
        elif char == ".":
            char = f"[{wire.line}]"
        elif char == "^":
            char = f"^[{wire.space}]*"
        elif char == "$":
            char = f"[{wire.space}]*$"
        elif pattern.startswith("(?", index) and pattern[index + 2:index + 3] not in (":", "=", "!"):
            raise Untranslatable(f"a group flag in {pattern!r}")
        out.append(char)
        index += 1
    return "".join(out)


def _bounded(pattern: str, most: int) -> bool:
    """Whether a rule pattern, anchored at both ends, matches only text of 1 to `most` characters."""
    try:
        low, high = re._parser.parse(pattern).getwidth()  # type: ignore[attr-defined]
    except (re.error, AttributeError):
        return False
    return pattern.startswith("^") and pattern.endswith("$") and low >= 1 and high <= most


# ---------------------------------------------------------------------- a lead's fields

def _ssn(wire: Wire) -> str:
    """Nine digits that make an issuable SSN (area not 000, 666 or 9xx; group not 00; serial not
    0000). Verification drops white space and hyphens anywhere; the document allows them around
    the number and one between its parts."""
    area = "00[1-9]|0[1-9][0-9]|[1-578][0-9]{2}|6[0-57-9][0-9]|66[0-57-9]"
    group, serial = "0[1-9]|[1-9][0-9]", "000[1-9]|00[1-9][0-9]|0[1-9][0-9]{2}|[1-9][0-9]{3}"
    gap = f"[{wire.space}-]?"
    return f"(?:{area}){gap}(?:{group}){gap}(?:{serial})"


def _money(spec: FieldSpec) -> tuple[int, int]:
    return (spec.minimum or 0, spec.maximum if spec.maximum is not None else 10**12 - 1)


def _string(pattern: str, **more: Any) -> dict:
    return {"type": "string", "pattern": pattern, **more}


def _optional(schema: dict, wire: Wire) -> dict:
    """An optional field: JSON's null is an absent field."""
    return {"anyOf": [schema, {"type": "null"}]} if wire.nulls else schema


def _lead_field(spec: FieldSpec, rules: tuple[Rule, ...], wire: Wire, beyond: list[dict]) -> dict:
    """A lead field's schema, as verification reads it (leadx.leads.verticals): trimmed text of at
    most MAX_FIELD_LENGTH characters, then its type's checks and its constraint rules; an empty (or
    blank) optional field is an absent one."""
    def pattern(core: str) -> str:
        return wire.trimmed(core if spec.required else f"(?:{core})?")

    description = ""
    kind = spec.type
    schema: dict
    if kind in ("money", "integer"):
        low, high = _money(spec)
        schema = _string(pattern(_numerals(low, high, 12)))
        if wire is JSON:
            schema = {"anyOf": [{"type": "integer", "minimum": low, "maximum": high}, schema]}
        description = f"{'cents' if kind == 'money' else 'a whole number'}, {low} to {high}"
    elif kind == "email":
        # White space is no part of an address: within the field's length, as sent or trimmed.
        schema = _string(pattern(_EMAIL.pattern.strip("^$")), maxLength=MAX_FIELD_LENGTH)
    elif kind == "phone":
        separator = f"[{wire.space}.-]?"
        area = r"\([2-9][0-9]{2}\)|[2-9][0-9]{2}"
        number = rf"(?:\+?1{separator})?(?:{area}){separator}[2-9][0-9]{{2}}{separator}[0-9]{{4}}"
        schema = _string(pattern(number))
        description = "10 digits (a leading 1, white space, dots, dashes and brackets are fine), a geographic area code"
        beyond.append({"status": 422, "code": "FIELD_INVALID", "field": spec.name, "message": "geographic",
                       "why": "the area code is no geographic US one (leadx.leads.phone_areas): not 555, not "
                              "toll-free"})
    elif kind == "ssn":
        schema = _string(pattern(_ssn(wire)))
        description = "9 digits, issuable; white space and hyphens are dropped"
    elif kind == "zip":
        schema = _string(pattern("[0-9]{5}"))
        description = "5 digits: a US ZIP code"
        beyond.append({"status": 422, "code": "ZIP_UNKNOWN", "field": spec.name,
                       "why": "the ZIP code is not in the national ZIP database"})
    elif kind == "state":
        # A pattern, not an enum of all 56: tools enumerate an enum's every value.
        schema = _string(pattern(_caseless(sorted(STATE_CODES))), examples=["NY", "tx"])
        description = "a US state's (or territory's) two letters, in any case: the ZIP code's state"
        beyond.append({"status": 422, "code": "ZIP_STATE_MISMATCH", "field": spec.name,
                       "why": "the state is not the ZIP code's"})
    elif kind == "date":
        # Python reads more than RFC 3339's full-date (20240501, 2024-W18); the document says the one form.
        schema = {"type": "string", "format": "date"}
        if not spec.required:
            schema = {"anyOf": [schema, _string(f"^[{wire.space}]*$")]}
        description = "YYYY-MM-DD" + (f"; the consumer {spec.min_age} to {spec.max_age} years old today"
                                      if spec.min_age is not None or spec.max_age is not None else "")
        for words in ("the consumer", "plausible date"):
            beyond.append({"status": 422, "code": "FIELD_INVALID", "field": spec.name, "message": words,
                           "why": "the consumer's age today is outside the vertical's bounds, or the date is "
                                  "before 1900 or ahead"})
    elif kind == "enum":
        schema = {"anyOf": [{"enum": list(spec.values)}, _string(pattern(_caseless(spec.values)))]}
        description = f"one of {', '.join(spec.values)}, in any case"
    else:
        schema = _string(pattern(wire.text(MAX_FIELD_LENGTH)))
    if kind == "phone":
        beyond.append({"status": 422, "code": "FIELD_INVALID", "field": spec.name, "message": "area code",
                       "why": "the exchange requires the phone's area code in the ZIP code's state "
                              "(INTAKE_PHONE_AREA_MUST_MATCH)"})

    own_rules = [rule for rule in rules if rule.field == spec.name]
    constrained = []
    for rule in own_rules:
        try:
            rule_pattern = _translated(rule.pattern.pattern, wire)
        except Untranslatable:
            beyond.append({"status": 422, "code": "FIELD_INVALID", "field": spec.name, "message": rule.message,
                           "why": f"the constraint rule {rule.name} ({rule.pattern.pattern})"})
            continue
        if not spec.required:
            rule_pattern = f"^[{wire.space}]*$|{rule_pattern}"
        if kind == "text" and len(own_rules) == 1:
            # The rule says what the type does (a trimmed text of its length), and more. The length,
            # where the rule leaves it open, is the raw value's (white space around it may count).
            bounded = _bounded(rule.pattern.pattern, MAX_FIELD_LENGTH)
            schema = _string(rule_pattern, **({} if bounded else {"maxLength": MAX_FIELD_LENGTH}))
        else:
            constrained.append(_string(rule_pattern))
        description = (description + "; " if description else "") + rule.message
    if constrained:
        schema = {"allOf": [schema, *constrained]}
    if description:
        schema = {**schema, "description": description}
    return schema if spec.required else _optional(schema, wire)


def _sale_text(wire: Wire) -> dict:
    """A text field of the sale, not the consumer (requests.text_field): any text; blank is absent."""
    return _optional({"type": "string"} if wire is not XML else _string(f"^[{wire.anything}]*$"), wire)


def _cents(wire: Wire, low: int = 0, required: bool = False) -> dict:
    """A money field of the request itself (requests.cents_field): a whole number of cents, or its
    digits (trimmed, any leading zeros); an empty one is absent."""
    digits = _numerals(low, MAX_CENTS)
    if wire.trims_all:
        text = _string(wire.trimmed(digits if required else f"(?:{digits})?"))
    else:
        text = _string(f"^[{wire.space}]*(?:{digits})[{wire.space}]*$" if required else
                       f"^(?:[{wire.space}]*(?:{digits})[{wire.space}]*)?$")
    if wire is JSON:
        return {"anyOf": [{"type": "integer", "minimum": low, "maximum": MAX_CENTS}, text,
                          *([] if required else [{"type": "null"}])]}
    return text


def _lead_schema(vertical: Vertical, rules: tuple[Rule, ...], wire: Wire) -> tuple[dict, list[dict]]:
    beyond: list[dict] = []
    properties: dict[str, Any] = {
        "vertical": {"type": "string", "const": vertical.name} if not wire.trims_all else
        _string(wire.trimmed(re.escape(vertical.name)))}
    for spec in vertical.fields:
        properties[spec.name] = _lead_field(spec, rules, wire, beyond)
    reference = _string(wire.trimmed(f"(?:{wire.text(MAX_REFERENCE)})?")) if wire.trims_all else {
        "type": "string", "maxLength": MAX_REFERENCE}
    if wire is JSON:
        reference = {"anyOf": [reference, {"type": "integer", "minimum": -(10 ** (MAX_REFERENCE - 1) - 1),
                                           "maximum": 10**MAX_REFERENCE - 1}, {"type": "null"}]}
    properties.update({
        "min_price": {**_cents(wire), "description": "the reserve for an auction sale, cents; not with buyer"},
        "buyer": {**_sale_text(wire), "description": "a buyer id for a direct sale under contract, instead of an "
                                                      "auction"},
        "ping_token": {**_sale_text(wire), "description": "from this lead's PING: the POST is held to it"},
        "reference": {**reference, "description": f"your own id for the lead (at most {MAX_REFERENCE} characters); "
                                                  "the idempotency key when no Idempotency-Key header is sent"},
    })
    schema = {
        "type": "object", "xml": {"name": "lead"}, "additionalProperties": False, "properties": properties,
        "required": ["vertical", *(spec.name for spec in vertical.fields if spec.required)],
        "description": "Fields the vertical does not know are ignored (at most 100 fields in all), so the "
                       "document names only those read.",
    }
    beyond += [
        # JSON Schema can say it (if buyer then no min_price), at a cost to every tool that reads it.
        {"status": 422, "code": "FIELD_INVALID", "field": "min_price", "message": "not both",
         "why": "a direct sale's price is its contract's: a buyer and a reserve together are refused"},
        {"status": 422, "code": "FIELD_INVALID", "field": "buyer", "message": "contract",
         "why": "you have no direct-sale contract with that buyer"},
        {"status": 422, "code": "FIELD_INVALID", "field": "ping_token",
         "why": "the token was not issued by this exchange to you, or has expired"},
        {"status": 422, "code": "PING_MISMATCH", "why": "the lead differs from its PING in this field"},
        {"status": 422, "code": "IDEMPOTENCY_KEY_REUSED",
         "why": "the idempotency key (or reference) was first used for a different lead"},
    ]
    return schema, beyond


def _ping_schema(vertical: Vertical, rules: tuple[Rule, ...], wire: Wire) -> tuple[dict, list[dict]]:
    beyond: list[dict] = []
    fields = {spec.name: spec for spec in vertical.fields}
    properties: dict[str, Any] = {
        "vertical": {"type": "string", "const": vertical.name} if not wire.trims_all else
        _string(wire.trimmed(re.escape(vertical.name)))}
    for name in ("zip", "gross_monthly_income", "ssn"):
        if name in fields:
            optional = FieldSpec(name, fields[name].type, False, fields[name].values, fields[name].minimum,
                                 fields[name].maximum)
            properties[name] = _lead_field(optional, rules, wire, beyond)
    hashed = wire.trimmed("(?:[0-9A-Fa-f]{64})?")
    properties.update({
        "email_sha256": {**_optional(_string(hashed), wire),
                         "description": "hex SHA-256 of the lower-cased, trimmed email"},
        "home_phone_sha256": {**_optional(_string(hashed), wire), "description": "hex SHA-256 of the phone's 10 "
                                                                                  "digits"},
        "buyer": {**_sale_text(wire), "description": "a buyer id for a direct sale under contract"},
    })
    schema = {"type": "object", "xml": {"name": "ping"}, "required": ["vertical"], "properties": properties,
              "additionalProperties": False}
    beyond.append({"status": 422, "code": "FIELD_INVALID", "field": "buyer", "message": "contract",
                   "why": "you have no direct-sale contract with that buyer"})
    return schema, beyond


def _flat_body(root: str, properties: dict, required: list[str], closed: bool = False) -> dict:
    """A flat body of the sellers' and buyers' routes, in any of the three formats. Other fields
    are ignored (at most 100 fields in all) unless the route refuses them (`closed`): the document
    names only those read."""
    body = {"type": "object", "xml": {"name": root}, "required": required, "properties": properties,
            "additionalProperties": False}
    if not closed:
        body["description"] = "Other fields are ignored (at most 100 fields in all)."
    return body


def _return_body(wire: Wire) -> dict:
    reason = (_string(wire.trimmed(wire.text(MAX_REASON_CHARS))) if wire.trims_all else
              _string(f"[{wire.nonspace}]", maxLength=MAX_REASON_CHARS))
    return _flat_body("return", {"reason": {**reason, "description": "why the lead is returned"}}, ["reason"])


def _outcome_body(wire: Wire) -> dict:
    outcome = {"anyOf": [{"enum": list(OUTCOMES)}, _string(wire.trimmed(_caseless(OUTCOMES)))]}
    # Python's reading of an ISO 8601 time is wider than RFC 3339's, but not in the letters' case.
    at = {"type": "string", "format": "date-time", "pattern": "^[^tz]*$"}
    note = (_string(wire.trimmed(f"(?:{wire.text(MAX_NOTE_CHARS)})?")) if wire.trims_all else
            {"type": "string", "maxLength": MAX_NOTE_CHARS})
    return _flat_body("outcome", {
        "outcome": outcome,
        "at": {"anyOf": [at, {"const": ""}, *([{"type": "null"}] if wire.nulls else [])],
               "description": "when it happened, with its zone (e.g. 2024-05-01T14:30:00Z); not before the sale "
                              "nor more than 5 minutes ahead; default now"},
        "note": {**_optional(note, wire), "description": "kept with the report, never published"},
    }, ["outcome"])


def _stars(wire: Wire) -> dict:
    text = _string(wire.trimmed("0*[1-5]"))
    return {"anyOf": [{"type": "integer", "minimum": 1, "maximum": 5}, text]} if wire is JSON else text


def _list_bid_body(wire: Wire) -> dict:
    """A dealer's bid on a list (services.intake.lists.bid_spec, leadx.lists.award.check_bid)."""
    def whole(low: int, high: int) -> list[dict]:
        digits = _string(f"^[{wire.space}]*(?:{_numerals(low, high)})[{wire.space}]*$")
        return [*([{"type": "integer", "minimum": low, "maximum": high}] if wire is JSON else []), digits]

    blank = [_string(f"^[{wire.space}]*$"), *([{"type": "null"}] if wire.nulls else [])]

    def scope(*names: str) -> dict:
        return {"enum": list(names)} if not wire.trims_all else _string(wire.trimmed("|".join(names)))

    return _flat_body("bid", {
        "scope": scope(*SCOPES),
        "target": {**_string(wire.trimmed(wire.text(MAX_LIST_TARGET))),
                   "description": "a prospect id, a cluster id (c2), a band (0.10-0.15) or one probability (0.15)"},
        "price": {"anyOf": whole(1, MAX_CENTS), "description": "cents per customer"},
        "max_count": {"anyOf": whole(1, MAX_LIST_COUNT) + blank, "description": "group bids: at most this many "
                                                                                 "customers"},
        "max_budget": {"anyOf": whole(1, MAX_CENTS) + blank, "description": "group bids: at most this many cents "
                                                                             "in all"},
    }, ["scope", "target", "price"], closed=True)


# ---------------------------------------------------------------------- the admin API's documents (JSON)

def _number(**bounds: Any) -> dict:
    """A number the admin API takes (I-JSON: within ±MAX_JSON_NUMBER)."""
    return {"type": "number", "minimum": -MAX_JSON_NUMBER, "maximum": MAX_JSON_NUMBER, **bounds}


def _whole(low: int = 0, high: int = MAX_JSON_NUMBER) -> dict:
    return {"type": "integer", "minimum": low, "maximum": high}


def _ref(name: str) -> dict:
    return {"$ref": f"#/components/schemas/{name}"}


def _nonempty_list(items: dict) -> dict:
    return {"type": "array", "minItems": 1, "items": items}


_NAMED = {"type": "string", "pattern": f"[^{_SPACE}]"}  # text with something besides white space
_TOKENS = _nonempty_list({"anyOf": [{"type": "string"}, _whole(-MAX_JSON_NUMBER)]})
# What a profile's code reads as "none" where it reads `value or []`.
_FALSY = {"anyOf": [{"enum": [None, False, 0, ""]}, {"type": "array", "maxItems": 0},
                    {"type": "object", "maxProperties": 0}]}
# Any JSON value the admin API takes (I-JSON): text, a bounded number, true, false, null, or lists and
# objects of them.
_JSON_VALUE = {"$ref": "#/components/schemas/JsonValue"}


def _time_of_week() -> dict:
    day, blank = _caseless(DAYS), f"[{_SPACE}]"
    start = f"^{blank}*(?:{day})[^{_SPACE}]*{blank}+0*"
    return _string(f"{start}(?:1?[0-9]|2[0-3]):[0-5][0-9]{blank}*$|{start}24:00{blank}*$",
                   examples=["fri 08:00", "sun 24:00"])


def _criterion(priced: bool) -> dict:
    """An AutoBid criterion (leadx.auction.selection.criteria); a list profile's has no price."""
    span = {"type": "object", "minProperties": 1, "additionalProperties": False,
            "properties": {"min": _number(), "max": _number()}}
    field = {"type": "object", "required": ["name", "value"], "properties": {
        "name": {"type": "string", "not": {"enum": sorted(IDENTIFYING_FIELDS)},
                 "description": "a lead field; not one that identifies the consumer"},
        "op": {"enum": list(FIELD_OPS), "default": "eq"}, "value": _JSON_VALUE},
        "additionalProperties": _JSON_VALUE,
        "allOf": [{"if": {"required": ["op"], "properties": {"op": {"enum": ["in", "not_in"]}}},
                   "then": {"properties": {"value": _TOKENS}}},
                  {"if": {"required": ["op"], "properties": {"op": {"enum": ["lt", "lte", "gt", "gte"]}}},
                   "then": {"properties": {"value": _number()}}}]}
    properties: dict[str, Any] = {
        "states": _TOKENS, "zips": _nonempty_list(_string(f"^[{_SPACE}]*[0-9]{{5}}[{_SPACE}]*$")),
        "zip_radius": {"type": "object", "required": ["zip", "miles"], "additionalProperties": False,
                       "properties": {"zip": _string("^[0-9]{5}$"), "miles": _number()}},
        "income": span, "requested_amount": span, "probability": span, "timing": span,
        "residence_types": _TOKENS, "clusters": _TOKENS, "fields": {"type": "array", "items": field}}
    assert set(properties) == set(CONDITION_KEYS)
    if priced:
        properties["price"] = _ref("Price")
    return {"type": "object", "additionalProperties": False, "properties": properties,
            "description": "conditions that must all hold (absent: any lead)" + (" and a price" if priced else "")}


# The rules that tie one field to another: JSON Schema can state them (if/then), at a cost to
# every tool that reads it (schemathesis's edge coverage of a body with one multiplies its cases
# several times), so each operation lists them here.
_PROFILE_BEYOND = [{"status": 422, "code": "FIELD_INVALID", "message": "needs a price",
                    "why": "a criterion without a price, in a profile without one"}]
_CRITERIA_BEYOND = [
    {"status": 422, "code": "FIELD_INVALID", "message": "is above its max", "why": "a range's min is above its max"},
    {"status": 422, "code": "FIELD_INVALID", "message": "known location",
     "why": "zip_radius's ZIP code is not in the national ZIP database"},
    {"status": 422, "code": "FIELD_INVALID", "message": "regular expression",
     "why": "a `matches` condition's value is not a regular expression"},
]


def _url() -> dict:
    """An http(s) URL whose host is a name (an address is judged as written, a name by what it
    resolves to). The intake takes any http(s) URL of at most MAX_URL characters with a host; the
    document names a plainer subset: a name of up to 5 labels, a path of up to 200 characters."""
    label = "[A-Za-z0-9-]{1,40}"
    host = rf"[A-Za-z][A-Za-z0-9-]{{0,40}}(?:\.{label}){{0,4}}"
    path = "[A-Za-z0-9._~%!$&'()*+,;=:@/-]{0,200}"
    core = rf"[Hh][Tt][Tt][Pp][Ss]?://{host}(?::(?:{_numerals(0, 65535)}))?(?:/{path})?"
    return _string(JSON.trimmed(core), description=f"an http(s) URL of at most {MAX_URL} characters; https and a "
                   "public address where BUYER_URLS_ALLOW_PRIVATE is off")


def _admin_schemas() -> dict:
    blank_url = {"anyOf": [_url(), _string(f"^[{_SPACE}]*$"), {"type": "null"}]}
    settings = {"kind": {"enum": list(BUYER_KINDS), "default": WHOLESALE},
                "weight": {"type": "number", "exclusiveMinimum": 0, "maximum": MAX_WEIGHT,
                           "description": "weighted bid = bid x weight"},
                "time_zone": _ref("TimeZone"), "caps": _ref("Caps")}
    assert set(settings) == set(SETTINGS)
    name = _string(JSON.trimmed(JSON.text(MAX_NAME)))
    profile = {
        "type": "object", "required": ["name"], "additionalProperties": False,
        "description": "an AutoBid profile (docs/admin-api.md)",
        "properties": {
            "name": name,
            "windows": {"anyOf": [_FALSY, {"type": "array", "items": {
                "type": "object", "required": ["from", "to"],
                "properties": {"from": _time_of_week(), "to": _time_of_week()},
                "additionalProperties": _JSON_VALUE}}],
                "description": "absent (or null, or empty): always active"},
            "price": _ref("Price"), "caps": _ref("Caps"),
            "criteria": {**_nonempty_list(_criterion(priced=True)), "description": "absent: every lead"},
            "active": {"type": "boolean", "description": "false: paused (kept and listed, bidding for nothing)"}}}
    list_profile = {"oneOf": [
        {"type": "object", "additionalProperties": False,
         "properties": {"criteria": {"type": "array", "items": _criterion(priced=False)}}},
        {"type": "array", "items": _criterion(priced=False)}],
        "description": "customers matching any criterion are on the list; none: the whole pool"}
    band_width = {"enum": [round(n / 100, 2) for n in range(1, 101)], "default": 0.05,
                  "description": "whole hundredths from 0.01 to 1"}
    verticals = sorted(load_verticals())
    return {
        "JsonValue": {"anyOf": [{"type": ["string", "boolean", "null"]}, _number(),
                                {"type": "array", "items": _JSON_VALUE},
                                {"type": "object", "additionalProperties": _JSON_VALUE}]},
        # A pattern, not an enum of some 600 names: tools enumerate an enum's every value.
        "TimeZone": _string("^(?:" + "|".join(re.escape(zone) for zone in sorted(zoneinfo.available_timezones()))
                            + ")$", description="an IANA time zone", examples=["America/Chicago"]),
        "Caps": {"type": ["object", "null"], "additionalProperties": False, "properties": {
            limit: {"anyOf": [_whole(), {"type": "null"}]} for limit in LIMITS}},
        "Price": {"oneOf": [{**_whole(0, MAX_PRICE_CENTS), "description": "cents"},
                            {"type": "object", "required": ["per_probability"], "additionalProperties": False,
                             "properties": {"per_probability": {**_whole(0, MAX_PRICE_CENTS),
                                                                "description": "cents x the lead's probability"}}}]},
        "Profile": profile,
        "NewSeller": {"type": "object", "required": ["name"], "additionalProperties": False,
                      "properties": {"name": name}},
        "NewBuyer": {"type": "object", "required": ["name"], "additionalProperties": False,
                     "properties": {"name": name, "ping_url": {
                         **blank_url, "description": "required for a wholesale buyer (the default kind)"},
                         "post_url": {**blank_url, "description": "absent or empty: leads are accepted for the "
                                                                  "buyer, which reads them with its key"},
                         **settings}},
        "BuyerChange": {"type": "object", "minProperties": 1, "additionalProperties": False,
                        "properties": settings, "description": "null caps: none"},
        "Profiles": {"oneOf": [{"type": "array", "items": _ref("Profile")},
                               {"type": "object", "required": ["profiles"], "additionalProperties": False,
                                "properties": {"profiles": {"type": "array", "items": _ref("Profile")}}}]},
        "Import": {"type": "object", "required": ["buyers"], "additionalProperties": False, "properties": {
            "buyers": {"type": "array", "items": {
                "type": "object", "required": ["id"], "additionalProperties": False, "properties": {
                    "id": {"type": "string"}, **{k: v for k, v in settings.items()},
                    "profiles": {"anyOf": [{"type": "array", "items": _ref("Profile")}, _FALSY],
                                 "description": "replaces the buyer's profiles"}}}}}},
        "Partnership": {"type": "object", "required": ["seller", "buyer"], "additionalProperties": False,
                        "properties": {"seller": _NAMED, "buyer": _NAMED}},
        "SellsTo": {"type": "object", "required": ["sells_to"], "additionalProperties": False, "properties": {
            "sells_to": {"anyOf": [{"enum": ["all", "named"]}, _string(JSON.trimmed("all|named"))]}}},
        "Choice": {"type": "object", "required": ["choice"], "additionalProperties": False, "properties": {
            "choice": {"anyOf": [{"enum": ["allow", "block"]}, _string(JSON.trimmed("allow|block"))]}}},
        "ListOpen": {"type": "object", "required": ["vertical", "profile"], "additionalProperties": False,
                     "properties": {
                         "vertical": {"enum": verticals}, "profile": list_profile,
                         "window_seconds": {"type": "number", "exclusiveMinimum": 0, "maximum": MAX_LIST_WINDOW_S,
                                            "default": 120},
                         "reserve": {**_whole(0, MAX_CENTS), "default": 0, "description": "cents per customer"},
                         "band_width": band_width}},
        "ListPreview": {"type": "object", "required": ["vertical", "profile"], "additionalProperties": False,
                        "properties": {
                            "vertical": {"enum": verticals}, "profile": list_profile, "band_width": band_width,
                            "top": {**_whole(0, MAX_LIST_TOP), "default": 100,
                                    "description": "how many of the best customers to list"}}},
    }


# ---------------------------------------------------------------------- what the intake answers

_LIST_SPREAD = {"count": {"type": "integer"}, "probability_min": {"type": "number"},
                "probability_max": {"type": "number"}, "probability_mean": {"type": "number"},
                "expected_responses": {"type": "number", "description": "the sum of the probabilities"}}
_ANSWER_SCHEMAS = {
    "Answer": {"type": "object", "xml": {"name": "response"}, "required": ["status", "lead_id", "errors"],
               "properties": {
        "status": {"type": "string", "enum": ["accepted", "rejected", "duplicate", "pending", "in_auction", "sold",
                                              "unsold", "returned", "not_queued", "reported", "rated", "ok",
                                              "created", "open", "closing", "closed"]},
        "lead_id": {"type": ["string", "null"], "pattern": LEAD_ID},
        "errors": {"type": "array", "items": _ref("Error")},
        "warnings": {"type": "array", "items": _ref("Warning")},
        "status_url": {"type": "string", "description": "on 202: where to ask for the verdict"},
        "ping_token": {"type": "string", "description": "PING only: send it with the POST"},
        "expires_at_ms": {"type": "integer", "description": "PING only: when the token expires"},
        "wanted": {"type": "boolean", "description": "PING only: some eligible buyer can take the lead"},
        "price_cents": {"type": "integer", "description": "a bought lead, to its buyer: the price paid"},
        "lead": {"type": "object", "description": "a bought lead, to its buyer: its fields"},
        "credited_cents": {"type": "integer", "description": "return only: the price credited back to the buyer"},
        "returned_at_ms": {"type": "integer", "description": "return only: when the return was recorded"},
        "outcome": {"type": "string", "enum": list(OUTCOMES), "description": "outcome only: the outcome stored"},
        "at_ms": {"type": "integer", "description": "outcome only: when it happened (Unix ms)"},
        "reported_at_ms": {"type": "integer", "description": "outcome only: when it was first reported"},
        "note": {"type": "string", "description": "outcome only: the note stored with it"},
        "your_stars": {"type": ["integer", "null"], "description": "ratings only: your rating of the account"},
        "average_stars": {"type": ["number", "null"], "description": "ratings only: every rater's average"},
        "ratings": {"type": "integer", "description": "ratings only: how many have rated the account"},
        "auction_id": {"type": "string", "description": "bids only: the auction bid on"},
        "bid": {"type": "integer", "description": "bids only: the bid accepted, cents"},
        "closes_at_ms": {"type": "integer", "description": "bids only: when the auction closes (Unix ms)"}}},
    "Created": {"type": "object", "properties": {
        "status": {"type": "string", "const": "created"}, "id": {"type": "string"},
        "api_key": {"type": "string", "description": "shown once; only its hash is stored"}}},
    "NewKey": {"type": "object", "properties": {
        "status": {"type": "string", "const": "ok"}, "id": {"type": "string"},
        "api_key": {"type": "string", "description": "shown once; only its hash is stored. The old key works at most "
                    "30 s more by default (the readers' key cache, API_KEY_CACHE_SECONDS)"}}},
    "Revoked": {"type": "object", "properties": {"status": {"type": "string"}, "id": {"type": "string"}}},
    "BuyerSettings": {"type": "object", "properties": {
        "status": {"type": "string"}, "id": {"type": "string"}, "name": {"type": "string"},
        "kind": {"type": "string"}, "weight": {"type": "number"}, "time_zone": {"type": "string"},
        "caps": {"type": "object"}, "ping_url": {"type": ["string", "null"]}, "post_url": {"type": ["string", "null"]},
        "active": {"type": "boolean"},
        "profiles": {"type": "array", "items": {"type": "object", "required": ["id"]},
                     "description": "the active profiles as stored, each with its id"}}},
    "ProfileIds": {"type": "object", "properties": {
        "status": {"type": "string"}, "buyer_id": {"type": "string"},
        "profile_ids": {"type": "array", "items": {"type": "string"}}}},
    "Imported": {"type": "object", "properties": {"status": {"type": "string"}, "profile_ids": {
        "type": "object", "additionalProperties": {"type": "array", "items": {"type": "string"}}}}},
    "PartnershipIds": {"type": "object", "properties": {
        "status": {"type": "string"}, "seller_id": {"type": "string"}, "buyer_id": {"type": "string"}}},
    "SellerRelations": {"type": "object", "properties": {
        "status": {"type": "string"}, "seller_id": {"type": "string"},
        "sells_to": {"type": "string", "enum": ["all", "named"]},
        "partners": {"type": "array", "items": {"type": "string"}, "description": "buyers opted in to its leads"},
        "allowed": {"type": "array", "items": {"type": "string"}},
        "blocked": {"type": "array", "items": {"type": "string"}}}},
    "ListCustomer": {"type": "object", "description": "no PII", "properties": {
        "prospect_id": {"type": "string"}, "state": {"type": "string"}, "zip3": {"type": "string"},
        "probability": {"type": "number", "description": "of answering a direct offer"},
        "cluster": {"type": "string"},
        "buyer_id": {"type": ["string", "null"], "description": "operators, once closed: who won it"},
        "price_cents": {"type": ["integer", "null"], "description": "operators, once closed: its price"}}},
    "ListBid": {"type": "object", "properties": {
        "id": {"type": "integer"}, "buyer_id": {"type": "string"},
        "scope": {"type": "string", "enum": list(SCOPES)}, "target": {"type": "string"},
        "price_cents": {"type": "integer"}, "max_count": {"type": ["integer", "null"]},
        "max_budget_cents": {"type": ["integer", "null"]}, "placed_at_ms": {"type": "integer"}}},
    "ListBidAccepted": {"type": "object", "properties": {
        "status": {"type": "string", "const": "accepted"}, "list_id": {"type": "string"},
        "closes_at_ms": {"type": "integer"}, "bid": _ref("ListBid")}},
    "ListView": {"type": "object", "properties": {
        "status": {"type": "string", "enum": ["open", "closing", "closed"],
                   "description": "closing: the window has ended and the ledger is closing it"},
        "list_id": {"type": "string"}, "vertical": {"type": "string"},
        "opened_at_ms": {"type": "integer"}, "closes_at_ms": {"type": "integer"},
        "closed_at_ms": {"type": ["integer", "null"]}, "seconds_left": {"type": "number"},
        "reserve_cents": {"type": "integer"}, "band_width": {"type": "number"},
        "count": {"type": "integer", "description": "customers on the list"},
        "clusters": {"type": "array", "items": {"type": "object", "properties": {
            "cluster": {"type": "string"}, "description": {"type": "string"}, **_LIST_SPREAD}}},
        "bands": {"type": "array", "items": {"type": "object", "properties": {"band": {"type": "string"},
                                                                              **_LIST_SPREAD}}},
        "offset": {"type": "integer"},
        "customers": {"type": "array", "items": _ref("ListCustomer"), "description": "best first, from offset"},
        "your_bids": {"type": "array", "items": _ref("ListBid"), "description": "dealers: their own bids"},
        "won": {"type": ["object", "null"], "description": "dealers, once closed: count and total_cents won"},
        "profile": {"description": "operators: the profile the list was built from"},
        "tie_break_seed": {"type": "integer", "description": "operators: the seed of the recorded draw"},
        "bids": {"type": "array", "items": _ref("ListBid"), "description": "operators: every bid"},
        "awards": {"type": ["object", "null"], "description": "operators, once closed: count, total_cents, unsold, "
                   "published, by_buyer"}}},
    "ListWon": {"type": "object", "properties": {
        "list_id": {"type": "string"}, "buyer_id": {"type": "string"}, "count": {"type": "integer"},
        "total_cents": {"type": "integer"},
        "customers": {"type": "array", "items": {"type": "object", "properties": {
            "prospect_id": {"type": "string"}, "price_cents": {"type": "integer"},
            "probability": {"type": "number"}, "cluster": {"type": "string"},
            "fields": {"type": "object", "additionalProperties": {"type": "string"},
                       "description": "the customer's fields, PII included: the dealer bought them"}}}}}},
}

_HEADERS = {
    "Retry-After": {"description": "whole seconds to wait before retrying", "required": True,
                    "schema": {"type": "string", "pattern": "^[0-9]+$"}},
    "Allow": {"description": "the methods this path serves", "required": True, "schema": {"type": "string"}},
    "Location": {"description": "where to read what was answered", "required": True, "schema": {"type": "string"}},
    "WWW-Authenticate": {"description": "Bearer", "required": True, "schema": {"type": "string"}},
}


def _problem(codes: list[str]) -> dict:
    return {"type": "object", "required": ["code", "field", "message"], "properties": {
        "code": {"type": "string", "enum": codes},
        "field": {"type": ["string", "null"], "description": "the field at fault, when there is one"},
        "message": {"type": "string", "description": "what is wrong, for a person to read"}}}


def _answer(description: str, schema: str = "Answer", headers: tuple[str, ...] = ()) -> dict:
    """An answer, in JSON or XML as the request's Content-Type and Accept call for."""
    answer = {"description": description, "content": {media: {"schema": _ref(schema)}
                                                      for media in ("application/json", "application/xml")}}
    if headers:
        answer["headers"] = {name: {"$ref": f"#/components/headers/{name}"} for name in headers}
    return answer


@dataclass(frozen=True)
class Audience:
    """Who calls a route: its security, its 401, its tags and the rate limit it is held to."""

    name: str
    security: list | None
    unauthenticated: str | None
    tags: tuple[str, ...]
    limits: str


SELLERS = Audience("Sellers", None, "AUTH_INVALID: no API key, or one that is not a seller's", ("sellers",),
                   "RATE_LIMITED (per account), AUTH_THROTTLED (unknown keys from your address), or RATE_LIMITED "
                   "(per address, without a key)")
BUYERS = Audience("Buyers", None, "AUTH_INVALID: no API key, or one that is not a buyer's", ("buyers",),
                  SELLERS.limits)
EITHER = Audience("SellersOrBuyers", None, "AUTH_INVALID: no API key, or one that is no seller's or buyer's",
                  ("sellers", "buyers"), SELLERS.limits)
DEALERS = Audience("Buyers", None, BUYERS.unauthenticated, ("buyers", "lists"), SELLERS.limits)
OPERATORS = Audience("Operators", [{"adminKey": []}], "AUTH_INVALID: no admin key, a wrong one, or ADMIN_API_KEY unset",
                     ("admin",), "RATE_LIMITED (the admin key's), AUTH_THROTTLED (wrong keys from your address), or "
                     "RATE_LIMITED (per address, without a key)")
OPERATORS_LISTS = Audience("Operators", OPERATORS.security, OPERATORS.unauthenticated, ("admin", "lists"),
                           OPERATORS.limits)
ANYONE = Audience("Anyone", [], None, ("public",), "RATE_LIMITED (per address: no key is asked)")


def _operation(operation_id: str, summary: str, audience: Audience, answers: Mapping[str, dict | str],
               body: dict | None = None, parameters: list[dict] | None = None, beyond: list[dict] | None = None,
               description: str = "") -> dict:
    """One operation with every answer it can give: its own, then what every route of its audience
    answers (405, 429, 503, and 401 and the body's refusals where they apply)."""
    responses: dict[str, Any] = {code: _answer(text) if isinstance(text, str) else text
                                 for code, text in answers.items()}
    shared = ["MethodNotAllowed", "ServiceUnavailable", f"RateLimited{audience.name}"]
    if body is not None:
        shared += ["Malformed", "TooLarge", "UnsupportedMediaType"]
    if audience.unauthenticated is not None:
        shared.append(f"Unauthenticated{audience.name}")
    for name in shared:
        status = _SHARED_STATUS[name.removesuffix(audience.name)]
        responses.setdefault(status, {"$ref": f"#/components/responses/{name}"})
    operation: dict[str, Any] = {"operationId": operation_id, "summary": summary, "tags": list(audience.tags),
                                 "responses": dict(sorted(responses.items()))}
    if description:
        operation["description"] = description
    if audience.security is not None:
        operation["security"] = audience.security
    if parameters:
        operation["parameters"] = parameters
    if body is not None:
        operation["requestBody"] = {"required": True, "content": body}
        if "application/xml" in body:
            operation["requestBody"]["description"] = "text/xml is read as application/xml"
    if beyond:
        unique = {repr(sorted(entry.items())): entry for entry in beyond}
        operation[BEYOND_SCHEMA] = list(unique.values())
    return operation


_SHARED_STATUS = {"MethodNotAllowed": "405", "ServiceUnavailable": "503", "RateLimited": "429", "Malformed": "400",
                  "TooLarge": "413", "UnsupportedMediaType": "415", "Unauthenticated": "401"}


def _shared_responses() -> dict:
    """The answers many operations share, once: components/responses."""
    shared = {
        "MethodNotAllowed": _answer("METHOD_NOT_ALLOWED: another method than this path's, which Allow names",
                                    headers=("Allow",)),
        "ServiceUnavailable": _answer("SERVICE_UNAVAILABLE: the exchange's Redis or SQL failed; nothing was done; "
                                      "retry", headers=("Retry-After",)),
        "Malformed": _answer("PAYLOAD_MALFORMED: the body cannot be read in its format"),
        "TooLarge": _answer("PAYLOAD_TOO_LARGE"),
        "UnsupportedMediaType": _answer("UNSUPPORTED_MEDIA_TYPE: send one of the request body's media types"),
    }
    for audience in (SELLERS, BUYERS, EITHER, OPERATORS, ANYONE):
        shared[f"RateLimited{audience.name}"] = _answer(audience.limits + ", with Retry-After",
                                                        headers=("Retry-After",))
        if audience.unauthenticated is not None:
            headers = ("WWW-Authenticate",) if audience.security == OPERATORS.security else ()
            shared[f"Unauthenticated{audience.name}"] = _answer(audience.unauthenticated, headers=headers)
    return shared


def _path_id(name: str, pattern: str, description: str) -> dict:
    return {"name": name, "in": "path", "required": True, "description": description,
            "schema": {"type": "string", "pattern": pattern}}


_LEAD_ID = _path_id("lead_id", LEAD_ID, "10 capital letters and digits")
_LIST_ID = _path_id("list_id", LEAD_ID, "10 capital letters and digits")
_AUCTION_ID = _path_id("auction_id", LEAD_ID, "the lead's id")
_BUYER_ID = _path_id("buyer_id", "^b_[a-z0-9]{10}$", "a buyer's id")
_SELLER_ID = _path_id("seller_id", "^s_[a-z0-9]{10}$", "a seller's id")
_PAGE = [{"name": "offset", "in": "query", "required": False, "schema": {**_whole(0, 999_999_999), "default": 0}},
         {"name": "limit", "in": "query", "required": False, "schema": {**_whole(1, 1000), "default": 100}}]


def _json_body(schema: str) -> dict:
    return {"application/json": {"schema": _ref(schema)}}


def _flat_content(schemas: dict[str, dict], name: str, make) -> dict:
    """A sellers' or buyers' body in its three formats: components `{name}`, `{name}_form`, `{name}_xml`."""
    content = {}
    for wire in WIRES:
        component = name if wire is JSON else f"{name}_{wire.name}"
        schemas[component] = make(wire)
        content.update({media: {"schema": _ref(component)} for media in wire.media_types})
    return content


def _rating(audience: Audience, rater: str, ratee: str, schemas: dict) -> dict:
    pattern = "^b_[a-z0-9]{10}$" if ratee == "buyer" else "^s_[a-z0-9]{10}$"
    account = _path_id("account_id", pattern, f"the {ratee}'s id")
    found = {"200": f"your stars for the {ratee} and the average", "404": f"ACCOUNT_NOT_FOUND: no such {ratee}"}
    body = _flat_content(schemas, "Rating", lambda wire: _flat_body(
        "rating", {"stars": {**_stars(wire), "description": "1 to 5"}}, ["stars"]))
    return {
        "get": _operation(f"read{ratee.title()}Rating", f"A {rater} reads its rating of a {ratee} and the average",
                          audience, found, parameters=[account]),
        "put": _operation(f"rate{ratee.title()}", f"A {rater} rates a {ratee} it has traded with, 1 to 5 stars "
                          "(replaces its last)", audience,
                          {**found, "403": "NOT_A_TRADING_PARTNER", "422": "FIELD_MISSING or FIELD_INVALID (stars)"},
                          body=body, parameters=[account])}


def openapi_document(rulebook: RuleBook | None = None) -> dict:
    """The document for the lead constraint rules the intake applies (`rulebook`: its
    INTAKE_RULES_DIR; None: the packaged rules)."""
    verticals = load_verticals()
    rulebook = rulebook if rulebook is not None else load_rulebook(PACKAGED_RULES, verticals)
    schemas: dict[str, Any] = {"Error": _problem(ERROR_CODES), "Warning": _problem(WARNING_CODES),
                               **_ANSWER_SCHEMAS, **_admin_schemas()}
    lead_content: dict[str, dict] = {}
    ping_content: dict[str, dict] = {}
    lead_beyond: list[dict] = []
    ping_beyond: list[dict] = []
    for wire in WIRES:
        suffix = "" if wire is JSON else f"_{wire.name}"
        leads, pings = [], []
        for name, vertical in sorted(verticals.items()):
            rules = rulebook.rules_for(name, "")
            schemas[f"Lead_{name}{suffix}"], beyond = _lead_schema(vertical, rules, wire)
            lead_beyond += beyond
            schemas[f"Ping_{name}{suffix}"], beyond = _ping_schema(vertical, rules, wire)
            ping_beyond += beyond
            leads.append(_ref(f"Lead_{name}{suffix}"))
            pings.append(_ref(f"Ping_{name}{suffix}"))
        for media in wire.media_types:
            lead_content[media] = {"schema": {"oneOf": leads, "xml": {"name": "lead"}}}
            ping_content[media] = {"schema": {"oneOf": pings, "xml": {"name": "ping"}}}
    return_content = _flat_content(schemas, "Return", _return_body)
    outcome_content = _flat_content(schemas, "Outcome", _outcome_body)
    bid_content = _flat_content(schemas, "Bid", lambda wire: _flat_body(
        "bid", {"bid": {**_cents(wire, required=True), "description": "cents"}}, ["bid"]))
    list_bid_content = _flat_content(schemas, "ListBidBody", _list_bid_body)
    paths = {
        "/v1/ping": {"post": _operation(
            "ping", "Ask whether a lead is wanted before sending it whole", SELLERS,
            {"200": "accepted, with a ping token", "409": "DUPLICATE",
             "422": "rejected: FIELD_MISSING (vertical), FIELD_INVALID, ZIP_UNKNOWN"},
            body=ping_content, beyond=ping_beyond,
            description="Only the minimal subset: any other field is refused. The SSN is checked for duplicates.")},
        "/v1/post": {"post": _operation(
            "postLead", "Submit a whole lead for an auction or a direct sale", SELLERS,
            {"200": "accepted",
             "202": _answer("pending: queued, or still being queued (the broker had not acknowledged it within the "
                            "publish bound); never send it again: ask status_url (also in Location)",
                            headers=("Location",)),
             "409": "DUPLICATE",
             "422": "rejected: FIELD_MISSING, FIELD_INVALID, ZIP_UNKNOWN, ZIP_STATE_MISMATCH, PING_MISMATCH, "
                    "IDEMPOTENCY_KEY_REUSED",
             "503": _answer("OVERLOADED (too many leads in flight) or SERVICE_UNAVAILABLE (the lead could not be "
                            "queued, or the exchange's Redis or SQL failed): the lead was not queued; retry after "
                            "Retry-After, with the same Idempotency-Key", headers=("Retry-After",))},
            body=lead_content, beyond=lead_beyond,
            parameters=[{"name": "Idempotency-Key", "in": "header", "required": False, "schema": {"type": "string"},
                         "description": "its first 200 characters, trimmed: a retry with the same key and the same "
                         "lead gets the first answer; with a different lead, 422 IDEMPOTENCY_KEY_REUSED. Without it, "
                         "`reference` is the key"}],
            description="Besides the vertical's fields: min_price or buyer, ping_token, reference; other fields are "
                        "ignored. A seller with constraint rules of its own (docs/integration-spec.md) is held to "
                        "those instead of the vertical's shown here.")},
        "/v1/leads/{lead_id}": {"get": _operation(
            "readLead", "A lead's status, for the seller who sent it; with a buyer's key, a lead it bought, with "
            "its fields", EITHER,
            {"200": "the status: pending, accepted, in_auction, sold, unsold, duplicate, rejected, returned; or "
                    "not_queued (NOT_QUEUED): answered 202, the lead then certainly failed to be queued and will not "
                    "be sold: submit it again",
             "404": "LEAD_NOT_FOUND: not yours, or no such lead"},
            parameters=[_LEAD_ID])},
        "/v1/leads/{lead_id}/return": {"post": _operation(
            "returnLead", "A buyer returns a lead it bought, within the return window", BUYERS,
            {"200": "returned", "404": "LEAD_NOT_FOUND: you did not buy this lead",
             "422": "FIELD_MISSING or FIELD_INVALID (reason), RETURN_WINDOW_CLOSED, RETURN_RATE_EXCEEDED"},
            body=return_content, parameters=[_LEAD_ID],
            beyond=[{"status": 422, "code": code, "field": "lead_id", "why": why} for code, why in (
                ("RETURN_WINDOW_CLOSED", "the sale is older than the return window"),
                ("RETURN_RATE_EXCEEDED", "the return would take the buyer over its return-rate cap"))],
            description="Credits the buyer the price and debits the seller the price less the platform fee. "
                        "Repeating a return of the same lead answers as the first did.")},
        "/v1/leads/{lead_id}/outcome": {"post": _operation(
            "reportOutcome", "A buyer reports what became of a lead it bought", BUYERS,
            {"201": "reported", "200": "reported before: the stored report",
             "404": "LEAD_NOT_FOUND: you did not buy this lead",
             "422": "FIELD_MISSING or FIELD_INVALID (outcome, at, note)"},
            body=outcome_content, parameters=[_LEAD_ID],
            beyond=[{"status": 422, "code": "FIELD_INVALID", "field": "at",
                     "why": "the time is before the sale, or more than 5 minutes ahead"}],
            description="contacted, converted, returned or not_contacted, with when it happened. A report moves no "
                        "money: a returned report is not a return (use /return).")},
        "/v1/auctions/{auction_id}/bids": {"post": _operation(
            "bid", "A buyer bids on an auction it was offered", BUYERS,
            {"202": "accepted: counted if before closes_at_ms",
             "404": "AUCTION_NOT_FOUND: no such auction was offered to you", "409": "AUCTION_CLOSED",
             "422": "FIELD_MISSING or FIELD_INVALID (bid), BID_TOO_LOW"},
            body=bid_content, parameters=[_AUCTION_ID],
            beyond=[{"status": 422, "code": "BID_TOO_LOW", "field": "bid", "why": "under the seller's minimum"}],
            description="Checked at once: the auction must have been offered to this buyer and still be open, and "
                        "the bid at least the seller's minimum. A buyer that bids twice keeps its higher bid.")},
        "/v1/sellers/{account_id}/rating": _rating(BUYERS, "buyer", "seller", schemas),
        "/v1/buyers/{account_id}/rating": _rating(SELLERS, "seller", "buyer", schemas),
        **_admin_paths(),
        **_list_paths(list_bid_content),
        "/openapi.json": {"get": _operation(
            "openapi", "This document", ANYONE,
            {"200": {"description": "OpenAPI 3.1", "content": {"application/json": {"schema": {"type": "object"}}}}})},
        "/healthz": {"get": _operation("healthz", "Liveness", ANYONE, {"200": _probe("ok")})},
        "/readyz": {"get": _operation("readyz", "Readiness: broker connected, verdict partitions positioned", ANYONE,
                                      {"200": _probe("ready"), "503": _probe("not ready: the parts failing")})},
    }
    return {
        "openapi": "3.1.0",
        "info": {"title": "leadx intake", "version": "1",
                 "description": "PING and POST consumer leads (docs/integration-spec.md), buyers' bids, returns and "
                                "reports, list auctions (docs/list-auctions.md) and the operators' admin API "
                                f"(docs/admin-api.md). `{BEYOND_SCHEMA}` lists, per operation, the refusals a "
                                "request this document accepts may still get."},
        "components": {
            "securitySchemes": {
                "apiKey": {"type": "http", "scheme": "bearer", "description": "a seller's or a buyer's API key"},
                "adminKey": {"type": "http", "scheme": "bearer",
                             "description": "the operators' ADMIN_API_KEY (unset: the admin API answers 401)"}},
            "headers": _HEADERS,
            "responses": _shared_responses(),
            "schemas": schemas,
        },
        "security": [{"apiKey": []}],
        "paths": paths,
    }


def _probe(status: str) -> dict:
    return {"description": status, "content": {"application/json": {"schema": {
        "type": "object", "required": ["status"], "properties": {"status": {"type": "string"},
                                                                 "failing": {"type": "array"}}}}}}


def _admin_paths() -> dict:
    def op(operation_id: str, summary: str, answers: dict[str, dict | str], body: str | None = None,
           parameters: list[dict] | None = None, beyond: list[dict] | None = None) -> dict:
        return _operation(operation_id, summary, OPERATORS, answers, _json_body(body) if body else None,
                          parameters, beyond)

    def ok(text: str, schema: str, code: str = "200") -> dict[str, dict | str]:
        return {code: _answer(text, schema)}

    no_buyer, no_seller = "ACCOUNT_NOT_FOUND: no such buyer", "ACCOUNT_NOT_FOUND: no such seller"
    invalid = "FIELD_MISSING or FIELD_INVALID, with the reason"
    profiles_beyond = [*_CRITERIA_BEYOND, *_PROFILE_BEYOND,
                       {"status": 422, "code": "FIELD_INVALID", "message": "start and end must differ",
                        "why": "a window starts when it ends"}]
    return {
        "/v1/admin/sellers": {"post": op(
            "createSeller", "Create a seller; its API key is shown once",
            {**ok("created", "Created", "201"), "422": invalid}, "NewSeller")},
        "/v1/admin/buyers": {"post": op(
            "createBuyer", "Create a buyer; its API key is shown once",
            {**ok("created", "Created", "201"), "422": f"{invalid}; URL_NOT_HTTPS, URL_ADDRESS_FORBIDDEN"},
            "NewBuyer", beyond=[
                {"status": 422, "code": "FIELD_MISSING", "field": "ping_url", "why": "a wholesale buyer without one"},
                {"status": 422, "code": "FIELD_INVALID", "message": "needs a ping URL",
                 "why": "a wholesale buyer with an empty one"},
                {"status": 422, "code": "URL_NOT_HTTPS", "why": "an http URL, where BUYER_URLS_ALLOW_PRIVATE is off"},
                {"status": 422, "code": "URL_ADDRESS_FORBIDDEN",
                 "why": "the URL's host is, or resolves to, an address buyer calls may not reach"}])},
        "/v1/admin/buyers/{buyer_id}": {
            "get": op("readBuyer", "A buyer's auction settings and active AutoBid profiles",
                      {**ok("the settings", "BuyerSettings"), "404": no_buyer}, parameters=[_BUYER_ID]),
            "patch": op("changeBuyer", "Change a buyer's kind, weight, time zone or caps (null caps: none)",
                        {**ok("the updated settings", "BuyerSettings"), "404": no_buyer, "422": invalid},
                        "BuyerChange", [_BUYER_ID], beyond=[
                            {"status": 422, "code": "FIELD_INVALID", "message": "ping URL",
                             "why": "a buyer without a ping URL made wholesale"}]),
        },
        "/v1/admin/buyers/{buyer_id}/profiles": {"put": op(
            "replaceProfiles", "Replace all of a buyer's AutoBid profiles (none is stored unless all are valid)",
            {**ok("the new profiles' ids", "ProfileIds"), "404": no_buyer, "422": invalid}, "Profiles", [_BUYER_ID],
            beyond=profiles_beyond)},
        **{f"/v1/admin/buyers/{{buyer_id}}/{action}": {"post": op(
            operation_id, summary, {**ok(text, schema), "404": no_buyer}, parameters=[_BUYER_ID])}
           for action, operation_id, summary, text, schema in (
               ("rotate-key", "rotateBuyerKey", "A new API key for the buyer, shown once; the old one stops working "
                "within 30 s", "the new key", "NewKey"),
               ("revoke-key", "revokeBuyerKey", "Revoke the buyer's API key (within 30 s); it has none until "
                "rotated", "revoked", "Revoked"),
               ("deactivate", "deactivateBuyer", "Offer the buyer no more leads and refuse its key (within 30 s)",
                "the settings, active false", "BuyerSettings"),
               ("reactivate", "reactivateBuyer", "Offer the buyer leads again and accept its key",
                "the settings, active true", "BuyerSettings"))},
        **{f"/v1/admin/sellers/{{seller_id}}/{action}": {"post": op(
            operation_id, summary, {**ok(text, schema), "404": no_seller}, parameters=[_SELLER_ID])}
           for action, operation_id, summary, text, schema in (
               ("rotate-key", "rotateSellerKey", "A new API key for the seller, shown once; the old one stops "
                "working within 30 s", "the new key", "NewKey"),
               ("revoke-key", "revokeSellerKey", "Revoke the seller's API key (within 30 s); it has none until "
                "rotated", "revoked", "Revoked"))},
        "/v1/admin/profiles/import": {"post": op(
            "importProfiles", "Apply an import document: several buyers' settings and profiles, all checked first",
            {**ok("each buyer's new profile ids", "Imported"), "404": no_buyer, "422": invalid}, "Import",
            beyond=profiles_beyond)},
        "/v1/admin/partnerships": {
            "put": op("addPartnership", "A buyer opts in to a seller's leads",
                      {**ok("it already existed", "PartnershipIds"), **ok("created", "PartnershipIds", "201"),
                       "404": "ACCOUNT_NOT_FOUND", "422": invalid}, "Partnership"),
            "delete": {**_operation(
                "removePartnership", "End a partnership: the ids in the body, or as query parameters", OPERATORS,
                {**ok("removed", "PartnershipIds"), "404": "ACCOUNT_NOT_FOUND, or PARTNERSHIP_NOT_FOUND",
                 "422": invalid}, _json_body("Partnership"),
                [{"name": name, "in": "query", "required": False, "schema": _NAMED,
                  "description": f"the {name}'s id, when the body does not name it"} for name in ("seller", "buyer")],
                beyond=[{"status": 422, "code": "FIELD_MISSING", "message": "is required",
                         "why": "neither the body nor the query names both; OpenAPI cannot say one of the two"}])},
        },
        "/v1/admin/sellers/{seller_id}/relations": {"get": op(
            "sellerRelations", "A seller's partners, what it sells to, and the buyers it allowed or blocked",
            {**ok("the relations", "SellerRelations"), "404": no_seller}, parameters=[_SELLER_ID])},
        "/v1/admin/sellers/{seller_id}/sells-to": {"put": op(
            "setSellsTo", "Sell to every partnered buyer but those blocked (all), or only to those allowed (named)",
            {**ok("the relations", "SellerRelations"), "404": no_seller, "422": invalid}, "SellsTo",
            [_SELLER_ID])},
        "/v1/admin/sellers/{seller_id}/buyers/{buyer_id}": {
            "put": op("setChoice", "The seller allows or blocks one buyer",
                      {**ok("the relations", "SellerRelations"), "404": "ACCOUNT_NOT_FOUND", "422": invalid},
                      "Choice", [_SELLER_ID, _BUYER_ID]),
            "delete": op("forgetChoice", "Forget the seller's word on that buyer",
                         {**ok("the relations", "SellerRelations"), "404": "ACCOUNT_NOT_FOUND"},
                         parameters=[_SELLER_ID, _BUYER_ID]),
        },
    }


def _list_paths(bid_content: dict) -> dict:
    def success(text: str, schema: str, headers: tuple[str, ...] = ()) -> dict:
        return _answer(text, schema, headers)

    not_found = "LIST_NOT_FOUND"
    profile_beyond = [{**entry, "field": "profile"} for entry in _CRITERIA_BEYOND]

    def viewed(operation_id: str, summary: str, audience: Audience) -> dict:
        return {"get": _operation(operation_id, summary, audience, {
            "200": success("open, closing or closed", "ListView"), "404": not_found,
            "422": "FIELD_INVALID (offset, limit)"}, parameters=[_LIST_ID, *_PAGE])}

    return {
        "/v1/admin/lists": {"post": _operation(
            "openList", "Open a list auction of the prospect pool's customers matching a profile", OPERATORS_LISTS,
            {"201": success("open: the list, its groups and its best customers", "ListView", ("Location",)),
             "422": "FIELD_MISSING or FIELD_INVALID (the field; a bad profile names its criterion), LIST_EMPTY"},
            _json_body("ListOpen"), beyond=[*profile_beyond, {"status": 422, "code": "LIST_EMPTY", "field": "profile",
                                                             "why": "no customer of the pool matches the profile"}])},
        "/v1/admin/lists/{list_id}": viewed(
            "readListWhole", "A list auction whole: profile, groups, customers (with their winners once closed), "
            "every bid, and the awards per dealer", OPERATORS_LISTS),
        "/v1/lists/preview": {"post": _operation(
            "previewList", "A list built from the prospect pool by a profile, without an auction: its groups per "
            "cluster and probability band and its best customers, no PII", DEALERS,
            {"200": "the list", "422": "FIELD_MISSING or FIELD_INVALID (vertical, profile, band_width, top)"},
            _json_body("ListPreview"), beyond=profile_beyond)},
        "/v1/lists/{list_id}": viewed(
            "readList", "The list a dealer bids on: groups per cluster and band, customers best first without PII, "
            "its own bids, and once closed what it won", DEALERS),
        "/v1/lists/{list_id}/bids": {"post": _operation(
            "bidOnList", "A dealer bids a price per customer on one customer, a cluster or a probability band, "
            "optionally with a count or budget limit", DEALERS,
            {"201": success("accepted: the bid stands until the close", "ListBidAccepted"),
             "403": "AUTH_INVALID: the buyer is not active", "404": not_found,
             "409": "LIST_CLOSED: its window has ended",
             "422": "FIELD_MISSING or FIELD_INVALID (scope, target, price, max_count, max_budget; a target naming no "
                    "customer of the list), BELOW_RESERVE"},
            bid_content, parameters=[_LIST_ID], beyond=[
                {"status": 422, "code": "BELOW_RESERVE", "field": "price", "why": "the price is under the reserve"},
                {"status": 422, "code": "FIELD_INVALID", "field": "scope", "message": "no count or budget",
                 "why": "a bid on one customer with a count or budget limit"},
                {"status": 422, "code": "FIELD_INVALID", "field": "target", "why": "the target names no customer of "
                 "the list, or is no band (0 <= lower < upper <= 1)"}])},
        "/v1/lists/{list_id}/won": {"get": _operation(
            "listWon", "After the close, the customers this dealer won, with their fields and prices, as JSON or "
            "CSV", DEALERS,
            {"200": {"description": "what it won (nothing: an empty list, or a CSV header alone)",
                     "content": {"application/json": {"schema": _ref("ListWon")},
                                 "application/xml": {"schema": _ref("ListWon")},
                                 "text/csv": {"schema": {"type": "string"}}}},
             "404": not_found, "409": "LIST_OPEN: not closed yet", "422": "FIELD_INVALID (format)"},
            parameters=[_LIST_ID, {"name": "format", "in": "query", "required": False,
                                   "schema": {"enum": ["json", "csv"], "default": "json"}}])},
    }
