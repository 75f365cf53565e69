"""Schemathesis hooks for tests/integration/test_openapi_contract.py (loaded through SCHEMATHESIS_HOOKS).

The intake's OpenAPI document states every constraint a schema can state; what none can (a ZIP code
that exists, a consumer's age today, a direct-sale contract) each operation lists under
`x-refusals-beyond-schema`. Schemathesis's `positive_data_acceptance` check is told that such an
operation may answer a request the document accepts with 422; this check holds those 422s to the
list: every error of the answer must be one the operation lists (its code, its field when the
entry names one, and a part of its message when the entry gives one)."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET

import schemathesis

BEYOND_SCHEMA = "x-refusals-beyond-schema"


def errors_of(body: bytes, content_type: str) -> list[dict]:
    """The errors of an answer, in JSON or XML (`<error code= field=>message</error>`)."""
    if content_type.startswith("application/xml"):
        return [{"code": e.get("code"), "field": e.get("field") or None, "message": e.text or ""}
                for e in ET.fromstring(body).iter("error")]
    return json.loads(body).get("errors", [])


def explained(error: dict, entries: list[dict], status: int) -> bool:
    return any(entry["status"] == status and entry["code"] == error["code"]
               and entry.get("field", error["field"]) == error["field"]
               and entry.get("message", "") in (error["message"] or "") for entry in entries)


@schemathesis.check
def refusals_beyond_schema(ctx, response, case):
    """A request the document accepts is refused only as its operation's `x-refusals-beyond-schema` says."""
    if case.meta is None or not case.meta.generation.mode.is_positive or response.status_code != 422:
        return None
    entries = case.operation.definition.raw.get(BEYOND_SCHEMA, [])
    if not entries:
        return None  # positive_data_acceptance refuses every 422 of such an operation
    content_type = (response.headers.get("content-type") or [""])[0]
    unexplained = [error for error in errors_of(response.content, content_type)
                   if not explained(error, entries, response.status_code)]
    if unexplained:
        raise AssertionError(f"a request the document accepts was refused with {unexplained}, which the "
                             f"operation's {BEYOND_SCHEMA} does not list")
    return None
