"""The end of a partition (the offset the next record will get), as the records say it is, and
every record of a topic up to that end.

Why not just ListOffsets: the broker we run locally and in tests (tansu 0.6.0) answers a "latest"
ListOffsets with the base offset of the partition's last record batch plus one, so whenever the
last batch holds several records the end it reports is short (a 5-record batch at offsets 2-6
reports 3, not 7: tests/integration/test_kafka_offsets.py). Anything that reads "up to the end"
then stops early: faust's table recovery left an auction's last changelog records
unread, and the restarted worker closed it without the bids they held.

So the reported end is checked by reading from the last batch it points at: the records fetched
from `reported - 1` on show the real end. On a broker that answers correctly (Apache Kafka,
Redpanda) that read returns the last record and confirms the reported end.
"""

from __future__ import annotations

import time
from collections.abc import Iterable

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.structs import ConsumerRecord

from leadx.platform.kafka import clients

# The check reads one fetch per partition; a partition whose read has not answered by then keeps
# the reported end (what a plain ListOffsets would have given).
CHECK_TIMEOUT_S = 5.0


async def end_offsets(brokers: clients.Brokers, partitions: Iterable[TopicPartition]) -> dict[TopicPartition, int]:
    """Each partition's end: the offset after its last record (0 for an empty partition)."""
    partitions = list(partitions)
    if not partitions:
        return {}
    probe = clients.consumer(brokers, group_id=None, enable_auto_commit=False)
    await probe.start()
    try:
        return await end_offsets_with(probe, partitions)
    finally:
        await probe.stop()


async def partitions_of(consumer: AIOKafkaConsumer, topics: Iterable[str]) -> list[TopicPartition]:
    """Every partition of these topics, from the brokers' metadata (none for a topic they do not
    know). A consumer's own metadata names only the topics it tracks, and `topics()` leaves it so:
    Apache Kafka's answer at start names no topic (tansu's names them all)."""
    # aiokafka has no public call that asks a group-less consumer's brokers for a topic's partitions.
    cluster = await consumer._client.fetch_all_metadata()
    return [TopicPartition(topic, p) for topic in topics for p in sorted(cluster.partitions_for_topic(topic) or ())]


async def end_offsets_with(probe: AIOKafkaConsumer, partitions: Iterable[TopicPartition]) -> dict[TopicPartition, int]:
    """end_offsets through a group-less consumer the caller keeps (one polled often); it is left
    assigned the partitions it checked."""
    ends = dict(await probe.end_offsets(list(partitions)))
    to_check = {tp: end for tp, end in ends.items() if end > 0}
    if not to_check:
        return ends
    probe.assign(list(to_check))
    for tp, reported in to_check.items():
        probe.seek(tp, reported - 1)
    deadline = time.monotonic() + CHECK_TIMEOUT_S
    while to_check and time.monotonic() < deadline:
        batch = await probe.getmany(*to_check, timeout_ms=100)
        for tp, records in batch.items():
            if records:
                # A fetch returns whole batches: the first answer holds the last batch entire.
                ends[tp] = max(ends[tp], records[-1].offset + 1)
                to_check.pop(tp, None)
    return ends


async def read_to_end(brokers: clients.Brokers, topic: str) -> list[ConsumerRecord]:
    """Every record of the topic, from its start to its end as of the call (tests' and benches'
    reads of what the services wrote)."""
    reader = clients.consumer(brokers, group_id=None, enable_auto_commit=False, fetch_max_wait_ms=10)
    await reader.start()
    try:
        partitions = await partitions_of(reader, [topic])
        ends = await end_offsets_with(reader, partitions)
        reader.assign(partitions)
        await reader.seek_to_beginning(*partitions)
        records: list[ConsumerRecord] = []
        while [tp for tp in partitions if await reader.position(tp) < ends[tp]]:
            for batch in (await reader.getmany(timeout_ms=500, max_records=10_000)).values():
                records.extend(batch)
        return records
    finally:
        await reader.stop()
