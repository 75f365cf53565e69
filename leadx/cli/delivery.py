"""`leadx delivery preview`: what delivery would POST to a buyer for a lead ([POST rules](../../docs/post-rules.md));
`leadx delivery prune-attempts`: posts' bodies dropped after their retention period ([deploy](../../docs/deploy.md))."""

from __future__ import annotations

import json
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

from leadx.cli.database import sessions
from leadx.platform.config import env_str


def cmd_delivery_preview(args) -> int:
    """Print exactly what delivery would POST to a buyer for a lead, adapted by its POST rules."""
    from leadx.contracts.events.v1 import events_pb2 as ev
    from leadx.delivery.post_adaptation import known_fields, prepare_post
    from leadx.delivery.post_adaptation.rules import RuleError
    from leadx.delivery.post_adaptation.syntax import load_rule_files
    from leadx.leads.verticals import load_verticals, verify

    try:
        payload = json.loads(Path(args.lead).read_text())
    except (OSError, ValueError) as exc:
        print(f"leadx: cannot read the lead {args.lead}: {exc}", file=sys.stderr)
        return 1
    vertical = load_verticals().get(str(payload.get("vertical", "")))
    if not isinstance(payload, dict) or vertical is None:
        print(f"leadx: the lead must be a JSON object with a known vertical ({', '.join(load_verticals())})",
              file=sys.stderr)
        return 1
    checked = verify(vertical, payload)  # what the exchange stores: the verified, normalised fields
    if not checked.ok:
        for error in checked.errors:
            print(f"leadx: the lead would be rejected: {error.code} {error.field}: {error.message}",
                  file=sys.stderr)
        return 1
    rules_dir = args.rules or env_str("DELIVERY_RULES_DIR", "")
    book = load_rule_files(Path(rules_dir), known_fields()) if rules_dir else None
    names = _buyer_names(args.buyer)
    if book is not None and any(book.is_broken(name) for name in names):
        for problem in (p for name in names for p in book.broken.get(name, [])):
            print(f"leadx: {problem}", file=sys.stderr)
        print(f"leadx: buyer {args.buyer}'s POST rules are broken: delivery passes it over", file=sys.stderr)
        return 1
    rules = next((book.sections[name] for name in names if book and name in book.sections), None)
    lead = ev.Lead(lead_id=args.lead_id, vertical=vertical.name, fields=checked.fields)
    try:
        prepared = prepare_post(lead, args.price, rules)
    except RuleError as exc:
        print(f"leadx: the rules cannot adapt this lead: {exc}", file=sys.stderr)
        return 1
    origin = f"POST rules at {rules.where}" if rules else "no POST rules for this buyer: the exchange's own JSON"
    print(f"# POST to buyer {args.buyer} ({origin})")
    print(f"Content-Type: {prepared.content_type}")
    print()
    print(prepared.body.decode())
    return 0


def cmd_delivery_prune_attempts(_args) -> int:
    """Empty the request and response bodies of the post attempts older than
    POST_ATTEMPT_RETENTION_DAYS (leadx.delivery.attempts_retention); the attempts stay."""
    from leadx.delivery.attempts_retention import RETENTION_SETTING, drop_old_bodies, retention_days_from_env

    days = retention_days_from_env()
    pruned = drop_old_bodies(sessions(), days, int(time.time() * 1000))
    before = datetime.fromtimestamp(pruned.before_ms / 1000, UTC).isoformat(timespec="seconds")
    print(f"dropped the bodies of {pruned.attempts} post attempts sent before {before} "
          f"(bodies are kept {days} days, {RETENTION_SETTING})")
    return 0


def _buyer_names(buyer: str) -> list[str]:
    """The buyer as given, and, when the database is configured, its id and name (a section may
    be headed by either)."""
    import os

    names = [buyer]
    if os.environ.get("DATABASE_URL"):
        from sqlalchemy import or_, select

        from leadx.platform.db.models import Buyer

        with sessions()() as session:
            query = select(Buyer.id, Buyer.name).where(or_(Buyer.id == buyer, Buyer.name == buyer))
            row = session.execute(query).first()
        if row:
            names += [n for n in row if n not in names]
    return names


def add_commands(commands) -> None:
    delivery = commands.add_parser("delivery", help="delivery to buyers").add_subparsers(dest="action",
                                                                                      required=True)
    preview = delivery.add_parser("preview", help="print exactly what would be POSTed to a buyer for a lead")
    preview.add_argument("--buyer", required=True, help="the buyer's id or name")
    preview.add_argument("--lead", required=True, help="a JSON file holding a lead as a seller would POST it")
    preview.add_argument("--rules", default=None, help="the POST rules directory (default: $DELIVERY_RULES_DIR)")
    preview.add_argument("--price", type=int, default=0, help="the price in cents the rules see")
    preview.add_argument("--lead-id", default="PREVIEW001")
    preview.set_defaults(func=cmd_delivery_preview)
    prune = delivery.add_parser("prune-attempts", help="drop the request and response bodies of posts to buyers "
                                                       "older than POST_ATTEMPT_RETENTION_DAYS (90); the attempts stay")
    prune.set_defaults(func=cmd_delivery_prune_attempts)
