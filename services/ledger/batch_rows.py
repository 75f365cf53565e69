"""The rows a batch of the ledger's events reads and writes: its leads, auctions, sales and ledger
transactions, loaded with one query per table and written with one statement per table and kind of
change.

Recording event by event asked SQL for each row it touched when it touched it: the event's
processed-event mark, its lead (locked), its auction, its sale, its ledger transaction. A sold
lead's six events made some fifteen round trips, and the ledger spent most of its time waiting on
them (bench/README.md, "The ledger's recorder"). A batch now asks once per table for every row its
events will read; the handlers find them here, and a row a handler creates is put here too, so a
later event of the same batch finds it.

The rows are plain `Row`s, not ORM objects: the ORM's unit of work (its identity map, attribute
history, the flush's sorting and its autoflush) was a quarter of the recorder's CPU on PostgreSQL
and two fifths on SQLite (bench/ledger.py; bench/README.md, "The ledger's rows without the ORM").
A `Row` notes which of its columns a handler changed, and `write` sends at the batch's end the new
rows of each table in one statement (leadx.platform.db.bulk_insert: COPY on PostgreSQL), and the
changed rows of each table in one UPDATE's executemany per set of columns changed, in primary key
order (as the ORM's flush did).

The batch's leads that exist are locked in id order, so two ledger replicas (which can briefly both
hold a partition during a rebalance) take those locks in one order and cannot deadlock on them.
Rows new to both (inserted at the end of the batch, table by table in the batch's order) can
still make them wait on each other; PostgreSQL then fails one batch, which is applied again one
event per transaction (services/ledger/batching.py).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, cast

from google.protobuf.message import Message
from sqlalchemy import String, Table, any_, bindparam, select, update
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.orm import Session

from leadx.contracts import topics
from leadx.ledger import billing
from leadx.platform.db.bulk_insert import insert_rows
from leadx.platform.db.models import Auction, Lead, LedgerTransaction, ProcessedEvent, Sale
from leadx.platform.kafka.envelope import Envelope

_ROWS = "leadx.batch_rows"  # session.info key: {(model, primary key): the Row, or None if absent}
_NEW = "leadx.batch_rows.new"  # session.info key: the batch's new Rows, in the order they were made


class Row:
    """A row of one table as the batch sees it: its columns as attributes (a column not set reads
    None, as an ORM object's does before its flush). A row read from SQL notes the columns set to a
    new value, which `write` updates; a new row is inserted whole, with the columns it set (the
    others get their defaults, as the ORM left them out)."""

    def __init__(self, table: Table, values: dict[str, Any], *, new: bool) -> None:
        self.__dict__.update(values)
        object.__setattr__(self, "_table", table)
        object.__setattr__(self, "_changed", None if new else set())

    def __getattr__(self, name: str) -> Any:  # only for a name not set: a column left to its default
        if name in self._table.columns:
            return None
        raise AttributeError(name)

    def __setattr__(self, name: str, value: Any) -> None:
        if self._changed is not None and self.__dict__.get(name, _UNSET) != value:
            self._changed.add(name)
        self.__dict__[name] = value

    def values(self) -> dict[str, Any]:
        """The columns set, by name."""
        return {name: value for name, value in self.__dict__.items() if name[0] != "_"}


_UNSET = object()


def processed_before(session: Session, consumer: str, event_ids: Iterable[str]) -> set[str]:
    """The ids among `event_ids` that `consumer` has applied in an earlier transaction."""
    ids = list(dict.fromkeys(event_ids))
    if not ids:
        return set()
    return set(session.scalars(select(ProcessedEvent.event_id).where(
        ProcessedEvent.consumer == consumer, one_of(session, ProcessedEvent.event_id, ids))))


def load(session: Session, envelopes: list[Envelope]) -> None:
    """Read every lead, auction, sale and ledger transaction these events will touch, the leads
    locked (FOR UPDATE, in id order), and remember which of them do not exist yet."""
    leads, auctions, sales, transactions = set(), set(), set(), set()
    for envelope in envelopes:
        topic, message = envelope.topic, envelope.message
        if topic == topics.AUCTION_CLOSED:  # its auction's row only (the lead is the store's already)
            auctions.add(message.auction_id)
            continue
        lead_id = lead_id_of(topic, message)
        leads.add(lead_id)
        if topic == topics.AUCTION_OPENED:
            auctions.add(message.auction_id)
        elif topic in (topics.SALE_CLOSED, topics.LEAD_RETURNED):
            sales.add((lead_id, message.buyer_id))
            kind = billing.RETURN if topic == topics.LEAD_RETURNED else billing.SALE
            transactions.add(billing.transaction_id(kind, lead_id, message.buyer_id))
    rows = session.info.setdefault(_ROWS, {})
    if leads:
        table = _table(Lead)
        found = _rows(session, table, select(table).where(one_of(session, table.c.id, sorted(leads)))
                      .order_by(table.c.id).with_for_update())
        rows.update(((Lead, lead_id), found.get(lead_id)) for lead_id in leads)
    _load_by_id(rows, session, Auction, auctions)
    _load_by_id(rows, session, LedgerTransaction, transactions)
    if sales:
        table = _table(Sale)
        lead_ids = sorted({lead for lead, _ in sales})
        found = _rows(session, table, select(table).where(one_of(session, table.c.lead_id, lead_ids)))
        rows.update(((Sale, key), found.get(key)) for key in sales)


def _load_by_id(rows: dict, session: Session, model: Any, ids: set[str]) -> None:
    if ids:
        table = _table(model)
        found = _rows(session, table, select(table).where(one_of(session, table.c.id, sorted(ids))))
        rows.update(((model, row_id), found.get(row_id)) for row_id in ids)


def one_of(session: Session, column: Any, values: list[str]) -> Any:
    """Text `column` is one of `values`. On PostgreSQL `= ANY(array)`: one statement text whatever
    the count, so SQLAlchemy expands nothing and PostgreSQL plans it once for the connection, where
    an IN of so many values was a new statement for nearly every batch. The array is of unbounded
    text, so a value longer than the column matches nothing, as in an IN, rather than failing the
    cast. Elsewhere (SQLite) an IN."""
    if session.get_bind().dialect.name == "postgresql":
        return column == any_(bindparam("values", values, type_=ARRAY(String())))
    return column.in_(values)


def _table(model: Any) -> Table:
    return cast(Table, model.__table__)


def _rows(session: Session, table: Table, query: Any) -> dict[Any, Row]:
    """The rows a query reads, by primary key (a tuple for a key of more than one column)."""
    keys = [column.key for column in table.primary_key.columns]
    found = {}
    for mapping in session.execute(query).mappings():
        row = Row(table, dict(mapping), new=False)
        found[mapping[keys[0]] if len(keys) == 1 else tuple(mapping[key] for key in keys)] = row
    return found


def get(session: Session, model: Any, key: Any, *, lock: bool = False) -> Row | None:
    """The row of `model` with primary key `key`: from the batch's rows when loaded (or created)
    there, else from SQL (a row load() does not foresee; today none of those get() is asked for)."""
    rows = session.info.setdefault(_ROWS, {})
    if (model, key) not in rows:
        table = _table(model)
        key_values = key if isinstance(key, tuple) else (key,)
        query = select(table).where(*(column == value for column, value in
                                      zip(table.primary_key.columns, key_values, strict=True)))
        rows[(model, key)] = next(iter(_rows(session, table, query.with_for_update() if lock else query).values()),
                                  None)
    return rows[(model, key)]


def create(session: Session, model: Any, key: Any, **values: Any) -> Row:
    """A new row, inserted by `write` at the batch's end; the batch's later events find it here."""
    row = Row(_table(model), values, new=True)
    session.info.setdefault(_ROWS, {})[(model, key)] = row
    session.info.setdefault(_NEW, []).append(row)
    return row


def write(session: Session) -> None:
    """Insert the batch's new rows (a table's rows that set the same columns in one statement, in
    the order the batch first made one of them), then update the changed columns of the rows it
    read (a table's rows that changed the same columns in one executemany, in primary key order)."""
    new: dict[tuple[Table, frozenset[str]], list[dict[str, Any]]] = {}
    for row in session.info.pop(_NEW, []):
        values = row.values()
        new.setdefault((row._table, frozenset(values)), []).append(values)
    for (table, _), values in new.items():
        insert_rows(session, table, values)
    changed: dict[tuple[Table, frozenset[str]], list[tuple[Any, Row]]] = {}
    for (_, key), row in session.info.get(_ROWS, {}).items():
        if row is not None and row._changed:
            changed.setdefault((row._table, frozenset(row._changed)), []).append((key, row))
    for (table, columns), keyed in changed.items():
        keys = [column.key for column in table.primary_key.columns]
        statement = update(table).where(*(column == bindparam(f"key_{column.key}") for column in
                                          table.primary_key.columns)).values(
            {column: bindparam(column) for column in sorted(columns)})
        session.execute(statement, [{**{column: row.__dict__[column] for column in columns},
                                     **{f"key_{key}": row.__dict__[key] for key in keys}}
                                    for _, row in sorted(keyed, key=lambda pair: pair[0])])
        for _, row in keyed:
            row._changed.clear()


def forget(session: Session) -> None:
    session.info.pop(_ROWS, None)
    session.info.pop(_NEW, None)


def lead_id_of(topic: str, message: Message) -> str:
    """The lead an event is about."""
    if topic in (topics.LEAD_SUBMITTED, topics.LEAD_VERIFIED, topics.AUCTION_CLOSED):
        return message.lead.lead_id
    if topic == topics.LEAD_SCORED:
        return message.verified.lead.lead_id
    return message.lead_id
