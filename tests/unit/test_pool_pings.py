"""PostgreSQL connections are pinged as they leave the pool only after sitting idle in it
(leadx.platform.db.engine._ping_when_idle): one the server closed while idle is replaced before a
statement is sent on it, and one used a moment ago costs no round trip."""

from __future__ import annotations

import time

import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from leadx.platform.db import engine as engines

IDLE_S = 0.2  # the test's idle time before a ping (the services' is PING_AFTER_IDLE_S)

pytestmark = pytest.mark.postgres


@pytest.fixture
def engine(postgres_url, monkeypatch):
    monkeypatch.setattr(engines, "PING_AFTER_IDLE_S", IDLE_S)
    made = engines.make_engine(postgres_url)
    made.pool.dispose()
    yield made
    made.dispose()


@pytest.fixture
def admin(postgres_url):
    made = engines.make_engine(postgres_url)
    yield made
    made.dispose()


def backend(engine) -> int:
    with engine.connect() as connection:
        return connection.execute(text("select pg_backend_pid()")).scalar_one()


def terminate(admin, pid: int) -> None:
    with admin.connect() as connection:
        assert connection.execute(text("select pg_terminate_backend(:pid)"), {"pid": pid}).scalar_one()


def counting_pings(engine, monkeypatch) -> list[int]:
    pings: list[int] = []
    ping = engine.dialect.do_ping

    def counted(dbapi_connection) -> bool:
        pings.append(1)
        return ping(dbapi_connection)

    monkeypatch.setattr(engine.dialect, "do_ping", counted)
    return pings


def test_a_connection_used_a_moment_ago_is_not_pinged_and_an_idle_one_is(engine, monkeypatch):
    pings = counting_pings(engine, monkeypatch)
    first = backend(engine)  # a new connection: not pinged
    assert backend(engine) == first and backend(engine) == first
    assert pings == []
    time.sleep(IDLE_S * 1.5)
    assert backend(engine) == first
    assert pings == [1]


def test_a_connection_the_server_closed_while_idle_is_replaced_before_a_statement_is_sent(engine, admin):
    first = backend(engine)
    terminate(admin, first)
    time.sleep(IDLE_S * 1.5)
    second = backend(engine)  # no error: the ping found the connection gone and the pool opened another
    assert second != first
    assert engine.pool.checkedin() == 1


def test_one_closed_a_moment_after_its_use_fails_once_and_the_pool_is_renewed(engine, admin):
    """The cost of not pinging every checkout: a statement on a connection the server closed within
    the idle time fails (as with pinging, a statement fails when the server goes away under it),
    and the failure renews every connection the pool holds, so the next statement goes through."""
    with engine.connect() as one, engine.connect() as other:  # two connections in the pool
        pids = {one.execute(text("select pg_backend_pid()")).scalar_one(),
                other.execute(text("select pg_backend_pid()")).scalar_one()}
    for pid in pids:
        terminate(admin, pid)
    with pytest.raises(DBAPIError) as failed:
        backend(engine)
    assert failed.value.connection_invalidated
    assert backend(engine) not in pids
    assert backend(engine) not in pids
