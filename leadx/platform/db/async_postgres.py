"""PostgreSQL statements run from the event loop, on a few psycopg async connections: no thread, no
SQLAlchemy at run time.

Delivery writes its dispute record in three statements a sold lead (services/delivery/attempts.py),
each its own transaction. Through SQLAlchemy on a thread (asyncio.to_thread) a sold lead's three
cost 1.15 ms of delivery's CPU, most of it the thread's handoff (about 0.2 ms a statement) and
SQLAlchemy's own work; here 0.51 ms (bench/attempts.py, 2026-12-07). The statements are still written with
SQLAlchemy, and compiled once for PostgreSQL (`PgStatement`).

What the engine's pool does (leadx.platform.db.engine), this one does too:
  - each statement is its own transaction (autocommit, as statement_engine): one round trip
    (`run_together` sends several in one round trip and one transaction: delivery's, gathered
    by leadx.platform.db.gathered_statements);
  - it connects with the engine's arguments (the dialect's own reading of the URL);
  - a connection that sat idle PING_AFTER_IDLE_S or more is pinged as it is taken, and one the
    server closed is replaced before a statement is sent on it;
  - a statement that meets a closed connection (the server restarted since its last use) raises
    `ConnectionLost`, and every idle connection is closed with it: they were opened before too;
  - last in, first out: under a light load the same few connections serve, and stay fresh; at
    most `size` (POOL_SIZE) are open, and a statement waits up to POOL_TIMEOUT_S for one
    (TimeoutError), as the engine's pool_timeout;
  - each statement's time goes to `leadx_sql_query_duration_seconds`;
  - errors name no parameters (psycopg's never do).
Unlike the engine's pool, this one opens none beyond its size for a burst, and closes none for being
idle: a sale's statements take a millisecond or two, so waiting for one of the open connections is
quicker than a new one, which costs PostgreSQL a backend (a fork and its start). With six kept and
five more opened for bursts, delivery opened 28 connections a second at 100 leads/s (2026-12-07).
A statement cancelled midway (or its connection's ping) closes its connection: its answer may still
come. A connection belongs to the event loop it was opened on: when the pool is used from another
one (a test's next asyncio.run), the connections of the old are closed and new ones opened.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any, TypeVar, cast

import psycopg
from sqlalchemy import URL, make_url
from sqlalchemy.dialects.postgresql.psycopg import PGDialect_psycopg
from sqlalchemy.sql import ClauseElement
from sqlalchemy.sql.compiler import SQLCompiler

from leadx.platform.db.engine import PING_AFTER_IDLE_S, POOL_SIZE, normalise_url
from leadx.platform.metrics import SQL_QUERY_SECONDS, sql_operation

_DIALECT = PGDialect_psycopg()
T = TypeVar("T")
POOL_TIMEOUT_S = 30.0  # SQLAlchemy's pool_timeout: how long a statement waits for a connection


class ConnectionLost(Exception):
    """The statement met a connection the server had closed (a restart, a proxy's idle timeout).
    Whether it took effect is unknown for a write; the pool has been renewed, so it may be sent again
    where that is safe."""


@dataclass(frozen=True)
class PgStatement:
    """A SQLAlchemy statement compiled once for psycopg: its text, and the values of the literals
    SQLAlchemy made parameters of (`count(*) + 1`'s 1). `column_keys`: the columns an INSERT or
    UPDATE is given at run time."""

    text: str
    literals: Mapping[str, Any] = field(default_factory=dict)

    @classmethod
    def of(cls, statement: ClauseElement, column_keys: list[str] | None = None) -> PgStatement:
        compiled = cast(SQLCompiler, statement.compile(dialect=_DIALECT, column_keys=column_keys))
        if getattr(compiled, "insert_prefetch", None) or getattr(compiled, "update_prefetch", None):
            # A column default SQLAlchemy computes in Python at each execution: not done here.
            raise ValueError("a statement with Python-side column defaults cannot be compiled once; give its columns")
        given = set(column_keys or ())
        literals = {name: value for name, value in compiled.params.items()
                    if name not in given and not compiled.binds[name].required}
        return cls(compiled.string, literals)

    def parameters(self, values: Mapping[str, Any]) -> dict[str, Any]:
        return {**self.literals, **values}

    @cached_property
    def operation(self) -> str:
        """Its label in leadx_sql_query_duration_seconds, read from its text once."""
        return sql_operation(self.text)


class AsyncPostgres:
    def __init__(self, url: str | URL, size: int = POOL_SIZE, ping_after_idle_s: float = PING_AFTER_IDLE_S) -> None:
        """`url`: an SQLAlchemy URL of PostgreSQL (postgresql+psycopg://... as the engine has it)."""
        self.connect_args = _connect_args(url)
        self.size, self.ping_after_idle_s = size, ping_after_idle_s
        self._idle: list[tuple[psycopg.AsyncConnection, float]] = []  # the most recently returned last
        self._loop: asyncio.AbstractEventLoop | None = None
        self._slots: asyncio.Semaphore | None = None
        self._closed = False

    async def fetch_one(self, statement: PgStatement, values: Mapping[str, Any]) -> tuple | None:
        return await self.run(statement, values, "one")

    async def fetch_all(self, statement: PgStatement, values: Mapping[str, Any]) -> list[tuple]:
        return await self.run(statement, values, "all")

    async def execute(self, statement: PgStatement, values: Mapping[str, Any]) -> None:
        await self.run(statement, values, "none")

    async def close(self) -> None:
        """Close the idle connections, and each one in use as it is given back; no statement after."""
        self._closed = True
        await self._renew()

    async def run(self, statement: PgStatement, values: Mapping[str, Any], fetch: str) -> Any:
        """One statement, its own transaction: its rows ("one", "all"), or None ("none")."""
        async def one(connection: psycopg.AsyncConnection) -> Any:
            started = time.perf_counter()
            cursor = await connection.execute(statement.text, statement.parameters(values))
            rows = await _fetched(cursor, fetch)
            SQL_QUERY_SECONDS.labels(statement.operation).observe(time.perf_counter() - started)
            return rows

        return await self._on_a_connection(one)

    async def run_together(self, calls: Sequence[tuple[PgStatement, Mapping[str, Any], str]]) -> list[Any]:
        """Several statements in one transaction and one round trip (psycopg's pipeline mode): each
        call's rows ("one", "all" or "none" for `fetch`), in order. All or none take effect: the
        first error rolls every one back and is raised. Each statement's time in
        leadx_sql_query_duration_seconds is the whole round trip's, which it waited.

        No BEGIN and COMMIT: on a connection in autocommit, the statements up to the pipeline's
        one Sync are one implicit transaction (PostgreSQL's extended query protocol). An explicit
        transaction cost psycopg 200 to 300 µs of CPU more a batch, more than three statements
        save by sharing their round trip."""
        async def together(connection: psycopg.AsyncConnection) -> list[Any]:
            started = time.perf_counter()
            async with connection.pipeline():
                cursors = [await connection.execute(statement.text, statement.parameters(values))
                           for statement, values, _ in calls]
            results = [await _fetched(cursor, fetch) for cursor, (_, _, fetch) in zip(cursors, calls, strict=True)]
            elapsed = time.perf_counter() - started
            for statement, _, _ in calls:
                SQL_QUERY_SECONDS.labels(statement.operation).observe(elapsed)
            return results

        return await self._on_a_connection(together)

    async def _on_a_connection(self, work: Callable[[psycopg.AsyncConnection], Awaitable[T]]) -> T:
        """`work` on a connection of the pool: an error of its statements leaves the connection in
        the pool; one the server closed renews the pool and raises ConnectionLost."""
        if self._closed:
            raise RuntimeError("the PostgreSQL connections are closed")
        slots = self._on_this_loop()
        if slots.locked():  # every connection busy: wait for one, so long
            async with asyncio.timeout(POOL_TIMEOUT_S):
                await slots.acquire()
        else:  # the usual case, without a timer made and cancelled for each statement
            await slots.acquire()
        try:
            connection = await self._take()
            try:
                done = await work(connection)
            except psycopg.Error as error:
                if connection.closed:
                    await self._renew()
                    raise ConnectionLost(f"the connection to PostgreSQL was closed: {error}") from error
                await self._give_back(connection)
                raise
            except BaseException:  # cancelled mid-statement: its answer may still be on the way
                await connection.close()
                raise
            await self._give_back(connection)
            return done
        finally:
            slots.release()

    def _on_this_loop(self) -> asyncio.Semaphore:
        loop = asyncio.get_running_loop()
        if loop is not self._loop or self._slots is None:
            for connection, _ in self._idle:  # opened on a loop that is gone: closed without it
                connection.pgconn.finish()
            self._idle, self._loop, self._slots = [], loop, asyncio.Semaphore(self.size)
        return self._slots

    async def _take(self) -> psycopg.AsyncConnection:
        while self._idle:
            connection, since = self._idle.pop()
            if time.monotonic() - since < self.ping_after_idle_s:
                return connection
            try:
                await connection.execute("SELECT 1")
                return connection
            except psycopg.Error:
                # Closed while idle: so were the others (a restart); new ones are opened.
                await connection.close()
                await self._renew()
            except BaseException:
                await connection.close()
                raise
        return await psycopg.AsyncConnection.connect(autocommit=True, **self.connect_args)

    async def _give_back(self, connection: psycopg.AsyncConnection) -> None:
        if self._closed:
            await connection.close()
        else:
            self._idle.append((connection, time.monotonic()))

    async def _renew(self) -> None:
        idle, self._idle = self._idle, []
        for connection, _ in idle:
            await connection.close()


async def _fetched(cursor: psycopg.AsyncCursor, fetch: str) -> Any:
    if fetch == "one":
        return await cursor.fetchone()
    return await cursor.fetchall() if fetch == "all" else None


def _connect_args(url: str | URL) -> dict[str, Any]:
    """psycopg's connection arguments for an SQLAlchemy URL of PostgreSQL, as the engine's dialect
    reads it (host, port, database, user, password and the URL's query: sslmode, options...)."""
    parsed = make_url(normalise_url(url) if isinstance(url, str) else url)
    if parsed.get_backend_name() != "postgresql":
        raise ValueError(f"not a PostgreSQL URL: {parsed.drivername}://...")
    cargs, cparams = _DIALECT.create_connect_args(parsed)
    return {"conninfo": cargs[0] if cargs else "", **cparams}
