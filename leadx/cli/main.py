"""The `leadx` command for operators and developers: the parser made of every command group."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from leadx.cli import (accounts, database, db, dedup, delivery, dlq, ledger, lists, prospects, run, scoring, status,
                       tail, users)
from leadx.dev import exchange_env
from leadx.platform.config import ConfigError

# In this order in `leadx --help`.
GROUPS = (scoring, lists, prospects, run, status, dlq, accounts, users, db, ledger, dedup, delivery, tail)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="leadx", description="leadx lead exchange")
    commands = parser.add_subparsers(dest="command", required=True)
    for group in GROUPS:
        group.add_commands(commands)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.command != "run":  # `leadx run` starts an exchange of its own; the others may use that one
        said = exchange_env.apply(os.environ, Path.cwd())
        if said:
            print(said, file=sys.stderr)
    try:
        return args.func(args)
    except ConfigError as exc:
        print(f"leadx: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    finally:
        database.close()


if __name__ == "__main__":
    sys.exit(main())
