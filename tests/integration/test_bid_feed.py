"""The auction worker's bid feed (services.auction.bid_feed) against a real broker: bids count as
soon as they are read, reach the changelog once per auction per flush, and their offsets are
committed only behind those writes, so bids read but not flushed are read again by the next owner.

The feed's table here is a dict of auctions whose changelog records go to a real topic: the few
things the feed uses of a faust Table. The worker's own tests (test_auction_workers, test_crash_recovery) run it
with the real table."""

from __future__ import annotations

import asyncio
import time

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from leadx.contracts import topics
from leadx.contracts.events.v1 import events_pb2 as ev
from leadx.platform.config import KafkaSettings
from leadx.platform.kafka.admin import ensure_topics
from leadx.auction import rules
from leadx.auction.state import Auction
from services.auction.bid_feed import BidFeed
from tests.conftest import TEST_FETCH_MIN_BYTES, TEST_SESSION_TIMEOUT_MS, poll_until_async

pytestmark = pytest.mark.integration

PARTITIONS = 2
CHANGELOG_SUFFIX = "-changelog-test"


class TopicTable:
    """An auction table whose changelog is a real topic."""

    def __init__(self, producer: AIOKafkaProducer, changelog: str) -> None:
        self.producer, self.changelog = producer, changelog
        self.data: dict[str, Auction] = {}
        self.records: list[tuple[int, str]] = []

    def get(self, auction_id: str) -> Auction | None:
        return self.data.get(auction_id)

    def send_changelog(self, partition: int, key: str, value: Auction) -> asyncio.Future:
        self.records.append((partition, key))
        return asyncio.ensure_future(self.producer.send_and_wait(
            self.changelog, value.to_json(), key=key.encode(), partition=partition))


def open_auction(closes_in_ms: int = 60_000) -> Auction:
    now = int(time.time() * 1000)
    return rules.new_auction(["b1", "b2"], 1000, now, closes_in_ms)


async def place(producer: AIOKafkaProducer, topic: str, *bids: tuple[int, str, str, int]) -> None:
    """(partition, auction id, buyer id, cents) each, sent together."""
    sent = []
    for partition, auction_id, buyer, cents in bids:
        bid = ev.BidPlaced(auction_id=auction_id, buyer_id=buyer, amount_cents=cents,
                           placed_at_ms=int(time.time() * 1000), source="bid_api")
        sent.append(await producer.send(topic, bid.SerializeToString(), key=auction_id.encode(), partition=partition))
    await asyncio.gather(*sent)


async def committed(bootstrap: str, group: str, topic: str) -> dict[int, int | None]:
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id=group, enable_auto_commit=False)
    await consumer.start()
    try:
        return {p: await consumer.committed(TopicPartition(topic, p)) for p in range(PARTITIONS)}
    finally:
        await consumer.stop()


async def until_committed(bootstrap: str, group: str, topic: str, expected: dict[int, int]) -> None:
    deadline = time.monotonic() + 20
    while (seen := await committed(bootstrap, group, topic)) != expected:
        assert time.monotonic() < deadline, f"committed {seen}, expected {expected}"
        await asyncio.sleep(0.05)


async def table_with(kafka: KafkaSettings, topic: str, *auction_ids: str) -> TopicTable:
    """A stand-in table with these auctions open, its changelog written by a started producer
    (`table.producer`, stopped by the test)."""
    producer = AIOKafkaProducer(bootstrap_servers=kafka.bootstrap_servers)
    await producer.start()
    table = TopicTable(producer, topic + CHANGELOG_SUFFIX)
    table.data |= {auction_id: open_auction() for auction_id in auction_ids}
    return table


def run_feed(kafka: KafkaSettings, group: str, topic: str, table: TopicTable, flush_s: float) -> BidFeed:
    return BidFeed(kafka, group, topic, table, batch_max=500, batch_wait_s=0.005, flush_interval_s=flush_s)


@pytest.fixture
def setting(kafka_bootstrap, unique_prefix):
    kafka = KafkaSettings(bootstrap_servers=kafka_bootstrap, topic_prefix=unique_prefix, partitions=PARTITIONS,
                          replication_factor=1, idempotence=False,
                          session_timeout_ms=TEST_SESSION_TIMEOUT_MS, fetch_min_bytes=TEST_FETCH_MIN_BYTES)
    # The stand-in table's changelog too, with as many partitions as the bids' topic (a broker
    # that creates a topic on first use would give it its default of one).
    asyncio.run(ensure_topics(kafka, (topics.BID_PLACED, topics.BID_PLACED + CHANGELOG_SUFFIX)))
    return kafka, topics.name(unique_prefix, topics.BID_PLACED), topics.group(unique_prefix, "auction-bids")


