"""Many rows of one table as one statement (leadx.platform.db.bulk_insert): COPY on PostgreSQL, an
executemany on SQLite, either way what an INSERT of the same rows would have written."""

from __future__ import annotations


import pytest
from sqlalchemy import JSON, BigInteger, Column, Integer, MetaData, String, Table, select
from sqlalchemy import event as sql_event
from sqlalchemy.exc import DBAPIError, IntegrityError

from leadx.platform.db.bulk_insert import insert_rows
from leadx.platform.db import engine as engines
from leadx.platform.db.engine import create_schema, make_engine, session_factory
from leadx.platform.db.models import AuctionBid, Lead, LedgerEntry, ProcessedEvent
from tests.conftest import backend_pid

NEVER_S = 3600.0  # an idle time no test reaches: its connections are never pinged
EXTRA = MetaData()
# Columns the models do not have: a JSON value (which psycopg binds with a cast of its own) and a
# default that is a function (which COPY cannot compute): such tables are written by the INSERT.
NOTES = Table("bulk_notes", EXTRA, Column("id", String(8), primary_key=True), Column("body", JSON),
              Column("size", Integer, default=7))
STAMPED = Table("bulk_stamped", EXTRA, Column("id", String(8), primary_key=True),
                Column("at_ms", BigInteger, default=lambda: 42))


@pytest.fixture
def statements(sessions):
    """The statements SQLAlchemy sends, as their first two words ("INSERT INTO")."""
    engine = sessions.kw["bind"]
    EXTRA.create_all(engine)
    sent: list[str] = []

    def note(_connection, _cursor, statement, _parameters, _context, _executemany) -> None:
        sent.append(" ".join(statement.split()[:3]).upper())

    sql_event.listen(engine, "before_cursor_execute", note)
    yield sent
    sql_event.remove(engine, "before_cursor_execute", note)


def is_postgres(sessions) -> bool:
    return sessions.kw["bind"].dialect.name == "postgresql"


def test_rows_are_written_with_their_defaults_and_server_ids(sessions, statements):
    bids = [{"auction_id": f"A{n}", "rank": 1, "buyer_id": "b_1", "bid_cents": 100 + n, "amount_cents": 100 + n,
             "weight": 1.5} for n in range(3)]  # profile_id left to the model's default, ""
    entries = [{"transaction_id": "T1", "account": account, "amount_cents": cents, "at_ms": 5}
               for account, cents in (("buyer:b_1", -100), ("seller:s_1", 90), ("platform:fees", 10))]
    with sessions.begin() as session:
        insert_rows(session, AuctionBid.__table__, bids)
        insert_rows(session, LedgerEntry.__table__, entries)
    with sessions() as session:
        assert session.execute(select(AuctionBid.auction_id, AuctionBid.bid_cents, AuctionBid.weight,
                                      AuctionBid.profile_id).order_by(AuctionBid.auction_id)).all() == [
            ("A0", 100, 1.5, ""), ("A1", 101, 1.5, ""), ("A2", 102, 1.5, "")]
        written = session.execute(select(LedgerEntry.id, LedgerEntry.account).order_by(LedgerEntry.id)).all()
    assert [account for _, account in written] == ["buyer:b_1", "seller:s_1", "platform:fees"]
    assert len({row_id for row_id, _ in written}) == 3  # ids from the table's own sequence
    # On PostgreSQL neither table saw an INSERT: their rows went by COPY.
    assert ("INSERT INTO AUCTION_BIDS" in statements) != is_postgres(sessions)
    assert ("INSERT INTO LEDGER_ENTRIES" in statements) != is_postgres(sessions)


def test_a_column_copy_would_write_otherwise_than_the_insert_is_left_to_the_insert(sessions, statements):
    with sessions.begin() as session:
        insert_rows(session, NOTES, [{"id": "n1", "body": {"a": [1, "two"], "b": None}},
                                     {"id": "n2", "body": None}])
    with sessions() as session:
        rows = session.execute(select(NOTES.c.id, NOTES.c.body, NOTES.c.size).order_by(NOTES.c.id)).all()
    assert rows == [("n1", {"a": [1, "two"], "b": None}, 7), ("n2", None, 7)]
    assert "INSERT INTO BULK_NOTES" in statements


def test_a_default_that_is_a_function_is_left_to_the_insert(sessions, statements):
    with sessions.begin() as session:
        insert_rows(session, STAMPED, [{"id": "s1"}, {"id": "s2"}])
    with sessions() as session:
        assert session.execute(select(STAMPED.c.id, STAMPED.c.at_ms).order_by(STAMPED.c.id)).all() == [
            ("s1", 42), ("s2", 42)]
    assert "INSERT INTO BULK_STAMPED" in statements


