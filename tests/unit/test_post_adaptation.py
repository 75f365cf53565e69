"""POST adaptation: every rule kind with an example of each, every output format, the rule
file's precise errors, and reading buyers' replies."""

from __future__ import annotations

import json
from urllib.parse import parse_qsl

import pytest
from defusedxml import ElementTree

from leadx.delivery.post_adaptation import adapt_post, known_fields
from leadx.delivery.post_adaptation.replies import Reply, read_reply
from leadx.delivery.post_adaptation.syntax import RuleBook, parse_rules

LEAD = {
    "lead_id": "K3J9Q2M7XZ", "vertical": "auto_loan", "price": "1850",
    "first_name": "Ana", "last_name": "Lee", "email": "ana.lee@example.com", "home_phone": "2125550142",
    "ssn": "123456789", "zip": "10001", "state": "NY", "date_of_birth": "1984-07-09",
    "gross_monthly_income": "512345", "residence_type": "own", "months_employed": "0",
}

RULE_KIND_EXAMPLES = """
# One example of every rule kind, one rule kind a line.
[buyer acme]
format form
zip_code     <- zip                              # alias: zip sent as zip_code
source       <- "leadx"                          # constant
phone_area   <- home_phone[1:3]                  # substring: digits 1-3, 4-6, 7-10
phone_prefix <- home_phone[4:6]
phone_line   <- home_phone[7:10]
birth_year   <- date_of_birth ~ /^(\\d{4})-(\\d\\d)-\\d\\d$/ -> "\\2/\\1"   # regex with back-references
owns_home    <- residence_type {own: yes, rent: no, other: no}          # value alias: 1/0 as yes/no
employed     <- months_employed {0: no, "1": yes}
full_name    <- first_name + " " + last_name     # concatenation with a separator
dob          <- date_of_birth as date "%m/%d/%Y"
income       <- gross_monthly_income as dollars
income_k     <- gross_monthly_income as whole_dollars
work_phone   <- work_phone | "none"              # a default for a missing value
employer     <- employer                         # missing, no default: left out
"""


def book(text: str) -> RuleBook:
    return parse_rules(text, "buyers.rules", known_fields())


def test_every_rule_kind_with_an_example_of_each():
    rules = book(RULE_KIND_EXAMPLES)
    assert rules.problems == []
    post = adapt_post(rules.for_buyer("b_unknown", "acme"), LEAD)
    assert post.content_type == "application/x-www-form-urlencoded"
    assert parse_qsl(post.body.decode()) == [
        ("zip_code", "10001"), ("source", "leadx"),
        ("phone_area", "212"), ("phone_prefix", "555"), ("phone_line", "0142"),
        ("birth_year", "07/1984"), ("owns_home", "yes"), ("employed", "no"), ("full_name", "Ana Lee"),
        ("dob", "07/09/1984"), ("income", "5123.45"), ("income_k", "5123"), ("work_phone", "none"),
    ]
    assert post.fields[0] == ("zip_code", "10001")


def test_substrings_of_a_formatted_phone_take_its_digits():
    rules = book("[buyer b1]\narea <- home_phone[1:3]\nline <- home_phone[7:10]\n")
    assert adapt_post(rules.for_buyer("b1"), LEAD | {"home_phone": "(212) 555-0142"}).fields == [
        ("area", "212"), ("line", "0142")]


def test_json_and_xml_nest_by_slashes():
    text = """
[buyer b_json]
format json
applicant/name/first <- first_name
applicant/name/last  <- last_name
applicant/zip        <- zip
price                <- price

[buyer b_xml]
format xml root=application
applicant/name <- first_name + " " + last_name
applicant/zip  <- zip
note           <- "A & B <ok>"
"""
    rules = book(text)
    assert rules.problems == []
    as_json = adapt_post(rules.for_buyer("b_json"), LEAD)
    assert as_json.content_type == "application/json"
    assert json.loads(as_json.body) == {"applicant": {"name": {"first": "Ana", "last": "Lee"}, "zip": "10001"},
                                        "price": "1850"}
    as_xml = adapt_post(rules.for_buyer("b_xml"), LEAD)
    assert as_xml.content_type == "application/xml"
    root = ElementTree.fromstring(as_xml.body)
    assert root.tag == "application"
    assert root.findtext("applicant/name") == "Ana Lee" and root.findtext("applicant/zip") == "10001"
    assert root.findtext("note") == "A & B <ok>"  # escaped in the document, intact when read


@pytest.mark.parametrize(("line", "message"), [
    ("zip_code <- res_zip", "unknown lead field 'res_zip'"),
    ("area <- home_phone[0:3]", "counted from 1"),
    ("area <- home_phone[4:3]", "first <= last"),
    ('x <- zip ~ /(\\d{3}/ -> "\\1"', "bad regular expression"),
    ('x <- zip ~ /(\\d{3})/ -> "\\2"', "refers to group 2"),
    ("x <- residence_type {own yes}", "value alias is {from: to"),
    ("x <- gross_monthly_income as euros", "money is formatted as"),
    ("x <- first_name + 12 + last_name", "cannot be concatenated"),
    ("x <- zip zap", "not a rule"),
    ("9x <- zip", "is not a field name"),
    ("zip_code zip", "expected `output <- source`"),
    ("format yaml", "expected `format form|json|xml`"),
    ("format json root=a", "unknown format option"),
])
def test_broken_rules_are_reported_with_file_line_and_rule(line, message):
    rules = book(f"[buyer good]\nzip <- zip\n\n[buyer bad]\nzip <- zip\n{line}\n")
    assert [str(p) for p in rules.problems] == [f"buyers.rules:6: {rules.problems[0].message}: {line}"]
    assert message in rules.problems[0].message
    assert rules.is_broken("bad") and rules.for_buyer("bad") is None
    assert rules.for_buyer("good") is not None  # a broken section never stops the others


