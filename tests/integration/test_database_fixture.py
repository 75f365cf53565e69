"""The `database_url` fixture's teardown on PostgreSQL: a test that leaves a connection in a
transaction fails by name, with the connection's query, instead of holding the schema's drop (and
with it the whole suite) for ever."""

from __future__ import annotations

import uuid

import pytest
from sqlalchemy import text

from leadx.platform.db.engine import make_engine
from tests import conftest


@pytest.mark.postgres
def test_a_drop_held_by_an_open_transaction_fails_and_names_its_holder(postgres_url, monkeypatch):
    monkeypatch.setattr(conftest, "DROP_LOCK_TIMEOUT", "1s")
    schema = f"t_{uuid.uuid4().hex[:10]}"
    admin, leaky = make_engine(postgres_url), make_engine(postgres_url)
    with admin.begin() as connection:
        connection.execute(text(f"create schema {schema}"))
        connection.execute(text(f"create table {schema}.leads (id text primary key)"))
    held = leaky.connect()
    held.execute(text(f"select count(*) from {schema}.leads"))  # its transaction stays open: a lock held
    try:
        with pytest.raises(pytest.fail.Exception, match=r"could not be dropped within 1s.*idle in transaction"
                                                       r".*select count\(\*\) from " + schema + r"\.leads"):
            conftest._drop_schema(admin, schema)
        held.rollback()
        conftest._drop_schema(admin, schema)  # released, it drops
        with admin.connect() as connection:
            assert connection.execute(text("select count(*) from pg_namespace where nspname = :s"),
                                      {"s": schema}).scalar() == 0
    finally:
        held.close()
        leaky.dispose()
        admin.dispose()
