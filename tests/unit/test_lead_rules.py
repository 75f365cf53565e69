"""Constraint rule files: per vertical, overridden per seller, and precise errors for broken files."""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from leadx.dev.demo.consumers import make_consumer
from leadx.leads.rules import PACKAGED_RULES, RulesError, load_rulebook
from leadx.leads.verticals import load_verticals, verify

VERTICALS = load_verticals()
AUTO_LOAN = VERTICALS["auto_loan"]


def lead(**changes) -> dict:
    return make_consumer(random.Random(5)) | changes


def write(directory: Path, name: str, text: str) -> None:
    (directory / name).write_text(text)


def test_packaged_rules_load_and_a_generated_lead_passes_them():
    book = load_rulebook(PACKAGED_RULES, VERTICALS)
    assert {"auto_loan", "auto_insurance"} <= set(book.base)
    for seed in range(50):
        result = verify(AUTO_LOAN, make_consumer(random.Random(seed)), book.rules_for("auto_loan", "s_any"))
        assert result.ok, result.errors


def test_each_rule_mismatch_is_reported_with_its_message_all_together():
    rules = load_rulebook(PACKAGED_RULES, VERTICALS).rules_for("auto_loan", "s_any")
    result = verify(AUTO_LOAN, lead(first_name="R2-D2", address="Main Street", city="4th"), rules)
    assert {(e.code, e.field) for e in result.errors} == {
        ("FIELD_INVALID", "first_name"), ("FIELD_INVALID", "address"), ("FIELD_INVALID", "city")}
    assert any("house number" in e.message for e in result.errors)


def test_a_seller_override_replaces_adds_and_switches_off_rules(tmp_path):
    write(tmp_path, "auto_loan.toml", """
[[rule]]
name = "address_number"
field = "address"
pattern = "^\\\\d"
message = "address must start with a number"
""")
    write(tmp_path, "auto_loan.s_strict.toml", """
[[rule]]
name = "big_loans_only"
field = "requested_amount"
pattern = "^[0-9]{7,}$"
message = "this seller's leads must ask for at least $10,000"
""")
    write(tmp_path, "auto_loan.s_lax.toml", """
[[rule]]
name = "address_number"
enabled = false
""")
    book = load_rulebook(tmp_path, VERTICALS)
    no_number = lead(address="Main Street 5", requested_amount=500_000)
    assert [e.field for e in verify(AUTO_LOAN, no_number, book.rules_for("auto_loan", "s_other")).errors] == [
        "address"]
    assert [e.message for e in verify(AUTO_LOAN, no_number, book.rules_for("auto_loan", "s_strict")).errors] == [
        "address must start with a number", "this seller's leads must ask for at least $10,000"]
    assert verify(AUTO_LOAN, no_number, book.rules_for("auto_loan", "s_lax")).ok


@pytest.mark.parametrize(("text", "expected"), [
    ("[[rule]]\nname = 'x'\nfield = 'nope'\npattern = 'a'\nmessage = 'm'", "field 'nope' is not a field"),
    ("[[rule]]\nname = 'x'\nfield = 'zip'\npattern = '('\nmessage = 'm'", "not a valid regular expression"),
    ("[[rule]]\nfield = 'zip'\npattern = 'a'\nmessage = 'm'", "every rule needs a name"),
    ("[[rule]]\nname = 'x'\nfield = 'zip'\npattern = 'a'", "needs a message"),
    ("[[rule]]\nname = 'x'\nfield = 'zip'\npattern = 'a'\nmessage = 'm'\n"
     "[[rule]]\nname = 'x'\nfield = 'zip'\npattern = 'b'\nmessage = 'm'", "used twice"),
    ("[[rule]]\nname = 'x'\nenabled = false", "belongs in a seller's override"),
    ("[rules]\nx = 1", "unknown top-level keys"),
    ("[[rule]\n", "not valid TOML"),
])
def test_a_broken_rules_file_names_the_file_and_the_rule(tmp_path, text, expected):
    write(tmp_path, "auto_loan.toml", text)
    with pytest.raises(RulesError, match=expected) as caught:
        load_rulebook(tmp_path, VERTICALS)
    assert "auto_loan.toml" in str(caught.value)


def test_rules_for_an_unknown_vertical_or_rule_are_refused(tmp_path):
    write(tmp_path, "boats.toml", "")
    with pytest.raises(RulesError, match="no vertical named 'boats'"):
        load_rulebook(tmp_path, VERTICALS)
    (tmp_path / "boats.toml").unlink()
    write(tmp_path, "auto_loan.s_1.toml", "[[rule]]\nname = 'ghost'\nenabled = false")
    with pytest.raises(RulesError, match="'ghost' is switched off, but auto_loan has no such rule"):
        load_rulebook(tmp_path, VERTICALS)
