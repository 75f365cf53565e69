"""A broker started with its request log (leadx.dev.kafka_broker's `request_log`) writes a line for
every request it completes, and leadx.dev.broker_requests counts them by kind and by the client that
sent them: what bench/sustained.py --count-requests reports. On a real Apache Kafka broker, with
the platform's own producer and consumer group."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest

from leadx.contracts import topics
from leadx.contracts.events.v1 import events_pb2 as ev
from leadx.dev.broker_requests import RequestCounts, RequestLog, count
from leadx.dev.kafka_broker import KafkaBroker, Listener, fetch
from leadx.platform.config import KafkaSettings
from leadx.platform.kafka.admin import ensure_topics
from leadx.platform.kafka.consumer import EventConsumer
from leadx.platform.kafka.envelope import Envelope
from leadx.platform.kafka.producer import EventProducer
from tests.conftest import poll_until, poll_until_async

pytestmark = [pytest.mark.integration, pytest.mark.kafka_only]

PREFIX = "counted."
LEADS = 5
WAIT_S = 30


@pytest.fixture(scope="module")
def broker(tmp_path_factory) -> Iterator[KafkaBroker]:
    fetch(quiet=True)  # cached after the first time (`make kafka-jars`)
    with KafkaBroker([Listener("CLIENT")], workdir=tmp_path_factory.mktemp("kafka-requests"),
                     request_log=True) as started:
        yield started


def test_each_request_is_counted_for_the_client_that_sent_it_from_the_mark_on(broker):
    kafka = KafkaSettings(bootstrap_servers=broker.bootstrap(), topic_prefix=PREFIX, partitions=1,
                          replication_factor=1, idempotence=False)
    log = RequestLog(broker.log_path)
    topic = topics.name(PREFIX, topics.LEAD_REJECTED)

    async def scenario() -> None:
        await ensure_topics(kafka, (topics.LEAD_REJECTED,))
        earlier = EventProducer(kafka, "before-the-mark")
        await earlier.start()
        try:
            await earlier.publish(topics.LEAD_REJECTED, "L-before", ev.LeadRejected(lead_id="L-before"))
        finally:
            await earlier.stop()
        # The broker logs a request once it has answered it, so a line can follow its answer: the
        # mark goes after the earlier producer's last request is in the log.
        await poll_until_async(lambda: ("PRODUCE", "before-the-mark") in count(
            broker.log_path.read_text(errors="replace").splitlines()).by_kind, message="the earlier produce logged")
        log.mark()
        producer = EventProducer(kafka, "counted-producer")
        await producer.start()
        seen: list[str] = []

        async def handler(envelope: Envelope) -> None:
            seen.append(envelope.message.lead_id)

        consumer = EventConsumer(kafka, "counted", {topics.LEAD_REJECTED: ev.LeadRejected}, handler)
        await consumer.start()
        try:
            for number in range(LEADS):  # each awaited: a produce request each
                await producer.publish(topics.LEAD_REJECTED, f"L{number}", ev.LeadRejected(lead_id=f"L{number}"))
            async with asyncio.timeout(WAIT_S):
                while len(seen) < LEADS + 1:  # the one published before the mark too
                    await asyncio.sleep(0.05)
        finally:
            await consumer.stop()  # commits what it handled
            await producer.stop()

    asyncio.run(scenario())
    group_client = topics.group(PREFIX, "counted")  # a group's consumer is named after its group

    def logged_so_far() -> RequestCounts | None:
        """The counts once the scenario's last requests (the produces, the commit at the stop) are logged."""
        counts = log.read()
        produced = counts.by_kind.get(("PRODUCE", "counted-producer"))
        committed = ("OFFSET_COMMIT", group_client) in counts.by_kind
        return counts if produced is not None and produced.count >= LEADS and committed else None
    counts = poll_until(logged_so_far, timeout_s=WAIT_S, message="the scenario's requests logged")
    assert isinstance(counts, RequestCounts)

    produces = counts.by_kind[("PRODUCE", "counted-producer")]
    assert produces.count == LEADS and produces.batches_by_topic == {topic: LEADS}
    fetches = counts.by_kind[("FETCH", group_client)]
    assert fetches.count >= 1 and fetches.partitions_with_records >= 1
    assert counts.by_kind[("OFFSET_COMMIT", group_client)].count >= 1
    assert ("JOIN_GROUP", group_client) in counts.by_kind
    assert not any(client == "before-the-mark" for _, client in counts.by_kind)  # it sent before the mark
    assert counts.unreadable == 0

    summary = counts.summary(seconds=1.0, sold_leads=LEADS, topic_prefix=PREFIX)
    rows = {(row["api"], row["client_id"]): row for row in summary["by_api_and_client"]}
    assert rows[("PRODUCE", "counted-producer")]["a_sold_lead"] == 1.0
    assert rows[("PRODUCE", "counted-producer")]["partition_batches_by_topic"] == {"lead.rejected": LEADS}
    assert summary["requests"] == counts.total >= LEADS + 3
