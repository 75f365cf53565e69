"""The seller's three wire formats (JSON, XML, URL-encoded), parsed safely, and answers
rendered in JSON or XML.

Parsing is pure and bounded: the body is already capped in size by the caller; XML is parsed with
defusedxml (no DTDs, no entity expansion, no external entities) and must be flat, a `<lead>` root
with one child element per field; URL-encoded bodies are parsed strictly. Anything else is a
PAYLOAD_MALFORMED with a message that says what is wrong, never an exception that escapes.
"""

from __future__ import annotations

import io
import json
import re
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from dataclasses import dataclass, field
from urllib.parse import parse_qsl

import defusedxml.ElementTree as SafeET
from defusedxml import DefusedXmlException

JSON, XML, FORM = "json", "xml", "form"
CONTENT_TYPES = {
    "application/json": JSON,
    "application/xml": XML,
    "text/xml": XML,
    "application/x-www-form-urlencoded": FORM,
}
MEDIA_TYPE = {JSON: "application/json", XML: "application/xml"}
MAX_FIELDS = 100
# Characters XML 1.0 cannot carry; a seller's own bytes echoed in a message must not break the answer.
_NOT_XML = re.compile("[^\u0009\u000a\u000d\u0020-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


class PayloadError(ValueError):
    """A body that cannot be read as a lead: (code, message), answered 4xx."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code, self.message = code, message


def request_format(content_type_header: str) -> str:
    """The body's format from its Content-Type; PayloadError UNSUPPORTED_MEDIA_TYPE when unknown."""
    media_type = content_type_header.split(";")[0].strip().lower()
    kind = CONTENT_TYPES.get(media_type)
    if kind is None:
        supported = ", ".join(CONTENT_TYPES)
        raise PayloadError("UNSUPPORTED_MEDIA_TYPE",
                           f"content type {media_type or '(none)'} is not supported; send one of {supported}")
    return kind


def answer_format(content_type_header: str, accept_header: str) -> str:
    """JSON for JSON requests, XML for XML and URL-encoded ones, unless Accept asks
    for the other. Accept is read by preference (q values); */* leaves the default."""
    default = XML if CONTENT_TYPES.get(content_type_header.split(";")[0].strip().lower()) in (XML, FORM) else JSON
    preferences = []
    for position, item in enumerate(accept_header.split(",")):
        media_type, *params = (part.strip().lower() for part in item.split(";"))
        quality = 1.0
        for param in params:
            if param.startswith("q="):
                try:
                    quality = float(param[2:])
                except ValueError:
                    quality = 0.0
        preferences.append((-quality, position, media_type))
    for quality, _, media_type in sorted(preferences):
        if quality >= 0:  # q=0 means "not acceptable"
            continue
        if media_type in ("application/json",):
            return JSON
        if media_type in ("application/xml", "text/xml"):
            return XML
        if media_type in ("*/*", "application/*", "text/*", ""):
            return default
    return default


def parse_body(kind: str, body: bytes, roots: tuple[str, ...] = ("lead",)) -> dict[str, object]:
    """The body's fields as a flat dict. JSON keeps its scalar types; XML and form give strings."""
    if kind == JSON:
        return _parse_json(body)
    if kind == XML:
        return _parse_xml(body, roots)
    return _parse_form(body)


def _parse_json(body: bytes) -> dict[str, object]:
    try:
        # ValueError besides JSONDecodeError: an integer of more than 4,300 digits is refused by int().
        payload = json.loads(body, parse_float=json_number)
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        raise PayloadError("PAYLOAD_MALFORMED", f"the body is not valid JSON: {exc}") from None
    problem = lone_surrogate(body, payload)
    if problem:
        raise PayloadError("PAYLOAD_MALFORMED", problem)
    if not isinstance(payload, dict):
        raise PayloadError("PAYLOAD_MALFORMED", "the body must be a JSON object of lead fields")
    if len(payload) > MAX_FIELDS:
        raise PayloadError("PAYLOAD_MALFORMED", f"a lead has at most {MAX_FIELDS} fields")
    return payload


def json_number(text: str) -> int | float:
    """A JSON number with a fraction or an exponent: a whole one (5.0, 1e3) is the integer it is, as
    JSON, which has one kind of number, and JSON Schema's `integer` say; any other, a float."""
    number = float(text)
    return int(number) if number.is_integer() else number


# A JSON escape of half a UTF-16 surrogate pair ("\ud800"). JSON lets one stand alone; it is no
# character, so text holding one cannot be encoded (UTF-8, protobuf, SQL) and would fail later.
_SURROGATE_ESCAPE = re.compile(rb"\\u[dD][89a-fA-F]")


def json_leaves(document: object) -> Iterator[object]:
    """Every member name and every value of a parsed JSON document that is no list or object."""
    pending = [document]
    while pending:
        item = pending.pop()
        if isinstance(item, dict):
            pending.extend(item.values())
            yield from item.keys()
        elif isinstance(item, list):
            pending.extend(item)
        else:
            yield item


def lone_surrogate(body: bytes, document: object) -> str | None:
    """What is wrong with a parsed JSON document holding a lone surrogate, or None. The raw body
    is scanned first (fast), the document walked only when it may hold one."""
    if _SURROGATE_ESCAPE.search(body) and any(isinstance(leaf, str) and any("\ud800" <= c <= "\udfff" for c in leaf)
                                             for leaf in json_leaves(document)):
        return "the body holds a lone UTF-16 surrogate (\\ud800 without its pair), which is not text"
    return None


def _parse_xml(body: bytes, roots: tuple[str, ...]) -> dict[str, object]:
    """Parsed incrementally, so a body nested deeper than a flat lead is refused at its first
    nested element rather than after the whole tree is built."""
    expected = " or ".join(f"<{r}>" for r in roots)
    fields: dict[str, object] = {}
    depth = 0
    try:
        for event, element in SafeET.iterparse(io.BytesIO(body), events=("start", "end"), forbid_dtd=True,
                                               forbid_entities=True, forbid_external=True):
            if event == "start":
                depth += 1
                if depth == 1 and element.tag not in roots:
                    raise PayloadError("PAYLOAD_MALFORMED",
                                       f"the XML root element must be {expected}, not <{element.tag}>")
                if depth > 2:
                    raise PayloadError("PAYLOAD_MALFORMED", "a field must hold a value, not other elements: "
                                       "one element per field, nothing nested")
                continue
            depth -= 1
            if depth != 1:
                continue
            if element.tag in fields:
                raise PayloadError("PAYLOAD_MALFORMED", f"<{element.tag}> appears more than once")
            if len(fields) >= MAX_FIELDS:
                raise PayloadError("PAYLOAD_MALFORMED", f"a lead has at most {MAX_FIELDS} fields")
            fields[element.tag] = (element.text or "").strip()
    except PayloadError:
        raise
    except DefusedXmlException:
        raise PayloadError("PAYLOAD_MALFORMED", "XML with a DTD or entities is not accepted") from None
    except (ET.ParseError, ValueError, RecursionError) as exc:
        raise PayloadError("PAYLOAD_MALFORMED", f"the body is not well-formed XML: {exc}") from None
    return fields


def _parse_form(body: bytes) -> dict[str, object]:
    try:
        text = body.decode("utf-8")
        pairs = parse_qsl(text, keep_blank_values=True, strict_parsing=bool(text),
                          max_num_fields=MAX_FIELDS, errors="strict")
    except UnicodeDecodeError:
        raise PayloadError("PAYLOAD_MALFORMED", "the URL-encoded body is not UTF-8") from None
    except ValueError as exc:
        raise PayloadError("PAYLOAD_MALFORMED", f"the body is not valid URL-encoded form data: {exc}") from None
    fields: dict[str, object] = {}
    for name, value in pairs:
        if name in fields:
            raise PayloadError("PAYLOAD_MALFORMED", f"field {name} appears more than once")
        fields[name] = value
    return fields


@dataclass
class Answer:
    """What the gateway says to a seller, whatever the format it is rendered in."""

    status: str  # accepted | rejected | duplicate | pending | wanted fields for PING, see app
    http_status: int
    lead_id: str | None = None
    errors: list[dict] = field(default_factory=list)
    extra: dict[str, object] = field(default_factory=dict)  # e.g. status_url, ping_token, warnings
    headers: dict[str, str] = field(default_factory=dict)

    def as_dict(self) -> dict[str, object]:
        return {"status": self.status, "lead_id": self.lead_id, "errors": self.errors, **self.extra}


def render(answer: Answer, kind: str) -> bytes:
    if kind == JSON:
        return json.dumps(answer.as_dict(), separators=(",", ":")).encode()
    return render_xml(answer)


def render_xml(answer: Answer) -> bytes:
    """`<response><status/><lead_id/><errors><error code= field=>message</error></errors>...</response>`."""
    root = ET.Element("response")
    ET.SubElement(root, "status").text = answer.status
    ET.SubElement(root, "lead_id").text = answer.lead_id or ""
    _xml_problems(root, "errors", "error", answer.errors)
    for name, value in answer.extra.items():
        if name == "warnings":
            _xml_problems(root, "warnings", "warning", value)  # type: ignore[arg-type]
        else:
            _xml_value(root, name, value)
    return ('<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root, encoding="unicode")).encode()


def _xml_value(parent: ET.Element, name: str, value: object) -> None:
    """A value as an element: a mapping's entries and a list's items (`<item>`) as children."""
    element = ET.SubElement(parent, name)
    if isinstance(value, dict):
        for key, item in value.items():
            _xml_value(element, str(key), item)
    elif isinstance(value, list):
        for item in value:
            _xml_value(element, "item", item)
    elif isinstance(value, bool):
        element.text = "true" if value else "false"
    else:
        element.text = _xml_text(value)


def _xml_text(value: object) -> str:
    return "" if value is None else _NOT_XML.sub("\ufffd", str(value))


def _xml_problems(root: ET.Element, group: str, tag: str, problems: list[dict]) -> None:
    container = ET.SubElement(root, group)
    for problem in problems:
        element = ET.SubElement(container, tag, code=problem["code"], field=_xml_text(problem.get("field")))
        element.text = _xml_text(problem["message"])
