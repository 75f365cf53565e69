"""`leadx ledger balances` and `leadx returns rates`: the books, read from the SQL database of DATABASE_URL."""

from __future__ import annotations

import json

from leadx.cli.database import sessions


def cmd_ledger_balances(_args) -> int:
    from leadx.ledger.reports import balances

    with sessions()() as session:
        found = balances(session)
    print(json.dumps({"balances_cents": found, "sum_cents": sum(found.values())}, indent=2))
    return 0


def cmd_returns_rates(args) -> int:
    import time

    from leadx.ledger.reports import return_rates
    from leadx.platform.utc_days import DAY_MS

    since_ms = int(time.time() * 1000) - args.days * DAY_MS
    with sessions()() as session:
        rates = return_rates(session, since_ms)
    print(json.dumps({party: {account: {"sold": r.sold, "returned": r.returned, "percent": r.percent}
                              for account, r in found.items()} for party, found in rates.items()}, indent=2))
    return 0


def add_commands(commands) -> None:
    ledger = commands.add_parser("ledger", help="the books").add_subparsers(dest="action", required=True)
    ledger.add_parser("balances", help="every account's balance in cents, and their sum (always 0)") \
        .set_defaults(func=cmd_ledger_balances)

    returns = commands.add_parser("returns", help="lead returns").add_subparsers(dest="action", required=True)
    rates = returns.add_parser("rates", help="return rates per buyer and per seller")
    rates.add_argument("--days", type=int, default=30, help="sales of the last N days (default 30)")
    rates.set_defaults(func=cmd_returns_rates)
