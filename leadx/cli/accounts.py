"""`leadx seller|buyer|partnership|profiles|contract`: accounts, their keys, partnerships, AutoBid
profiles and direct-sale contracts, in the SQL database of DATABASE_URL."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from typing import TYPE_CHECKING, TypeVar

from leadx.cli.database import sessions

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

T = TypeVar("T")


def _print_key(args, created, what: str) -> None:
    """An account id and its new API key: JSON with --json, else a sentence saying what happened."""
    if args.json:
        print(json.dumps({"id": created.id, "api_key": created.api_key}))
    else:
        print(f"{what}; API key (shown once): {created.api_key}")


def cmd_seller_create(args) -> int:
    from leadx.accounts import accounts

    with sessions()() as session:
        created = accounts.create_seller(session, args.name)
    _print_key(args, created, f"seller {created.id} created")
    return 0


def _change_accounts(change: Callable[[Session], T]) -> T:
    """Run `change(session)`; an unknown account or a bad value is reported, exit status 1."""
    from leadx.accounts.ids import UnknownAccount

    with sessions()() as session:
        try:
            return change(session)
        except (UnknownAccount, ValueError) as exc:
            print(f"leadx: {exc}", file=sys.stderr)
            raise SystemExit(1) from None


def cmd_seller_rotate_key(args) -> int:
    from leadx.accounts import accounts

    created = _change_accounts(lambda session: accounts.rotate_seller_key(session, args.seller_id))
    _print_key(args, created, f"seller {created.id} has a new key; the old one no longer works")
    return 0


def cmd_seller_revoke_key(args) -> int:
    from leadx.accounts import accounts

    _change_accounts(lambda session: accounts.revoke_seller_key(session, args.seller_id))
    print(f"seller {args.seller_id}: API key revoked; `leadx seller rotate-key` issues a new one")
    return 0


def cmd_buyer_create(args) -> int:
    from leadx.accounts import accounts

    settings = {"kind": args.kind, "weight": args.weight, "time_zone": args.time_zone}

    def create(session):
        return accounts.create_buyer(session, args.name, args.ping_url, args.post_url, **settings)

    created = _change_accounts(create)
    _print_key(args, created, f"{args.kind} buyer {created.id} created")
    return 0


def cmd_buyer_rotate_key(args) -> int:
    from leadx.accounts import accounts

    created = _change_accounts(lambda session: accounts.rotate_buyer_key(session, args.buyer_id))
    _print_key(args, created, f"buyer {created.id} has a new key; the old one stops working within the"
                              " exchange's key cache (API_KEY_CACHE_SECONDS, 30 seconds by default)")
    return 0


def cmd_buyer_revoke_key(args) -> int:
    from leadx.accounts import accounts

    _change_accounts(lambda session: accounts.revoke_buyer_key(session, args.buyer_id))
    print(f"buyer {args.buyer_id}: API key revoked (within the key cache's time, 30 seconds by default);"
          " `leadx buyer rotate-key` issues a new one")
    return 0


def cmd_buyer_active(args) -> int:
    from leadx.accounts import accounts

    active = args.action == "reactivate"
    _change_accounts(lambda session: accounts.set_buyer_active(session, args.buyer_id, active))
    print(f"buyer {args.buyer_id} " + ("is active again: offered leads and its key works" if active else
                                       "deactivated: offered no more leads, and its key no longer works"))
    return 0


def cmd_buyer_set(args) -> int:
    from leadx.accounts import buyer_settings as buyer_profiles

    settings = {name: getattr(args, name) for name in ("kind", "weight", "time_zone")
                if getattr(args, name) is not None}
    if args.caps is not None:
        settings["caps"] = _json_argument(args.caps, "--caps")
    if not settings:
        print("leadx: nothing to change: give --kind, --weight, --time-zone or --caps", file=sys.stderr)
        return 1

    def change(session) -> dict:
        buyer_profiles.update_buyer(session, args.buyer_id, **settings)
        return buyer_profiles.buyer_settings(session, args.buyer_id)

    print(json.dumps(_change_accounts(change), indent=2))
    return 0


def cmd_buyer_show(args) -> int:
    from leadx.accounts import buyer_settings as buyer_profiles

    print(json.dumps(_change_accounts(lambda session: buyer_profiles.buyer_settings(session, args.buyer_id)),
                     indent=2))
    return 0


def _json_argument(text: str, option: str) -> object:
    try:
        return json.loads(text)
    except ValueError as exc:
        raise SystemExit(f"leadx: {option} must be JSON, e.g. '{{\"leads_per_day\": 100}}': {exc}") from None


def cmd_partnership_add(args) -> int:
    from leadx.accounts import partnerships

    created = _change_accounts(lambda session: partnerships.add_partnership(session, args.seller, args.buyer))
    print(f"buyer {args.buyer} {'now takes' if created else 'already took'} seller {args.seller}'s leads")
    return 0


def cmd_partnership_remove(args) -> int:
    from leadx.accounts import partnerships

    _change_accounts(lambda session: partnerships.remove_partnership(session, args.seller, args.buyer))
    print(f"buyer {args.buyer} no longer takes seller {args.seller}'s leads")
    return 0


def cmd_seller_sells_to(args) -> int:
    from leadx.accounts import partnerships

    _change_accounts(lambda session: partnerships.set_sells_to(session, args.seller_id, args.sells_to))
    print(f"seller {args.seller_id} sells to " + ("every partnered buyer but those it blocks"
                                                   if args.sells_to == "all" else "only the buyers it allows"))
    return 0


def cmd_seller_choice(args) -> int:
    from leadx.accounts import partnerships

    choice = {"allow": "allow", "block": "block", "forget": None}[args.action]
    _change_accounts(lambda session: partnerships.set_choice(session, args.seller_id, args.buyer_id, choice))
    done = {"allow": "allows", "block": "blocks", "forget": "has no word on"}[args.action]
    print(f"seller {args.seller_id} {done} buyer {args.buyer_id}")
    return 0


def cmd_seller_relations(args) -> int:
    from leadx.accounts import partnerships

    print(json.dumps(_change_accounts(lambda session: partnerships.seller_relations(session, args.seller_id)),
                     indent=2))
    return 0


def cmd_profiles_import(args) -> int:
    """Apply a YAML import document (leadx.accounts.buyer_settings): every buyer entry is checked before any
    is applied; prints each buyer's new profile ids."""
    import yaml

    from leadx.accounts import buyer_settings as buyer_profiles

    try:
        with open(args.file, encoding="utf-8") as file:
            document = yaml.safe_load(file)
    except (OSError, UnicodeDecodeError) as exc:
        print(f"leadx: cannot read {args.file}: {exc}", file=sys.stderr)
        return 1
    except yaml.YAMLError as exc:
        print(f"leadx: {args.file} is not valid YAML: {exc}", file=sys.stderr)
        return 1
    try:
        # The documents are stored as JSON: a YAML date or .nan would not survive that.
        document = json.loads(json.dumps(document, allow_nan=False))
    except (TypeError, ValueError) as exc:
        print(f"leadx: {args.file} holds a value that is not JSON ({exc}); quote dates and times",
              file=sys.stderr)
        return 1

    def apply(session) -> dict:
        return buyer_profiles.import_document(session, document)

    print(json.dumps(_change_accounts(apply), indent=2))
    return 0


