"""The schema's version. Alembic revisions (leadx/platform/db/migrations/versions/) describe every
change to the tables, and a database's `alembic_version` table says which revision it is at.

Why it works this way:
- Alembic is configured from code and its scripts ship inside the package: an installed image
  upgrades its database with `leadx db upgrade`, with no alembic.ini and no checkout.
- One process changes the schema: `leadx db upgrade` (a Kubernetes Job before the services roll out;
  the local stack before it starts its services). Services only check at start (`check_schema`) and
  refuse a database that is not at the revision they were built for, with the command to run: two
  versions of the code never both alter the tables, and no service runs against columns it does not
  know.
- A database that `create_all` made before revisions existed (our tables, no alembic_version) is
  adopted: checked against the first revision's tables and columns, stamped at it, then upgraded.
- `create_fresh` makes a new database with `create_all` and stamps it at the head revision, which is
  quicker than replaying every revision (the tests make hundreds of databases). That is sound because
  tests/unit/test_migrations.py proves `create_all` and an upgrade to the head give the same schema,
  on SQLite and on PostgreSQL.
- Whoever changes the schema holds a lock for the whole change, so concurrent starts are safe (the
  second one waits, then finds nothing to do): on PostgreSQL a transaction-scoped advisory lock, in
  the transaction that applies the revisions (PostgreSQL's DDL is transactional: an upgrade applies
  whole or not at all); on SQLite the database's write lock, taken with BEGIN IMMEDIATE (the Python
  driver would otherwise run each CREATE outside any transaction).
- Alembic is imported by the functions that change the schema, not with this module: every service
  imports it to check its database at start, and alembic's import (its command and script machinery,
  mako and pygments with them) was 60 to 140 ms of each service's start. The check reads the
  revisions this code knows from the revision files' names (`known_revisions`), which
  tests/unit/test_migrations.py holds equal to alembic's reading of the files.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy import Connection, Engine, create_engine, inspect, text

from leadx.platform.config import ConfigError
from leadx.platform.db.models import Base

if TYPE_CHECKING:
    from alembic.config import Config
    from alembic.script import ScriptDirectory

MIGRATIONS = Path(__file__).parent / "migrations"
# The schema `create_all` made before the schema had revisions: what an unversioned database is adopted at.
FIRST_REVISION = "0001"
UPGRADE_COMMAND = "leadx db upgrade"
VERSION_TABLE = "alembic_version"
# The key of the PostgreSQL advisory lock held while the schema changes: any fixed number will do.
_LOCK_KEY = 7_250_310_420_001


class SchemaNotCurrent(ConfigError):
    """The database is not at the revision this code was built for; the message says why and what
    to run. A ConfigError: like a missing setting, it is the environment that must change."""


def alembic_config(connection: Connection | None = None) -> Config:
    """Alembic's configuration, without an alembic.ini; migrations/env.py runs the revisions on
    `connection`."""
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    # New revision files are named like the first: v0002_what_changed.py.
    config.set_main_option("file_template", "v%%(rev)s_%%(slug)s")
    config.attributes["connection"] = connection
    return config


@cache
def scripts() -> ScriptDirectory:
    from alembic.script import ScriptDirectory

    return ScriptDirectory.from_config(alembic_config())


def known_revisions() -> set[str]:
    """Every revision this code has a file for: v<revision>_<slug>.py (alembic_config's
    file_template), read from the names without importing alembic."""
    return {path.name[1:].split("_", 1)[0] for path in (MIGRATIONS / "versions").glob("v*_*.py")}


def head_revision() -> str:
    """The revision this code was built for: the highest number, as revisions are numbered in
    order, each revising the one before (`new_revision` numbers the next one so)."""
    known = known_revisions()
    assert known, f"no revisions under {MIGRATIONS}"
    return max(known, key=int)


@dataclass(frozen=True)
class SchemaState:
    revision: str | None  # from alembic_version; None when the database has none
    tables: frozenset[str]  # the tables of models.py the database has

    @property
    def empty(self) -> bool:
        return self.revision is None and not self.tables


def schema_state(connection: Connection) -> SchemaState:
    present = set(inspect(connection).get_table_names())
    revision = None
    if VERSION_TABLE in present:
        # Read directly, not through a MigrationContext, which logs its set-up at every service start.
        revisions = connection.execute(text(f"select version_num from {VERSION_TABLE}")).scalars().all()
        revision = "+".join(sorted(revisions)) or None
    return SchemaState(revision, frozenset(present & set(Base.metadata.tables)))


def problem(state: SchemaState) -> str | None:
    """What is wrong with a database in `state` for this code, and what to run; None if nothing."""
    head = head_revision()
    if state.revision == head:
        return None
    if state.revision is None:
        if state.tables:
            return ("the database has leadx tables but no schema revision (made before the schema had "
                    f"revisions): run `{UPGRADE_COMMAND}` to adopt and upgrade it")
        return f"the database has no leadx schema: run `{UPGRADE_COMMAND}` to create it"
    if state.revision in known_revisions():
        return (f"the database schema is at revision {state.revision} and this leadx needs {head}: "
                f"run `{UPGRADE_COMMAND}`")
    return (f"the database schema is at revision {state.revision}, which this leadx does not know (its "
            f"newest is {head}): a newer leadx upgraded it; run that version")


def check_schema(engine: Engine) -> None:
    """Raise SchemaNotCurrent unless the database is at the head revision."""
    with engine.connect() as connection:
        found = problem(schema_state(connection))
    if found:
        raise SchemaNotCurrent(found)


def exit_unless_current(engine: Engine, service: str) -> None:
    """A service's start: end the process with one line saying what to run when the database is
    not at the head revision."""
    try:
        check_schema(engine)
    except SchemaNotCurrent as exc:
        raise SystemExit(f"{service}: {exc}") from None


@dataclass(frozen=True)
class Upgraded:
    before: str | None
    after: str
    adopted: bool  # an unversioned database was stamped at the first revision first


def upgrade(engine: Engine, revision: str = "head") -> Upgraded:
    """Bring the database to `revision`: create the schema on an empty one, adopt one `create_all`
    made before revisions existed, apply the revisions it lacks. A database at a revision this code
    does not know is refused (SchemaNotCurrent), and so is an unversioned one whose tables are not
    the first revision's."""
    from alembic import command
    from alembic.util import CommandError

    with engine.begin() as connection:
        _lock(connection)
        state = schema_state(connection)
        adopted = False
        if state.revision is None and state.tables:
            _check_adoptable(connection)
            command.stamp(alembic_config(connection), FIRST_REVISION)
            adopted = True
        elif state.revision is not None and state.revision not in known_revisions():
            raise SchemaNotCurrent(problem(state) or state.revision)
        try:
            command.upgrade(alembic_config(connection), revision)
        except CommandError as exc:  # a revision that does not exist, or one behind the database's
            raise SchemaNotCurrent(f"cannot upgrade to revision {revision}: {exc}") from None
        after = schema_state(connection).revision
    assert after is not None
    return Upgraded(state.revision, after, adopted)


