"""Response adaptation (docs/post-rules.md#replies): a buyer's reply to a POST, in its own format, read as
accepted or not, its confirmation code and its error message. Pure: no I/O."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from urllib.parse import parse_qs

from defusedxml import ElementTree
from defusedxml.common import DefusedXmlException

REPLY_KINDS = ("json", "xml", "form", "text")
TRUTHY = frozenset({"true", "1", "yes", "y", "ok", "accepted", "accept", "success", "sold"})


@dataclass(frozen=True)
class Probe:
    """Where one answer is in the reply: at a path (`result/status`), or the first group of a
    regular expression over the whole body (the only way for plain text). `equals` makes a
    yes/no of it (compared without case); without it a value is truthy by TRUTHY."""

    path: str | None = None
    regex: re.Pattern[str] | None = None
    equals: str | None = None


@dataclass(frozen=True)
class ReplyRules:
    kind: str
    accepted: Probe
    confirmation: Probe | None = None
    error: Probe | None = None


@dataclass(frozen=True)
class Reply:
    accepted: bool
    confirmation: str
    error: str


def read_reply(rules: ReplyRules, status: int, body: bytes) -> Reply:
    """A non-2xx status is a rejection whatever the body says."""
    text = body.decode("utf-8", "replace")
    document = _parse(rules.kind, text)
    accepted_value = _find(rules.accepted, document, text)
    if rules.accepted.equals is not None:
        accepted = accepted_value is not None and accepted_value.strip().lower() == rules.accepted.equals.lower()
    elif rules.accepted.regex is not None and rules.accepted.regex.groups == 0:
        accepted = accepted_value is not None  # the body matched
    else:
        accepted = accepted_value is not None and accepted_value.strip().lower() in TRUTHY
    confirmation = (_find(rules.confirmation, document, text) or "") if rules.confirmation else ""
    error = (_find(rules.error, document, text) or "") if rules.error else ""
    if status // 100 != 2:
        return Reply(False, "", error or f"HTTP {status}")
    if not accepted and not error:
        error = "rejected" if document is not None or rules.kind == "text" else f"unreadable {rules.kind} reply"
    return Reply(accepted, confirmation if accepted else "", "" if accepted else error)


def _parse(kind: str, text: str):
    try:
        if kind == "json":
            return json.loads(text)
        if kind == "xml":
            return ElementTree.fromstring(text)
        if kind == "form":
            return {k: v[0] for k, v in parse_qs(text, keep_blank_values=True).items()}
    except (ValueError, ElementTree.ParseError, DefusedXmlException):
        return None
    return None  # text: only regular expressions apply


def _find(probe: Probe, document, text: str) -> str | None:
    if probe.regex is not None:
        match = probe.regex.search(text)
        if match is None:
            return None
        return match.group(1) if probe.regex.groups else match.group(0)
    if document is None or probe.path is None:
        return None
    if isinstance(document, dict | list):
        node: object = document
        for step in probe.path.split("/"):
            if isinstance(node, dict):
                node = node.get(step)
            elif isinstance(node, list) and step.isdigit() and int(step) < len(node):
                node = node[int(step)]
            else:
                return None
        if node is None or isinstance(node, dict | list):
            return None
        return str(node).lower() if isinstance(node, bool) else str(node)
    element = document.find(probe.path)  # XML: a path below the root element
    return None if element is None else (element.text or "")
