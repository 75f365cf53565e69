"""An event that no retry can handle, from dead.letter back to its topic: a consumer group sets it
aside, `leadx dlq list` shows it, and once its cause is fixed `leadx dlq replay` puts it back,
where the group handles it, its own headers intact."""

from __future__ import annotations

import asyncio
import json

import pytest

from leadx.contracts import topics
from leadx.contracts.events.v1 import events_pb2 as ev
from leadx.platform.kafka.admin import ensure_topics
from leadx.platform.kafka.consumer import EventConsumer
from leadx.platform.kafka.envelope import Envelope
from leadx.platform.kafka.producer import EventProducer
from tests.integration.cli import leadx
from tests.integration.harness import read_records
from tests.integration.test_kafka_plumbing import committed, settings

pytestmark = pytest.mark.integration


def test_a_poison_event_is_listed_then_replayed_once_fixed_and_handled(kafka_bootstrap, unique_prefix):
    kafka = settings(kafka_bootstrap, unique_prefix)
    topic = topics.name(unique_prefix, topics.LEAD_REJECTED)
    handled: list[tuple[str, str]] = []  # lead id, event id
    fixed = False

    async def handler(envelope: Envelope) -> None:
        if envelope.message.lead_id == "L1" and not fixed:
            raise LookupError("no seller s_9 for lead L1")
        handled.append((envelope.message.lead_id, envelope.event_id))

    async def consume_until(count: int, offset: int, publish: tuple[str, ...] = ()) -> None:
        producer = EventProducer(kafka, "test")
        await producer.start()
        for lead_id in publish:
            await producer.publish(topics.LEAD_REJECTED, lead_id, ev.LeadRejected(lead_id=lead_id), f"event-{lead_id}")
        consumer = EventConsumer(kafka, "records", {topics.LEAD_REJECTED: ev.LeadRejected}, handler,
                                 dead_letters=producer, max_attempts=3)
        await consumer.start()
        while len(handled) < count or await committed(kafka_bootstrap, consumer.group_id, topic) != offset:
            await asyncio.sleep(0.1)
        await consumer.stop()
        await producer.stop()

    asyncio.run(ensure_topics(kafka, (topics.LEAD_REJECTED, topics.DEAD_LETTER)))
    asyncio.run(consume_until(1, 2, publish=("L1", "L2")))  # L2 handled, L1 set aside: both committed
    env = {"KAFKA_BOOTSTRAP_SERVERS": kafka_bootstrap, "LEADX_TOPIC_PREFIX": unique_prefix}

    listed = leadx("dlq", "list", "--json", env=env)
    assert listed.returncode == 0, listed.stderr
    [item] = json.loads(listed.stdout)
    assert (item["id"], item["key"]) == ("0:0", "L1")
    assert item["dead"]["topic"] == topic and (item["dead"]["partition"], item["dead"]["offset"]) == (0, 0)
    assert item["dead"]["reason"] == ("handler failed 3 times while other events succeeded: "
                                      "LookupError: no seller s_9 for lead L1")
    text = leadx("dlq", "list", env=env)
    assert f"key L1  from {topic} 0:0, group {unique_prefix}leadx-records: handler failed 3 times" in text.stdout

    refused = leadx("dlq", "replay", "0:7", env=env)
    assert refused.returncode == 2 and "not on dead.letter: 0:7" in refused.stderr
    fixed = True
    replayed = leadx("dlq", "replay", "0:0", env=env)
    assert replayed.returncode == 0, replayed.stderr
    assert replayed.stdout.strip() == f"replayed 0:0 to {topic}"

    asyncio.run(consume_until(2, 3))
    assert handled == [("L2", "event-L2"), ("L1", "event-L1")]  # the replay kept the event's own id
    replay = read_records(kafka_bootstrap, topic)[2]
    assert dict(replay.headers)["leadx-replayed-from"] == b"dead.letter 0:0"
    assert not any(name.startswith("leadx-dead-") for name, _ in replay.headers)


def test_an_empty_dead_letter_topic_and_an_unreachable_broker_are_one_line_each(kafka_bootstrap, unique_prefix):
    asyncio.run(ensure_topics(settings(kafka_bootstrap, unique_prefix), (topics.DEAD_LETTER,)))
    empty = leadx("dlq", "list", env={"KAFKA_BOOTSTRAP_SERVERS": kafka_bootstrap, "LEADX_TOPIC_PREFIX": unique_prefix})
    assert (empty.returncode, empty.stdout.strip()) == (0, "dead.letter is empty")
    unreachable = leadx("dlq", "list", env={"KAFKA_BOOTSTRAP_SERVERS": "127.0.0.1:9", "LEADX_TOPIC_PREFIX": "x."})
    assert unreachable.returncode == 2 and unreachable.stderr.startswith("leadx: the broker: ")
    assert "Traceback" not in unreachable.stderr