def test_whole_file_problems():
    rules = book("zip <- zip\n[buyer a]\nzip <- zip\nzip <- state\n[buyer a]\nx <- zip\n[buyer c]\n"
                 "[buyer d]\na <- zip\na/b <- state\n")
    messages = [(p.line, p.message) for p in rules.problems]
    assert messages == [
        (1, "a rule outside any [buyer ...] section"),
        (4, "zip is already defined"),
        (5, "a second section for buyer a"),
        (7, "the section is empty"),
        (10, "a/b and a cannot both be fields: one nests inside the other"),
    ]
    assert set(rules.broken) == {"a", "c", "d"} and rules.sections == {}


def test_comments_stay_out_of_quotes_and_regular_expressions():
    rules = book('[buyer b]\nx <- "#1" # a comment\ny <- zip ~ /(#?\\d+)/ -> "\\1" # another\n')
    assert rules.problems == []
    assert adapt_post(rules.for_buyer("b"), LEAD).fields == [("x", "#1"), ("y", "10001")]


def test_a_value_a_rule_cannot_format_is_a_rule_error():
    from leadx.delivery.post_adaptation.rules import RuleError

    rules = book('[buyer b]\ndob <- date_of_birth as date "%d.%m.%Y"\n')
    with pytest.raises(RuleError, match="the lead's date_of_birth is not a YYYY-MM-DD date") as refused:
        adapt_post(rules.for_buyer("b"), LEAD | {"date_of_birth": "09/07/1984"})
    assert "1984" not in str(refused.value)  # delivery logs the message: it names the field, not the value
    money = book('[buyer b]\nincome <- gross_monthly_income as dollars\n')
    with pytest.raises(RuleError, match="the lead's gross_monthly_income is not an amount in cents$"):
        adapt_post(money.for_buyer("b"), LEAD | {"gross_monthly_income": "4417 Wisteria"})


REPLIES = """
[buyer j]
zip <- zip
reply json
accepted     <- result/status == "Accepted"
confirmation <- result/id
error        <- errors/0/message

[buyer x]
zip <- zip
reply xml
accepted     <- status
confirmation <- lead/ref
error        <- reason

[buyer f]
zip <- zip
reply form
accepted     <- ok
confirmation <- ref

[buyer t]
zip <- zip
reply text
accepted     <- /^ACCEPTED/
confirmation <- /ref=(\\w+)/
error        <- /^REJECTED: (.*)$/
"""


@pytest.mark.parametrize(("buyer", "status", "body", "expected"), [
    ("j", 200, b'{"result": {"status": "accepted", "id": 991}}', Reply(True, "991", "")),
    ("j", 200, b'{"result": {"status": "declined"}, "errors": [{"message": "no coverage"}]}',
     Reply(False, "", "no coverage")),
    ("j", 200, b"<html>oops</html>", Reply(False, "", "unreadable json reply")),
    ("j", 500, b'{"result": {"status": "accepted", "id": 991}}', Reply(False, "", "HTTP 500")),
    ("x", 200, b"<reply><status>true</status><lead><ref>AB-1</ref></lead></reply>", Reply(True, "AB-1", "")),
    ("x", 200, b"<reply><status>false</status><reason>dupe</reason></reply>", Reply(False, "", "dupe")),
    ("f", 200, b"ok=1&ref=Z9", Reply(True, "Z9", "")),
    ("f", 200, b"ok=0", Reply(False, "", "rejected")),
    ("t", 200, b"ACCEPTED ref=QX12", Reply(True, "QX12", "")),
    ("t", 200, b"REJECTED: out of area", Reply(False, "", "out of area")),
])
def test_replies_are_read_by_each_buyers_rules(buyer, status, body, expected):
    rules = book(REPLIES)
    assert rules.problems == []
    assert read_reply(rules.for_buyer(buyer).reply, status, body) == expected


@pytest.mark.parametrize(("lines", "message"), [
    ("reply yaml", "expected `reply json|xml|form|text`"),
    ("reply json\nconfirmation <- id", "needs an `accepted <- ...` rule"),
    ("reply json\naccepted <- status == ok", "must be quoted"),
    ("reply text\naccepted <- status", "/regular expressions/ only"),
    ("reply json\nconfirmation <- /ref/\naccepted <- ok", "needs a (group)"),
    ("reply json\nverdict <- ok", "expected `accepted|confirmation|error <- path`"),
])
def test_broken_reply_rules_are_reported(lines, message):
    rules = book(f"[buyer b]\nzip <- zip\n{lines}\n")
    assert rules.is_broken("b")
    assert any(message in p.message for p in rules.problems), [str(p) for p in rules.problems]
