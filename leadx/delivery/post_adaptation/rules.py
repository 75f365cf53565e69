"""POST adaptation rules: each rule makes one output field of a buyer's POST from the
lead as the exchange stores it. Pure: no I/O. The syntax that produces these is in syntax.py and
docs/post-rules.md.

Rule kinds: alias (the stored `zip` sent as `zip_code`), constant,
substring (a phone split in three), regular expression with back-references, value alias (1/0 as
yes/no) and concatenation; plus a default for a missing value and date and money formatting.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass


class RuleError(ValueError):
    """A rule cannot produce its field for this lead (a value it cannot format, say)."""


@dataclass(frozen=True)
class Constant:
    text: str

    def value(self, lead: dict[str, str]) -> str:
        return self.text


@dataclass(frozen=True)
class Alias:
    source: str

    def value(self, lead: dict[str, str]) -> str:
        return lead.get(self.source, "")


@dataclass(frozen=True)
class Substring:
    """Characters `first` to `last` of a field, counted from 1 and inclusive: `[1:3]` is "the first
    through third digit". For phones and SSNs the digits are taken."""

    source: str
    first: int
    last: int

    def value(self, lead: dict[str, str]) -> str:
        text = lead.get(self.source, "")
        if text and self.source.endswith(("phone", "ssn")):
            text = re.sub(r"\D", "", text)
        return text[self.first - 1:self.last]


@dataclass(frozen=True)
class Pattern:
    """A regular expression over a field; the template's back-references (\\1, \\g<name>) make the
    output. A value the expression does not match gives an empty output (then the default)."""

    source: str
    regex: re.Pattern[str]
    template: str

    def value(self, lead: dict[str, str]) -> str:
        match = self.regex.search(lead.get(self.source, ""))
        return match.expand(self.template) if match else ""


@dataclass(frozen=True)
class ValueAlias:
    """A value replaced by the buyer's word for it (1/0 as yes/no); a value with no entry is sent
    as it is."""

    source: str
    mapping: tuple[tuple[str, str], ...]

    def value(self, lead: dict[str, str]) -> str:
        text = lead.get(self.source, "")
        return dict(self.mapping).get(text, text)


@dataclass(frozen=True)
class Concatenation:
    parts: tuple[Constant | Alias, ...]

    def value(self, lead: dict[str, str]) -> str:
        return "".join(part.value(lead) for part in self.parts)


@dataclass(frozen=True)
class DateFormat:
    """An ISO date (YYYY-MM-DD, as leads store dates) in the buyer's strftime format."""

    source: str
    format: str

    def value(self, lead: dict[str, str]) -> str:
        text = lead.get(self.source, "")
        if not text:
            return ""
        try:
            return dt.date.fromisoformat(text).strftime(self.format)
        except ValueError:
            # The field is named, never its value: the message is logged, and the value is the consumer's.
            raise RuleError(f"the lead's {self.source} is not a YYYY-MM-DD date") from None


@dataclass(frozen=True)
class MoneyFormat:
    """Integer cents (as leads store money) as `dollars` ("1234.56"), `whole_dollars` ("1235",
    rounded half up) or `cents` ("123456")."""

    source: str
    unit: str

    def value(self, lead: dict[str, str]) -> str:
        text = lead.get(self.source, "")
        if not text:
            return ""
        try:
            cents = int(text)
        except ValueError:
            raise RuleError(f"the lead's {self.source} is not an amount in cents") from None
        if self.unit == "dollars":
            return f"{'-' if cents < 0 else ''}{abs(cents) // 100}.{abs(cents) % 100:02d}"
        if self.unit == "whole_dollars":
            return str((cents + 50) // 100)
        return str(cents)


Source = Constant | Alias | Substring | Pattern | ValueAlias | Concatenation | DateFormat | MoneyFormat
MONEY_UNITS = ("dollars", "whole_dollars", "cents")


@dataclass(frozen=True)
class Rule:
    output: str  # the buyer's field name; `a/b/c` nests in JSON and XML
    source: Source
    default: str | None = None  # used when the source gives nothing; without one the field is left out
    line: int = 0  # where it was written, for messages

    def apply(self, lead: dict[str, str]) -> str | None:
        value = self.source.value(lead)
        if value == "":
            return self.default
        return value


def adapt(rules: tuple[Rule, ...], lead: dict[str, str]) -> list[tuple[str, str]]:
    """The buyer's fields, in rule order: (output name, value). A field with no value and no
    default is left out."""
    out = []
    for rule in rules:
        value = rule.apply(lead)
        if value is not None:
            out.append((rule.output, value))
    return out