def test_bids_count_at_once_and_are_committed_only_behind_one_write_per_auction(setting):
    kafka, topic, group = setting

    async def scenario() -> None:
        table = await table_with(kafka, topic, "a", "b")
        producer = table.producer
        # One flush a second after the assignment: the bids below are all read before it.
        feed = run_feed(kafka, group, topic, table, flush_s=1.0)
        reading = asyncio.create_task(feed.run())
        await feed.assign([0, 1])
        await place(producer, topic, (0, "a", "b1", 1500), (0, "a", "b2", 1700), (0, "a", "b1", 1600),
                    (1, "b", "b2", 1200),
                    (1, "b", "stranger", 9000))  # not offered: refused, and still committed past

        # The store has every bid at once (the close reads it there) ...
        await poll_until_async(lambda: table.data["a"].bids == {"b1": 1600, "b2": 1700}
                         and table.data["b"].bids == {"b2": 1200})
        # ... and then each auction is written once, and only then are the offsets committed.
        await until_committed(kafka.bootstrap_servers, group, topic, {0: 3, 1: 2})
        assert sorted(table.records) == [(0, "a"), (1, "b")]
        reading.cancel()
        await feed.stop()
        await producer.stop()

    asyncio.run(scenario())


def test_bids_read_but_not_flushed_are_read_again_by_the_next_owner(setting):
    kafka, topic, group = setting

    async def scenario() -> None:
        producer = AIOKafkaProducer(bootstrap_servers=kafka.bootstrap_servers)
        await producer.start()
        changelog = topic + CHANGELOG_SUFFIX
        first = TopicTable(producer, changelog)
        first.data["a"] = open_auction()
        # A flush interval longer than the test: the first owner never writes or commits.
        feed = run_feed(kafka, group, topic, first, flush_s=3600)
        reading = asyncio.create_task(feed.run())
        await feed.assign([0, 1])
        await place(producer, topic, (0, "a", "b1", 1500))
        await poll_until_async(lambda: first.data["a"].bids == {"b1": 1500})
        # The partitions are taken away (a rebalance, or the worker dies): nothing more is written.
        await feed.release()
        await place(producer, topic, (0, "a", "b2", 1800))
        await asyncio.sleep(0.3)
        assert first.data["a"].bids == {"b1": 1500} and first.records == []
        assert await committed(kafka.bootstrap_servers, group, topic) == {0: None, 1: None}
        reading.cancel()
        await feed.stop()

        # The next owner has the table as its changelog left it, and reads both bids.
        second = TopicTable(producer, changelog)
        second.data["a"] = open_auction()
        feed = run_feed(kafka, group, topic, second, flush_s=0.05)
        reading = asyncio.create_task(feed.run())
        await feed.assign([0, 1])
        await poll_until_async(lambda: second.data["a"].bids == {"b1": 1500, "b2": 1800})
        await poll_until_async(lambda: second.records == [(0, "a")])
        await until_committed(kafka.bootstrap_servers, group, topic, {0: 2, 1: None})
        reading.cancel()
        await feed.stop()
        await producer.stop()

    asyncio.run(scenario())


def test_closes_wait_until_the_feed_has_read_the_backlog_it_was_assigned(setting):
    """Bids placed while no worker owned the partitions are read before any auction closes: the
    feed holds closes from its assignment until it has read up to the topic's end as of then."""
    kafka, topic, group = setting

    async def scenario() -> None:
        table = await table_with(kafka, topic, "a")
        producer = table.producer

        # Nothing to read: nothing held.
        idle = run_feed(kafka, group + "-idle", topic, table, flush_s=0.05)
        await idle.assign([0, 1])
        assert not idle.holds_closes()
        await idle.stop()

        await place(producer, topic, (0, "a", "b1", 1500), (1, "a", "b2", 1700))
        feed = run_feed(kafka, group, topic, table, flush_s=0.05)
        await feed.assign([0, 1])
        assert feed.holds_closes()  # a backlog, not read yet (the feed is not running)
        await asyncio.sleep(0.3)
        assert feed.holds_closes() and table.data["a"].bids == {}
        reading = asyncio.create_task(feed.run())
        await poll_until_async(lambda: not feed.holds_closes())
        assert table.data["a"].bids == {"b1": 1500, "b2": 1700}  # read before closes may run
        # Bids after the assignment are the steady state: they hold nothing.
        await place(producer, topic, (0, "a", "b1", 1900))
        assert not feed.holds_closes()
        reading.cancel()
        await feed.stop()
        await producer.stop()

    asyncio.run(scenario())


def test_a_bid_read_across_a_quick_reassignment_is_still_applied(setting):
    """An idle feed waits in its read (up to IDLE_READ_WAIT_MS), which a reassignment does not end:
    the bids that read brings back for the new assignment must still count."""
    kafka, topic, group = setting

    async def scenario() -> None:
        table = await table_with(kafka, topic, "a")
        producer = table.producer
        feed = run_feed(kafka, group, topic, table, flush_s=0.05)
        reading = asyncio.create_task(feed.run())
        await feed.assign([0, 1])
        await place(producer, topic, (0, "a", "b1", 1500))
        await poll_until_async(lambda: table.data["a"].bids == {"b1": 1500})
        await until_committed(kafka.bootstrap_servers, group, topic, {0: 1, 1: None})
        await asyncio.sleep(0.1)  # flushed and caught up: the feed now waits in an idle read
        # A rebalance that hands the worker its partitions back, quicker than that read's wait.
        await feed.release()
        await feed.assign([0, 1])
        await place(producer, topic, (0, "a", "b2", 1800))
        await poll_until_async(lambda: table.data["a"].bids == {"b1": 1500, "b2": 1800}, timeout_s=10)
        await until_committed(kafka.bootstrap_servers, group, topic, {0: 2, 1: None})
        reading.cancel()
        await feed.stop()
        await producer.stop()

    asyncio.run(scenario())
