"""On Apache Kafka, a consumer of the flow whose fetch brought nothing waits for the first byte (up to
the idle wait) instead of the batch, and the broker answers such a fetch when a record arrives; the
fetch after one that brought records waits for the batch again (leadx.platform.kafka.idle_fetches).
Read from the requests the consumer's client sends to the broker."""

from __future__ import annotations

import asyncio
import contextlib

import pytest
from aiokafka import TopicPartition
from aiokafka.errors import ConsumerStoppedError
from aiokafka.protocol.fetch import FetchRequest

from leadx.contracts import topics
from leadx.contracts.events.v1 import events_pb2 as ev
from leadx.platform.config import KafkaSettings
from leadx.platform.kafka import clients
from leadx.platform.kafka.admin import ensure_topics
from leadx.platform.kafka.idle_fetches import IDLE_MIN_BYTES, IdleAwareConsumer
from leadx.platform.kafka.producer import EventProducer
from tests.conftest import TEST_BROKER, poll_until_async

pytestmark = [pytest.mark.integration, pytest.mark.kafka_only]

BATCH_WAIT_MS, BATCH_MIN_BYTES = 25, 65_536
# Twice what the test waits for its record: a broker holding the idle fetch to its end would fail it.
IDLE_WAIT_MS = 5_000
RECORD_WAIT_S = IDLE_WAIT_MS / 1000 / 2
BATCH, IDLE = (BATCH_WAIT_MS, BATCH_MIN_BYTES), (IDLE_WAIT_MS, IDLE_MIN_BYTES)


def recorded_fetches(consumer: IdleAwareConsumer) -> list[tuple[int, int]]:
    """(wait, minimum bytes) of every fetch the consumer's client sends from here on, in order."""
    sent: list[tuple[int, int]] = []
    send = consumer._client.send

    async def recording(node_id, request, **options):
        if isinstance(request, FetchRequest):
            sent.append((request._max_wait_ms, request._min_bytes))
        return await send(node_id, request, **options)
    consumer._client.send = recording
    return sent


async def rejected_topic(bootstrap: str, prefix: str, partitions: int) -> KafkaSettings:
    """The flow's fetch settings, with `lead.rejected` made with `partitions` partitions."""
    kafka = KafkaSettings(bootstrap_servers=bootstrap, topic_prefix=prefix, partitions=partitions,
                          replication_factor=1, idempotence=False, fetch_max_wait_ms=BATCH_WAIT_MS,
                          fetch_min_bytes=BATCH_MIN_BYTES, fetch_idle_wait_ms=IDLE_WAIT_MS)
    await ensure_topics(kafka, (topics.LEAD_REJECTED,))
    return kafka


def test_an_empty_fetch_is_followed_by_one_for_the_first_byte_which_a_record_ends(kafka_bootstrap, unique_prefix):
    assert TEST_BROKER == "kafka", "needs Apache Kafka (tansu holds a fetch for its whole wait): make test-kafka"

    async def scenario() -> None:
        kafka = await rejected_topic(kafka_bootstrap, unique_prefix, partitions=1)
        producer = EventProducer(kafka, "test")
        await producer.start()
        consumer = clients.consumer(kafka, group_id=None, enable_auto_commit=False, **clients.flow_fetches(kafka))
        assert isinstance(consumer, IdleAwareConsumer) and consumer.waits_when_idle
        await consumer.start()
        sent = recorded_fetches(consumer)
        partition = TopicPartition(topics.name(unique_prefix, topics.LEAD_REJECTED), 0)
        consumer.assign([partition])
        await consumer.seek_to_end(partition)
        reading: asyncio.Task | None = None
        try:
            # Nothing to read: a batch fetch comes back empty, and the next waits for the first byte.
            await poll_until_async(lambda: IDLE in sent, message="an idle fetch")
            assert sent[0] == BATCH and sent[sent.index(IDLE) - 1] == BATCH
            fetches_before_record = len(sent)

            await producer.publish(topics.LEAD_REJECTED, "L1", ev.LeadRejected(lead_id="L1"))
            record = await asyncio.wait_for(consumer.getone(), RECORD_WAIT_S)  # not held to the idle wait's end
            assert ev.LeadRejected.FromString(record.value).lead_id == "L1"
            assert len(sent) == fetches_before_record and sent[-1] == IDLE  # the idle fetch brought it, no other

            # Having brought a record, the next fetch gathers a batch; when that comes back empty,
            # the one after waits for the first byte again. (The fetcher sends the next fetch of a
            # partition once a read finds its last batch used up: a read waits meanwhile.)
            reading = asyncio.create_task(consumer.getone())
            await poll_until_async(lambda: len(sent) >= fetches_before_record + 2, message="two more fetches")
            assert sent[fetches_before_record:fetches_before_record + 2] == [BATCH, IDLE]
            assert not reading.done()
        finally:
            if reading is not None:
                reading.cancel()
                with contextlib.suppress(asyncio.CancelledError, ConsumerStoppedError):
                    await reading
            await consumer.stop()
            await producer.stop()

    asyncio.run(scenario())


