"""Many rows of one table inserted as one statement: COPY on PostgreSQL, an executemany elsewhere.

The ledger writes some sixteen rows a sold lead that are only ever inserted (the events it marks
processed, the buyers offered the lead, the auction's ranked bids, the buyers posted it, the
ledger's entries). Through an INSERT's executemany psycopg sends each row as a statement of its own
(a Bind and an Execute in a pipeline, which PostgreSQL runs one by one): about 14 µs of the
ledger's CPU a row, a quarter of what its batches of 300 events cost (bench/ledger.py). COPY sends
the rows as one stream that PostgreSQL loads in one statement.

What is kept from an INSERT through SQLAlchemy:
  - the transaction: the COPY runs on the session's own connection, so it commits or rolls back
    with the rest of the batch;
  - Python-side scalar defaults of columns a row leaves out (a column default of the model); a
    column the rows leave out without a Python-side default gets its server default (an id from
    its sequence), as the INSERT leaving it out does;
  - the values: COPY reads each as text in its column's type, where the INSERT casts it, so only
    values of exactly their column's Python type go by COPY (str for a text column, int for an
    integer one, int or float for a float one, bool for a boolean one, or None); rows with any
    other (a float for an integer column, a JSON value, an Enum), or a table whose Python-side
    default is a function, are written by the INSERT;
  - errors: a failed COPY raises SQLAlchemy's own exception for it (IntegrityError for a key
    already there), through the connection's own handling, so a server gone away invalidates the
    whole pool as a failed statement does, and callers catch what they caught before. Unlike the
    INSERT's, a COPY's error names the line and value PostgreSQL stopped at: rows with consumers'
    data are not for this function;
  - the statement's time in `leadx_sql_query_duration_seconds` (operation "other").
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from typing import Any

from psycopg import sql
from sqlalchemy import Boolean, Connection, Enum, Float, Integer, String, Table, insert
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
    if connection.dialect.name != "postgresql" or filled is None or not _copyable(table, names, filled, rows):
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


def _python_types(column_type: Any) -> tuple[type, ...] | None:
    """The Python types whose text form PostgreSQL reads for this column as the INSERT would bind
    them; None for a type that goes by the INSERT only."""
    if isinstance(column_type, Enum):
        return None
    if isinstance(column_type, Boolean):
        return (bool,)
    if isinstance(column_type, Integer):
        return (int,)
    if isinstance(column_type, Float):
        return (int, float)
    if isinstance(column_type, String):
        return (str,)
    return None


def _copyable(table: Table, names: list[str], filled: dict[str, Any], rows: Sequence[Mapping[str, Any]]) -> bool:
    kinds: dict[str, tuple[type, ...]] = {}
    for name in [*names, *filled]:
        column_kinds = _python_types(table.columns[name].type)
        if column_kinds is None:
            return False
        kinds[name] = column_kinds
    # `type(...) in`, not isinstance: a bool is an int, and True would be read as "t".
    given = all(value is None or type(value) in kinds[name] for row in rows for name, value in row.items())
    return given and all(value is None or type(value) in kinds[name] for name, value in filled.items())


def _copy(connection: Connection, table: Table, names: list[str], filled: dict[str, Any],
          rows: Sequence[Mapping[str, Any]]) -> None:
    columns = [*names, *filled]
    statement = sql.SQL("COPY {} ({}) FROM STDIN").format(
        sql.Identifier(*([table.schema] if table.schema else []), table.name),
        sql.SQL(", ").join(sql.Identifier(table.columns[name].name) for name in columns))
    extra = list(filled.values())
    raw = connection.connection.driver_connection
    assert raw is not None, "a connection in a transaction has its driver's connection"
    started = time.perf_counter()
    try:
        with raw.cursor() as cursor, cursor.copy(statement) as copy:
            for row in rows:
                copy.write_row([*(row[name] for name in names), *extra])
    except connection.dialect.loaded_dbapi.Error as error:
        # As a failed statement: wrapped in SQLAlchemy's exception, the pool renewed if the server
        # went away (raises).
        connection._handle_dbapi_exception(error, statement.as_string(raw), None, None, None)
    SQL_QUERY_SECONDS.labels(sql_operation("COPY")).observe(time.perf_counter() - started)
