"""Engine construction shared by every process that touches SQL."""

from __future__ import annotations

import os
import sqlite3
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.exc import InvalidatePoolError
from sqlalchemy.orm import Session, sessionmaker

from leadx.platform.db.schema import create_fresh
from leadx.platform.metrics import SQL_QUERY_SECONDS, sql_operation


# Connections kept open: one per thread of asyncio's default executor, where the services run their
# SQL (asyncio.to_thread). With fewer, the threads' connections beyond the pool were closed as each
# query ended and opened again for the next (a new PostgreSQL backend each time), which the portal
# bench caught in the ledger at 6 threads and 5 connections.
POOL_SIZE = min(32, (os.cpu_count() or 1) + 4)
# A PostgreSQL connection that sat in the pool this long is pinged before it is used (_ping_when_idle).
PING_AFTER_IDLE_S = 1.0


def normalise_url(url: str) -> str:
    """Accept the usual `postgresql://` spelling and use the psycopg 3 driver for it."""
    for prefix in ("postgresql://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix):]
    return url


def make_engine(url: str) -> Engine:
    """An engine whose errors and SQL logs never show a statement's parameters: they are the
    consumers' data (names, SSNs, the bodies posted to buyers), and an error is logged wherever it
    is caught. The statement itself, with its placeholders, is still shown."""
    url = normalise_url(url)
    if url.startswith("sqlite"):
        engine = create_engine(url, connect_args={"timeout": 30}, hide_parameters=True)
        _time_statements(engine)

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_connection, _record) -> None:
            # WAL lets the intake read while the ledger writes from another process.
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA busy_timeout=30000")
            _use_wal(cursor)
            cursor.execute("PRAGMA synchronous=NORMAL")
            cursor.close()

        return engine
    # Last in, first out: under a light load the same few connections serve, and stay fresh, rather
    # than each in turn sitting idle long enough to be pinged.
    engine = create_engine(url, pool_size=POOL_SIZE, max_overflow=5, pool_use_lifo=True, hide_parameters=True)
    _ping_when_idle(engine, PING_AFTER_IDLE_S)
    _time_statements(engine)
    return engine


def _ping_when_idle(engine: Engine, idle_s: float) -> None:
    """SQLAlchemy's pool_pre_ping, for connections that sat in the pool `idle_s` or more.

    A connection the server closed (a restart, an idle timeout, a proxy) is found out by a ping as
    it leaves the pool, and the pool is renewed: every connection opened before is replaced at its
    next use, before any statement is sent on it. pool_pre_ping pings at every checkout: a round
    trip more per transaction, which doubles the cost of an autocommit statement (statement_engine).
    A connection used less than `idle_s` ago is not pinged, so a statement on it after a server
    restart within that time fails (as one running at the restart does), and that failure renews
    the whole pool just as a failed ping does (docs/reliability.md)."""

    @event.listens_for(engine, "checkin")
    def _returned(_dbapi_connection, record) -> None:
        record.info["leadx_idle_since"] = time.monotonic()

    @event.listens_for(engine, "checkout")
    def _taken(dbapi_connection, record, _proxy) -> None:
        since = record.info.pop("leadx_idle_since", None)
        if since is None or time.monotonic() - since < idle_s:
            return  # a new connection, or one used a moment ago
        try:
            engine.dialect.do_ping(dbapi_connection)
        except engine.dialect.loaded_dbapi.Error as error:
            if not engine.dialect.is_disconnect(error, dbapi_connection, None):
                raise
            # As pool_pre_ping: the pool drops every connection opened before now, this one first,
            # and checks out a new one.
            raise InvalidatePoolError(f"connection lost while idle in the pool: {error}") from error


