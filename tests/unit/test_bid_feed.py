"""The bookkeeping of the auction worker's bid feed (services.auction.bid_feed); the feed itself
runs against a real broker in tests/integration/test_bid_feed.py."""

from services.auction.bid_feed import WriteBehind, owned_partitions


def test_write_behind_keeps_the_furthest_offset_and_takes_back_a_failed_flush():
    pending = WriteBehind()
    assert not pending
    pending.note(0, 10, ["a", "b"])
    pending.note(0, 7, ["c"])  # an older offset never moves the commit back
    pending.note(1, 4, [])  # refused bids only: nothing to write, still committed past
    changed, offsets = pending.take()
    assert changed == {"a": 0, "b": 0, "c": 0} and offsets == {0: 10, 1: 4}
    assert not pending
    pending.note(0, 12, ["d"])
    pending.restore(changed, offsets)  # the flush failed: it is written again with what came since
    assert pending.take() == ({"d": 0, "a": 0, "b": 0, "c": 0}, {0: 12, 1: 4})


def test_the_feed_reads_the_bid_partitions_of_the_workers_own_lead_partitions():
    class TP:
        def __init__(self, topic: str, partition: int) -> None:
            self.topic, self.partition = topic, partition

    assigned = [TP("lead.scored", 3), TP("bid.placed", 3), TP("lead.scored", 1), TP("changelog", 5)]
    assert owned_partitions(assigned, "lead.scored") == [1, 3]


def test_an_auctions_partition_is_the_one_the_producers_default_partitioner_gives_its_id():
    from aiokafka.partitioner import DefaultPartitioner

    from leadx.platform.kafka.envelope import partition_for

    for n in (1, 6, 12):
        for key in ("A1b2C3d4E5", "lead-0", "Z" * 26, "é-ünïcode"):
            assert partition_for(key, n) == DefaultPartitioner()(key.encode(), list(range(n)), list(range(n)))