def cmd_contract_add(args) -> int:
    from leadx.accounts import accounts

    _change_accounts(lambda session: accounts.add_contract(session, args.seller, args.buyer, args.price))
    print(f"contract: seller {args.seller} sells directly to buyer {args.buyer} at {args.price} cents a lead")
    return 0


def cmd_contract_end(args) -> int:
    from leadx.accounts import accounts

    _change_accounts(lambda session: accounts.end_contract(session, args.seller, args.buyer))
    print(f"contract between seller {args.seller} and buyer {args.buyer} ended")
    return 0


def cmd_seller_set_fee(args) -> int:
    from leadx.accounts import accounts

    percent = None if args.percent == "default" else _percent(args.percent)
    _change_accounts(lambda session: accounts.set_seller_fee(session, args.seller_id, percent))
    print(f"seller {args.seller_id}: platform fee " + ("back to SELLER_FEE_PERCENT" if percent is None
                                                        else f"{percent:g}% of each sale"))
    return 0


def _percent(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise SystemExit(f"leadx: the fee must be a percentage such as 12.5, or 'default'; not {text!r}") from None
    if not 0 <= value <= 100:
        raise SystemExit("leadx: the fee must be between 0 and 100 percent")
    return value


def add_commands(commands) -> None:
    seller = commands.add_parser("seller", help="seller accounts").add_subparsers(dest="action", required=True)
    create = seller.add_parser("create", help="create a seller and print its API key")
    create.add_argument("name")
    create.add_argument("--json", action="store_true")
    create.set_defaults(func=cmd_seller_create)
    rotate = seller.add_parser("rotate-key", help="issue a new API key; the old one stops working")
    rotate.add_argument("seller_id")
    rotate.add_argument("--json", action="store_true")
    rotate.set_defaults(func=cmd_seller_rotate_key)
    revoke = seller.add_parser("revoke-key", help="revoke the seller's API key")
    revoke.add_argument("seller_id")
    revoke.set_defaults(func=cmd_seller_revoke_key)
    set_fee = seller.add_parser("set-fee", help="the platform's fee on this seller's sales, in percent")
    set_fee.add_argument("seller_id")
    set_fee.add_argument("percent", help="e.g. 12.5, or 'default' for SELLER_FEE_PERCENT")
    set_fee.set_defaults(func=cmd_seller_set_fee)

    sells_to = seller.add_parser("sells-to", help="sell to every partnered buyer but those blocked (all), "
                                 "or only to those allowed (named)")
    sells_to.add_argument("seller_id")
    sells_to.add_argument("sells_to", choices=["all", "named"])
    sells_to.set_defaults(func=cmd_seller_sells_to)
    for action, text in (("allow", "name a buyer the seller sells to (counts when it sells to named buyers)"),
                         ("block", "never sell this seller's leads to a buyer"),
                         ("forget", "drop the seller's allow or block of a buyer")):
        choice = seller.add_parser(action, help=text)
        choice.add_argument("seller_id")
        choice.add_argument("buyer_id")
        choice.set_defaults(func=cmd_seller_choice)
    relations = seller.add_parser("relations", help="the seller's partners and choices, as JSON")
    relations.add_argument("seller_id")
    relations.set_defaults(func=cmd_seller_relations)

    buyer = commands.add_parser("buyer", help="buyer accounts").add_subparsers(dest="action", required=True)
    create = buyer.add_parser("create", help="create a buyer and print its API key")
    create.add_argument("name")
    create.add_argument("--ping-url", default="", help="where it is pinged to bid (not needed for autobid)")
    create.add_argument("--post-url", default="", help="where won leads are posted (default none: the buyer "
                        "reads them with its key)")
    create.add_argument("--kind", choices=["wholesale", "autobid"], default="wholesale",
                        help="wholesale bids itself when pinged; autobid is bid for from its profiles")
    create.add_argument("--weight", type=float, default=1.0, help="its bids count as bid x weight (default 1)")
    create.add_argument("--time-zone", default="UTC", help="IANA zone of its profile windows and caps")
    create.add_argument("--json", action="store_true")
    create.set_defaults(func=cmd_buyer_create)
    set_buyer = buyer.add_parser("set", help="change a buyer's kind, weight, time zone or caps")
    set_buyer.add_argument("buyer_id")
    set_buyer.add_argument("--kind", choices=["wholesale", "autobid"])
    set_buyer.add_argument("--weight", type=float)
    set_buyer.add_argument("--time-zone")
    set_buyer.add_argument("--caps", help='JSON, e.g. \'{"leads_per_day": 100}\'; \'{}\' removes them')
    set_buyer.set_defaults(func=cmd_buyer_set)
    show = buyer.add_parser("show", help="a buyer's settings and active profiles, as JSON")
    show.add_argument("buyer_id")
    show.set_defaults(func=cmd_buyer_show)
    rotate = buyer.add_parser("rotate-key", help="issue a new API key; the old one stops working")
    rotate.add_argument("buyer_id")
    rotate.add_argument("--json", action="store_true")
    rotate.set_defaults(func=cmd_buyer_rotate_key)
    revoke = buyer.add_parser("revoke-key", help="revoke the buyer's API key")
    revoke.add_argument("buyer_id")
    revoke.set_defaults(func=cmd_buyer_revoke_key)
    for action, text in (("deactivate", "offer the buyer no more leads and refuse its key"),
                         ("reactivate", "offer the buyer leads again and accept its key")):
        active = buyer.add_parser(action, help=text)
        active.add_argument("buyer_id")
        active.set_defaults(func=cmd_buyer_active)

    partnership = commands.add_parser("partnership", help="buyers' opt-ins to sellers' leads") \
        .add_subparsers(dest="action", required=True)
    for action, func, text in (("add", cmd_partnership_add, "a buyer opts in to a seller's leads"),
                               ("remove", cmd_partnership_remove, "a buyer stops taking a seller's leads")):
        command = partnership.add_parser(action, help=text)
        command.add_argument("--seller", required=True)
        command.add_argument("--buyer", required=True)
        command.set_defaults(func=func)

    profiles = commands.add_parser("profiles", help="AutoBid profiles").add_subparsers(dest="action", required=True)
    load = profiles.add_parser("import", help="apply a YAML document of buyers' settings and profiles")
    load.add_argument("file", help="YAML; the format is in docs/admin-api.md")
    load.set_defaults(func=cmd_profiles_import)

    contract = commands.add_parser("contract", help="direct-sale contracts").add_subparsers(dest="action",
                                                                                         required=True)
    add = contract.add_parser("add", help="let a seller sell directly to a buyer at a fixed price")
    add.add_argument("--seller", required=True)
    add.add_argument("--buyer", required=True)
    add.add_argument("--price", type=int, required=True, help="cents per lead")
    add.set_defaults(func=cmd_contract_add)
    end = contract.add_parser("end", help="end a direct-sale contract")
    end.add_argument("--seller", required=True)
    end.add_argument("--buyer", required=True)
    end.set_defaults(func=cmd_contract_end)
