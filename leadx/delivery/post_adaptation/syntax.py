"""The POST rule file (docs/post-rules.md): one section per buyer, one rule per line, so every
problem is reported with its file, line and rule. A section with a problem is kept out whole
(that buyer is passed over, never sent a half-adapted lead); the other sections still load."""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from leadx.delivery.post_adaptation.render import FORMATS, OutputFormat
from leadx.delivery.post_adaptation.replies import REPLY_KINDS, Probe, ReplyRules
from leadx.delivery.post_adaptation.rules import (
    MONEY_UNITS,
    Alias,
    Concatenation,
    Constant,
    DateFormat,
    MoneyFormat,
    Pattern,
    Rule,
    Source,
    Substring,
    ValueAlias,
)
from leadx.leads.pii import IDENTIFYING_FIELDS

_QUOTED = r'"(?:[^"\\]|\\.)*"'
_NAME = r"[A-Za-z_][A-Za-z0-9_]*"
_OUTPUT = re.compile(r"^[A-Za-z_][\w.-]*(?:/[A-Za-z_][\w.-]*)*$")
_SECTION = re.compile(r"^\[buyer\s+(\S+)\]$")
_RULE = re.compile(r"^(\S+)\s*<-\s*(.+)$")
_DEFAULT = re.compile(rf"^(.*?)\s*\|\s*({_QUOTED})$")
_SUBSTRING = re.compile(rf"^({_NAME})\[(\d+):(\d+)\]$")
_PATTERN = re.compile(rf"^({_NAME})\s*~\s*/((?:[^/\\]|\\.)*)/\s*->\s*({_QUOTED})$")
_VALUE_ALIAS = re.compile(rf"^({_NAME})\s*\{{(.*)\}}$")
_DATE = re.compile(rf"^({_NAME})\s+as\s+date\s+({_QUOTED})$")
_MONEY = re.compile(rf"^({_NAME})\s+as\s+(\w+)$")
_BACKREF = re.compile(r"\\(\d+)|\\g<(\w+)>")
# What a lead carries besides its vertical's fields.
LEAD_EXTRAS = frozenset({"lead_id", "vertical", "price"})


@dataclass(frozen=True)
class Problem:
    file: str
    line: int
    text: str
    message: str

    def __str__(self) -> str:
        return f"{self.file}:{self.line}: {self.message}: {self.text}"


AUTH_KINDS = ("none", "basic", "bearer", "hmac")


@dataclass(frozen=True)
class Auth:
    """How a buyer's endpoints are called. Secrets never sit in rule files: a rule names the
    environment variable holding it (`env:ACME_TOKEN`), read when the rules are loaded."""

    kind: str = "none"  # none | basic | bearer | hmac
    user: str = ""  # basic
    secret: str = ""  # basic password, bearer token, hmac key
    header: str = "X-Leadx-Signature"  # hmac

    def __repr__(self) -> str:  # keep secrets out of logs and reprs
        return f"Auth(kind={self.kind!r}, user={self.user!r}, header={self.header!r})"


@dataclass(frozen=True)
class BuyerRules:
    buyer: str  # the section's name: a buyer id or a buyer name
    output: OutputFormat
    rules: tuple[Rule, ...]  # empty: the exchange's own JSON body
    reply: ReplyRules | None  # None: the exchange's own JSON reply convention
    where: str  # file:line of the section
    auth: Auth = Auth()
    timeout_s: float | None = None  # for this buyer's pings and posts; None: delivery's defaults
    ping_fields: tuple[str, ...] = ()  # non-identifying lead fields added to its pings


@dataclass
class RuleBook:
    sections: dict[str, BuyerRules] = field(default_factory=dict)
    broken: dict[str, list[Problem]] = field(default_factory=dict)  # buyer → why its section is out
    problems: list[Problem] = field(default_factory=list)  # every problem, in file order

    def for_buyer(self, buyer_id: str, name: str = "") -> BuyerRules | None:
        return self.sections.get(buyer_id) or (self.sections.get(name) if name else None)

    def is_broken(self, buyer_id: str, name: str = "") -> bool:
        return buyer_id in self.broken or bool(name and name in self.broken)


def load_rule_files(directory: Path, known_fields: frozenset[str], env: Mapping[str, str] | None = None) -> RuleBook:
    """Every `*.rules` file of a directory, in name order; `env` holds the secrets rules name."""
    book = RuleBook()
    for path in sorted(directory.glob("*.rules")):
        parse_rules(path.read_text(), str(path), known_fields, book, env)
    return book


