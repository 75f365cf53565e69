"""The ledger's list-auction closer against a real broker, Redis and SQL: a due list auction closes
once, its customers go to the best applicable bids, never to a buyer that already has them or that
their seller does not sell to, each sale goes out as a sale.closed, and the consumers become the
buyers' in the dedup records."""

from __future__ import annotations

import asyncio
import time

import pytest
from aiokafka import AIOKafkaConsumer
from sqlalchemy import select

from leadx.accounts import accounts, partnerships
from leadx.auction.selection.market import BLOCK
from leadx.contracts import topics
from leadx.contracts.events.v1 import events_pb2 as ev
from leadx.dedup.scopes import DedupPolicy
from leadx.dedup.store import DedupStore
from leadx.dev.simulation.market import simulate
from leadx.leads import pii
from leadx.lists import store
from leadx.platform.config import KafkaSettings
from leadx.platform.db.models import ListAward, Prospect, Sale
from leadx.platform.kafka.admin import ensure_topics
from leadx.platform.kafka.producer import EventProducer
from leadx.platform.redis.client import connect
from leadx.scoring.registry import load_prior
from services.ledger.list_closer import ListCloser
from tests.conftest import TEST_KEYRING, TEST_FETCH_MIN_BYTES, TEST_SESSION_TIMEOUT_MS

pytestmark = pytest.mark.integration
SECRET = b"list-closer-test-secret"
START_MS = 1_767_225_600_000
WINDOW_MS = 30 * 86_400_000
PII_FIELDS = ("ssn", "email", "home_phone", "first_name", "last_name", "address", "date_of_birth")


def add_prospects(session, seller_id: str, count: int, seed: int) -> list[Prospect]:
    leads = [lead.fields for lead in simulate(count, seed, START_MS)]
    scores = load_prior().score(leads, [START_MS] * count, [START_MS] * count)
    added = []
    for i, (fields, score) in enumerate(zip(leads, scores, strict=True)):
        text = {k: str(v) for k, v in fields.items()}
        keys = pii.identity_keys(SECRET, text)
        added.append(Prospect(
            id=f"PR{seed:02d}{i:06d}", vertical="auto_loan", seller_id=seller_id, source="import",
            source_name="test.csv", fields=text, ssn_key=keys.get("ssn"), email_key=keys.get("email"),
            home_phone_key=keys.get("home_phone"), state=text["state"], probability=score.direct_response,
            propensity=score.probability, cluster=score.cluster, model_version="test",
            consumer_since_ms=START_MS, added_at_ms=START_MS))
    session.add_all(added)
    return added


async def sales_on(bootstrap: str, topic: str, expected: int, timeout_s: float = 20) -> list[ev.SaleClosed]:
    consumer = AIOKafkaConsumer(topic, bootstrap_servers=bootstrap, auto_offset_reset="earliest")
    await consumer.start()
    found: list[ev.SaleClosed] = []
    try:
        deadline = time.monotonic() + timeout_s
        while len(found) < expected and time.monotonic() < deadline:
            for records in (await consumer.getmany(timeout_ms=200)).values():
                found.extend(ev.SaleClosed.FromString(r.value) for r in records)
        # Anything more would be a second sale: wait a little for it.
        for records in (await consumer.getmany(timeout_ms=500)).values():
            found.extend(ev.SaleClosed.FromString(r.value) for r in records)
    finally:
        await consumer.stop()
    return found