def create_fresh(engine: Engine) -> None:
    """This code's schema on a database without one, made with `create_all` and stamped at the head
    revision. A database already at the head is left as it is; any other is refused
    (SchemaNotCurrent): only `upgrade` changes an existing schema."""
    from alembic.migration import MigrationContext

    with engine.begin() as connection:
        _lock(connection)
        state = schema_state(connection)
        if state.empty:
            Base.metadata.create_all(connection)
            MigrationContext.configure(connection).stamp(scripts(), "head")
            return
    found = problem(state)
    if found:
        raise SchemaNotCurrent(found)


def current_revision(engine: Engine) -> str | None:
    with engine.connect() as connection:
        return schema_state(connection).revision


def new_revision(message: str) -> Path:
    """Write the next revision file (v0002_..., after the head) from what models.py has and the newest
    revision lacks, found by alembic's autogenerate against a scratch SQLite database at the head.
    A start to read and correct, not a finished revision: autogenerate reads a renamed column as one
    dropped and one added, and a new NOT NULL column needs a server default for the rows already there."""
    from alembic import command

    number = f"{int(head_revision()) + 1:04d}"
    scratch = create_engine("sqlite://")
    with scratch.begin() as connection:
        command.upgrade(alembic_config(connection), "head")
        written = command.revision(alembic_config(connection), message=message, autogenerate=True, rev_id=number)
    scratch.dispose()
    scripts.cache_clear()
    assert written is not None and not isinstance(written, list)
    return Path(written.path)


def _lock(connection: Connection) -> None:
    """Hold the schema lock until `connection`'s transaction ends (see the module's docstring)."""
    if connection.dialect.name == "postgresql":
        connection.execute(text("select pg_advisory_xact_lock(:key)"), {"key": _LOCK_KEY})
    elif connection.dialect.name == "sqlite":
        connection.exec_driver_sql("BEGIN IMMEDIATE")


@cache
def first_revision_columns() -> dict[str, frozenset[str]]:
    """Each table of the first revision and its columns, read from that revision applied to an
    in-memory SQLite: the revision file is the one description of those databases."""
    from alembic import command

    scratch = create_engine("sqlite://")
    with scratch.begin() as connection:
        command.upgrade(alembic_config(connection), FIRST_REVISION)
        inspector = inspect(connection)
        found = {table: frozenset(column["name"] for column in inspector.get_columns(table))
                 for table in inspector.get_table_names() if table != VERSION_TABLE}
    scratch.dispose()
    return found


def _check_adoptable(connection: Connection) -> None:
    inspector = inspect(connection)
    present = set(inspector.get_table_names())
    missing = []
    for table, columns in sorted(first_revision_columns().items()):
        if table not in present:
            missing.append(table)
            continue
        have = {column["name"] for column in inspector.get_columns(table)}
        missing.extend(f"{table}.{column}" for column in sorted(columns - have))
    if missing:
        raise SchemaNotCurrent(
            f"the database has no schema revision and lacks what revision {FIRST_REVISION} has ("
            f"{', '.join(missing[:10])}{' and more' if len(missing) > 10 else ''}): it was made by an older "
            f"leadx; add those by hand, then run `{UPGRADE_COMMAND}`")
