"""POST adaptation (docs/post-rules.md): a sold lead turned into the body each buyer's integration expects,
and each buyer's reply read back. `syntax` reads the rule files, `rules` holds the rule kinds,
`render` writes URL-encoded, JSON or XML bodies, `replies` reads the answers."""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import lru_cache

from leadx.contracts.events.v1 import events_pb2 as ev
from leadx.delivery.post_adaptation.render import render
from leadx.delivery.post_adaptation.replies import ReplyRules
from leadx.delivery.post_adaptation.rules import adapt
from leadx.delivery.post_adaptation.syntax import LEAD_EXTRAS, BuyerRules


@dataclass(frozen=True)
class AdaptedPost:
    content_type: str
    body: bytes
    fields: list[tuple[str, str]]  # what was sent, in order: for the record and for previews


def adapt_post(rules: BuyerRules, lead: dict[str, str]) -> AdaptedPost:
    """`lead`: the stored fields plus lead_id, vertical and price (cents), all as text."""
    fields = adapt(rules.rules, lead)
    return AdaptedPost(rules.output.content_type, render(rules.output, fields), fields)


@lru_cache(maxsize=1)
def known_fields() -> frozenset[str]:
    """The names rules may read: every vertical's fields, and what every lead carries."""
    from leadx.leads.verticals import load_verticals

    return frozenset(f.name for v in load_verticals().values() for f in v.fields) | LEAD_EXTRAS


@dataclass(frozen=True)
class PreparedPost:
    content_type: str
    body: bytes
    reply: ReplyRules | None  # how to read the answer; None: the exchange's own JSON convention


def lead_view(lead: ev.Lead, price_cents: int) -> dict[str, str]:
    """What POST rules read: the stored fields, with the lead id, vertical and price (cents)."""
    return {"lead_id": lead.lead_id, "vertical": lead.vertical, "price": str(price_cents), **_in_order(lead)}


def _in_order(lead: ev.Lead) -> dict[str, str]:
    """The fields by name: a protobuf map's order differs between processes, and the repeat of a
    post after a restart should be the same bytes as the first."""
    return dict(sorted(lead.fields.items()))


def prepare_post(lead: ev.Lead, price_cents: int, rules: BuyerRules | None) -> PreparedPost:
    """The body for one buyer: adapted by its POST rules (docs/post-rules.md), or, without a
    section, the exchange's JSON. Raises RuleError when a rule cannot format this lead."""
    if rules is None or not rules.rules:
        body = {"lead_id": lead.lead_id, "vertical": lead.vertical, "price": price_cents, **_in_order(lead)}
        return PreparedPost("application/json", json.dumps(body).encode(), rules.reply if rules else None)
    adapted = adapt_post(rules, lead_view(lead, price_cents))
    return PreparedPost(adapted.content_type, adapted.body, rules.reply)