def parse_rules(text: str, file: str, known_fields: frozenset[str], book: RuleBook | None = None,
                env: Mapping[str, str] | None = None) -> RuleBook:
    book = book if book is not None else RuleBook()
    env = os.environ if env is None else env
    section: _Section | None = None
    for number, raw in enumerate(text.splitlines(), start=1):
        line = _strip_comment(raw).strip()
        if not line:
            continue
        header = _SECTION.match(line)
        if header:
            if section:
                section.finish(book)
            section = _Section(header.group(1), file, number, env)
            if header.group(1) in book.sections or header.group(1) in book.broken:
                section.problem(number, line, f"a second section for buyer {header.group(1)}")
            continue
        if section is None:
            book.problems.append(Problem(file, number, line, "a rule outside any [buyer ...] section"))
            continue
        section.add(number, line, known_fields)
    if section:
        section.finish(book)
    return book


class _Section:
    def __init__(self, buyer: str, file: str, line: int, env: Mapping[str, str]) -> None:
        self.buyer, self.file, self.line, self.env = buyer, file, line, env
        self.output = OutputFormat()
        self.format_line = 0
        self.auth = Auth()
        self.timeout_s: float | None = None
        self.ping_fields: tuple[str, ...] = ()
        self.directives = 0
        self.rules: list[Rule] = []
        self.reply_kind: str | None = None
        self.reply: dict[str, Probe] = {}
        self.problems: list[Problem] = []

    def problem(self, line: int, text: str, message: str) -> None:
        self.problems.append(Problem(self.file, line, text, message))

    def add(self, number: int, line: str, known: frozenset[str]) -> None:
        words = line.split()
        self.directives += 1
        if words[0] == "format":
            self._format(number, line, words)
        elif words[0] == "auth":
            self._auth(number, line, words)
        elif words[0] == "timeout":
            self._timeout(number, line, words)
        elif words[0] == "ping":
            self._ping(number, line, words, known)
        elif words[0] == "reply":
            if len(words) != 2 or words[1] not in REPLY_KINDS:
                self.problem(number, line, f"expected `reply {'|'.join(REPLY_KINDS)}`")
            else:
                self.reply_kind = words[1]
        elif self.reply_kind is not None:
            self._reply_rule(number, line)
        else:
            self._rule(number, line, known)

    def _format(self, number: int, line: str, words: list[str]) -> None:
        if len(words) < 2 or words[1] not in FORMATS:
            self.problem(number, line, f"expected `format {'|'.join(FORMATS)}` (xml may add root=NAME)")
            return
        root = "lead"
        for option in words[2:]:
            key, _, value = option.partition("=")
            if key != "root" or words[1] != "xml" or not re.fullmatch(r"[A-Za-z_][\w.-]*", value):
                self.problem(number, line, f"unknown format option {option!r} (xml takes root=NAME)")
                return
            root = value
        self.output = OutputFormat(words[1], root)
        self.format_line = number

    def _secret(self, number: int, line: str, reference: str) -> str | None:
        if not reference.startswith("env:") or not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", reference[4:]):
            self.problem(number, line, "a secret is named, never written: env:VARIABLE_NAME")
            return None
        value = self.env.get(reference[4:], "")
        if not value:
            self.problem(number, line, f"environment variable {reference[4:]} is not set")
            return None
        return value

    def _auth(self, number: int, line: str, words: list[str]) -> None:
        usage = ("expected `auth none`, `auth basic USER env:VAR`, `auth bearer env:VAR` or "
                 "`auth hmac env:VAR [header=NAME]`")
        kind, rest = (words[1], words[2:]) if len(words) > 1 else ("", [])
        if kind == "none" and not rest:
            self.auth = Auth()
        elif kind == "basic" and len(rest) == 2:
            if (secret := self._secret(number, line, rest[1])) is not None:
                self.auth = Auth("basic", user=rest[0], secret=secret)
        elif kind == "bearer" and len(rest) == 1:
            if (secret := self._secret(number, line, rest[0])) is not None:
                self.auth = Auth("bearer", secret=secret)
        elif kind == "hmac" and len(rest) in (1, 2):
            header = Auth().header
            if len(rest) == 2:
                key, _, header = rest[1].partition("=")
                if key != "header" or not re.fullmatch(r"[A-Za-z0-9-]+", header):
                    self.problem(number, line, usage)
                    return
            if (secret := self._secret(number, line, rest[0])) is not None:
                self.auth = Auth("hmac", secret=secret, header=header)
        else:
            self.problem(number, line, usage)

    def _timeout(self, number: int, line: str, words: list[str]) -> None:
        match = re.fullmatch(r"(\d+(?:\.\d+)?)s?", words[1]) if len(words) == 2 else None
        if not match or not 0 < float(match.group(1)) <= 60:
            self.problem(number, line, "expected `timeout SECONDS` (more than 0, at most 60), e.g. timeout 3s")
            return
        self.timeout_s = float(match.group(1))

    def _ping(self, number: int, line: str, words: list[str], known: frozenset[str]) -> None:
        if len(words) < 3 or words[1] != "fields":
            self.problem(number, line, "expected `ping fields NAME ...`")
            return
        for name in words[2:]:
            if name in IDENTIFYING_FIELDS:
                self.problem(number, line, f"{name} identifies the consumer and is never sent in a ping")
                return
            if name not in known:
                self.problem(number, line, f"unknown lead field {name!r}")
                return
        self.ping_fields = tuple(words[2:])

    def _rule(self, number: int, line: str, known: frozenset[str]) -> None:
        match = _RULE.match(line)
        if not match:
            self.problem(number, line, "expected `output <- source`")
            return
        output, expression = match.groups()
        if not _OUTPUT.match(output):
            self.problem(number, line, f"{output!r} is not a field name (letters, digits, _ . -, / to nest)")
            return
        default = None
        with_default = _DEFAULT.match(expression)
        if with_default and not expression.startswith('"'):
            expression, default = with_default.group(1), _unquote(with_default.group(2))
        try:
            source = _source(expression.strip(), known)
        except ValueError as problem:
            self.problem(number, line, str(problem))
            return
        if any(r.output == output for r in self.rules):
            self.problem(number, line, f"{output} is already defined")
            return
        clash = next((r.output for r in self.rules if _nests_into(r.output, output)), None)
        if clash:
            self.problem(number, line, f"{output} and {clash} cannot both be fields: one nests inside the other")
            return
        self.rules.append(Rule(output, source, default, number))

    def _reply_rule(self, number: int, line: str) -> None:
        match = _RULE.match(line)
        if not match or match.group(1) not in ("accepted", "confirmation", "error"):
            self.problem(number, line, "expected `accepted|confirmation|error <- path` or `<- /regex/`")
            return
        name, expression = match.group(1), match.group(2).strip()
        equals = None
        if name == "accepted" and "==" in expression:
            expression, _, wanted = expression.partition("==")
            expression, wanted = expression.strip(), wanted.strip()
            if not re.fullmatch(_QUOTED, wanted):
                self.problem(number, line, 'the value after == must be quoted, e.g. == "success"')
                return
            equals = _unquote(wanted)
        if expression.startswith("/") and expression.endswith("/") and len(expression) > 1:
            try:
                regex = re.compile(expression[1:-1])
            except re.error as error:
                self.problem(number, line, f"bad regular expression: {error}")
                return
            if name != "accepted" and regex.groups < 1:
                self.problem(number, line, f"{name} needs a (group) in its regular expression")
                return
            self.reply[name] = Probe(regex=regex, equals=equals)
        elif self.reply_kind == "text":
            self.problem(number, line, "a text reply is read with /regular expressions/ only")
        elif re.fullmatch(r"[\w.-]+(/[\w.-]+)*", expression):
            self.reply[name] = Probe(path=expression, equals=equals)
        else:
            self.problem(number, line, f"{expression!r} is neither a path nor a /regular expression/")

    def finish(self, book: RuleBook) -> None:
        reply = None
        if self.reply_kind is not None:
            if "accepted" not in self.reply:
                self.problem(self.line, f"[buyer {self.buyer}]", "the reply section needs an `accepted <- ...` rule")
            else:
                reply = ReplyRules(self.reply_kind, self.reply["accepted"], self.reply.get("confirmation"),
                                   self.reply.get("error"))
        if not self.directives and not self.problems:
            self.problem(self.line, f"[buyer {self.buyer}]", "the section is empty")
        if self.format_line and not self.rules:
            self.problem(self.format_line, "format", "a format needs rules to fill it (without rules the "
                                                     "buyer gets the exchange's JSON)")
        book.problems.extend(self.problems)
        if self.problems:
            book.broken.setdefault(self.buyer, []).extend(self.problems)
            book.sections.pop(self.buyer, None)
        elif self.buyer not in book.broken:
            book.sections[self.buyer] = BuyerRules(self.buyer, self.output, tuple(self.rules), reply,
                                                   f"{self.file}:{self.line}", self.auth, self.timeout_s,
                                                   self.ping_fields)


