"""Statements made while one is in flight, sent together (leadx.platform.db.gathered_statements):
one round trip and one transaction for them, and still each caller's own result, error and
cancellation."""

from __future__ import annotations

import asyncio

import psycopg
import pytest
from sqlalchemy import select

from leadx.platform.db import engine as engines
from leadx.platform.db.async_postgres import AsyncPostgres, ConnectionLost, PgStatement
from leadx.platform.db.gathered_statements import GatheredStatements
from leadx.platform.db.models import ProcessedEvent

# A statement that holds the connection a while: what the others are made behind.
SLOW = PgStatement("select pg_backend_pid(), txid_current() from pg_sleep(0.3)")
# Which transaction a statement ran in, and which caller made it.
WHICH = PgStatement("select %(caller)s::int, txid_current()")
INSERT = PgStatement.of(ProcessedEvent.__table__.insert(), ["event_id", "consumer", "processed_at_ms"])
FAILS = PgStatement("select 1 / 0")

pytestmark = [pytest.mark.postgres, pytest.mark.parametrize("database_url", ["postgres"], indirect=True)]


@pytest.fixture
def url(url_with_tables) -> str:
    return url_with_tables


def event_ids(url: str) -> set[str]:
    engine = engines.make_engine(url)
    try:
        with engine.connect() as connection:
            return set(connection.execute(select(ProcessedEvent.event_id)).scalars())
    finally:
        engine.dispose()


def row(event_id: str) -> dict:
    return {"event_id": event_id, "consumer": "c", "processed_at_ms": 1}


async def behind_a_slow_one(statements: GatheredStatements, *calls) -> tuple[tuple, list]:
    """The slow statement, then `calls` (coroutine functions) made while it is in flight."""
    slow = asyncio.create_task(statements.fetch_one(SLOW, {}))
    await asyncio.sleep(0.05)  # the slow one is on its way
    followers = [asyncio.create_task(call()) for call in calls]
    first = await slow
    return first, await asyncio.gather(*followers, return_exceptions=True)


def test_those_made_while_one_is_in_flight_go_together_each_with_its_own_result(url):
    """The first goes at once, alone; the five made behind it share one transaction, and each
    caller gets its own row back."""
    async def run() -> tuple[tuple, list]:
        statements = GatheredStatements(AsyncPostgres(url))
        try:
            return await behind_a_slow_one(
                statements, *(lambda n=n: statements.fetch_one(WHICH, {"caller": n}) for n in range(5)))
        finally:
            await statements.close()

    (_, first_transaction), followers = asyncio.run(run())
    assert [caller for caller, _ in followers] == [0, 1, 2, 3, 4]
    transactions = {transaction for _, transaction in followers}
    assert len(transactions) == 1 and first_transaction not in transactions


def test_a_statement_made_alone_goes_at_once_in_its_own_transaction(url):
    async def run() -> list:
        statements = GatheredStatements(AsyncPostgres(url))
        try:
            return [await statements.fetch_one(WHICH, {"caller": n}) for n in range(3)]
        finally:
            await statements.close()

    results = asyncio.run(run())
    assert [caller for caller, _ in results] == [0, 1, 2]
    assert len({transaction for _, transaction in results}) == 3


def test_at_most_max_batch_go_together(url):
    async def run() -> list:
        statements = GatheredStatements(AsyncPostgres(url), max_batch=2)
        try:
            _, followers = await behind_a_slow_one(
                statements, *(lambda n=n: statements.fetch_one(WHICH, {"caller": n}) for n in range(5)))
            return followers
        finally:
            await statements.close()

    followers = asyncio.run(run())
    by_transaction: dict[int, list[int]] = {}
    for caller, transaction in followers:
        by_transaction.setdefault(transaction, []).append(caller)
    assert sorted(by_transaction.values()) == [[0, 1], [2, 3], [4]]


