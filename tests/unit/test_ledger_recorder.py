"""The ledger's recorder on SQLite and PostgreSQL: life cycle, idempotency, out-of-order events."""

from __future__ import annotations

import asyncio
import time
from collections import Counter

from sqlalchemy import event as sql_event
from sqlalchemy import func, select

from leadx.contracts import topics
from leadx.contracts.events.v1 import events_pb2 as ev
from leadx.platform.db.models import (
    AccountBalance,
    Auction,
    AuctionBid,
    AuctionOffer,
    BuyerDuplicateDay,
    BuyerPosting,
    Lead,
    LedgerTransaction,
    Sale,
)
from leadx.platform.kafka.envelope import Envelope
from services.ledger.recorder import Recorder, utc_day
from tests.conftest import TEST_KEYRING

LEAD = ev.Lead(lead_id="LEAD000001", seller_id="s_1", vertical="auto_loan", min_price_cents=500,
               submitted_at_ms=1_000, fields={"state": "NY", "zip": "10001", "email": "a@b.com"},
               seller_reference="order-17")


def envelope(topic: str, message, event_id: str) -> Envelope:
    return Envelope(topic=topic, key=LEAD.lead_id, event_id=event_id, message=message, partition=0, offset=0)


def life_cycle(lead_id: str = LEAD.lead_id) -> list[Envelope]:
    """A sold lead's events; for another lead than LEAD with its own event ids."""
    lead = ev.Lead()
    lead.CopyFrom(LEAD)
    lead.lead_id = lead_id
    verified = ev.LeadVerified(lead=lead)
    ids = ("e1", "e2", "e3", "e4", "e5") if lead_id == LEAD.lead_id else tuple(f"{lead_id}-e{n}" for n in range(1, 6))
    return [Envelope(topic=topic, key=lead_id, event_id=event_id, message=message, partition=0, offset=0)
            for event_id, (topic, message) in zip(ids, [
        (topics.LEAD_SUBMITTED, ev.LeadSubmitted(lead=lead)),
        (topics.LEAD_VERIFIED, verified),
        (topics.LEAD_SCORED, ev.LeadScored(verified=verified, probability=0.3, cluster="renter-new")),
        (topics.AUCTION_OPENED, ev.AuctionOpened(auction_id=lead_id, lead_id=lead_id, offered_buyer_ids=["b_1", "b_2"],
                                                 opened_at_ms=2_000, closes_at_ms=5_000)),
        (topics.SALE_CLOSED, ev.SaleClosed(lead_id=lead_id, auction_id=lead_id, outcome=ev.SALE_OUTCOME_SOLD,
                                           buyer_id="b_2", price_cents=1500, seller_fee_cents=150, seller_id="s_1",
                                           vertical="auto_loan", state="NY", attempts=1, closed_at_ms=6_000)),
    ], strict=True)]


def test_a_full_life_cycle_ends_sold(sessions):
    recorder = Recorder(sessions, TEST_KEYRING)
    assert [recorder.apply(e) for e in life_cycle()] == [True] * 5
    with sessions() as session:
        lead = session.get(Lead, LEAD.lead_id)
        assert (lead.status, lead.seller_id, lead.cluster) == ("sold", "s_1", "renter-new")
        assert lead.fields["email"] == "a@b.com"
        sale = session.scalars(select(Sale).where(Sale.lead_id == LEAD.lead_id)).one()
        assert (sale.sold, sale.buyer_id, sale.price_cents, sale.seller_fee_cents) == (True, "b_2", 1500, 150)
        assert session.get(Auction, LEAD.lead_id).offered_buyers == 2


def test_a_redelivered_event_changes_nothing(sessions):
    recorder = Recorder(sessions, TEST_KEYRING)
    events = life_cycle()
    recorder.apply_many(events)
    assert recorder.apply(events[-1]) is False
    assert recorder.apply_many(events) == [False] * 5
    with sessions() as session:
        assert session.scalar(select(func.count()).select_from(Sale)) == 1


def test_a_repeat_inside_one_batch_is_applied_once(sessions):
    events = life_cycle()
    recorder = Recorder(sessions, TEST_KEYRING)
    assert recorder.apply_many([events[0], events[0], events[4], events[4]]) == [True, False, True, False]


