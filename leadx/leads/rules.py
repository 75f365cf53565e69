"""Lead constraint rules (docs/integration-spec.md#constraint-rules): per vertical, overridable per seller.

A rules directory holds `<vertical>.toml` with the vertical's rules and, optionally,
`<vertical>.<seller_id>.toml` with one seller's overrides. Each file is a list of rules:

    [[rule]]
    name = "first_name_letters"        # unique within the vertical; an override replaces by name
    field = "first_name"
    pattern = "^[A-Za-z][A-Za-z .'-]*$"
    message = "first_name may contain only letters, spaces, dots, apostrophes and hyphens"

An override rule with `enabled = false` switches the vertical's rule of that name off for that
seller. Files are read and every pattern compiled once, at start: a broken file stops the service
with the file, the rule and what is wrong, rather than failing leads at run time.
"""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass
from pathlib import Path

from leadx.leads.verticals import Rule, Vertical

PACKAGED_RULES = Path(__file__).with_name("rulebooks")


class RulesError(ValueError):
    """A rules file that cannot be used; the message names the file and the rule."""


@dataclass(frozen=True)
class RuleBook:
    """Every vertical's rules, and each seller's effective rules where it has overrides."""

    base: dict[str, tuple[Rule, ...]]
    overrides: dict[tuple[str, str], tuple[Rule, ...]]  # (vertical, seller id) → effective rules

    def rules_for(self, vertical: str, seller_id: str) -> tuple[Rule, ...]:
        return self.overrides.get((vertical, seller_id), self.base.get(vertical, ()))


def _parse_file(path: Path, vertical: Vertical) -> list[tuple[Rule | None, str]]:
    """(rule, name) per entry; rule is None for an `enabled = false` entry."""
    try:
        raw = tomllib.loads(path.read_text())
    except tomllib.TOMLDecodeError as exc:
        raise RulesError(f"{path}: not valid TOML: {exc}") from None
    unknown_keys = set(raw) - {"rule"}
    if unknown_keys:
        raise RulesError(f"{path}: unknown top-level keys {sorted(unknown_keys)}; rules go in [[rule]] tables")
    fields = {f.name for f in vertical.fields}
    parsed: list[tuple[Rule | None, str]] = []
    seen: set[str] = set()
    for index, entry in enumerate(raw.get("rule", []), start=1):
        where = f"{path}: rule {index}"
        name = entry.get("name")
        if not isinstance(name, str) or not name:
            raise RulesError(f"{where}: every rule needs a name")
        where = f"{path}: rule {index} ({name})"
        if name in seen:
            raise RulesError(f"{where}: the name is used twice in this file")
        seen.add(name)
        if entry.get("enabled", True) is False:
            parsed.append((None, name))
            continue
        field, pattern, message = entry.get("field"), entry.get("pattern"), entry.get("message")
        if field not in fields:
            raise RulesError(f"{where}: field {field!r} is not a field of vertical {vertical.name}")
        if not isinstance(pattern, str):
            raise RulesError(f"{where}: pattern must be a string")
        try:
            compiled = re.compile(pattern)
        except re.error as exc:
            raise RulesError(f"{where}: pattern {pattern!r} is not a valid regular expression: {exc}") from None
        if not isinstance(message, str) or not message:
            raise RulesError(f"{where}: every rule needs a message for the seller")
        parsed.append((Rule(name, field, compiled, message), name))
    return parsed


def load_rulebook(directory: Path, verticals: dict[str, Vertical]) -> RuleBook:
    base: dict[str, tuple[Rule, ...]] = {}
    overrides: dict[tuple[str, str], tuple[Rule, ...]] = {}
    for path in sorted(directory.glob("*.toml")):
        vertical_name, _, seller_id = path.stem.partition(".")
        if vertical_name not in verticals:
            raise RulesError(f"{path}: no vertical named {vertical_name!r} (known: {', '.join(sorted(verticals))})")
        if not seller_id:
            entries = _parse_file(path, verticals[vertical_name])
            disabled = [name for rule, name in entries if rule is None]
            if disabled:
                raise RulesError(f"{path}: 'enabled = false' belongs in a seller's override file: {disabled}")
            base[vertical_name] = tuple(rule for rule, _ in entries if rule is not None)
    for path in sorted(directory.glob("*.*.toml")):
        vertical_name, _, seller_id = path.stem.partition(".")
        effective = {rule.name: rule for rule in base.get(vertical_name, ())}
        for rule, name in _parse_file(path, verticals[vertical_name]):
            if rule is None:
                if name not in effective:
                    raise RulesError(f"{path}: rule {name!r} is switched off, but {vertical_name} has no such rule")
                del effective[name]
            else:
                effective[name] = rule
        overrides[(vertical_name, seller_id)] = tuple(effective.values())
    return RuleBook(base, overrides)
