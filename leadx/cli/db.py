"""`leadx db`: the schema of the SQL database of DATABASE_URL."""

from __future__ import annotations

import sys

from leadx.cli.database import sessions
from leadx.platform.config import env_str


def cmd_db_init(_args) -> int:
    sessions()
    print("schema ready")
    return 0


def cmd_db_upgrade(args) -> int:
    """Create, adopt or upgrade the schema (leadx.platform.db.schema.upgrade); a database this
    leadx cannot upgrade is a one-line error, exit status 2."""
    from leadx.platform.db.engine import make_engine
    from leadx.platform.db.schema import upgrade

    engine = make_engine(env_str("DATABASE_URL"))
    try:
        done = upgrade(engine, args.revision)
    finally:
        engine.dispose()
    if done.before == done.after:
        print(f"schema at revision {done.after}: nothing to do")
    elif done.adopted:
        print(f"schema had no revision: adopted at the first, upgraded to {done.after}")
    else:
        print(f"schema upgraded from {done.before or 'nothing'} to revision {done.after}")
    return 0


def cmd_db_current(_args) -> int:
    """The database's revision and this leadx's; exit status 1 when the services would refuse it."""
    from leadx.platform.db.engine import make_engine
    from leadx.platform.db.schema import head_revision, problem, schema_state

    engine = make_engine(env_str("DATABASE_URL"))
    try:
        with engine.connect() as connection:
            state = schema_state(connection)
    finally:
        engine.dispose()
    print(f"database revision {state.revision or 'none'}; this leadx's revision {head_revision()}")
    found = problem(state)
    if found:
        print(f"leadx: {found}", file=sys.stderr)
        return 1
    return 0


def cmd_db_revision(args) -> int:
    from leadx.platform.db.schema import new_revision

    path = new_revision(args.message)
    print(f"{path}: read it and correct it before committing (docs/deploy.md, the database schema)")
    return 0


def add_commands(commands) -> None:
    db = commands.add_parser("db", help="database").add_subparsers(dest="action", required=True)
    init = db.add_parser("init", help="create the tables of a new database (`db upgrade` changes an existing one)")
    init.set_defaults(func=cmd_db_init)
    upgrade = db.add_parser("upgrade", help="create, adopt or upgrade the schema to this leadx's revision; "
                                            "run it before the services start")
    upgrade.add_argument("--revision", default="head", help="the revision to reach (default: the newest)")
    upgrade.set_defaults(func=cmd_db_upgrade)
    current = db.add_parser("current", help="the database's schema revision; exit status 1 if not this leadx's")
    current.set_defaults(func=cmd_db_current)
    revision = db.add_parser("revision", help="developers: write the next schema revision from models.py's changes")
    revision.add_argument("message", help="what changes, e.g. \"buyers get a credit limit\"")
    revision.set_defaults(func=cmd_db_revision)