def test_events_out_of_order_still_end_in_the_right_state(sessions):
    recorder = Recorder(sessions, TEST_KEYRING)
    for event in reversed(life_cycle()):
        recorder.apply(event)
    with sessions() as session:
        lead = session.get(Lead, LEAD.lead_id)
        assert lead.status == "sold" and lead.seller_id == "s_1" and lead.vertical == "auto_loan"
        assert lead.fields["zip"] == "10001"


def test_a_duplicate_rejection_keeps_its_internal_reason(sessions):
    recorder = Recorder(sessions, TEST_KEYRING)
    recorder.apply(life_cycle()[0])
    recorder.apply(envelope(topics.LEAD_REJECTED, ev.LeadRejected(
        lead_id=LEAD.lead_id, seller_id="s_1", reason=ev.REJECTION_REASON_DUPLICATE,
        internal_detail="platform duplicate on email"), "r1"))
    with sessions() as session:
        lead = session.get(Lead, LEAD.lead_id)
        assert (lead.status, lead.rejection_detail) == ("duplicate", "platform duplicate on email")


def test_stalled_leads_are_claimed_once_and_rebuilt_whole(sessions):
    from services.ledger.redrive import RedrivePolicy, claim_stalled

    recorder = Recorder(sessions, TEST_KEYRING)
    events = life_cycle()
    recorder.apply_many(events[:3])  # submitted, verified, scored: then nothing happens
    policy = RedrivePolicy(stall_after_ms=10_000, max_redrives=2)
    with sessions() as session:
        scored_at = session.get(Lead, LEAD.lead_id).updated_at_ms

    assert claim_stalled(sessions, policy, now_ms=scored_at + 5_000) == []  # not stalled yet
    claimed = claim_stalled(sessions, policy, now_ms=scored_at + 20_000)
    assert [lead.lead_id for lead in claimed] == [LEAD.lead_id]
    assert claimed[0].seller_id == "s_1" and claimed[0].fields["email"] == "a@b.com"
    assert claimed[0].min_price_cents == 500 and claimed[0].submitted_at_ms == 1_000
    assert claimed[0] == LEAD  # rebuilt whole, the seller's reference included
    assert claim_stalled(sessions, policy, now_ms=scored_at + 21_000) == []  # claimed: waits a new stall
    assert len(claim_stalled(sessions, policy, now_ms=scored_at + 40_000)) == 1
    assert claim_stalled(sessions, policy, now_ms=scored_at + 90_000) == []  # max_redrives reached


def test_stalled_leads_are_claimed_in_id_order_as_the_ledger_locks_leads(sessions):
    """The oldest stall first would lock rows in another order than the recorder's batches, which
    lock leads in id order: on PostgreSQL a sweep and a batch could then deadlock."""
    from services.ledger.redrive import RedrivePolicy, claim_stalled

    recorder = Recorder(sessions, TEST_KEYRING)
    for lead_id in ("LEAD000030", "LEAD000010", "LEAD000020"):  # stalled in this order
        recorder.apply(envelope(topics.LEAD_SUBMITTED, ev.LeadSubmitted(lead=ev.Lead(
            lead_id=lead_id, seller_id="s_1", vertical="auto_loan", submitted_at_ms=1_000,
            fields={"zip": "10001"})), f"sub-{lead_id}"))
        time.sleep(0.002)  # each its own updated_at_ms
    with sessions() as session:
        stalled_at = max(lead.updated_at_ms for lead in session.scalars(select(Lead)))
    claimed_ids = []

    def claim_seen(_connection, _cursor, statement, parameters, *_args) -> None:
        if statement.lstrip().upper().startswith("UPDATE LEADS"):
            claimed_ids.append(next(value for value in (parameters.values() if isinstance(parameters, dict)
                                                        else parameters) if str(value).startswith("LEAD")))

    engine = sessions.kw["bind"]
    sql_event.listen(engine, "before_cursor_execute", claim_seen)
    try:
        claimed = claim_stalled(sessions, RedrivePolicy(stall_after_ms=10_000), now_ms=stalled_at + 20_000)
    finally:
        sql_event.remove(engine, "before_cursor_execute", claim_seen)
    assert claimed_ids == ["LEAD000010", "LEAD000020", "LEAD000030"]
    assert sorted(lead.lead_id for lead in claimed) == claimed_ids


