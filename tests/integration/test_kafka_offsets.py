"""leadx.platform.kafka.offsets against the real broker: a partition's end is the offset after its last
record, also when the last record batch holds several records (our local broker then reports the
batch's base offset plus one, and faust's table recovery stopped short of the last records)."""

from __future__ import annotations

import asyncio

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from leadx.contracts import topics
from leadx.platform.config import KafkaSettings
from leadx.platform.kafka.admin import ensure_topics
from leadx.platform.kafka.offsets import end_offsets, read_to_end
from tests.conftest import TEST_SESSION_TIMEOUT_MS

pytestmark = pytest.mark.integration


def test_the_end_is_after_the_last_record_whatever_the_batches(kafka_bootstrap, unique_prefix):
    async def scenario() -> list[tuple[int, int, int]]:
        kafka = KafkaSettings(bootstrap_servers=kafka_bootstrap, topic_prefix=unique_prefix, partitions=2,
                              replication_factor=1, idempotence=False,
                              session_timeout_ms=TEST_SESSION_TIMEOUT_MS)
        await ensure_topics(kafka, (topics.BID_PLACED,))
        topic = topics.name(unique_prefix, topics.BID_PLACED)
        first, second = TopicPartition(topic, 0), TopicPartition(topic, 1)
        producer = AIOKafkaProducer(bootstrap_servers=kafka_bootstrap, linger_ms=50)
        await producer.start()
        seen = []
        try:
            assert await end_offsets(kafka_bootstrap, [first, second]) == {first: 0, second: 0}
            total = 0
            for size in (1, 5, 1, 3):
                # Sent together and lingering: one batch of `size` records.
                sent = [await producer.send(topic, b"bid", partition=0) for _ in range(size)]
                await asyncio.gather(*sent)
                total += size
                ends = await end_offsets(kafka_bootstrap, [first, second])
                seen.append((size, total, ends[first]))
                assert ends[second] == 0
            # And reading "to the end" reads every record, the last batch's included.
            assert [r.offset for r in await read_to_end(kafka_bootstrap, topic)] == list(range(total))
        finally:
            await producer.stop()
        return seen

    seen = asyncio.run(scenario())
    assert all(end == total for _, total, end in seen), seen


def test_what_the_broker_reports_is_why_the_check_is_needed(kafka_bootstrap, unique_prefix):
    """Documents the broker's answer the check corrects; if a broker upgrade fixes it, this test
    says so (and the check still holds)."""
    async def scenario() -> tuple[int, int]:
        kafka = KafkaSettings(bootstrap_servers=kafka_bootstrap, topic_prefix=unique_prefix, partitions=1,
                              replication_factor=1, idempotence=False,
                              session_timeout_ms=TEST_SESSION_TIMEOUT_MS)
        await ensure_topics(kafka, (topics.BID_PLACED,))
        topic = topics.name(unique_prefix, topics.BID_PLACED)
        producer = AIOKafkaProducer(bootstrap_servers=kafka_bootstrap, linger_ms=50)
        await producer.start()
        await asyncio.gather(*[await producer.send(topic, b"bid", partition=0) for _ in range(5)])
        await producer.stop()
        probe = AIOKafkaConsumer(bootstrap_servers=kafka_bootstrap)
        await probe.start()
        try:
            tp = TopicPartition(topic, 0)
            reported = (await probe.end_offsets([tp]))[tp]
        finally:
            await probe.stop()
        return reported, (await end_offsets(kafka_bootstrap, [tp]))[tp]

    reported, checked = asyncio.run(scenario())
    assert checked == 5
    assert reported in (1, 5), reported  # 1: the batch's base offset + 1 (tansu 0.6.0); 5: correct
