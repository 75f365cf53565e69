"""The dashboard's SQL on SQLite and PostgreSQL: trailing windows at their edges, keyset paging,
lead search by party, and market aggregates equal to a recomputation from the raw sales."""

from __future__ import annotations

from collections import defaultdict
from contextlib import nullcontext

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import delete, event, select

from leadx.contracts import topics
from leadx.contracts.events.v1 import events_pb2 as ev
from leadx.platform.db.models import (
    Lead,
    LeadReturn,
    LedgerEntry,
    LedgerTransaction,
    MarketDay,
    PostAttempt,
    ProcessedEvent,
    Sale,
)
from leadx.platform.db.engine import create_schema, make_engine, one_snapshot, read_session_factory, session_factory
from leadx.platform.kafka.envelope import Envelope
from leadx.platform.utc_days import DAY_MS, period_start, utc_day
from services.ledger import dashboard_queries as q
from services.ledger.recorder import Recorder
from tests.conftest import TEST_KEYRING

NOW = 1_800_000_000_000  # 2027-01-15T08:00:00Z
DAY = DAY_MS
ZIPS = {"10001": ("NY", "New York County"), "90210": ("CA", "Los Angeles County"),
        "60601": ("IL", "Cook County"), "10451": ("NY", "Bronx County")}


def lead_events(lead_id: str, seller: str, zip_code: str, at_ms: int) -> list[Envelope]:
    lead = ev.Lead(lead_id=lead_id, seller_id=seller, vertical="auto_loan", submitted_at_ms=at_ms,
                   fields={"zip": zip_code, "state": ZIPS[zip_code][0]})
    return [Envelope(topics.LEAD_SUBMITTED, lead_id, f"sub-{lead_id}", ev.LeadSubmitted(lead=lead), 0, 0)]


