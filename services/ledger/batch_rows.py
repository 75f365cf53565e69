"""The rows a batch of the ledger's events reads, loaded with one query per table.

Recording event by event asked SQL for each row it touched when it touched it: the event's
processed-event mark, its lead (locked), its auction, its sale, its ledger transaction. A sold
lead's six events made some fifteen round trips, and the ledger spent most of its time waiting on
them (bench/README.md, "The ledger's recorder"). A batch now asks once per table for every row its
events will read; the handlers find them here, and a row a handler creates is put here too, so a
later event of the same batch finds it without a flush.

The batch's leads that exist are locked in id order, so two ledger replicas (which can briefly both
hold a partition during a rebalance) take those locks in one order and cannot deadlock on them.
Rows new to both (inserted at the end of the batch, table by table in the batch's order) can
still make them wait on each other; PostgreSQL then fails one batch, which is applied again one
event per transaction (services/ledger/batching.py).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from google.protobuf.message import Message
from sqlalchemy import select
from sqlalchemy.orm import Session

from leadx.contracts import topics
from leadx.ledger import billing
from leadx.platform.db.models import Auction, Lead, LedgerTransaction, ProcessedEvent, Sale
from leadx.platform.kafka.envelope import Envelope

_ROWS = "leadx.batch_rows"  # session.info key: {(model, primary key): the row, or None if absent}


def processed_before(session: Session, consumer: str, event_ids: Iterable[str]) -> set[str]:
    """The ids among `event_ids` that `consumer` has applied in an earlier transaction."""
    ids = list(dict.fromkeys(event_ids))
    if not ids:
        return set()
    return set(session.scalars(select(ProcessedEvent.event_id).where(
        ProcessedEvent.consumer == consumer, ProcessedEvent.event_id.in_(ids))))


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
    found = {lead.id: lead for lead in session.scalars(
        select(Lead).where(Lead.id.in_(sorted(leads))).order_by(Lead.id).with_for_update())} if leads else {}
    rows.update(((Lead, lead_id), found.get(lead_id)) for lead_id in leads)
    _load_by_id(rows, session, Auction, auctions)
    _load_by_id(rows, session, LedgerTransaction, transactions)
    if sales:
        found_sales = {(sale.lead_id, sale.buyer_id): sale for sale in session.scalars(
            select(Sale).where(Sale.lead_id.in_(sorted({lead_id for lead_id, _ in sales}))))}
        rows.update(((Sale, key), found_sales.get(key)) for key in sales)


def _load_by_id(rows: dict, session: Session, model: Any, ids: set[str]) -> None:
    if ids:
        found = {row.id: row for row in session.scalars(select(model).where(model.id.in_(sorted(ids))))}
        rows.update(((model, row_id), found.get(row_id)) for row_id in ids)


def get(session: Session, model: Any, key: Any, *, lock: bool = False) -> Any:
    """The row of `model` with primary key `key`: from the batch's rows when loaded (or created)
    there, else from SQL (a row load() does not foresee; today none of those get() is asked for)."""
    rows = session.info.get(_ROWS, {})
    if (model, key) in rows:
        return rows[(model, key)]
    return session.get(model, key, with_for_update=lock or None)


def created(session: Session, model: Any, key: Any, row: Any) -> None:
    """Add a new row to the session, where the batch's later events will find it."""
    session.add(row)
    session.info.setdefault(_ROWS, {})[(model, key)] = row


def forget(session: Session) -> None:
    session.info.pop(_ROWS, None)


def lead_id_of(topic: str, message: Message) -> str:
    """The lead an event is about."""
    if topic in (topics.LEAD_SUBMITTED, topics.LEAD_VERIFIED, topics.AUCTION_CLOSED):
        return message.lead.lead_id
    if topic == topics.LEAD_SCORED:
        return message.verified.lead.lead_id
    return message.lead_id
