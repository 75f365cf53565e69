"""Money is conserved: over thousands of random sales and returns, delivered in random batches and
redelivered at random, the ledger's entries always sum to zero, every balance equals the sum of its
entries, and each account holds exactly what its unreturned sales say it should."""

from __future__ import annotations

import threading
from collections import Counter
from concurrent.futures import ThreadPoolExecutor

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import delete, func, select

from leadx.contracts import topics
from leadx.contracts.events.v1 import events_pb2 as ev
from leadx.ledger import billing
from leadx.ledger.reports import balances
from leadx.platform.db.models import AccountBalance, LedgerEntry, LedgerTransaction
from leadx.platform.kafka.envelope import Envelope
from services.ledger import recorder as recorder_module
from services.ledger.recorder import Recorder
from tests.conftest import TEST_KEYRING

BUYERS = ["b_1", "b_2", "b_3"]
SELLERS = ["s_1", "s_2"]

sale_specs = st.lists(st.tuples(st.sampled_from(BUYERS), st.sampled_from(SELLERS),
                                st.integers(0, 50_000), st.sampled_from([0, 5, 10, 12.5, 33.3, 100]),
                                st.booleans()),  # returned?
                      min_size=1, max_size=80)


def _events(specs, run: int) -> tuple[list[Envelope], Counter]:
    events, expected = [], Counter()
    for i, (buyer, seller, price, percent, returned) in enumerate(specs):
        lead_id = f"R{run:04d}{i:05d}"
        fee = billing.seller_fee(price, percent)
        sale = ev.SaleClosed(lead_id=lead_id, auction_id=lead_id, outcome=ev.SALE_OUTCOME_SOLD, buyer_id=buyer,
                             seller_id=seller, price_cents=price, seller_fee_cents=fee, vertical="auto_loan",
                             state="NY", attempts=1, closed_at_ms=1_000 + i)
        events.append(Envelope(topics.SALE_CLOSED, lead_id, f"sale-{lead_id}", sale, 0, i))
        if returned:
            back = ev.LeadReturned(lead_id=lead_id, auction_id=lead_id, buyer_id=buyer, seller_id=seller,
                                   price_cents=price, seller_fee_cents=fee, reason="bad", sold_at_ms=1_000 + i,
                                   returned_at_ms=2_000 + i)
            events.append(Envelope(topics.LEAD_RETURNED, lead_id, f"return-{lead_id}", back, 1, i))
        else:
            expected[billing.buyer_account(buyer)] -= price
            expected[billing.seller_account(seller)] += price - fee
            expected[billing.PLATFORM_FEES] += fee
    return events, expected


RUNS = iter(range(10_000))


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(specs=sale_specs, batch_sizes=st.lists(st.integers(1, 20), min_size=1, max_size=10),
       redelivered=st.lists(st.integers(0, 200), max_size=30))
def test_money_is_conserved_over_random_sales_returns_and_redeliveries(sessions, specs, batch_sizes,
                                                                          redelivered):
    with sessions.begin() as session:
        for model in (LedgerEntry, LedgerTransaction, AccountBalance):
            session.execute(delete(model))
    events, expected = _events(specs, next(RUNS))
    # Redeliveries: some events again, anywhere after their first delivery.
    stream = list(events)
    for n in redelivered:
        stream.append(events[n % len(events)])
    recorder = Recorder(sessions, TEST_KEYRING)
    at, size = 0, iter(batch_sizes * (len(stream) // len(batch_sizes) + 1))
    while at < len(stream):
        batch = stream[at:at + next(size)]
        recorder.apply_many(batch)
        at += len(batch)
        _assert_books_balance(sessions)
    with sessions() as session:
        assert {a: b for a, b in balances(session).items() if b} == {a: b for a, b in expected.items() if b}
        transactions = session.scalar(select(func.count()).select_from(LedgerTransaction))
        assert transactions == len(events)  # each sale and return booked exactly once


def _assert_books_balance(sessions) -> None:
    with sessions() as session:
        assert session.scalar(select(func.coalesce(func.sum(LedgerEntry.amount_cents), 0))) == 0
        by_entries = dict(session.execute(select(LedgerEntry.account, func.sum(LedgerEntry.amount_cents))
                                          .group_by(LedgerEntry.account)).all())
        assert balances(session) == by_entries
        for transaction_id, total in session.execute(select(LedgerEntry.transaction_id,
                                                            func.sum(LedgerEntry.amount_cents))
                                                     .group_by(LedgerEntry.transaction_id)):
            assert total == 0, transaction_id


def test_two_ledger_replicas_booking_at_once_do_not_deadlock(sessions, monkeypatch):
    """Two replicas' batches touch shared balances (the platform's, two sellers') in opposite
    orders. The balances are written in one fixed order at the end of each transaction, so they
    lock the rows alike and neither waits on the other for ever: on PostgreSQL, written in the
    order first touched, one of the two is aborted as a deadlock."""
    def batch(name: str, sellers: list[str], state: str) -> list[Envelope]:
        return [Envelope(topics.SALE_CLOSED, f"{name}{i:05d}", f"{name}-{i}", ev.SaleClosed(
            lead_id=f"{name}{i:05d}", auction_id=f"{name}{i:05d}", outcome=ev.SALE_OUTCOME_SOLD,
            buyer_id=f"b_{name}", seller_id=sellers[i % 2], price_cents=1000, seller_fee_cents=100,
            vertical="auto_loan", state=state, attempts=1, closed_at_ms=1_000), 0, i) for i in range(200)]

    if sessions.kw["bind"].dialect.name == "postgresql":
        # Both transactions reach their balance writes together (SQLite has one writer at a time,
        # so there the second simply waits for the first).
        together = threading.Barrier(2, timeout=20)
        write_counters = recorder_module._write_counters

        def write_together(session) -> None:
            together.wait()
            write_counters(session)
        monkeypatch.setattr(recorder_module, "_write_counters", write_together)
    recorder = Recorder(sessions, TEST_KEYRING)
    with ThreadPoolExecutor(max_workers=2) as pool:
        runs = [pool.submit(recorder.apply_many, batch(name, sellers, state))
                for name, sellers, state in (("DA", ["s_1", "s_2"], "NY"), ("DB", ["s_2", "s_1"], "CA"))]
        assert [sum(run.result(timeout=60)) for run in runs] == [200, 200]
    with sessions() as session:
        found = balances(session)
    assert found["platform:fees"] == 400 * 100 and found["seller:s_1"] == found["seller:s_2"] == 200 * 900
    assert sum(found.values()) == 0
