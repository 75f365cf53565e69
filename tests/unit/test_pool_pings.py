"""PostgreSQL connections are pinged as they leave the pool only after sitting idle in it
(leadx.platform.db.engine._ping_when_idle): one the server closed while idle is replaced before a
statement is sent on it, and one used a moment ago costs no round trip."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterator

import pytest
from sqlalchemy import Engine, select
from sqlalchemy.exc import DBAPIError

from leadx.auction.selection.market import BuyerAccount
from leadx.contracts.events.v1 import events_pb2 as ev
from leadx.delivery.post_adaptation import PreparedPost
from leadx.platform.db import engine as engines
from leadx.platform.db.async_postgres import PgStatement
from leadx.platform.db.models import PostAttempt
from services.delivery.attempts import AttemptLog
from services.delivery.buyer_http import PostResult
from tests.conftest import backend_pid

NEVER_S = 3600.0  # an idle time no test reaches: its connections are never pinged

pytestmark = pytest.mark.postgres


@pytest.fixture
def engine_pinging_after(postgres_url, monkeypatch) -> Iterator[Callable[[float], Engine]]:
    """Engines whose connections are pinged after the given idle time (the services' is PING_AFTER_IDLE_S)."""
    made: list[Engine] = []

    def make(idle_s: float) -> Engine:
        monkeypatch.setattr(engines, "PING_AFTER_IDLE_S", idle_s)
        made.append(engines.make_engine(postgres_url))
        return made[-1]

    yield make
    for engine in made:
        engine.dispose()


def backend(engine) -> int:
    with engine.connect() as connection:
        return backend_pid(connection)


def counting_pings(engine, monkeypatch) -> list[int]:
    pings: list[int] = []
    ping = engine.dialect.do_ping

    def counted(dbapi_connection) -> bool:
        pings.append(1)
        return ping(dbapi_connection)

    monkeypatch.setattr(engine.dialect, "do_ping", counted)
    return pings


def test_a_connection_used_a_moment_ago_is_not_pinged_and_an_idle_one_is(engine_pinging_after, monkeypatch):
    idle_s = 1.0
    engine = engine_pinging_after(idle_s)
    pings = counting_pings(engine, monkeypatch)
    started = time.monotonic()
    first = backend(engine)  # a new connection: not pinged
    again = [backend(engine) for _ in range(3)]
    if time.monotonic() - started < idle_s:  # a stalled machine could have let it idle that long
        assert again == [first] * 3
        assert pings == []
    time.sleep(idle_s * 1.5)
    pinged = len(pings)
    assert backend(engine) == first
    assert len(pings) == pinged + 1


def test_a_connection_the_server_closed_while_idle_is_replaced_before_a_statement_is_sent(engine_pinging_after,
                                                                                          terminate):
    engine = engine_pinging_after(0.2)
    first = backend(engine)
    terminate(first)
    time.sleep(0.3)
    second = backend(engine)  # no error: the ping found the connection gone and the pool opened another
    assert second != first
    assert engine.pool.checkedin() == 1


def test_one_closed_a_moment_after_its_use_fails_and_the_whole_pool_is_renewed(engine_pinging_after, terminate):
    """The cost of not pinging every checkout: a statement on a connection the server closed within
    the idle time fails (as with pinging, a statement fails when the server goes away under it),
    and the failure renews every connection the pool holds, so the next statement goes through."""
    engine = engine_pinging_after(NEVER_S)
    with engine.connect() as one, engine.connect() as other:  # two connections in the pool
        pids = {backend_pid(one), backend_pid(other)}
    for pid in pids:
        terminate(pid)
    with pytest.raises(DBAPIError) as failed:
        backend(engine)
    assert failed.value.connection_invalidated
    with engine.connect() as one, engine.connect() as other:  # both of the pool's connections are new
        renewed = {backend_pid(one), backend_pid(other)}
    assert len(renewed) == 2 and not renewed & pids


@pytest.mark.parametrize("database_url", ["postgres"], indirect=True)  # a schema of its own
@pytest.mark.parametrize("on_the_loop", [True, False], ids=["the loop's connections", "the engine on a thread"])
def test_a_post_s_answer_is_recorded_though_the_server_closed_the_connection_during_the_post(
        database_url, monkeypatch, terminate, on_the_loop):
    """The dispute record's row written before a POST is completed with the buyer's answer even when
    PostgreSQL restarted while the buyer answered: the update, which meets the closed connection
    (used a moment ago, so not pinged), is made again on a new one. On PostgreSQL the record is
    written on the event loop's own connections (leadx.platform.db.async_postgres); the engine on a
    thread, as SQLite has it, does the same."""
    monkeypatch.setattr(engines, "PING_AFTER_IDLE_S", NEVER_S)
    engine = engines.make_engine(database_url)
    engines.create_schema(engine)
    engine.pool.dispose()  # one connection from here on: the row's, then the answer's
    log = AttemptLog(engines.statement_engine(engine), on_the_loop=on_the_loop)
    assert (log._postgres is not None) == on_the_loop
    updates: list[int] = []
    update = log._update

    async def counted(row_id: int, done: dict) -> None:
        updates.append(row_id)
        await update(row_id, done)

    log._update = counted  # type: ignore[method-assign]
    closed = ev.AuctionClosed(auction_id="RESTART001", lead=ev.Lead(lead_id="RESTART001"))

    async def post_across_a_restart() -> None:
        row = await log.begin(closed, BuyerAccount("b_1", "Acme", "http://ping", "http://post"),
                              PreparedPost("application/json", b"{}", None))
        if log._postgres is not None:
            pid = await log._postgres.fetch_one(PgStatement("select pg_backend_pid()"), {})
            assert pid is not None
            terminate(pid[0])  # the one connection the row was written on, idle a moment
        else:
            terminate(backend(engine))
        await log.finish(row, PostResult(True, "accepted", 5, status=200, response=b'{"accepted": true}'))
        await log.close()

    try:
        asyncio.run(post_across_a_restart())
        with engines.session_factory(engine)() as session:
            assert session.execute(select(PostAttempt.outcome, PostAttempt.status)
                                   .where(PostAttempt.auction_id == "RESTART001")).one() == ("accepted", 200)
        assert len(updates) == 2  # the first met the closed connection
    finally:
        engine.dispose()
