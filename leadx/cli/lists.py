"""`leadx lists preview|open|show|export`: list auctions for operators (docs/list-auctions.md).

They work on the SQL database of DATABASE_URL, as the admin API does; the ledger closes the
auctions they open. A mistake (a bad profile file, an unknown list, an export before the close)
is one line on standard error and exit status 2.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import NoReturn

from leadx.cli.database import sessions
from leadx.lists import views
from leadx.lists.building import DEFAULT_BAND_WIDTH, Customer, profile_problem

DEFAULT_WINDOW_S = 120.0
MAX_WINDOW_S = 30 * 86_400


class _Refused(Exception):
    """A mistake of the operator's, told in one line."""


def _fail(message: str) -> NoReturn:
    raise _Refused(message)


def _guarded(command):
    """Run a command; its refusals and a database it cannot use become one line and exit 2."""
    def run(args) -> int:
        from sqlalchemy.exc import SQLAlchemyError

        try:
            return command(args)
        except _Refused as refused:
            print(f"leadx: {refused}", file=sys.stderr)
        except SQLAlchemyError as error:
            first = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
            print(f"leadx: the database of DATABASE_URL cannot be used: {first}", file=sys.stderr)
        return 2
    return run


def _descriptions() -> dict[str, str]:
    """The served bundle's cluster descriptions; none if it cannot be read (they only help)."""
    from leadx.scoring.registry import cluster_descriptions

    try:
        return cluster_descriptions()
    except Exception:  # a missing or unreadable bundle must not stop an operator's command
        return {}


def read_profile(path: str) -> object:
    """A profile file: YAML, or JSON when it is named *.json; `{"criteria": [...]}` or a bare list."""
    import yaml

    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        _fail(f"cannot read the profile {path}: {getattr(error, 'strerror', None) or error}")
    try:
        document = json.loads(text) if path.lower().endswith(".json") else yaml.safe_load(text)
    except (ValueError, yaml.YAMLError) as error:
        where = " ".join(str(error).split())
        _fail(f"the profile {path} is not valid {'JSON' if path.lower().endswith('.json') else 'YAML'}: {where}")
    if document is None:
        _fail(f"the profile {path} is empty: write {{criteria: [...]}} (no criteria takes the whole pool)")
    return document


def _parse_profile(path: str):
    from leadx.auction.selection.criteria import CriterionError
    from leadx.lists.building import ListProfile

    document = read_profile(path)
    problem = profile_problem(document)
    if problem:
        _fail(f"the profile {path}: {problem}")
    try:
        return document, ListProfile.parse(document)
    except (CriterionError, OverflowError) as error:
        _fail(f"the profile {path}: {error}")


def _check_vertical(vertical: str) -> None:
    from leadx.leads.verticals import load_verticals

    known = load_verticals()
    if vertical not in known:
        _fail(f"unknown vertical {vertical!r}; one of {', '.join(sorted(known))}")


def _check_band_width(width: float) -> float:
    problem = views.band_width_problem(width)
    if problem:
        _fail(f"--band-width {problem}")
    return round(width, 2)


# ---------------------------------------------------------------------- text output

def _when(ms: int | None) -> str:
    return datetime.fromtimestamp(ms / 1000, UTC).strftime("%Y-%m-%d %H:%M:%S UTC") if ms else "-"


def _dollars(cents: int) -> str:
    return f"${cents / 100:,.2f}"


def _group_lines(view: dict) -> list[str]:
    lines = ["clusters:"]
    for group in view["clusters"]:
        lines.append(f"  {group['cluster']:<6} {group['count']:>7} customers  p {group['probability_min']:.3f}-"
                     f"{group['probability_max']:.3f} (mean {group['probability_mean']:.3f})  "
                     f"{group['description']}".rstrip())
    lines.append("probability bands:")
    for group in view["bands"]:
        lines.append(f"  {group['band']:<10} {group['count']:>7} customers  mean {group['probability_mean']:.3f}"
                     f"  about {group['expected_responses']:g} responses")
    return lines