def test_a_lead_in_auction_is_stalled_only_after_its_close_and_a_sold_lead_never(sessions):
    from services.ledger.redrive import RedrivePolicy, claim_stalled

    recorder = Recorder(sessions, TEST_KEYRING)
    events = life_cycle()
    recorder.apply_many(events[:4])  # the auction closes at 5_000 (ms since the epoch, in the past)
    policy = RedrivePolicy(stall_after_ms=10_000)
    with sessions() as session:
        opened_at = session.get(Lead, LEAD.lead_id).updated_at_ms
    assert len(claim_stalled(sessions, policy, now_ms=opened_at + 11_000)) == 1
    recorder.apply(events[4])  # sold
    assert claim_stalled(sessions, policy, now_ms=opened_at + 10**9) == []


def test_a_re_driven_direct_sale_stays_a_direct_sale(sessions):
    from services.ledger.redrive import RedrivePolicy, claim_stalled

    direct = ev.Lead(lead_id="LEAD000009", seller_id="s_1", vertical="auto_loan", min_price_cents=2000,
                     direct_buyer_id="b_contracted", submitted_at_ms=1_000, fields={"zip": "10001"})
    Recorder(sessions, TEST_KEYRING).apply(Envelope(topic=topics.LEAD_SUBMITTED, key=direct.lead_id, event_id="d1",
                                      message=ev.LeadSubmitted(lead=direct), partition=0, offset=0))
    with sessions() as session:
        submitted_at = session.get(Lead, direct.lead_id).updated_at_ms
    claimed = claim_stalled(sessions, RedrivePolicy(stall_after_ms=10_000), now_ms=submitted_at + 11_000)
    # Without its buyer it would be re-driven into an open auction at the contract price.
    assert claimed == [direct]


DAY_MS = 24 * 3600 * 1000


def test_buyers_posted_to_and_duplicates_kept_from_buyers_are_recorded(sessions):
    recorder = Recorder(sessions, TEST_KEYRING)
    late = 1_800_000_000_000  # 2027-01-15, UTC
    verified = ev.LeadVerified(lead=LEAD, duplicate_buyer_ids=["b_3", "b_4"])
    sale = ev.SaleClosed(lead_id=LEAD.lead_id, auction_id=LEAD.lead_id, outcome=ev.SALE_OUTCOME_SOLD,
                         buyer_id="b_2", price_cents=900, seller_id="s_1", vertical="auto_loan", attempts=2,
                         closed_at_ms=late, posted_buyer_ids=["b_1", "b_2"], duplicate_buyer_ids=["b_3"])
    recorder.apply_many([envelope(topics.LEAD_VERIFIED, verified, "v1"),
                         envelope(topics.SALE_CLOSED, sale, "s1")])
    recorder.apply(envelope(topics.SALE_CLOSED, sale, "s1"))  # redelivered: counted once
    other = ev.LeadVerified(lead=ev.Lead(lead_id="LEAD000002", submitted_at_ms=late + DAY_MS),
                            duplicate_buyer_ids=["b_3"])
    recorder.apply(envelope(topics.LEAD_VERIFIED, other, "v2"))
    with sessions() as session:
        postings = {(p.buyer_id, p.posted_at_ms) for p in session.scalars(select(BuyerPosting))}
        counts = {(d.buyer_id, d.day): d.duplicates for d in session.scalars(select(BuyerDuplicateDay))}
    assert postings == {("b_1", late), ("b_2", late)}
    assert counts == {("b_3", utc_day(LEAD.submitted_at_ms)): 1, ("b_4", utc_day(LEAD.submitted_at_ms)): 1,
                      ("b_3", "2027-01-15"): 1, ("b_3", "2027-01-16"): 1}


def test_a_rejected_lead_keeps_its_internal_reason_seller_and_time(sessions):
    recorder = Recorder(sessions, TEST_KEYRING)
    rejected = ev.LeadRejected(lead_id=LEAD.lead_id, seller_id="s_1", reason=ev.REJECTION_REASON_DUPLICATE,
                               internal_detail="platform duplicate on email", rejected_at_ms=4_242)
    recorder.apply(envelope(topics.LEAD_REJECTED, rejected, "r1"))
    with sessions() as session:
        lead = session.get(Lead, LEAD.lead_id)
        assert (lead.status, lead.seller_id, lead.rejection_detail, lead.rejected_at_ms) == (
            "duplicate", "s_1", "platform duplicate on email", 4_242)