def test_one_statement_s_error_is_its_caller_s_only(url):
    """The batch fails in SQL as a whole; its statements are made again one by one, so the writes
    beside the failing statement are committed and their callers never see its error."""
    async def run() -> list:
        statements = GatheredStatements(AsyncPostgres(url))
        try:
            _, followers = await behind_a_slow_one(
                statements, lambda: statements.execute(INSERT, row("before")), lambda: statements.fetch_one(FAILS, {}),
                lambda: statements.execute(INSERT, row("after")))
            return followers
        finally:
            await statements.close()

    before, failed, after = asyncio.run(run())
    assert before is None and after is None
    assert isinstance(failed, psycopg.errors.DivisionByZero)
    assert event_ids(url) == {"before", "after"}


def test_a_caller_gone_before_its_batch_goes_has_its_statement_left_out(url):
    async def run() -> None:
        statements = GatheredStatements(AsyncPostgres(url))
        try:
            slow = asyncio.create_task(statements.fetch_one(SLOW, {}))
            await asyncio.sleep(0.05)
            gone = asyncio.create_task(statements.execute(INSERT, row("gone")))
            kept = asyncio.create_task(statements.execute(INSERT, row("kept")))
            await asyncio.sleep(0.05)
            gone.cancel()
            await asyncio.gather(slow, kept)
            with pytest.raises(asyncio.CancelledError):
                await gone
        finally:
            await statements.close()

    asyncio.run(run())
    assert event_ids(url) == {"kept"}


def test_the_first_caller_cancelled_does_not_cut_the_others_short(url):
    """The statement sent alone goes in its caller's task; cancelled (a timeout), those made
    behind it still go, and the statements after them."""
    async def run() -> tuple[list, tuple | None]:
        statements = GatheredStatements(AsyncPostgres(url))
        try:
            first = asyncio.create_task(asyncio.wait_for(statements.fetch_one(SLOW, {}), 0.1))
            await asyncio.sleep(0.05)
            followers = await asyncio.gather(statements.execute(INSERT, row("one")),
                                             statements.execute(INSERT, row("two")))
            with pytest.raises(TimeoutError):
                await first
            return followers, await statements.fetch_one(WHICH, {"caller": 9})
        finally:
            await statements.close()

    followers, later = asyncio.run(run())
    assert followers == [None, None] and later is not None and later[0] == 9
    assert event_ids(url) == {"one", "two"}


def test_a_connection_lost_under_a_batch_fails_each_of_its_callers_and_the_next_statements_go(url, terminate):
    """Whether a write of a batch whose connection was lost took effect is not known: each of its
    callers gets ConnectionLost, as it would alone, and the pool is renewed for the next."""
    held = PgStatement("select pg_backend_pid() from pg_sleep(0.4)")

    async def run() -> tuple[list, tuple | None]:
        statements = GatheredStatements(AsyncPostgres(url))
        try:
            first = asyncio.create_task(statements.fetch_one(PgStatement("select pg_sleep(0.1)"), {}))
            await asyncio.sleep(0.03)
            batch = [asyncio.create_task(statements.fetch_one(held, {})) for _ in range(2)]
            await first
            await asyncio.sleep(0.1)  # the batch is in flight
            terminate(await _busy_backend(url))
            outcomes = await asyncio.gather(*batch, return_exceptions=True)
            return outcomes, await statements.fetch_one(WHICH, {"caller": 1})
        finally:
            await statements.close()

    outcomes, later = asyncio.run(run())
    assert all(isinstance(outcome, ConnectionLost) for outcome in outcomes)
    assert later is not None and later[0] == 1


async def _busy_backend(url: str) -> int:
    """The backend running the batch's sleeps (seen from a connection of its own)."""
    postgres = AsyncPostgres(url)
    try:
        found = await postgres.fetch_one(PgStatement(
            "select pid from pg_stat_activity where query like '%%pg_sleep(0.4)%%' and pid <> pg_backend_pid()"), {})
        assert found is not None
        return found[0]
    finally:
        await postgres.close()


def test_it_serves_a_second_event_loop(url):
    statements = GatheredStatements(AsyncPostgres(url))

    async def once(caller: int) -> tuple | None:
        return await statements.fetch_one(WHICH, {"caller": caller})

    first, second = asyncio.run(once(1)), asyncio.run(once(2))
    asyncio.run(statements.close())
    assert first is not None and second is not None and (first[0], second[0]) == (1, 2)
