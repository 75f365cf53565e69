"""`leadx db`: the schema of the SQL database of DATABASE_URL."""

from __future__ import annotations

from leadx.cli.database import sessions


def cmd_db_init(_args) -> int:
    sessions()
    print("schema ready")
    return 0


def add_commands(commands) -> None:
    db = commands.add_parser("db", help="database").add_subparsers(dest="action", required=True)
    db.add_parser("init", help="create the tables").set_defaults(func=cmd_db_init)