def test_a_list_sale_of_an_imported_customer_records_it_like_a_lead_from_the_prospect(sessions):
    from leadx.platform.db.models import Prospect

    with sessions.begin() as session:
        session.add(Prospect(id="PROSPECT01", vertical="auto_loan", seller_id="s_1", source="import",
                             source_name="list.csv", fields={"zip": "10001", "ssn": "123-45-6789"}, state="NY",
                             probability=0.12, propensity=0.3, cluster="c4", model_version="v1",
                             consumer_since_ms=1_000, added_at_ms=1_000))
    sold = ev.SaleClosed(lead_id="PROSPECT01", auction_id="LISTAUCT01", outcome=ev.SALE_OUTCOME_SOLD, buyer_id="b_1",
                         price_cents=400, seller_fee_cents=40, seller_id="s_1", vertical="auto_loan", state="NY",
                         closed_at_ms=9_000)
    assert Recorder(sessions, TEST_KEYRING).apply(Envelope(topic=topics.SALE_CLOSED, key="PROSPECT01",
                                                           event_id="list-1", message=sold, partition=0, offset=0))
    with sessions() as session:
        lead = session.get(Lead, "PROSPECT01")
        assert (lead.status, lead.vertical, lead.state, lead.cluster) == ("sold", "auto_loan", "NY", "c4")
        assert lead.fields["ssn"] == "123-45-6789"  # its buyer reads it like a lead it bought
        assert session.get(Sale, ("PROSPECT01", "b_1")).price_cents == 400


def sealed_copy(lead: ev.Lead) -> ev.Lead:
    copy = ev.Lead()
    copy.CopyFrom(lead)
    return TEST_KEYRING.seal(copy)


def test_a_sealed_lead_is_stored_whole_whichever_event_brings_it_first(sessions):
    sealed = sealed_copy(LEAD)
    assert "email" not in sealed.fields and sealed.HasField("sealed")
    recorder = Recorder(sessions, TEST_KEYRING)
    # lead.scored may arrive before lead.submitted: it fills the lead too, opened the same way.
    recorder.apply(envelope(topics.LEAD_SCORED, ev.LeadScored(verified=ev.LeadVerified(lead=sealed)), "s3"))
    recorder.apply(envelope(topics.LEAD_SUBMITTED, ev.LeadSubmitted(lead=sealed), "s1"))
    with sessions() as session:
        assert session.get(Lead, LEAD.lead_id).fields == dict(LEAD.fields)
    assert "email" not in sealed.fields  # the event itself is left as it came


def test_a_stalled_lead_goes_back_on_the_topic_sealed(sessions):
    from services.ledger.redrive import RedrivePolicy, StallRedriver

    Recorder(sessions, TEST_KEYRING).apply_many(life_cycle()[:3])

    class Published(list):
        async def publish(self, topic, key, message, event_id):
            self.append((topic, message))

    published = Published()
    redriver = StallRedriver(sessions, published, TEST_KEYRING, RedrivePolicy(stall_after_ms=-10_000_000))
    assert asyncio.run(redriver.sweep()) == 1
    (topic, message), = published
    assert topic == topics.LEAD_SUBMITTED and "email" not in message.lead.fields
    assert TEST_KEYRING.fields_of(message.lead) == dict(LEAD.fields)


def closed(event_id: str, bids: list[tuple[str, int, int]], closed_at_ms: int = 5_001) -> Envelope:
    """auction.closed of LEAD's auction with ranked bids (buyer, bid, pays), and one more bid
    received under the seller's minimum."""
    ranked = [ev.RankedBid(buyer_id=buyer, bid_cents=bid, amount_cents=pays, rank=rank, weight=1.0)
              for rank, (buyer, bid, pays) in enumerate(bids, start=1)]
    return envelope(topics.AUCTION_CLOSED, ev.AuctionClosed(auction_id=LEAD.lead_id, lead=LEAD, ranked_bids=ranked,
                                                            closed_at_ms=closed_at_ms, bids_received=len(bids) + 1),
                    event_id)


def ranked_bids(session) -> list[tuple]:
    return [(b.rank, b.buyer_id, b.bid_cents, b.amount_cents)
            for b in session.scalars(select(AuctionBid).order_by(AuctionBid.rank))]


