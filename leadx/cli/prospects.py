"""`leadx prospects import|collect|stats|rekey`: the prospect pool ([scoring](../docs/scoring.md#the-prospect-pool))."""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from leadx.cli.database import sessions
from leadx.platform.config import ConfigError, HmacKeyring, env_bool, env_str

USAGE_ERROR = 2  # nothing was done: the command's input cannot be used


def _refuse(message: str) -> int:
    print(f"leadx prospects: {message}", file=sys.stderr)
    return USAGE_ERROR


def _identities():
    """The identity keys as dedup computes them: the same settings dedup reads."""
    from leadx.prospects.pool import Identities

    return Identities(HmacKeyring.from_env(), env_bool("DEDUP_EMAIL_PROVIDER_RULES", True))


def _bundle():
    from leadx.scoring.registry import configured

    try:
        return configured()
    except (OSError, ValueError) as exc:
        raise ConfigError(f"the model bundle of SCORING_MODELS cannot be read: {exc}") from None


def cmd_import(args) -> int:
    from leadx.leads.rules import PACKAGED_RULES, RulesError, load_rulebook
    from leadx.leads.verticals import load_verticals
    from leadx.prospects.pool import Refused, import_rows, read_csv

    verticals = load_verticals()
    vertical = verticals.get(args.vertical)
    if vertical is None:
        return _refuse(f"no vertical {args.vertical!r}; the verticals are {', '.join(sorted(verticals))}")
    # Checked as intake checks a lead: the same rules directory and phone setting as intake reads.
    try:
        rulebook = load_rulebook(Path(env_str("INTAKE_RULES_DIR", str(PACKAGED_RULES))), verticals)
    except RulesError as exc:
        return _refuse(str(exc))
    phone_area_must_match = env_bool("INTAKE_PHONE_AREA_MUST_MATCH", False)
    identities, bundle, factory = _identities(), _bundle(), sessions()
    path = Path(args.file)
    try:
        with open(path, encoding="utf-8-sig", newline="") as lines, factory.begin() as session:
            report = import_rows(session, read_csv(lines, vertical), vertical=vertical, seller_id=args.seller,
                                 source_name=path.name, rules=rulebook.rules_for(vertical.name, args.seller),
                                 identities=identities, bundle=bundle, now_ms=int(time.time() * 1000),
                                 phone_area_must_match=phone_area_must_match)
    except OSError as exc:
        return _refuse(f"cannot read {path}: {exc.strerror or exc}")
    except Refused as exc:
        return _refuse(f"{path.name}: {exc}; nothing was imported")
    if args.json:
        print(json.dumps(report.as_dict(), indent=2))
    else:
        print(_import_text(report))
    return 0


def _import_text(report) -> str:
    lines = [f"{report.file}: {report.imported} of {report.rows} rows imported into the {report.vertical} pool "
             f"as seller {report.seller_id}'s consumers (scored by {report.model_version})"]
    if report.rejected:
        lines.append(f"rejected ({len(report.rejected)}):")
        lines += [f"  line {r['line']}: {e['code']} {e['field'] or '-'}: {e['message']}"
                  for r in report.rejected for e in r["errors"]]
    if report.duplicates:
        lines.append(f"duplicates, not imported ({len(report.duplicates)}):")
        for d in report.duplicates:
            of = d["duplicate_of"]
            where = f"line {of['line']}" if "line" in of else f"prospect {of['prospect']} of the pool"
            lines.append(f"  line {d['line']}: the consumer of {where} (same {', '.join(d['on'])})")
    if report.warnings:
        lines.append(f"imported with warnings ({len(report.warnings)}):")
        lines += [f"  line {w['line']}: {x['code']} {x['field']}: {x['message']}"
                  for w in report.warnings for x in w["warnings"]]
    if report.ignored_columns:
        lines.append(f"ignored columns (not {report.vertical} fields): {', '.join(report.ignored_columns)}")
    return "\n".join(lines)


def cmd_collect(args) -> int:
    from leadx.prospects.pool import Refused, collect

    identities, bundle, factory = _identities(), _bundle(), sessions()
    try:
        report = collect(factory, identities=identities, bundle=bundle, now_ms=int(time.time() * 1000),
                         aged_days=args.aged_days)
    except Refused as exc:
        return _refuse(str(exc))
    if args.json:
        print(json.dumps(report.as_dict()))
    else:
        print(f"added {report.unsold} unsold and {report.aged} aged leads to the pool (scored by "
              f"{report.model_version}); {report.duplicates} left out as consumers already in it, "
              f"{report.without_fields} without stored fields")
    return 0


def cmd_rekey(args) -> int:
    from leadx.prospects.pool import rekey

    identities = _identities()
    prospects, changed = rekey(sessions(), identities)
    key_id = identities.keyring.current_id
    if args.json:
        print(json.dumps({"prospects": prospects, "rekeyed": changed, "key_id": key_id}))
    else:
        print(f"{changed} of {prospects} prospects re-keyed under HMAC key {key_id}")
    return 0


def cmd_stats(args) -> int:
    from leadx.prospects.pool import pool_stats

    with sessions()() as session:
        stats = pool_stats(session)
    if args.json:
        print(json.dumps(stats, indent=2))
        return 0
    print(f"prospect pool: {stats['prospects']} prospects")
    for name, entry in stats["verticals"].items():
        print(f"{name}: {entry['prospects']} prospects")
        print("  sources: " + ", ".join(f"{k} {v}" for k, v in entry["sources"].items()))
        print("  clusters: " + ", ".join(f"{k} {v}" for k, v in entry["clusters"].items()))
        print("  probability of answering a direct offer: "
              + ", ".join(f"{k} {v:.3f}" for k, v in entry["probability"].items()))
    return 0


def _days(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not 0 <= value < 100_000:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of days")
    return value


def add_commands(commands) -> None:
    prospects = commands.add_parser("prospects", help="the prospect pool that customer lists are sold from") \
        .add_subparsers(dest="action", required=True)
    load = prospects.add_parser("import", help="add a seller's customer list (CSV with a header row) to the pool")
    load.add_argument("file", help="CSV: a header row naming the vertical's fields, then one consumer a line")
    load.add_argument("--seller", required=True, help="the seller whose consumers they are (paid when sold)")
    load.add_argument("--vertical", required=True, help="e.g. auto_loan")
    load.add_argument("--json", action="store_true", help="the summary as JSON")
    load.set_defaults(func=cmd_import)

    gather = prospects.add_parser("collect", help="add unsold leads and aged leads to the pool")
    gather.add_argument("--aged-days", type=_days, default=30.0,
                        help="leads submitted more than this many days ago are aged (default 30)")
    gather.add_argument("--json", action="store_true")
    gather.set_defaults(func=cmd_collect)

    again = prospects.add_parser("rekey", help="recompute the pool's identity keys under the current HMAC key "
                                 "(after a rotation, before the old key is dropped)")
    again.add_argument("--json", action="store_true")
    again.set_defaults(func=cmd_rekey)

    stats = prospects.add_parser("stats", help="the pool per vertical: sources, clusters, probability quantiles")
    stats.add_argument("--json", action="store_true")
    stats.set_defaults(func=cmd_stats)