class NotReadingEveryPartition(IdleAwareConsumer):
    """The rule the auction's faust consumer keeps (services.auction.faust_consumer.AdjustedConsumer):
    quiet after three empty fetches in a row, and a partition left out of three fetches in a row is
    one it does not read."""

    quiet_after = 3
    left_out_after = 3


@pytest.mark.parametrize("consumer_class, waits_idly", [(NotReadingEveryPartition, True), (IdleAwareConsumer, False)])
def test_a_partition_whose_records_stay_unread_stops_holding_the_fetches_to_a_batch(kafka_bootstrap, unique_prefix,
                                                                                     consumer_class, waits_idly):
    """As faust's table changelog once recovered: a partition whose fetched records the consumer never
    reads is left out of every fetch. With the rule above the consumer fetches idly all the same (and
    the first byte of the partition it reads ends such a fetch at once); with the services' own rule
    every fetch stays a batch."""
    assert TEST_BROKER == "kafka", "needs Apache Kafka (tansu holds a fetch for its whole wait): make test-kafka"

    async def scenario() -> None:
        kafka = await rejected_topic(kafka_bootstrap, unique_prefix, partitions=2)
        name = topics.name(unique_prefix, topics.LEAD_REJECTED)
        read, unread = TopicPartition(name, 0), TopicPartition(name, 1)
        producer = EventProducer(kafka, "test")
        await producer.start()
        consumer = consumer_class(bootstrap_servers=kafka_bootstrap, group_id=None, enable_auto_commit=False,
                                  fetch_max_wait_ms=BATCH_WAIT_MS, fetch_min_bytes=BATCH_MIN_BYTES,
                                  idle_fetch_wait_ms=IDLE_WAIT_MS)
        await consumer.start()
        sent = recorded_fetches(consumer)
        try:
            # A record on the partition never read: fetched once, then kept unread in the buffer.
            await producer._producer.send_and_wait(name, b"kept unread", key=b"K", partition=unread.partition)
            consumer.assign([read, unread])
            await consumer.seek_to_beginning(read, unread)
            reading = asyncio.create_task(consumer.getmany(read, timeout_ms=int(RECORD_WAIT_S * 1000)))
            # An idle fetch waits up to 5 s: no fetch follows it until a record comes.
            await poll_until_async(lambda: IDLE in sent or len(sent) >= 8, message="an idle fetch or eight batches")
            assert sent[0] == BATCH
            assert (IDLE in sent) is waits_idly
            if not waits_idly:
                assert set(sent) == {BATCH}
                reading.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await reading
                return
            # The first fetch brought the unread record; the next three left its partition out and came
            # back empty; the fifth waits for the first byte.
            assert sent.index(IDLE) == 4
            fetches_before_record = len(sent)
            await producer._producer.send_and_wait(name, ev.LeadRejected(lead_id="L1").SerializeToString(),
                                                   key=b"L1", partition=read.partition)
            batch = await asyncio.wait_for(reading, RECORD_WAIT_S)  # the idle fetch ended at the first byte
            assert [ev.LeadRejected.FromString(r.value).lead_id for r in batch.get(read, [])] == ["L1"]
            # The fetch in flight when the record came was the idle one; the one after it, if sent
            # yet, gathers a batch again.
            assert sent[fetches_before_record - 1] == IDLE
            assert set(sent[fetches_before_record:]) <= {BATCH}
        finally:
            await consumer.stop()
            await producer.stop()

    asyncio.run(scenario())