def test_values_copy_would_read_otherwise_than_the_insert_casts_them_go_by_the_insert(sessions, statements):
    """COPY reads a value's text in its column's type where the INSERT casts it: a float for an
    integer column (100.0), a bool for an integer one (True, "t" in text) go by the INSERT."""
    bid = {"auction_id": "A1", "rank": 1, "buyer_id": "b_1", "bid_cents": 100, "amount_cents": 100, "weight": 1}
    with sessions.begin() as session:
        insert_rows(session, AuctionBid.__table__, [bid, {**bid, "auction_id": "A2", "bid_cents": 100.0}])
        insert_rows(session, AuctionBid.__table__, [{**bid, "auction_id": "A3", "rank": True}])
    with sessions() as session:
        assert session.execute(select(AuctionBid.auction_id, AuctionBid.rank, AuctionBid.bid_cents, AuctionBid.weight)
                               .order_by(AuctionBid.auction_id)).all() == [
            ("A1", 1, 100, 1.0), ("A2", 1, 100, 1.0), ("A3", 1, 100, 1.0)]
    assert statements.count("INSERT INTO AUCTION_BIDS") == 2  # both by the INSERT, on either database


def test_the_rows_belong_to_the_sessions_transaction_and_leave_its_pending_objects_alone(sessions):
    marks = [{"event_id": f"e{n}", "consumer": "ledger", "processed_at_ms": n} for n in range(4)]
    with sessions() as session, session.begin():
        lead = Lead(id="L000000001", seller_id="s_1", vertical="auto_loan", status=None, status_rank=0,
                    submitted_at_ms=1, updated_at_ms=1, min_price_cents=0, direct_buyer_id="",
                    seller_reference="", redrives=0)
        session.add(lead)
        insert_rows(session, ProcessedEvent.__table__, marks)
        assert lead in session.new  # not flushed by the insert: the next statement or the commit writes it
        session.rollback()
    with sessions() as session:
        assert session.scalars(select(ProcessedEvent.event_id)).all() == []
        assert session.get(Lead, "L000000001") is None


def test_a_key_already_there_fails_the_batch_as_an_integrity_error(sessions):
    mark = {"event_id": "e1", "consumer": "ledger", "processed_at_ms": 1}
    with sessions.begin() as session:
        insert_rows(session, ProcessedEvent.__table__, [mark])
    with pytest.raises(IntegrityError), sessions.begin() as session:
        insert_rows(session, ProcessedEvent.__table__, [{**mark, "event_id": "e2"}, mark])
    with sessions() as session:  # the whole batch rolled back, e2 with it
        assert session.scalars(select(ProcessedEvent.event_id)).all() == ["e1"]


def test_rows_naming_different_columns_are_refused(sessions):
    with pytest.raises(ValueError, match="name different columns"), sessions.begin() as session:
        insert_rows(session, ProcessedEvent.__table__, [{"event_id": "e1", "consumer": "c", "processed_at_ms": 1},
                                                        {"event_id": "e2", "consumer": "c"}])


def test_no_rows_send_nothing(sessions, statements):
    with sessions.begin() as session:
        insert_rows(session, ProcessedEvent.__table__, [])
    assert not [s for s in statements if s.startswith(("INSERT", "COPY"))]


@pytest.mark.parametrize("database_url", ["postgres"], indirect=True)  # a schema of its own
def test_a_server_gone_renews_the_pool_as_a_failed_statement_would(database_url, monkeypatch, terminate):
    """PostgreSQL restarted or the connection was cut: the error says so (connection_invalidated),
    as SQLAlchemy's own for a statement does, and the whole pool is renewed, not only the
    connection the COPY met (the others were opened before the restart too)."""
    monkeypatch.setattr(engines, "PING_AFTER_IDLE_S", NEVER_S)  # renewed by the failure, not by a ping
    engine = make_engine(database_url)
    mark = {"event_id": "e1", "consumer": "c", "processed_at_ms": 1}
    try:
        create_schema(engine)
        sessions = session_factory(engine)
        with engine.connect() as one, engine.connect() as other:  # two in the pool
            before = {backend_pid(one), backend_pid(other)}
        with pytest.raises(DBAPIError) as failed, sessions.begin() as session:
            terminate(backend_pid(session))
            insert_rows(session, ProcessedEvent.__table__, [mark])
        assert failed.value.connection_invalidated
        with engine.connect() as one, engine.connect() as other:
            assert not {backend_pid(one), backend_pid(other)} & before
        with sessions.begin() as session:  # the pool gives a working connection again
            insert_rows(session, ProcessedEvent.__table__, [mark])
        with sessions() as session:
            assert session.scalars(select(ProcessedEvent.event_id)).all() == ["e1"]
    finally:
        engine.dispose()
