"""PostgreSQL statements on the event loop's own connections (leadx.platform.db.async_postgres): what
the engine's pool promises (leadx.platform.db.engine), kept without a thread or SQLAlchemy."""

from __future__ import annotations

import asyncio
import time

import pytest
from sqlalchemy import func, select

from leadx.platform.db import async_postgres
from leadx.platform.db import engine as engines
from leadx.platform.db.async_postgres import AsyncPostgres, ConnectionLost, PgStatement, _connect_args
from leadx.platform.db.models import AuctionBid, ProcessedEvent

PID = PgStatement("select pg_backend_pid()")
NEVER_S = 3600.0  # an idle time no test reaches: its connections are never pinged


@pytest.fixture
def url(url_with_tables) -> str:
    return url_with_tables


async def pid_of(postgres: AsyncPostgres) -> int:
    row = await postgres.fetch_one(PID, {})
    assert row is not None
    return row[0]


pytestmark = [pytest.mark.postgres, pytest.mark.parametrize("database_url", ["postgres"], indirect=True)]


def test_a_statement_compiled_once_keeps_its_literals_and_commits_on_its_own(url):
    """Each statement its own transaction: a row written is there for every other connection at
    once. The literal SQLAlchemy made a parameter (count(*) + 1's 1) goes with the statement."""
    insert = PgStatement.of(ProcessedEvent.__table__.insert(), ["event_id", "consumer", "processed_at_ms"])
    count = PgStatement.of(select(func.count() + 1).select_from(ProcessedEvent.__table__))
    assert count.literals and "%(" in count.text

    async def write() -> tuple:
        postgres = AsyncPostgres(url)
        try:
            await postgres.execute(insert, {"event_id": "e1", "consumer": "c", "processed_at_ms": 1})
            return await postgres.fetch_one(count, {})
        finally:
            await postgres.close()

    assert asyncio.run(write()) == (2,)
    engine = engines.make_engine(url)
    try:
        with engine.connect() as connection:
            assert connection.execute(select(ProcessedEvent.event_id)).scalars().all() == ["e1"]
    finally:
        engine.dispose()


def test_the_connection_used_last_serves_next_and_no_more_than_the_size_are_opened(url):
    async def run() -> tuple[set[int], set[int]]:
        postgres = AsyncPostgres(url, size=2)
        try:
            one_by_one = {await pid_of(postgres) for _ in range(5)}
            sleep = PgStatement("select pg_backend_pid() from pg_sleep(0.05)")
            side_by_side = {row[0] for row in await asyncio.gather(*(postgres.fetch_one(sleep, {}) for _ in range(6)))
                            if row is not None}
            return one_by_one, side_by_side
        finally:
            await postgres.close()

    one_by_one, side_by_side = asyncio.run(run())
    assert len(one_by_one) == 1
    assert len(side_by_side) == 2


def test_an_idle_connection_the_server_closed_is_replaced_before_a_statement_is_sent(url, terminate):
    async def run() -> tuple[int, int]:
        postgres = AsyncPostgres(url, ping_after_idle_s=0.05)
        try:
            first = await pid_of(postgres)
            terminate(first)
            await asyncio.sleep(0.1)  # idle long enough to be pinged as it is taken
            return first, await pid_of(postgres)  # no error: the ping found it closed
        finally:
            await postgres.close()

    first, then = asyncio.run(run())
    assert first != then


def test_one_closed_a_moment_after_its_use_fails_once_and_the_pool_is_renewed(url, terminate):
    """Used a moment ago, it is not pinged: the statement meets the closed connection and raises
    ConnectionLost, and the idle connections opened before it are closed with it."""
    async def run() -> tuple[set[int], int, bool]:
        postgres = AsyncPostgres(url, ping_after_idle_s=NEVER_S)
        try:
            sleep = PgStatement("select pg_backend_pid() from pg_sleep(0.05)")
            before = {row[0] for row in await asyncio.gather(*(postgres.fetch_one(sleep, {}) for _ in range(3)))
                      if row is not None}
            for pid in before:
                terminate(pid)
            with pytest.raises(ConnectionLost):
                await pid_of(postgres)
            after = await pid_of(postgres)
            return before, after, postgres._idle == [] or len(postgres._idle) == 1
        finally:
            await postgres.close()

    before, after, renewed = asyncio.run(run())
    assert len(before) == 3 and after not in before and renewed


