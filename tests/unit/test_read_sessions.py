"""Read sessions (leadx.platform.db.engine.read_session_factory): a read leaves no transaction open
(no BEGIN before it, no ROLLBACK after it), and the writers sharing its pool keep theirs."""

from __future__ import annotations

from sqlalchemy import select

from leadx.accounts import accounts
from leadx.platform.db.engine import create_schema, make_engine, read_session_factory, session_factory
from leadx.platform.db.models import Buyer


def _in_transaction(session) -> bool:
    """Whether the database connection under the session is inside a transaction, as the driver sees it."""
    driver = session.connection().connection.driver_connection
    if hasattr(driver, "info"):  # psycopg: the server's own transaction status
        return driver.info.transaction_status.name != "IDLE"
    return driver.in_transaction  # sqlite3


def test_a_read_sees_what_was_committed_and_opens_no_transaction(database_url):
    engine = make_engine(database_url)
    try:
        create_schema(engine)
        with session_factory(engine)() as session:
            buyer = accounts.create_buyer(session, "Acme", "https://acme.example/ping", "https://acme.example/post").id
        with read_session_factory(engine)() as reads:
            assert reads.scalar(select(Buyer.name).where(Buyer.id == buyer)) == "Acme"
            assert not _in_transaction(reads)
    finally:
        engine.dispose()


def test_a_writer_on_the_connection_a_read_used_still_writes_in_a_transaction(database_url):
    engine = make_engine(database_url)
    try:
        create_schema(engine)
        engine.pool.dispose()  # one connection from here on: the read's, then the writer's
        with read_session_factory(engine)() as reads:
            assert reads.scalar(select(Buyer.id).limit(1)) is None
        assert engine.pool.checkedin() == 1
        with session_factory(engine)() as writer:
            writer.add(Buyer(id="b-rolled-back", name="Gone", api_key_hash="0" * 64, ping_url="", post_url="",
                             created_at_ms=0))
            writer.flush()
            assert _in_transaction(writer)
            writer.rollback()
        with read_session_factory(engine)() as reads:
            assert reads.scalar(select(Buyer.id).where(Buyer.id == "b-rolled-back")) is None
    finally:
        engine.dispose()