def _customer_lines(customers: list[dict], title: str) -> list[str]:
    lines = [title]
    for c in customers:
        line = f"  {c['prospect_id']}  {c['state'] or '--':<2} {c['zip3'] or '---':<3}  p {c['probability']:.4f}  " \
               f"{c['cluster']}"
        if c.get("buyer_id"):
            line += f"  sold to {c['buyer_id']} for {_dollars(c['price_cents'])}"
        lines.append(line)
    return lines


def _auction_text(view: dict) -> str:
    head = (f"list auction {view['list_id']} {view['status']}: {view['count']} {view['vertical']} customers, "
            f"reserve {_dollars(view['reserve_cents'])} each, bands of {view['band_width']:g}")
    timing = f"opened {_when(view['opened_at_ms'])}, closes {_when(view['closes_at_ms'])}"
    if view["status"] == views.OPEN:
        timing += f" (in {view['seconds_left']:g} s)"
    elif view["status"] == views.CLOSED:
        timing += f", closed {_when(view['closed_at_ms'])}"
    lines = [head, timing, *_group_lines(view)]
    lines.append(f"bids ({len(view['bids'])}):")
    for b in view["bids"]:
        limits = "".join([f", at most {b['max_count']}" if b["max_count"] else "",
                          f", budget {_dollars(b['max_budget_cents'])}" if b["max_budget_cents"] else ""])
        lines.append(f"  #{b['id']} {b['buyer_id']}: {b['scope']} {b['target']} at {_dollars(b['price_cents'])}"
                     f"{limits}")
    if view["awards"] is not None:
        awards = view["awards"]
        lines.append(f"sold {awards['count']} for {_dollars(awards['total_cents'])}, {awards['unsold']} unsold; "
                     f"{awards['published']} published as sales")
        lines.extend(f"  {b['buyer_id']}: {b['count']} for {_dollars(b['total_cents'])}" for b in awards["by_buyer"])
    lines.extend(_customer_lines(view["customers"], "best customers:" if not view["offset"]
                                 else f"customers from {view['offset']}:"))
    return "\n".join(lines)


# ---------------------------------------------------------------------- commands

def cmd_lists_preview(args) -> int:
    from sqlalchemy import select

    from leadx.lists.building import build_list
    from leadx.platform.db.models import Prospect

    _check_vertical(args.vertical)
    _, profile = _parse_profile(args.profile)
    width = _check_band_width(args.band_width)
    with sessions()() as session:
        pool = [Customer(p.id, p.probability, p.cluster, p.fields or {})
                for p in session.scalars(select(Prospect).where(Prospect.vertical == args.vertical))]
    built = build_list(pool, profile, width)
    view = views.preview(args.vertical, built, _descriptions(), args.top)
    if args.json:
        print(json.dumps(view, indent=2))
    elif not built.customers:
        print(f"no customer of the {args.vertical} pool ({len(pool)} customers) matches this profile")
    else:
        print("\n".join([f"{view['count']} of the {len(pool)} {args.vertical} customers in the pool match, "
                         f"bands of {width:g}", *_group_lines(view),
                         *_customer_lines(view["customers"], "best customers:")]))
    return 0


def _show(list_id: str, offset: int, limit: int) -> dict:
    from leadx.lists.store import read_listing

    with sessions()() as session:
        listing = read_listing(session, list_id, offset, limit)
    if listing is None:
        _fail(f"there is no list auction {list_id}")
    return views.operator_view(listing.auction, listing.members, listing.page, offset, listing.bids, listing.awards,
                               _descriptions(), int(time.time() * 1000))


def cmd_lists_open(args) -> int:
    from leadx.auction.selection.criteria import CriterionError
    from leadx.lists import store

    _check_vertical(args.vertical)
    document, _ = _parse_profile(args.profile)
    width = _check_band_width(args.band_width)
    if not 0 < args.window <= MAX_WINDOW_S:
        _fail(f"--window is seconds above 0 and at most {MAX_WINDOW_S}")
    if args.reserve < 0:
        _fail("--reserve is cents per customer, 0 or more")
    with sessions()() as session, session.begin():
        try:
            auction = store.open_auction(session, args.vertical, document, width, args.reserve,
                                         max(1, round(args.window * 1000)), int(time.time() * 1000))
        except CriterionError as error:
            _fail(f"the profile {args.profile}: {error}")
        except ValueError as error:  # the options were checked above: nobody matched
            _fail(str(error))
        list_id = auction.id
    view = _show(list_id, 0, args.top)
    print(json.dumps(view, indent=2) if args.json else _auction_text(view))
    return 0


