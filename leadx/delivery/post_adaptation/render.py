"""A buyer's adapted fields as the body of its POST: URL-encoded, JSON or XML. Output names with
slashes (`applicant/address/zip`) nest in JSON and XML; URL-encoded bodies send them as written."""

from __future__ import annotations

import json
from dataclasses import dataclass
from urllib.parse import urlencode
from xml.sax.saxutils import escape

FORMATS = {"form": "application/x-www-form-urlencoded", "json": "application/json", "xml": "application/xml"}


@dataclass(frozen=True)
class OutputFormat:
    kind: str = "json"  # form | json | xml
    xml_root: str = "lead"

    @property
    def content_type(self) -> str:
        return FORMATS[self.kind]


def render(output: OutputFormat, fields: list[tuple[str, str]]) -> bytes:
    if output.kind == "form":
        return urlencode(fields).encode()
    tree = _nest(fields)
    if output.kind == "json":
        return json.dumps(tree, separators=(",", ":")).encode()
    return (f'<?xml version="1.0" encoding="UTF-8"?><{output.xml_root}>{_xml(tree)}</{output.xml_root}>').encode()


def _nest(fields: list[tuple[str, str]]) -> dict:
    tree: dict = {}
    for name, value in fields:
        *parents, leaf = name.split("/")
        node = tree
        for parent in parents:
            node = node.setdefault(parent, {})
        node[leaf] = value
    return tree


def _xml(tree: dict) -> str:
    return "".join(f"<{name}>{_xml(value) if isinstance(value, dict) else escape(value)}</{name}>"
                   for name, value in tree.items())