def test_an_error_of_the_statement_leaves_the_connection_in_use(url):
    async def run() -> tuple[int, int]:
        postgres = AsyncPostgres(url)
        try:
            first = await pid_of(postgres)
            with pytest.raises(Exception, match="division by zero"):
                await postgres.fetch_one(PgStatement("select 1 / 0"), {})
            return first, await pid_of(postgres)
        finally:
            await postgres.close()

    first, then = asyncio.run(run())
    assert first == then


def test_a_statement_cancelled_midway_closes_its_connection(url, terminate):
    """Its answer may still come: the connection is not given to the next statement."""
    async def run() -> tuple[int, int]:
        postgres = AsyncPostgres(url)
        try:
            first = await pid_of(postgres)
            with pytest.raises(TimeoutError):
                await asyncio.wait_for(postgres.execute(PgStatement("select pg_sleep(5)"), {}), 0.2)
            return first, await pid_of(postgres)
        finally:
            await postgres.close()

    started = time.monotonic()
    first, then = asyncio.run(run())
    assert first != then and time.monotonic() - started < 4


def test_it_serves_a_second_event_loop_with_connections_of_its_own(url):
    postgres = AsyncPostgres(url)
    first = asyncio.run(pid_of(postgres))  # that loop ends with the connection idle in the pool
    second = asyncio.run(pid_of(postgres))
    asyncio.run(postgres.close())
    assert first != second


def test_it_connects_with_the_engines_reading_of_the_url(url):
    with pytest.raises(ValueError, match="not a PostgreSQL URL"):
        AsyncPostgres("sqlite:///leadx.db")
    args = _connect_args("postgresql://u:p%40ss@h:5/db?options=-c%20statement_timeout%3D5000&sslmode=require")
    assert args == {"conninfo": "", "host": "h", "port": 5, "dbname": "db", "user": "u", "password": "p@ss",
                    "options": "-c statement_timeout=5000", "sslmode": "require"}


def test_a_statement_with_a_default_computed_at_each_execution_is_refused(url):
    with pytest.raises(ValueError, match="Python-side column defaults"):
        PgStatement.of(AuctionBid.__table__.insert(), ["auction_id", "rank", "buyer_id", "bid_cents", "amount_cents",
                                                       "weight"])  # profile_id's default "" left to SQLAlchemy


def test_its_connections_stay_open_between_bursts_and_a_statement_waits_for_one_only_so_long(url, monkeypatch):
    """A burst opens no connection beyond the size, and closes none after it: a connection is a
    PostgreSQL backend, dearer than the wait for one of the open ones."""
    monkeypatch.setattr(async_postgres, "POOL_TIMEOUT_S", 0.2)

    async def run() -> tuple[set[int], set[int], set[int]]:
        postgres = AsyncPostgres(url, size=3)
        try:
            sleep = PgStatement("select pg_backend_pid() from pg_sleep(0.1)")
            first = {row[0] for row in await asyncio.gather(*(postgres.fetch_one(sleep, {}) for _ in range(6)))
                     if row is not None}
            second = {row[0] for row in await asyncio.gather(*(postgres.fetch_one(sleep, {}) for _ in range(3)))
                      if row is not None}
            long_sleep = PgStatement("select pg_sleep(1)")
            busy = [asyncio.create_task(postgres.execute(long_sleep, {})) for _ in range(3)]
            await asyncio.sleep(0.05)
            with pytest.raises(TimeoutError):
                await pid_of(postgres)  # all three connections busy for longer than the wait
            await asyncio.gather(*busy)
            return first, second, {connection.info.backend_pid for connection, _ in postgres._idle}
        finally:
            await postgres.close()

    first, second, idle = asyncio.run(run())
    assert len(first) == 3  # six statements at once, on three connections
    assert second == first == idle  # the same three, kept open between the bursts


def test_once_closed_it_closes_the_connections_given_back_and_takes_no_more_statements(url):
    async def run() -> None:
        postgres = AsyncPostgres(url)
        running = asyncio.create_task(postgres.fetch_one(PgStatement("select pg_backend_pid() from pg_sleep(0.2)"), {}))
        await asyncio.sleep(0.05)
        await postgres.close()
        assert (await running) is not None  # the statement under way finishes
        assert postgres._idle == []  # and its connection is closed, not kept
        with pytest.raises(RuntimeError, match="closed"):
            await pid_of(postgres)

    asyncio.run(run())
