"""The three wire formats, parsed safely, and answers in JSON and XML."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET

import pytest
from hypothesis import given
from hypothesis import strategies as st

from services.intake.formats import (
    FORM,
    JSON,
    XML,
    Answer,
    PayloadError,
    answer_format,
    parse_body,
    render,
    request_format,
)


def malformed(kind: str, body: bytes) -> str:
    with pytest.raises(PayloadError) as caught:
        parse_body(kind, body)
    assert caught.value.code == "PAYLOAD_MALFORMED"
    return caught.value.message


@pytest.mark.parametrize(("header", "kind"), [
    ("application/json", JSON), ("application/json; charset=utf-8", JSON), ("APPLICATION/XML", XML),
    ("text/xml", XML), ("application/x-www-form-urlencoded", FORM),
])
def test_the_three_content_types_sellers_use_are_recognised(header, kind):
    assert request_format(header) == kind


@pytest.mark.parametrize("header", ["", "text/plain", "multipart/form-data; boundary=x", "application/jsonx"])
def test_other_content_types_are_unsupported(header):
    with pytest.raises(PayloadError) as caught:
        request_format(header)
    assert caught.value.code == "UNSUPPORTED_MEDIA_TYPE"


def test_the_same_lead_reads_the_same_in_every_format():
    as_json = parse_body(JSON, b'{"vertical": "auto_loan", "zip": "10001", "min_price": 1500}')
    as_xml = parse_body(XML, b"<lead><vertical>auto_loan</vertical><zip> 10001 </zip>"
                             b"<min_price>1500</min_price></lead>")
    as_form = parse_body(FORM, b"vertical=auto_loan&zip=10001&min_price=1500")
    assert as_json == {"vertical": "auto_loan", "zip": "10001", "min_price": 1500}
    assert as_xml == as_form == {"vertical": "auto_loan", "zip": "10001", "min_price": "1500"}


def test_xml_entities_and_dtds_are_refused():
    billion_laughs = b'<?xml version="1.0"?><!DOCTYPE lead [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;">]>' \
                     b"<lead><zip>&b;</zip></lead>"
    assert "DTD" in malformed(XML, billion_laughs)
    external = b'<?xml version="1.0"?><!DOCTYPE lead [<!ENTITY x SYSTEM "file:///etc/passwd">]><lead><zip>&x;</zip></lead>'
    assert "DTD" in malformed(XML, external)


def test_xml_must_be_one_flat_lead():
    assert "root element must be <lead>" in malformed(XML, b"<ping><zip>1</zip></ping>")
    assert "nothing nested" in malformed(XML, b"<lead><zip><a>1</a></zip></lead>")
    assert "more than once" in malformed(XML, b"<lead><zip>1</zip><zip>2</zip></lead>")
    assert "not well-formed" in malformed(XML, b"<lead><zip>1</zip>")
    deep = b"<lead>" + b"<a>" * 5000 + b"</a>" * 5000 + b"</lead>"
    assert "nothing nested" in malformed(XML, deep)
    assert "nothing nested" in malformed(XML, b"<lead><a><b>" + b"x" * 10 + b"</lead>")  # refused before the end


def test_forms_are_parsed_strictly():
    assert "more than once" in malformed(FORM, b"zip=1&zip=2")
    assert "not UTF-8" in malformed(FORM, b"zip=\xff")
    assert parse_body(FORM, b"") == {}
    assert parse_body(FORM, b"first_name=Ana+Maria&city=S%C3%A3o") == {"first_name": "Ana Maria", "city": "São"}


def test_json_must_be_an_object_of_at_most_100_fields():
    assert "JSON object" in malformed(JSON, b"[1, 2]")
    assert "at most 100 fields" in malformed(JSON, json.dumps({f"f{i}": i for i in range(101)}).encode())
    assert "not valid JSON" in malformed(JSON, b"[" * 100_000)
    assert "4300 digits" in malformed(JSON, b'{"zip": ' + b"1" * 5000 + b"}")  # int() refuses it


def test_json_text_is_unicode_text():
    # JSON lets half a surrogate pair stand alone; nothing downstream can encode it.
    assert "surrogate" in malformed(JSON, b'{"employer": "Acme \\ud800"}')
    assert "surrogate" in malformed(JSON, b'{"\\udfff": 1}')
    assert parse_body(JSON, b'{"employer": "\\ud83d\\ude00 Acme"}') == {"employer": "\U0001f600 Acme"}
    assert parse_body(JSON, b'{"employer": "\\\\ud800"}') == {"employer": "\\ud800"}  # an escaped backslash


@pytest.mark.parametrize(("content_type", "accept", "expected"), [
    ("application/json", "", JSON),
    ("application/xml", "", XML),
    ("application/x-www-form-urlencoded", "*/*", XML),  # a form POST is answered in XML
    ("application/x-www-form-urlencoded", "application/json", JSON),
    ("application/json", "text/xml", XML),
    ("text/xml", "application/xml;q=0.2, application/json;q=0.8", JSON),
    ("application/json", "application/xml;q=0, */*", JSON),
    ("", "", JSON),
])
def test_answers_come_in_the_request_s_format_unless_accept_asks_otherwise(content_type, accept, expected):
    assert answer_format(content_type, accept) == expected


def test_xml_answer_has_the_contract_shape():
    answer = Answer("rejected", 422, None, [{"code": "ZIP_UNKNOWN", "field": "zip", "message": "zip <x> & y"}],
                    extra={"warnings": [{"code": "PHONE_AREA_MISMATCH", "field": "home_phone", "message": "m"}],
                           "wanted": True})
    root = ET.fromstring(render(answer, XML))
    assert root.tag == "response" and root.findtext("status") == "rejected" and root.findtext("lead_id") == ""
    error = root.find("errors/error")
    assert error.get("code") == "ZIP_UNKNOWN" and error.get("field") == "zip" and error.text == "zip <x> & y"
    assert root.find("warnings/warning").get("code") == "PHONE_AREA_MISMATCH"
    assert root.findtext("wanted") == "true"
    assert json.loads(render(answer, JSON))["errors"][0]["code"] == "ZIP_UNKNOWN"


@given(st.text())
def test_any_text_a_seller_sends_back_still_renders_as_valid_xml(text):
    answer = Answer("rejected", 400, None, [{"code": "PAYLOAD_MALFORMED", "field": text, "message": text}])
    root = ET.fromstring(render(answer, XML))  # raises if the seller's bytes broke the document
    assert root.findtext("status") == "rejected"
    assert root.find("errors/error").get("code") == "PAYLOAD_MALFORMED"


@given(st.sampled_from([JSON, XML, FORM]), st.binary(max_size=2000))
def test_no_body_raises_anything_but_a_payload_error(kind, body):
    try:
        fields = parse_body(kind, body)
    except PayloadError as exc:
        assert exc.code == "PAYLOAD_MALFORMED"
    else:
        assert isinstance(fields, dict)