def sale_event(lead_id: str, buyer: str | None, seller: str, price: int, at_ms: int, zip_code: str = "10001",
               vertical: str = "auto_loan") -> Envelope:
    sale = ev.SaleClosed(lead_id=lead_id, auction_id=lead_id, seller_id=seller, vertical=vertical,
                         state=ZIPS[zip_code][0], closed_at_ms=at_ms, attempts=1,
                         outcome=ev.SALE_OUTCOME_SOLD if buyer else ev.SALE_OUTCOME_UNSOLD,
                         buyer_id=buyer or "", price_cents=price if buyer else 0,
                         seller_fee_cents=price // 10 if buyer else 0)
    return Envelope(topics.SALE_CLOSED, lead_id, f"sale-{lead_id}", sale, 0, 0)


def returned(lead_id: str, buyer: str, seller: str, price: int, at_ms: int) -> Envelope:
    back = ev.LeadReturned(lead_id=lead_id, buyer_id=buyer, seller_id=seller, price_cents=price,
                           seller_fee_cents=price // 10, reason="bad", returned_at_ms=at_ms)
    return Envelope(topics.LEAD_RETURNED, lead_id, f"ret-{lead_id}", back, 0, 0)


def record(sessions, *groups) -> None:
    events = [e for group in groups for e in (group if isinstance(group, list) else [group])]
    Recorder(sessions, TEST_KEYRING).apply_many(events)


def test_buyer_windows_include_their_first_millisecond_and_not_the_one_before(sessions):
    record(sessions,
           sale_event("L00000001", "b_1", "s_1", 1000, NOW - DAY),          # in the day window (its edge)
           sale_event("L00000002", "b_1", "s_1", 3000, NOW - DAY - 1),      # a millisecond too old for it
           sale_event("L00000003", "b_1", "s_1", 2001, NOW - 30 * DAY),     # the month's edge
           sale_event("L00000004", "b_1", "s_1", 5000, NOW - 365 * DAY - 1),  # older than a year
           sale_event("L00000005", "b_2", "s_1", 9999, NOW),                # another buyer's
           returned("L00000002", "b_1", "s_1", 3000, NOW))
    with sessions() as session:
        windows, last = q.buyer_summary(session, "b_1", NOW)
    got = {q.WINDOW_NAMES[w.window]: (w.leads_bought, w.average_cost_cents, w.spent_cents, w.returned) for w in windows}
    assert got == {"day": (1, 1000, 1000, 0), "week": (2, 2000, 4000, 1), "month": (3, 2000, 6001, 1),
                   "year": (3, 2000, 6001, 1)}
    assert [b.lead_id for b in last] == ["L00000001", "L00000002", "L00000003", "L00000004"]
    assert [b.returned for b in last] == [False, True, False, False]


def test_the_last_ten_leads_are_the_newest_and_duplicates_count_by_day(sessions):
    record(sessions, *[sale_event(f"L{n:08d}", "b_1", "s_1", 100 + n, NOW - n * 1000) for n in range(12)])
    for n, at_ms in enumerate((NOW, NOW - 3 * DAY)):  # two leads kept from b_1: it had their consumers
        lead = ev.Lead(lead_id=f"D{n:08d}", seller_id="s_1", vertical="auto_loan", submitted_at_ms=at_ms)
        record(sessions, Envelope(topics.LEAD_VERIFIED, lead.lead_id, f"ver-{n}",
                                  ev.LeadVerified(lead=lead, duplicate_buyer_ids=["b_1"]), 0, 0))
    with sessions() as session:
        windows, last = q.buyer_summary(session, "b_1", NOW)
    assert [b.lead_id for b in last] == [f"L{n:08d}" for n in range(10)]
    assert {q.WINDOW_NAMES[w.window]: w.duplicates_rejected for w in windows} == {
        "day": 1, "week": 2, "month": 2, "year": 2}


def test_seller_windows_count_sold_unsold_returned_and_fees(sessions):
    record(sessions,
           sale_event("L00000001", "b_1", "s_1", 1000, NOW - 1),
           sale_event("L00000002", None, "s_1", 0, NOW - 2),
           sale_event("L00000003", "b_2", "s_1", 2000, NOW - 8 * DAY),
           sale_event("L00000004", "b_2", "s_2", 7000, NOW - 1),
           returned("L00000003", "b_2", "s_1", 2000, NOW))
    with sessions() as session:
        windows = {q.WINDOW_NAMES[w.window]: w for w in q.seller_summary(session, "s_1", NOW)}
    assert (windows["day"].sold, windows["day"].unsold, windows["day"].average_price_cents) == (1, 1, 1000)
    month = windows["month"]
    assert (month.sold, month.unsold, month.returned, month.average_price_cents, month.fees_cents) == (
        2, 1, 1, 1500, 300)


def test_transactions_come_newest_first_a_page_at_a_time(sessions):
    record(sessions, *[sale_event(f"L{n:08d}", "b_1", "s_1", 1000, NOW - n * 60_000) for n in range(7)],
           returned("L00000006", "b_1", "s_1", 1000, NOW - 30_000))
    pages, token = [], ""
    with sessions() as session:
        while True:
            rows, token = q.transactions(session, "buyer:b_1", "day", 3, token, NOW)
            pages.append([(r.id, r.account_amount_cents, r.account_balance_after_cents) for r in rows])
            if not token:
                break
        assert [len(p) for p in pages] == [3, 3, 2]
        flat = [row[:2] for page in pages for row in page]
        assert flat[1] == ("return:L00000006:b_1", 1000)
        assert flat[:1] + flat[2:] == [(f"sale:L{n:08d}:b_1", -1000) for n in range(7)]
        # The balance after each, carried across the pages: seven purchases, one returned.
        balances = [row[2] for page in pages for row in page]
        assert balances == [-6000, -5000, -6000, -5000, -4000, -3000, -2000, -1000]
        seller_rows, _ = q.transactions(session, "seller:s_1", "day", 50, "", NOW)
        assert {r.account_amount_cents for r in seller_rows} == {900, -900}
        assert seller_rows[0].account_balance_after_cents == 7 * 900 - 900
        assert seller_rows[-1].account_balance_after_cents == seller_rows[-1].account_amount_cents
        every = q.transactions(session, None, "day", 50, "", NOW)[0]
        assert len(every) == 8 and {r.account_balance_after_cents for r in every} == {0}  # no account asked
        with pytest.raises(q.BadRequest):
            q.transactions(session, "buyer:b_1", "day", 3, "not-a-token", NOW)


def test_lead_search_shows_a_party_only_its_own_leads(sessions):
    record(sessions, lead_events("L00000001", "s_1", "10001", NOW - 5),
           lead_events("L00000002", "s_1", "90210", NOW - 4), lead_events("L00000003", "s_2", "10001", NOW - 3),
           sale_event("L00000001", "b_1", "s_1", 1000, NOW - 2), sale_event("L00000002", None, "s_1", 0, NOW - 2),
           sale_event("L00000003", "b_2", "s_2", 1000, NOW - 1))

    def ids(**kwargs) -> list[str]:
        with sessions() as session:
            base = {"seller_id": None, "buyer_id": None, "lead_id": "", "day": "", "state": "", "status": "",
                    "size": 50, "token": ""}
            return [r.lead_id for r in q.search_leads(session, **(base | kwargs))[0]]
    assert ids(seller_id="s_1") == ["L00000002", "L00000001"]
    assert ids(buyer_id="b_1") == ["L00000001"]
    assert ids(buyer_id="b_1", lead_id="L00000003") == []  # not its lead: as if it did not exist
    assert ids(seller_id="s_1", state="ca") == ["L00000002"]
    assert ids(seller_id="s_1", status="unsold") == ["L00000002"]
    assert ids(day="2027-01-15") == ["L00000003", "L00000002", "L00000001"]
    assert ids(day="2027-01-14") == []
    assert ids(day="2027-01-14", to_day="2027-01-15") == ["L00000003", "L00000002", "L00000001"]
    assert ids(day="2027-01-13", to_day="2027-01-14") == []
    assert ids(seller_id="s_1", day="2026-01-15", to_day="2027-01-15") == ["L00000002", "L00000001"]  # 366 days
    for bad in ({"day": "yesterday"}, {"status": "lost"}, {"to_day": "2027-01-15"},
                {"day": "2027-01-15", "to_day": "2027-01-14"}, {"day": "2027-01-14", "to_day": "next week"},
                {"day": "2026-01-14", "to_day": "2027-01-15"}):
        with pytest.raises(q.BadRequest):
            ids(**bad)


@pytest.mark.parametrize("day, period, start", [
    ("2027-01-15", "day", "2027-01-15"), ("2027-01-17", "week", "2027-01-11"), ("2027-01-11", "week", "2027-01-11"),
    ("2027-01-10", "week", "2027-01-04"), ("2027-01-31", "month", "2027-01-01"), ("2027-02-01", "month", "2027-02-01")])
def test_periods_start_on_the_day_the_monday_and_the_first(day, period, start):
    assert period_start(day, period) == start


sales_strategy = st.lists(st.tuples(st.sampled_from(sorted(ZIPS)), st.sampled_from(["auto_loan", "auto_insurance"]),
                                    st.integers(0, 90), st.integers(1, 100_000)), min_size=1, max_size=60)
RUN = iter(range(100_000))


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(sales=sales_strategy, period=st.sampled_from(["day", "week", "month"]), by_county=st.booleans())
def test_market_prices_equal_a_recomputation_from_the_raw_sales(sessions, sales, period, by_county):
    with sessions.begin() as session:
        for model in (Sale, MarketDay, Lead, ProcessedEvent, LedgerEntry, LedgerTransaction, LeadReturn):
            session.execute(delete(model))
    run = next(RUN)
    events = []
    for i, (zip_code, vertical, days_ago, price) in enumerate(sales):
        lead_id = f"M{run:04d}{i:05d}"
        events += lead_events(lead_id, "s_1", zip_code, NOW - days_ago * DAY)
        events.append(sale_event(lead_id, "b_1", "s_1", price, NOW - days_ago * DAY - i, zip_code, vertical))
    record(sessions, events)
    from_day, to_day = utc_day(NOW - 60 * DAY), utc_day(NOW)
    with sessions() as session:
        got = q.market_prices(session, period, from_day, to_day, by_county=by_county)
        expected: dict[tuple, list[int]] = defaultdict(lambda: [0, 0])
        for sale in session.scalars(select(Sale)):
            day = utc_day(sale.closed_at_ms)
            if from_day <= day <= to_day:
                key = (period_start(day, period), sale.vertical, sale.state, sale.county if by_county else "")
                expected[key][0] += 1
                expected[key][1] += sale.price_cents
    assert [(p.period_start, p.vertical, p.state, p.county, p.sales, p.total_cents) for p in got] == [
        (*key, n, total) for key, (n, total) in sorted(expected.items())]
    assert all(p.average_price_cents == q.average(p.total_cents, p.sales) for p in got)
    if by_county:
        assert {p.county for p in got} <= {county for _, county in ZIPS.values()}


def test_market_filters_and_default_range(sessions):
    record(sessions, lead_events("L00000001", "s_1", "10451", NOW),
           sale_event("L00000001", "b_1", "s_1", 1001, NOW, "10451"),
           lead_events("L00000002", "s_1", "10001", NOW), sale_event("L00000002", "b_1", "s_1", 2000, NOW, "10001"),
           sale_event("L00000003", "b_1", "s_1", 5000, NOW - 40 * DAY, "10001"))
    with sessions() as session:
        county = q.market_prices(session, "month", "", utc_day(NOW), county="Bronx County", by_county=True)
        assert [(p.county, p.sales, p.average_price_cents) for p in county] == [("Bronx County", 1, 1001)]
        state = q.market_prices(session, "day", "", utc_day(NOW), state="ny")
        assert [(p.sales, p.average_price_cents) for p in state] == [(2, 1501)]  # 1500.5 rounds up; 40 days ago is out
        with pytest.raises(q.BadRequest):
            q.market_prices(session, "day", "2027-13-01", utc_day(NOW))


def test_a_lead_is_read_whole_by_its_parties_and_by_nobody_else(sessions):
    record(sessions, lead_events("L00000001", "s_1", "10001", NOW - 50),
           sale_event("L00000001", "b_1", "s_1", 3000, NOW - 20), returned("L00000001", "b_1", "s_1", 3000, NOW - 10))
    with sessions() as session:
        session.add(PostAttempt(auction_id="L00000001", lead_id="L00000001", buyer_id="b_1", sent_at_ms=NOW - 30,
                                content_type="application/json", request_body="{}", connects=1, status=200,
                                response_body="ok", latency_ms=42, outcome="accepted", detail=""))
        session.commit()
        buyer = q.lead_detail(session, "L00000001", buyer_id="b_1")
        seller = q.lead_detail(session, "L00000001", seller_id="s_1")
        admin = q.lead_detail(session, "L00000001")
        # Another buyer, another seller and a lead that does not exist look the same: nothing.
        assert q.lead_detail(session, "L00000001", buyer_id="b_2") is None
        assert q.lead_detail(session, "L00000001", seller_id="s_2") is None
        assert q.lead_detail(session, "L00000009") is None
    assert buyer is not None and seller is not None and admin is not None
    # The consumer's fields go to the buyer that bought the lead only.
    assert {f.name: f.value for f in buyer.fields}["zip"] == "10001"
    assert list(seller.fields) == [] and list(admin.fields) == []
    assert [c.status for c in seller.history] == ["submitted", "sold", "returned"]
    assert seller.history[-1].detail == "bad"  # the return's reason
    assert [(s.rank, s.buyer_id, s.price_cents, s.fee_cents) for s in seller.sales] == [(1, "b_1", 3000, 300)]
    assert [(s.yours, s.fee_cents) for s in buyer.sales] == [(True, 0)]  # a buyer is not shown the fee
    assert [(p.http_status, p.outcome, p.latency_ms, p.yours) for p in buyer.posts] == [(200, "accepted", 42, True)]
    assert not buyer.returnable  # returned once: never again


def test_a_buyer_reads_the_other_buyers_of_a_shared_lead_unnamed(sessions):
    record(sessions, lead_events("L00000002", "s_1", "10001", NOW - 50))
    with sessions() as session:
        for buyer, price in (("b_1", 2000), ("b_2", 2500)):
            session.add(Sale(lead_id="L00000002", buyer_id=buyer, auction_id="A1", sold=True, seller_id="s_1",
                             price_cents=price, seller_fee_cents=price // 10, vertical="auto_loan", state="NY",
                             attempts=1, closed_at_ms=NOW - 5))
            session.add(PostAttempt(auction_id="A1", lead_id="L00000002", buyer_id=buyer, sent_at_ms=NOW - 6,
                                    content_type="application/json", request_body="{}", connects=1, status=200,
                                    response_body="ok", latency_ms=5, outcome="accepted", detail=""))
        session.commit()
        one = q.lead_detail(session, "L00000002", buyer_id="b_1")
        admin = q.lead_detail(session, "L00000002")
    assert one is not None and admin is not None
    assert [(s.rank, s.buyer_id, s.yours) for s in one.sales] == [(1, "", False), (2, "b_1", True)]
    assert {p.buyer_id for p in one.posts} == {"", "b_1"}
    assert one.returnable
    assert [s.buyer_id for s in admin.sales] == ["b_2", "b_1"]


def auction_events(lead_id: str, bids: list[tuple[str, int, int]], at_ms: int) -> list[Envelope]:
    """The lead's auction opened and closed with ranked bids (buyer, bid, pays)."""
    opened = ev.AuctionOpened(auction_id=f"A{lead_id}", lead_id=lead_id, offered_buyer_ids=["b_1", "b_2", "b_3"],
                              opened_at_ms=at_ms, closes_at_ms=at_ms + 3000)
    closed = ev.AuctionClosed(auction_id=f"A{lead_id}", lead=ev.Lead(lead_id=lead_id), closed_at_ms=at_ms + 3001,
                              bids_received=len(bids) + 1,
                              ranked_bids=[ev.RankedBid(buyer_id=buyer, bid_cents=bid, amount_cents=pays, rank=rank)
                                           for rank, (buyer, bid, pays) in enumerate(bids, start=1)])
    return [Envelope(topics.AUCTION_OPENED, lead_id, f"open-{lead_id}", opened, 0, 0),
            Envelope(topics.AUCTION_CLOSED, lead_id, f"close-{lead_id}", closed, 0, 0)]


def test_a_leads_auction_shows_its_ranked_bids_with_the_other_bidders_unnamed_for_a_buyer(sessions):
    record(sessions, lead_events("L00000003", "s_1", "10001", NOW - 9000),
           auction_events("L00000003", [("b_2", 2500, 2001), ("b_1", 2000, 2000)], NOW - 8000),
           sale_event("L00000003", "b_2", "s_1", 2001, NOW - 4000))
    with sessions() as session:
        winner = q.lead_detail(session, "L00000003", buyer_id="b_2")
        seller = q.lead_detail(session, "L00000003", seller_id="s_1")
        assert q.lead_detail(session, "L00000003", buyer_id="b_1") is None  # a losing bidder is not a party
    (auction,) = seller.auctions
    assert (auction.offered_buyers, auction.bids_received, auction.closed_at_ms) == (3, 3, NOW - 4999)
    assert [(b.rank, b.buyer_id, b.bid_cents, b.amount_cents) for b in auction.bids] == [
        (1, "b_2", 2500, 2001), (2, "b_1", 2000, 2000)]
    assert [(b.rank, b.buyer_id, b.bid_cents, b.yours) for b in winner.auctions[0].bids] == [
        (1, "b_2", 2500, True), (2, "", 2000, False)]  # the other bidder's amount, not its name


@pytest.mark.parametrize("snapshot", [True, False], ids=["one snapshot", "statement by statement"])
def test_a_lead_read_while_its_sale_is_committed_never_shows_the_sale_beside_the_lead_in_auction(database_url,
                                                                                                  snapshot):
    """GetLead reads the lead, then its sales, in statements of their own. The ledger commits the
    sale (lead sold, sale row) between the two here: in one snapshot the read is the lead before
    its sale, whole; statement by statement (autocommit reads) it is the sold sale beside a lead
    still in auction, which is what one_snapshot is for."""
    engine = make_engine(database_url)
    create_schema(engine)
    sessions, reads = session_factory(engine), read_session_factory(engine)
    record(sessions, lead_events("L00000004", "s_1", "10001", NOW - 9000),
           auction_events("L00000004", [("b_1", 2000, 2000)], NOW - 8000))
    committed = []

    def sale_committed_between(connection, _cursor, statement, *_args) -> None:
        if not committed and "FROM sales" in statement:
            committed.append(True)
            record(sessions, sale_event("L00000004", "b_1", "s_1", 2000, NOW - 4000))

    event.listen(engine, "before_cursor_execute", sale_committed_between)
    try:
        with reads() as session, one_snapshot(session) if snapshot else nullcontext():
            detail = q.lead_detail(session, "L00000004")
    finally:
        event.remove(engine, "before_cursor_execute", sale_committed_between)
        engine.dispose()
    assert committed and detail is not None
    sold = [s.buyer_id for s in detail.sales if s.sold]
    if snapshot:
        assert (detail.status, sold) == ("in_auction", [])  # as it was when the read began
    else:
        assert (detail.status, sold) == ("in_auction", ["b_1"])  # the inconsistency one_snapshot prevents


def test_one_snapshot_takes_read_sessions_only(sessions):
    """In a session_factory transaction a statement may already have run: its BEGIN would come late."""
    with sessions() as session, pytest.raises(TypeError, match="read session"), one_snapshot(session):
        pass


def test_a_sellers_return_notices_are_its_own_newest_first_with_the_unread_counted(sessions):
    record(sessions, sale_event("L00000001", "b_1", "s_1", 1000, NOW - 50),
           sale_event("L00000002", "b_1", "s_1", 2000, NOW - 40), sale_event("L00000003", "b_1", "s_2", 3000, NOW - 30),
           returned("L00000001", "b_1", "s_1", 1000, NOW - 20), returned("L00000002", "b_1", "s_1", 2000, NOW - 10),
           returned("L00000003", "b_1", "s_2", 3000, NOW - 5))
    with sessions() as session:
        notices, unread = q.return_notices(session, "s_1", NOW - 15, 10)
        assert q.return_notices(session, "s_1", 0, 1)[1] == 2
        assert q.return_notices(session, "s_3", 0, 10) == ([], 0)
    assert [(n.lead_id, n.reason, n.price_cents) for n in notices] == [("L00000002", "bad", 2000),
                                                                       ("L00000001", "bad", 1000)]
    assert unread == 1