def cmd_lists_show(args) -> int:
    view = _show(args.list_id, args.offset, args.limit)
    print(json.dumps(view, indent=2) if args.json else _auction_text(view))
    return 0


def cmd_lists_export(args) -> int:
    from leadx.leads.verticals import load_verticals
    from leadx.lists import store
    from leadx.platform.db.models import Buyer, ListAuction

    with sessions()() as session:
        auction = session.get(ListAuction, args.list_id)
        if auction is None:
            _fail(f"there is no list auction {args.list_id}")
        if session.get(Buyer, args.buyer) is None:
            _fail(f"there is no buyer {args.buyer}")
        if auction.status != store.CLOSED:
            _fail(f"list auction {args.list_id} has not closed yet (its window ends {_when(auction.closes_at_ms)}; "
                  "the ledger then closes it)")
        customers = views.won(store.won(session, args.list_id, args.buyer))
        vertical = load_verticals().get(auction.vertical)
    if args.format == "csv":
        text = views.won_csv(customers, [spec.name for spec in vertical.fields] if vertical is not None else [])
    else:
        text = json.dumps(views.won_document(args.list_id, args.buyer, customers), indent=2) + "\n"
    if args.out:
        try:
            # newline="": the CSV writer's own line ends (RFC 4180) are kept as they are.
            with open(args.out, "w", encoding="utf-8", newline="") as out:
                out.write(text)
        except OSError as error:
            _fail(f"cannot write {args.out}: {error.strerror or error}")
        print(f"{len(customers)} customers won by {args.buyer} written to {args.out}", file=sys.stderr)
    else:
        sys.stdout.write(text)
    return 0


def _non_negative(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = -1
    if value < 0:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number, 0 or more")
    return value


def _positive(text: str) -> int:
    value = _non_negative(text)
    if value == 0:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number above 0")
    return value


def add_commands(commands) -> None:
    lists = commands.add_parser("lists", help="list auctions: customer lists from the prospect pool, bid on by "
                                              "dealers").add_subparsers(dest="action", required=True)

    def choosing(parser) -> None:
        parser.add_argument("--vertical", required=True, help="e.g. auto_loan")
        parser.add_argument("--profile", required=True, help="a YAML (or .json) file: {criteria: [...]}, the "
                            "AutoBid criteria without prices; none takes the whole pool")
        parser.add_argument("--band-width", type=float, default=DEFAULT_BAND_WIDTH,
                            help="width of the probability bands (whole hundredths, default 0.05)")
        parser.add_argument("--top", type=_positive, default=20, help="how many of the best customers to show")
        parser.add_argument("--json", action="store_true")

    preview = lists.add_parser("preview", help="build a list from the pool without opening an auction: its "
                                               "groups per cluster and band, and its best customers (no PII)")
    choosing(preview)
    preview.set_defaults(func=_guarded(cmd_lists_preview))

    opened = lists.add_parser("open", help="open a list auction; the ledger closes it when its window ends")
    choosing(opened)
    opened.add_argument("--window", type=float, default=DEFAULT_WINDOW_S, help="seconds it takes bids (120)")
    opened.add_argument("--reserve", type=int, default=0, help="the lowest price, cents per customer (0)")
    opened.set_defaults(func=_guarded(cmd_lists_open))

    show = lists.add_parser("show", help="a list auction: groups, customers, bids, and once closed the awards")
    show.add_argument("list_id")
    show.add_argument("--offset", type=_non_negative, default=0, help="customers from this rank (0: the best)")
    show.add_argument("--limit", type=_positive, default=20, help="how many customers to show")
    show.add_argument("--json", action="store_true")
    show.set_defaults(func=_guarded(cmd_lists_show))

    export = lists.add_parser("export", help="after the close, the customers a dealer won, with their fields")
    export.add_argument("list_id")
    export.add_argument("--buyer", required=True, help="the dealer's buyer id")
    export.add_argument("--format", choices=["csv", "json"], default="csv")
    export.add_argument("--out", help="a file (default: standard output)")
    export.set_defaults(func=_guarded(cmd_lists_export))