def test_an_auctions_close_keeps_its_ranked_bids_once(sessions):
    recorder = Recorder(sessions, TEST_KEYRING)
    recorder.apply_many(life_cycle()[:4])
    recorder.apply(closed("c1", [("b_2", 1500, 1201), ("b_1", 1200, 1200)]))
    # Published again after a crash: the same decision under another event id changes nothing.
    assert recorder.apply(closed("c2", [("b_2", 1500, 1201), ("b_1", 1200, 1200)], closed_at_ms=5_050)) is True
    with sessions() as session:
        auction = session.get(Auction, LEAD.lead_id)
        assert (auction.closed_at_ms, auction.bids_received, auction.offered_buyers) == (5_001, 3, 2)
        assert ranked_bids(session) == [(1, "b_2", 1500, 1201), (2, "b_1", 1200, 1200)]


def test_a_close_read_before_its_opening_makes_the_auction_which_the_opening_completes(sessions):
    recorder = Recorder(sessions, TEST_KEYRING)
    recorder.apply(closed("c1", [("b_1", 900, 900)]))
    with sessions() as session:
        auction = session.get(Auction, LEAD.lead_id)
        # closing time known, so a stall sweep waits for it like for an auction opened first
        assert (auction.lead_id, auction.closes_at_ms, auction.closed_at_ms) == (LEAD.lead_id, 5_001, 5_001)
    recorder.apply_many(life_cycle()[:4])
    with sessions() as session:
        auction = session.get(Auction, LEAD.lead_id)
        assert (auction.opened_at_ms, auction.closes_at_ms, auction.offered_buyers) == (2_000, 5_000, 2)
        assert (auction.closed_at_ms, auction.bids_received) == (5_001, 2)
        assert ranked_bids(session) == [(1, "b_1", 900, 900)]


def offers(session) -> list[tuple[str, str, int]]:
    return [(o.buyer_id, o.lead_id, o.offered_at_ms)
            for o in session.scalars(select(AuctionOffer).order_by(AuctionOffer.buyer_id))]


def test_an_opening_records_whom_the_lead_was_offered_to_once_and_the_lead_keeps_its_timing(sessions):
    recorder = Recorder(sessions, TEST_KEYRING)
    events = life_cycle()
    scored = events[2].message
    scored.timing_factor = 0.75
    recorder.apply_many(events[:4])
    # Published again under another event id (an auction worker that crashed before committing its
    # offset), in a batch with another opening of it: nobody is offered the lead twice.
    again = ev.AuctionOpened(auction_id=LEAD.lead_id, lead_id=LEAD.lead_id, offered_buyer_ids=["b_1", "b_2", "b_3"],
                             opened_at_ms=2_500, closes_at_ms=5_500)
    assert recorder.apply_many([envelope(topics.AUCTION_OPENED, again, "e4-again"),
                                envelope(topics.AUCTION_OPENED, again, "e4-third")]) == [True, True]
    with sessions() as session:
        assert offers(session) == [("b_1", LEAD.lead_id, 2_000), ("b_2", LEAD.lead_id, 2_000)]
        assert session.get(Lead, LEAD.lead_id).timing_factor == 0.75


def test_an_opening_read_after_its_close_still_records_the_offers(sessions):
    recorder = Recorder(sessions, TEST_KEYRING)
    recorder.apply(closed("c1", [("b_1", 900, 900)]))
    recorder.apply_many(life_cycle()[:4])
    with sessions() as session:
        assert offers(session) == [("b_1", LEAD.lead_id, 2_000), ("b_2", LEAD.lead_id, 2_000)]


def statements_of(sessions, apply) -> Counter[str]:
    """The SQL statements `apply()` sends, counted by their first three words ("INSERT INTO LEADS")."""
    engine = sessions.kw["bind"]
    sent: Counter[str] = Counter()

    def note(_connection, _cursor, statement, _parameters, _context, _executemany) -> None:
        sent[" ".join(statement.split()[:3]).upper()] += 1

    sql_event.listen(engine, "before_cursor_execute", note)
    try:
        apply()
    finally:
        sql_event.remove(engine, "before_cursor_execute", note)
    return sent


