"""Records the lead life cycle and the sales in SQL.

A batch of events is applied in one transaction, each event's id recorded in processed_events in
it, so a redelivered event changes nothing (services/ledger/batching.py gathers the batches,
services/ledger/batch_rows.py reads and writes the rows they touch). Statuses only move forward (see
leadx.leads.status), so events of one lead arriving out of order still leave the right final status.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from functools import cache, partial

from google.protobuf.message import Message
from sqlalchemy import Insert, Table
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session, sessionmaker

from leadx.contracts import topics
from leadx.contracts.events.v1 import events_pb2 as ev
from leadx.leads import status as lead_status
from leadx.leads.sealing import PiiKeyring
from leadx.leads.verticals import zip_counties
from leadx.ledger import billing
from leadx.platform.db.bulk_insert import insert_rows
from leadx.platform.db.models import (
    AccountBalance,
    Auction,
    AuctionBid,
    AuctionOffer,
    BuyerDuplicateDay,
    BuyerPosting,
    Lead,
    LeadReturn,
    LedgerEntry,
    LedgerTransaction,
    MarketDay,
    ProcessedEvent,
    Prospect,
    Sale,
)
from leadx.platform.kafka.envelope import Envelope
from leadx.platform.utc_days import period_start, utc_day
from services.ledger import batch_rows, metrics
from services.ledger.batch_rows import Row

CONSUMER = "ledger"
_COUNTERS = "leadx.counters"  # session.info key of the counter additions awaiting _write_counters
_ROWS = "leadx.rows"  # session.info key of the insert-only rows awaiting _write_rows, by table
FieldsOf = Callable[[ev.Lead], dict[str, str]]  # a lead's fields, its sealed ones opened


def _now_ms() -> int:
    return int(time.time() * 1000)


class Recorder:
    def __init__(self, sessions: sessionmaker[Session], keyring: PiiKeyring) -> None:
        self.sessions = sessions
        # The lead store keeps a lead whole, for its seller and its buyer to read back: the events
        # that fill it open the lead's seal, and only when they do fill it.
        self._apply: dict[str, Callable[[Session, Message], None]] = {
            topic: partial(apply, fields_of=keyring.fields_of) if topic in _FILLING else apply
            for topic, apply in _APPLY.items()}

    def apply(self, envelope: Envelope) -> bool:
        """Apply one event; False if it had been applied before."""
        return self.apply_many([envelope])[0]

    def apply_many(self, envelopes: list[Envelope]) -> list[bool]:
        """Apply events in one transaction (all or none); for each, False if applied before (in an
        earlier transaction or earlier in this batch)."""
        with self.sessions.begin() as session:
            seen = batch_rows.processed_before(session, CONSUMER, (e.event_id for e in envelopes))
            applied = []
            for envelope in envelopes:
                applied.append(envelope.event_id not in seen)
                seen.add(envelope.event_id)
            fresh = [envelope for envelope, first in zip(envelopes, applied, strict=True) if first]
            batch_rows.load(session, fresh)
            now = _now_ms()
            for envelope in fresh:
                _insert_later(session, ProcessedEvent, event_id=envelope.event_id, consumer=CONSUMER,
                              processed_at_ms=now)
                self._apply[envelope.topic](session, envelope.message)
            _write_rows(session)
            batch_rows.write(session)
            _write_counters(session)
            batch_rows.forget(session)
        # Counted once committed: a batch that failed is applied again, and counted then.
        metrics.count_recorded(fresh)
        return applied


def _lead(session: Session, lead_id: str) -> Row:
    lead = batch_rows.get(session, Lead, lead_id, lock=True)
    if lead is None:
        now = _now_ms()
        lead = batch_rows.create(session, Lead, lead_id, id=lead_id, seller_id="", vertical="", status=None,
                                 status_rank=0, submitted_at_ms=now, updated_at_ms=now, min_price_cents=0,
                                 direct_buyer_id="", seller_reference="", redrives=0)
    return lead


def _advance(lead: Row, status: str) -> None:
    if lead_status.advances(lead.status, status):
        lead.status = status
        lead.status_rank = lead_status.RANK[status]
        lead.updated_at_ms = _now_ms()


def _fill(lead: Row, source: ev.Lead, fields_of: FieldsOf) -> None:
    """Store the submitted lead whole (its sealed fields opened): lead_message() must be able to rebuild it."""
    lead.seller_id = source.seller_id
    lead.vertical = source.vertical
    lead.state = source.fields.get("state", "")[:2]
    lead.fields = fields_of(source)
    lead.min_price_cents = source.min_price_cents
    lead.direct_buyer_id = source.direct_buyer_id
    lead.seller_reference = source.seller_reference
    lead.submitted_at_ms = source.submitted_at_ms


def lead_message(lead: Lead) -> ev.Lead:
    """The submitted lead as it came from intake (the inverse of _fill), for a re-drive."""
    return ev.Lead(lead_id=lead.id, seller_id=lead.seller_id, vertical=lead.vertical, fields=lead.fields,
                   min_price_cents=lead.min_price_cents, direct_buyer_id=lead.direct_buyer_id or "",
                   seller_reference=lead.seller_reference or "", submitted_at_ms=lead.submitted_at_ms)


def _submitted(session: Session, message: ev.LeadSubmitted, fields_of: FieldsOf) -> None:
    lead = _lead(session, message.lead.lead_id)
    _fill(lead, message.lead, fields_of)
    _advance(lead, lead_status.SUBMITTED)


def _add_to(session: Session, model, keys: dict, amounts: dict[str, int], also_on_insert: dict | None = None) -> None:
    """Add `amounts` to the counters of a row (a balance, a day's totals), creating it with
    `also_on_insert` if absent. The additions of a transaction are gathered and written at its end
    by _write_counters."""
    pending = session.info.setdefault(_COUNTERS, {})
    key = (model.__tablename__, *keys.values())
    if key not in pending:
        pending[key] = (model, dict(keys), dict.fromkeys(amounts, 0), dict(also_on_insert or {}))
    added = pending[key][2]
    for column, amount in amounts.items():
        added[column] += amount


def _insert_later(session: Session, model, **row) -> None:
    """A row only ever inserted, and read by nothing in the batch that adds it (the events it marks
    processed, the buyers offered a lead, an auction's ranked bids, the buyers posted a lead, the
    ledger's entries): gathered, and written by _write_rows with its table's others."""
    session.info.setdefault(_ROWS, {}).setdefault(model.__table__, []).append(row)


def _write_rows(session: Session) -> None:
    """Insert the transaction's insert-only rows (_insert_later), one statement per table (COPY on
    PostgreSQL, leadx.platform.db.bulk_insert). They go before the rows the batch reads and changes
    (batch_rows.write): no table references another, and every batch writes its tables in the same
    order, so two ledger replicas briefly holding one partition still meet their rows in one order.
    As ORM objects they would cost the unit of work's bookkeeping each, about as much CPU as the
    rest of the ledger's work for them."""
    for table, rows in session.info.pop(_ROWS, {}).items():
        insert_rows(session, table, rows)


def _write_counters(session: Session) -> None:
    """Upsert every counter row the transaction added to, once each and in one fixed order: ledger
    replicas then take the row locks of shared rows (platform:fees, a busy market day) in the same
    order and cannot deadlock, and a batch of a thousand sales writes each balance once. The rows
    of one table go in one executemany of one statement, in that order."""
    dialect = session.get_bind().dialect.name
    pending = session.info.pop(_COUNTERS, {})
    by_table: dict[str, list] = {}
    for key in sorted(pending):  # key[0] is the table's name
        by_table.setdefault(key[0], []).append(pending[key])
    connection = session.connection()
    for counters in by_table.values():
        # Every row of a table has the same key and counter columns (each table is counted by one
        # _add_to call), so the first row's names the statement's.
        model, key_columns, counter_columns, _ = counters[0]
        statement = _counter_upsert(dialect, model.__table__, tuple(key_columns), tuple(counter_columns))
        connection.execute(statement, [{**keys, **amounts, **inserted} for _, keys, amounts, inserted in counters])


@cache
def _counter_upsert(dialect: str, table: Table, key_columns: tuple[str, ...],
                    counter_columns: tuple[str, ...]) -> Insert:
    """A counter row inserted, or its counters added to: one statement per table and dialect, the
    rows' values bound at execution (an executemany). Made with the rows as its VALUES, it was
    compiled by SQLAlchemy for each count of rows it had not cached (0.4 ms for one row, 2.4 for
    twenty), and each count was a statement PostgreSQL had not prepared."""
    statement = (postgresql.insert if dialect == "postgresql" else sqlite.insert)(table)
    # The row's counters plus what this transaction adds: the values it would have been inserted with.
    added = {column: table.c[column] + statement.excluded[column] for column in counter_columns}
    return statement.on_conflict_do_update(index_elements=list(key_columns), set_=added)


def _count_duplicates(session: Session, buyer_ids, at_ms: int) -> None:
    """Add one to each buyer's duplicates of that day."""
    day = utc_day(at_ms)
    for buyer_id in buyer_ids:
        _add_to(session, BuyerDuplicateDay, {"buyer_id": buyer_id, "day": day}, {"duplicates": 1})


def _book(session: Session, kind: str, lead_id: str, buyer_id: str, seller_id: str, price_cents: int,
          fee_cents: int, at_ms: int) -> None:
    """Book a sale or a return once: its entries and the balances they move, in this transaction."""
    transaction_id = billing.transaction_id(kind, lead_id, buyer_id)
    if batch_rows.get(session, LedgerTransaction, transaction_id) is not None:
        return
    make_entries = billing.sale_entries if kind == billing.SALE else billing.return_entries
    entries = make_entries(buyer_id, seller_id, price_cents, fee_cents)
    batch_rows.create(session, LedgerTransaction, transaction_id, id=transaction_id, kind=kind, lead_id=lead_id,
                      buyer_id=buyer_id, seller_id=seller_id, amount_cents=price_cents, fee_cents=fee_cents,
                      at_ms=at_ms)
    for entry in entries:
        _insert_later(session, LedgerEntry, transaction_id=transaction_id, account=entry.account,
                      amount_cents=entry.amount_cents, at_ms=at_ms)
        _add_to(session, AccountBalance, {"account": entry.account}, {"balance_cents": entry.amount_cents})


def _verified(session: Session, message: ev.LeadVerified, fields_of: FieldsOf) -> None:
    lead = _lead(session, message.lead.lead_id)
    if not lead.seller_id:
        _fill(lead, message.lead, fields_of)
    _advance(lead, lead_status.VERIFIED)
    # Buyers that already had this consumer are not offered the lead: a duplicate kept from them.
    _count_duplicates(session, message.duplicate_buyer_ids, message.lead.submitted_at_ms or _now_ms())


def _rejected(session: Session, message: ev.LeadRejected) -> None:
    lead = _lead(session, message.lead_id)
    lead.seller_id = lead.seller_id or message.seller_id
    lead.rejection_detail = message.internal_detail
    lead.rejected_at_ms = message.rejected_at_ms or _now_ms()
    duplicate = message.reason == ev.REJECTION_REASON_DUPLICATE
    _advance(lead, lead_status.DUPLICATE if duplicate else lead_status.REJECTED)


def _scored(session: Session, message: ev.LeadScored, fields_of: FieldsOf) -> None:
    lead = _lead(session, message.verified.lead.lead_id)
    if not lead.seller_id:
        _fill(lead, message.verified.lead, fields_of)
    lead.probability = message.probability
    lead.cluster = message.cluster
    lead.timing_factor = message.timing_factor
    _advance(lead, lead_status.SCORED)


def _auction(session: Session, auction_id: str, lead_id: str, closes_at_ms: int) -> Row:
    """The auction's row, made by whichever of its opening and its close the ledger reads first
    (they are two topics: either may come first)."""
    auction = batch_rows.get(session, Auction, auction_id)
    if auction is None:
        auction = batch_rows.create(session, Auction, auction_id, id=auction_id, lead_id=lead_id, offered_buyers=0,
                                    opened_at_ms=0, closes_at_ms=closes_at_ms)
    return auction


def _auction_opened(session: Session, message: ev.AuctionOpened) -> None:
    auction = _auction(session, message.auction_id, message.lead_id, message.closes_at_ms)
    first = not auction.opened_at_ms  # an opening published again offers the lead to no one anew
    opened_at_ms = message.opened_at_ms or auction.opened_at_ms or _now_ms()
    if first:
        for buyer_id in dict.fromkeys(message.offered_buyer_ids):
            _insert_later(session, AuctionOffer, buyer_id=buyer_id, lead_id=message.lead_id, offered_at_ms=opened_at_ms)
    auction.offered_buyers = len(message.offered_buyer_ids)
    auction.opened_at_ms, auction.closes_at_ms = opened_at_ms, message.closes_at_ms
    _advance(_lead(session, message.lead_id), lead_status.IN_AUCTION)


def _auction_closed(session: Session, message: ev.AuctionClosed) -> None:
    """The auction's bids as it ranked them, for the lead page. Only the ranking is read: the lead
    it carries (for the POST) is the lead store's already."""
    auction = _auction(session, message.auction_id, message.lead.lead_id, message.closed_at_ms)
    if auction.closed_at_ms is not None:
        return  # a close published again ranks the same bids (docs/reliability.md)
    auction.closed_at_ms, auction.bids_received = message.closed_at_ms, message.bids_received
    for bid in message.ranked_bids:
        _insert_later(session, AuctionBid, auction_id=message.auction_id, rank=bid.rank, buyer_id=bid.buyer_id,
                      bid_cents=bid.bid_cents, amount_cents=bid.amount_cents, weight=bid.weight,
                      profile_id=bid.profile_id)


def _sale_closed(session: Session, message: ev.SaleClosed) -> None:
    sold = message.outcome == ev.SALE_OUTCOME_SOLD
    existing = batch_rows.get(session, Sale, (message.lead_id, message.buyer_id))
    if existing is None:  # one outcome per lead and buyer, whatever repeats the topic carries
        known = batch_rows.get(session, Lead, message.lead_id)
        if known is not None and known.fields is not None:
            county, submitted_at_ms = _county(known), known.submitted_at_ms
        else:  # sale.closed came first: no ZIP yet, and the lead's time as the sale carries it
            county, submitted_at_ms = "", message.submitted_at_ms
        batch_rows.create(
            session, Sale, (message.lead_id, message.buyer_id), lead_id=message.lead_id,
            auction_id=message.auction_id, sold=sold, buyer_id=message.buyer_id, seller_id=message.seller_id,
            price_cents=message.price_cents, seller_fee_cents=message.seller_fee_cents,
            vertical=message.vertical, state=message.state, county=county, attempts=message.attempts,
            closed_at_ms=message.closed_at_ms, returned=False, submitted_at_ms=submitted_at_ms)
        for buyer_id in message.posted_buyer_ids:
            _insert_later(session, BuyerPosting, lead_id=message.lead_id, buyer_id=buyer_id,
                          posted_at_ms=message.closed_at_ms)
        _count_duplicates(session, message.duplicate_buyer_ids, message.closed_at_ms)
        if sold:
            day = utc_day(message.closed_at_ms)
            market = {"day": day, "vertical": message.vertical, "state": message.state, "county": county}
            _add_to(session, MarketDay, market, {"sales": 1, "total_cents": message.price_cents},
                    also_on_insert={"week": period_start(day, "week"), "month": period_start(day, "month")})
            _book(session, billing.SALE, message.lead_id, message.buyer_id, message.seller_id,
                  message.price_cents, message.seller_fee_cents, message.closed_at_ms)
    lead = _lead(session, message.lead_id)
    lead.seller_id = lead.seller_id or message.seller_id
    if lead.fields is None:
        if message.submitted_at_ms:  # the sale came first: its lead's time (lead.submitted brings the same)
            lead.submitted_at_ms = message.submitted_at_ms
        _fill_from_prospect(session, lead)
    _advance(lead, lead_status.SOLD if sold else lead_status.UNSOLD)


def _fill_from_prospect(session: Session, lead: Row) -> None:
    """A customer of an imported list sold in a list auction was never a lead here: its record is
    the prospect's, so that its buyer can read what it bought like any lead (GET /v1/leads/{id})."""
    prospect = session.get(Prospect, lead.id)
    if prospect is not None:
        lead.fields, lead.vertical, lead.state = dict(prospect.fields or {}), prospect.vertical, prospect.state
        lead.probability, lead.cluster = prospect.probability, prospect.cluster


def _county(lead: Row) -> str:
    """The county of the lead's ZIP."""
    return zip_counties().get(str((lead.fields or {}).get("zip", "")), "")


def _returned(session: Session, message: ev.LeadReturned) -> None:
    if session.get(LeadReturn, (message.lead_id, message.buyer_id)) is None:  # intake's claim; missing on a replay
        session.add(LeadReturn(lead_id=message.lead_id, buyer_id=message.buyer_id, seller_id=message.seller_id,
                               reason=message.reason, price_cents=message.price_cents,
                               seller_fee_cents=message.seller_fee_cents, sold_at_ms=message.sold_at_ms,
                               returned_at_ms=message.returned_at_ms))
    sale = batch_rows.get(session, Sale, (message.lead_id, message.buyer_id))
    if sale is not None:
        sale.returned = True
    _book(session, billing.RETURN, message.lead_id, message.buyer_id, message.seller_id,
          message.price_cents, message.seller_fee_cents, message.returned_at_ms)
    lead = _lead(session, message.lead_id)
    lead.seller_id = lead.seller_id or message.seller_id
    _advance(lead, lead_status.RETURNED)


_APPLY: dict[str, Callable] = {
    topics.LEAD_SUBMITTED: _submitted,
    topics.LEAD_VERIFIED: _verified,
    topics.LEAD_REJECTED: _rejected,
    topics.LEAD_SCORED: _scored,
    topics.AUCTION_OPENED: _auction_opened,
    topics.AUCTION_CLOSED: _auction_closed,
    topics.SALE_CLOSED: _sale_closed,
    topics.LEAD_RETURNED: _returned,
}

_FILLING = frozenset({topics.LEAD_SUBMITTED, topics.LEAD_VERIFIED, topics.LEAD_SCORED})  # take fields_of
MESSAGE_TYPES = {topic: topics.MESSAGE_TYPES[topic] for topic in _APPLY}