def _source(expression: str, known: frozenset[str]) -> Source:
    def field_name(name: str) -> str:
        if name not in known:
            raise ValueError(f"unknown lead field {name!r}")
        return name

    if re.fullmatch(_QUOTED, expression):
        return Constant(_unquote(expression))
    if match := _SUBSTRING.match(expression):
        first, last = int(match.group(2)), int(match.group(3))
        if not 1 <= first <= last:
            raise ValueError("a substring is [first:last], counted from 1, first <= last")
        return Substring(field_name(match.group(1)), first, last)
    if match := _PATTERN.match(expression):
        try:
            regex = re.compile(match.group(2).replace("\\/", "/"))
        except re.error as error:
            raise ValueError(f"bad regular expression: {error}") from None
        template = _unquote(match.group(3), keep_backslashes=True)  # \1 and \g<name> are the groups
        for number, name in _BACKREF.findall(template):
            if (number and int(number) > regex.groups) or (name and name not in regex.groupindex
                                                          and not (name.isdigit() and int(name) <= regex.groups)):
                raise ValueError(f"the template refers to group {number or name}, which the expression lacks")
        return Pattern(field_name(match.group(1)), regex, template)
    if match := _VALUE_ALIAS.match(expression):
        return ValueAlias(field_name(match.group(1)), _mapping(match.group(2)))
    if match := _DATE.match(expression):
        return DateFormat(field_name(match.group(1)), _unquote(match.group(2)))
    if match := _MONEY.match(expression):
        if match.group(2) not in MONEY_UNITS:
            raise ValueError(f"money is formatted as {', '.join(MONEY_UNITS)}, not {match.group(2)!r}")
        return MoneyFormat(field_name(match.group(1)), match.group(2))
    if " + " in expression:
        parts = [p.strip() for p in expression.split(" + ")]
        return Concatenation(tuple(Constant(_unquote(p)) if re.fullmatch(_QUOTED, p) else Alias(field_name(p))
                                   if re.fullmatch(_NAME, p) else _bad_part(p) for p in parts))
    if re.fullmatch(_NAME, expression):
        return Alias(field_name(expression))
    raise ValueError("not a rule: expected a field, \"constant\", field[first:last], field ~ /regex/ -> \"\\1\", "
                     "field {a: b, ...}, a + \" \" + b, field as date \"%m/%d/%Y\" or field as dollars")