def test_a_due_list_auction_closes_once_and_sells_each_customer_once(sessions, kafka_bootstrap, redis_url,
                                                                      unique_prefix):
    with sessions() as session:  # the account functions commit their own changes
        seller = accounts.create_seller(session, "List Seller").id
        picky = accounts.create_seller(session, "Picky Seller").id
        dealers = [accounts.create_buyer(session, f"Dealer {n}", "http://127.0.0.1:9/ping",
                                         "http://127.0.0.1:9/post").id for n in range(3)]
        for dealer in dealers:
            partnerships.add_partnership(session, seller, dealer)
            partnerships.add_partnership(session, picky, dealer)
        partnerships.set_choice(session, picky, dealers[2], BLOCK)  # it never sells to dealer 2
        mine = add_prospects(session, seller, 40, seed=1)
        theirs = add_prospects(session, picky, 10, seed=2)
        # Dealer 0 bought the first of them as a lead before; dealer 1 has the second from elsewhere.
        session.add(Sale(lead_id=mine[0].id, buyer_id=dealers[0], auction_id=mine[0].id, sold=True,
                         seller_id=seller, price_cents=900, seller_fee_cents=90, vertical="auto_loan",
                         state=mine[0].state, attempts=1, closed_at_ms=START_MS))
        session.commit()
    with sessions.begin() as session:
        auction = store.open_auction(session, "auto_loan", {"criteria": []}, 0.05, 100, 60_000, int(time.time() * 1000))
        auction_id = auction.id
        # Dealer 2 outbids everybody on everyone; dealer 0 on everyone too; dealer 1 wants the top band.
        for dealer, spec in ((dealers[2], {"scope": "band", "target": "0.00-1.00", "price": 700}),
                             (dealers[0], {"scope": "band", "target": "0.00-1.00", "price": 600}),
                             (dealers[1], {"scope": "cluster", "target": mine[1].cluster, "price": 650})):
            assert not isinstance(store.place_bid(session, auction_id, dealer, spec, int(time.time() * 1000)),
                                  store.Refusal)
    # Closed here: a session left open keeps its read's locks until the garbage collector frees it,
    # and the database fixture's DROP SCHEMA at teardown once waited on it for ever.
    with sessions() as session:
        members = {m.prospect_id for m in store.members(session, auction_id)}
    assert len(members) == 50

    async def scenario():
        kafka = KafkaSettings(bootstrap_servers=kafka_bootstrap, topic_prefix=unique_prefix, partitions=1,
                              replication_factor=1, idempotence=False,
                              session_timeout_ms=TEST_SESSION_TIMEOUT_MS, fetch_min_bytes=TEST_FETCH_MIN_BYTES)
        await ensure_topics(kafka, (topics.SALE_CLOSED, topics.LIST_AWARDED))
        producer = EventProducer(kafka, "test")
        await producer.start()
        redis = connect(redis_url)
        dedup = DedupStore(redis, namespace=unique_prefix)
        await dedup.declare_intact(int(time.time() * 1000))  # no dedup service here writes the epoch
        policy = DedupPolicy.from_env()
        keys = [k for k in (mine[1].ssn_key, mine[1].email_key) if k]
        assert await dedup.reserve_for_buyer(dealers[2], "ELSEWHERE1", "auto_loan", keys, int(time.time() * 1000),
                                             WINDOW_MS)
        later = time.time() + 120  # after the window
        closers = [ListCloser(sessions, producer, dedup, policy, TEST_KEYRING, 10.0, clock=lambda: later)
                   for _ in range(2)]
        try:
            closed = await asyncio.gather(*(c.sweep() for c in closers))
            again = await closers[0].sweep()
            sales = await sales_on(kafka_bootstrap, topics.name(unique_prefix, topics.SALE_CLOSED), 50)
            for prospect in mine[:2] + theirs[:1]:
                check = await dedup.check_submission("NEWLEAD001", "auto_loan",
                                                     {"ssn": prospect.ssn_key}, int(later * 1000) + 1, WINDOW_MS,
                                                     platform=False, buyers=True, record=False)
                assert check.duplicate_buyer_ids, prospect.id  # its buyer now has it
        finally:
            await producer.stop()
            await redis.aclose()
        return closed, again, sales

    closed, again, sales = asyncio.run(scenario())
    assert sorted(closed) == [0, 1] and again == 0  # two closers at once: one closes it

    with sessions() as session:
        rows = session.scalars(select(ListAward).where(ListAward.auction_id == auction_id))
        awards = {a.prospect_id: a for a in rows}
    assert set(awards) == members and all(a.published for a in awards.values())
    # Dealer 2 pays most, except where it may not buy: the customer it has, and the picky seller's.
    assert awards[mine[1].id].buyer_id != dealers[2]
    assert awards[mine[1].id].buyer_id == dealers[1] and awards[mine[1].id].price_cents == 650
    assert awards[mine[0].id].buyer_id == dealers[2]  # dealer 0 bought it as a lead; dealer 2 may
    for prospect in theirs:
        assert awards[prospect.id].buyer_id in (dealers[0], dealers[1])
    for prospect in mine[2:]:
        assert awards[prospect.id].buyer_id == dealers[2] and awards[prospect.id].price_cents == 700

    # One sale per customer. Two closers sweeping at once may both publish an award before either
    # marks it published: the copies are the same event (same id, buyer and price), which every
    # consumer of sale.closed takes once.
    by_id = {s.lead_id: s for s in sales}
    assert set(by_id) == members
    assert all(s == by_id[s.lead_id] for s in sales)
    sample = by_id[mine[3].id]
    assert (sample.outcome, sample.buyer_id, sample.price_cents, sample.seller_fee_cents) == (
        ev.SALE_OUTCOME_SOLD, dealers[2], 700, 70)
    assert sample.auction_id == auction_id and sample.seller_id == seller and sample.zip3 == mine[3].fields["zip"][:3]
    text = str(sales)
    assert not any(mine[3].fields[name] in text for name in PII_FIELDS)