def test_a_batch_asks_sql_once_per_table_whatever_its_size(sessions):
    """The ledger fell behind asking SQL for each event's rows one at a time; a batch now reads the
    rows of all its events with one query per table and writes each table's rows together, so 30
    leads' events cost the statements 2 leads' do."""
    recorder = Recorder(sessions, TEST_KEYRING)

    def batch(numbers: range, events: slice):
        return statements_of(sessions, lambda: recorder.apply_many(
            [e for n in numbers for e in life_cycle(f"LEAD{n:06d}")[events]]))

    new_leads = batch(range(2), slice(None)), batch(range(10, 40), slice(None))
    assert new_leads[0] == new_leads[1]
    assert sum(1 for statement in new_leads[1] if statement.startswith("SELECT")) == 5
    assert set(new_leads[1].values()) == {1}  # even the three balances a sale moves, in one upsert
    opened = batch(range(50, 52), slice(0, 4)), batch(range(60, 90), slice(0, 4))
    sold_later = batch(range(50, 52), slice(4, None)), batch(range(60, 90), slice(4, None))
    assert opened[0] == opened[1] and sold_later[0] == sold_later[1]
    assert set(sold_later[1].values()) == {1} and sold_later[1]["UPDATE LEADS SET"] == 1
    with sessions() as session:
        sold = session.scalar(select(func.count()).select_from(Lead).where(Lead.status == "sold"))
        assert sold == 2 + 30 + 2 + 30 and session.scalar(select(func.count()).select_from(Sale)) == sold


def test_a_lead_whose_every_event_comes_in_one_batch_is_recorded_as_one_by_one(sessions):
    """Rows created early in a batch (the lead, its auction, its sale) are the ones its later events
    change: the sale, then its return, in one transaction leave the books as two transactions do."""
    lead_id = LEAD.lead_id
    back = ev.LeadReturned(lead_id=lead_id, auction_id=lead_id, buyer_id="b_2", seller_id="s_1", reason="bad phone",
                           price_cents=1500, seller_fee_cents=150, sold_at_ms=6_000, returned_at_ms=7_000)
    recorder = Recorder(sessions, TEST_KEYRING)
    events = [*reversed(life_cycle()), envelope(topics.LEAD_RETURNED, back, "e6")]
    assert recorder.apply_many([*events, events[0]]) == [True] * 6 + [False]
    with sessions() as session:
        lead = session.get(Lead, lead_id)
        assert (lead.status, lead.seller_id, lead.fields["zip"]) == ("returned", "s_1", "10001")
        sale = session.get(Sale, (lead_id, "b_2"))
        assert (sale.sold, sale.returned, sale.county) == (True, True, "")
        assert session.get(Auction, lead_id).offered_buyers == 2
        balances = dict(session.execute(select(AccountBalance.account, AccountBalance.balance_cents)).all())
        assert set(balances.values()) == {0}  # sold, then returned: every account back where it was
        assert session.scalar(select(func.count()).select_from(LedgerTransaction)) == 2


def test_a_row_set_to_the_value_it_had_is_not_written_again(sessions):
    """The batch's rows note the columns a handler changed: an event that sets its lead's columns to
    the values they have (the sale published again under another id sets the seller it has) sends
    no UPDATE, as the ORM sent none."""
    recorder = Recorder(sessions, TEST_KEYRING)
    events = life_cycle()
    recorder.apply_many(events)
    late = envelope(topics.SALE_CLOSED, events[-1].message, "late-sale")
    sent = statements_of(sessions, lambda: recorder.apply_many([late]))
    assert "UPDATE LEADS SET" not in sent and sent["INSERT INTO PROCESSED_EVENTS"] <= 1
    with sessions() as session:
        assert session.get(Lead, LEAD.lead_id).status == "sold"


def test_a_lead_made_before_its_fields_came_has_none_in_sql(sessions):
    """A lead row made by its sale (read before its submission) leaves its fields out, so they are
    SQL NULL, which the dedup rebuild and the re-drive sweep select on (`fields IS NOT NULL`); its
    submission then fills them."""
    recorder = Recorder(sessions, TEST_KEYRING)
    events = life_cycle()
    recorder.apply(events[-1])
    with sessions() as session:
        assert session.scalars(select(Lead.id).where(Lead.fields.is_(None))).all() == [LEAD.lead_id]
        assert session.get(Lead, LEAD.lead_id).state == ""  # its column default, as the ORM gave it
    recorder.apply_many(events[:-1])
    with sessions() as session:
        assert session.scalars(select(Lead.id).where(Lead.fields.is_not(None))).all() == [LEAD.lead_id]
        assert session.get(Lead, LEAD.lead_id).status == "sold"