def _time_statements(engine: Engine) -> None:
    """Each statement into `leadx_sql_query_duration_seconds`, by its operation (select, insert...)."""

    @event.listens_for(engine, "before_cursor_execute")
    def _started(connection, _cursor, _statement, _parameters, _context, _executemany) -> None:
        connection.info.setdefault("leadx_started", []).append(time.perf_counter())

    @event.listens_for(engine, "after_cursor_execute")
    def _finished(connection, _cursor, statement, _parameters, _context, _executemany) -> None:
        started = connection.info["leadx_started"].pop()
        SQL_QUERY_SECONDS.labels(sql_operation(statement)).observe(time.perf_counter() - started)

    @event.listens_for(engine, "handle_error")
    def _failed(context) -> None:  # a failed statement has no after_cursor_execute: drop its start
        started = context.connection.info.get("leadx_started") if context.connection is not None else None
        if started:
            started.pop()


def _use_wal(cursor: sqlite3.Cursor, wait_s: float = 30.0) -> None:
    """Switch the database to WAL once. The switch needs the database to itself, and SQLite answers
    "database is locked" at once instead of waiting (the busy timeout does not cover it), so
    connections opened together on a new file try again until one of them has switched it."""
    deadline = time.monotonic() + wait_s
    while True:
        try:
            if cursor.execute("PRAGMA journal_mode").fetchone()[0] != "wal":
                cursor.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() > deadline:
                raise
            time.sleep(0.01)


def create_schema(engine: Engine) -> None:
    """This code's schema on a new database (create_all, stamped at the head revision), for the
    tests, the benches and the local stack; a database already at the head is left as it is, and
    any other is refused with the command to run. Several processes may call it at once: the first
    creates, the others wait for it and find the schema there (leadx.platform.db.schema)."""
    create_fresh(engine)


def session_factory(engine: Engine) -> sessionmaker[Session]:
    return sessionmaker(engine, expire_on_commit=False)


def statement_engine(engine: Engine) -> Engine:
    """The same pool, in which every statement is its own transaction (autocommit): it is sent
    alone, without the BEGIN before it and the COMMIT or ROLLBACK after it, which on PostgreSQL are
    a round trip each (a one-row read or write took three). For reads (read_session_factory) and
    for writes that are each one statement, complete in itself (delivery's post attempts, run on
    its Connections without a Session's machinery): nothing written through it may rely on a
    transaction around several statements. `commit()` still works on it, and sends nothing."""
    return engine.execution_options(isolation_level="AUTOCOMMIT")


def read_session_factory(engine: Engine) -> sessionmaker[Session]:
    """Sessions for reads only (the dashboard's queries, a page's session check), on the statement
    engine (above). Each statement sees what was committed when it began, as in PostgreSQL's
    default READ COMMITTED transaction, so a read of several statements sees no less consistent
    figures than before. Write with session_factory. A read whose statements must agree with each
    other takes `one_snapshot`."""
    return sessionmaker(statement_engine(engine), expire_on_commit=False)


@contextmanager
def one_snapshot(session: Session) -> Iterator[None]:
    """The statements a read session (read_session_factory) runs in this block all see the database
    as it was at the first of them: a lead's row and its sales read in two statements could
    otherwise straddle the ledger's commit of the sale, and show the sale beside a lead still in
    auction. PostgreSQL: a REPEATABLE READ, READ ONLY transaction; SQLite: a deferred transaction,
    whose snapshot is taken at its first read (WAL). Two round trips more than autocommit's reads.
    Only for read sessions: in a session_factory transaction the BEGIN would come too late."""
    connection = session.connection()
    if connection.get_execution_options().get("isolation_level") != "AUTOCOMMIT":
        raise TypeError("one_snapshot takes a read session (read_session_factory), not a transaction")
    postgres = connection.dialect.name == "postgresql"
    connection.exec_driver_sql("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY" if postgres else "BEGIN")
    try:
        yield
    except BaseException:
        # Ended here rather than left to the pool's reset; a connection that died in the block
        # cannot be rolled back, and the error that killed it is the one to raise.
        if not connection.invalidated:
            with suppress(Exception):
                connection.exec_driver_sql("ROLLBACK")
        raise
    # COMMIT, not ROLLBACK, though nothing was written: psycopg drops its prepared statements on
    # every ROLLBACK it sees, which would cost the dashboard's other queries their preparation.
    connection.exec_driver_sql("COMMIT")
