"""Many rows of one table inserted as one statement: COPY on PostgreSQL, an executemany elsewhere.

The ledger writes some sixteen rows a sold lead that are only ever inserted (the events it marks
processed, the buyers offered the lead, the auction's ranked bids, the buyers posted it, the
ledger's entries). Through an INSERT's executemany psycopg sends each row as a statement of its own
(a Bind and an Execute in a pipeline, which PostgreSQL runs one by one): about 20 µs of the
ledger's CPU a row, a third of what its batches cost (bench/ledger.py). COPY sends the rows as one
stream that PostgreSQL loads in one statement.

What is kept from an INSERT through SQLAlchemy:
  - the transaction: the COPY runs on the session's own connection, so it commits or rolls back
    with the rest of the batch;
  - Python-side scalar defaults of columns a row leaves out (a column default of the model), and
    each column type's bind processing; a column the rows leave out without a Python-side default
    gets its server default (an id from its sequence), as the INSERT leaving it out does;
  - values: only columns of text, number and boolean types go by COPY, whose text form psycopg
    writes as the INSERT would bind them; a table with another (JSON, a type of its own) is
    written by the INSERT, as is one whose Python-side default is not a plain value (a function);
  - errors: a failed COPY raises SQLAlchemy's own exception for it (IntegrityError for a key
    already there, with `connection_invalidated` set and the connection invalidated when the server
    went away), so callers catch what they caught before;
  - the statement's time in `leadx_sql_query_duration_seconds` (operation "other").
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from typing import Any

from psycopg import sql
from sqlalchemy import Boolean, Connection, Float, Integer, String, Table, insert
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session

from leadx.platform.metrics import SQL_QUERY_SECONDS, sql_operation


def insert_rows(session: Session, table: Table, rows: Sequence[Mapping[str, Any]]) -> None:
    """Insert `rows` (each naming the same columns) into `table` within the session's transaction.
    No autoflush: the ORM's pending objects are written by the next statement or the commit."""
    if not rows:
        return
    names = list(rows[0])
    if any(row.keys() != rows[0].keys() for row in rows):  # as sets: the order they are named in may differ
        raise ValueError(f"rows for {table.name} name different columns: each must name {names}")
    connection = session.connection()
    filled = _with_defaults(table, names)
    if connection.dialect.name != "postgresql" or filled is None or not _copyable(table, [*names, *filled]):
        with session.no_autoflush:  # as the COPY: the ORM's pending objects are not written first
            session.execute(insert(table), list(rows))
        return
    _copy(connection, table, names, filled, rows)


def _with_defaults(table: Table, names: list[str]) -> dict[str, Any] | None:
    """The value of each column the rows leave out that has a plain Python-side default; None if one
    they leave out has a default that is a function (the INSERT then computes it)."""
    filled = {}
    for column in table.columns:
        if column.key in names or column.default is None:
            continue
        if not column.default.is_scalar:
            return None
        filled[column.key] = column.default.arg  # type: ignore[attr-defined]
    return filled


# Types whose values psycopg writes into COPY's text as PostgreSQL reads them for the column (Enum
# is a String: its bind processing gives the text).
_COPYABLE_TYPES = (String, Integer, Float, Boolean)


def _copyable(table: Table, names: list[str]) -> bool:
    return all(isinstance(table.columns[name].type, _COPYABLE_TYPES) for name in names)


def _copy(connection: Connection, table: Table, names: list[str], filled: dict[str, Any],
          rows: Sequence[Mapping[str, Any]]) -> None:
    columns = [table.columns[name] for name in names] + [table.columns[name] for name in filled]
    processors = [column.type.bind_processor(connection.dialect) for column in columns]
    statement = sql.SQL("COPY {} ({}) FROM STDIN").format(
        sql.Identifier(*([table.schema] if table.schema else []), table.name),
        sql.SQL(", ").join(sql.Identifier(column.name) for column in columns))
    extra = list(filled.values())
    raw = connection.connection.driver_connection
    assert raw is not None, "a connection in a transaction has its driver's connection"
    started = time.perf_counter()
    try:
        with raw.cursor() as cursor, cursor.copy(statement) as copy:
            for row in rows:
                values = [row[name] for name in names] + extra
                copy.write_row([value if process is None or value is None else process(value)
                                for value, process in zip(values, processors, strict=True)])
    except connection.dialect.loaded_dbapi.Error as error:
        text = statement.as_string(raw)
        disconnected = connection.dialect.is_disconnect(error, raw, None)
        if disconnected:
            connection.invalidate(error)
        raise DBAPIError.instance(text, None, error, connection.dialect.loaded_dbapi.Error,
                                  connection_invalidated=disconnected) from error
    SQL_QUERY_SECONDS.labels(sql_operation("COPY")).observe(time.perf_counter() - started)