def _bad_part(part: str):
    raise ValueError(f"{part!r} cannot be concatenated: use field names and \"constants\"")


def _mapping(text: str) -> tuple[tuple[str, str], ...]:
    pairs = []
    item = rf'(?:{_QUOTED}|[^\s,:"{{}}]+)'
    for entry in (e.strip() for e in text.split(",")):
        match = re.fullmatch(rf"({item})\s*:\s*({item})", entry)
        if not match:
            raise ValueError(f"a value alias is {{from: to, ...}}; cannot read {entry!r}")
        pairs.append((_unquote(match.group(1)), _unquote(match.group(2))))
    return tuple(pairs)


def _unquote(text: str, keep_backslashes: bool = False) -> str:
    if len(text) >= 2 and text[0] == text[-1] == '"':
        inner = text[1:-1]
        return inner.replace('\\"', '"') if keep_backslashes else re.sub(r"\\(.)", r"\1", inner)
    return text


def _strip_comment(line: str) -> str:
    """Everything from a `#` outside quotes and regular expressions on."""
    quoted = slashed = False
    for i, char in enumerate(line):
        escaped = i > 0 and line[i - 1] == "\\"
        if char == '"' and not slashed and not escaped:
            quoted = not quoted
        elif char == "/" and not quoted and not escaped and re.search(r"(~|<-)\s*/", line[:i + 1]):
            slashed = not slashed
        elif char == "#" and not quoted and not slashed:
            return line[:i]
    return line


def _nests_into(a: str, b: str) -> bool:
    return a.startswith(b + "/") or b.startswith(a + "/")
