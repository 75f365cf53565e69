"""The shared Kafka plumbing against the real broker: acks, headers, commit-after-work, retries."""

from __future__ import annotations

import asyncio
from dataclasses import replace

import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.errors import CommitFailedError

from leadx.contracts import topics
from leadx.contracts.events.v1 import events_pb2 as ev
from leadx.platform.config import KafkaSettings
from leadx.platform.kafka.admin import ensure_topics
from leadx.platform.kafka.consumer import EventConsumer, HeldBack
from leadx.platform.kafka.envelope import Envelope
from leadx.platform.kafka.producer import EventProducer
from tests.integration.harness import read_records
from tests.conftest import TEST_FETCH_MIN_BYTES, TEST_SESSION_TIMEOUT_MS

pytestmark = pytest.mark.integration


def settings(bootstrap: str, prefix: str) -> KafkaSettings:
    return KafkaSettings(bootstrap_servers=bootstrap, topic_prefix=prefix, partitions=1,
                         replication_factor=1, idempotence=False,
                         session_timeout_ms=TEST_SESSION_TIMEOUT_MS, fetch_min_bytes=TEST_FETCH_MIN_BYTES)


async def producer_on_lead_rejected(bootstrap: str, prefix: str) -> tuple[KafkaSettings, EventProducer]:
    """The topic these tests use (lead.rejected, one partition), made, and a started producer."""
    kafka = settings(bootstrap, prefix)
    await ensure_topics(kafka, (topics.LEAD_REJECTED,))
    producer = EventProducer(kafka, "test")
    await producer.start()
    return kafka, producer


async def committed(bootstrap: str, group: str, topic: str) -> int | None:
    probe = AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id=group, enable_auto_commit=False)
    await probe.start()
    try:
        return await probe.committed(TopicPartition(topic, 0))
    finally:
        await probe.stop()


def test_offsets_are_committed_only_past_finished_work(kafka_bootstrap, unique_prefix):
    async def scenario() -> None:
        kafka, producer = await producer_on_lead_rejected(kafka_bootstrap, unique_prefix)
        release = asyncio.Event()
        handled: list[str] = []

        async def handler(envelope: Envelope) -> None:
            if envelope.message.lead_id == "L2":
                await release.wait()  # a slow record: later ones finish first
            handled.append(envelope.message.lead_id)

        consumer = EventConsumer(kafka, "plumbing", {topics.LEAD_REJECTED: ev.LeadRejected}, handler)
        await consumer.start()
        for i in range(5):
            await producer.publish(topics.LEAD_REJECTED, f"L{i}", ev.LeadRejected(lead_id=f"L{i}"))
        topic = topics.name(unique_prefix, topics.LEAD_REJECTED)
        group = consumer.group_id
        while len(handled) < 4:
            await asyncio.sleep(0.05)
        while await committed(kafka_bootstrap, group, topic) != 2:  # the next commit round
            await asyncio.sleep(0.05)
        await asyncio.sleep(2 * kafka.commit_interval_ms / 1000)  # more rounds pass while L2 is in hand
        assert sorted(handled) == ["L0", "L1", "L3", "L4"]
        assert await committed(kafka_bootstrap, group, topic) == 2  # not past the unfinished L2
        release.set()
        while len(handled) < 5:
            await asyncio.sleep(0.05)
        await consumer.stop()  # commits what is finished on the way out
        assert await committed(kafka_bootstrap, group, topic) == 5
        await producer.stop()

    asyncio.run(scenario())


async def three_handled_under_a_far_interval(bootstrap: str, prefix: str, group: str):
    """A consumer whose commit interval is ten minutes away, once it has handled three records:
    (its producer, the consumer, the topic's name, the records handled)."""
    kafka, producer = await producer_on_lead_rejected(bootstrap, prefix)
    handled: list[str] = []

    async def handler(envelope: Envelope) -> None:
        handled.append(envelope.message.lead_id)

    slow = replace(kafka, commit_interval_ms=600_000)
    consumer = EventConsumer(slow, group, {topics.LEAD_REJECTED: ev.LeadRejected}, handler)
    await consumer.start()
    for i in range(3):
        await producer.publish(topics.LEAD_REJECTED, f"L{i}", ev.LeadRejected(lead_id=f"L{i}"))
    while len(handled) < 3:
        await asyncio.sleep(0.05)
    return producer, consumer, topics.name(prefix, topics.LEAD_REJECTED), handled


def test_finished_records_wait_for_the_commit_interval_and_a_stop_commits_them(kafka_bootstrap, unique_prefix):
    """A commit is a broker request: finished records are committed once an interval, not after
    every fetch (a crash redoes them; handlers are idempotent). A stop commits them at once."""
    async def scenario() -> None:
        producer, consumer, topic, _ = await three_handled_under_a_far_interval(kafka_bootstrap, unique_prefix,
                                                                                "interval")
        await asyncio.sleep(1.0)  # some ten fetches: each would have committed without the interval
        assert await committed(kafka_bootstrap, consumer.group_id, topic) is None
        await consumer.stop()
        assert await committed(kafka_bootstrap, consumer.group_id, topic) == 3
        await producer.stop()

    asyncio.run(scenario())


def test_a_revoke_commits_the_finished_records_at_once_whatever_the_interval(kafka_bootstrap, unique_prefix):
    """Records finished before a rebalance are committed as the partition is revoked, not at the
    next interval: the partition's next owner starts after them."""
    async def scenario() -> None:
        producer, first, topic, handled = await three_handled_under_a_far_interval(kafka_bootstrap, unique_prefix,
                                                                                  "revoke")
        assert await committed(kafka_bootstrap, first.group_id, topic) is None  # the interval is far off
        second = EventConsumer(first.settings, "revoke", {topics.LEAD_REJECTED: ev.LeadRejected}, first.handler)
        await second.start()  # joining rebalances the group: the first member's partition is revoked
        deadline = asyncio.get_running_loop().time() + 60
        while await committed(kafka_bootstrap, first.group_id, topic) != 3:
            assert asyncio.get_running_loop().time() < deadline, "the revoke committed nothing"
            await asyncio.sleep(0.2)
        assert sorted(handled) == ["L0", "L1", "L2"]  # and nothing handled twice
        await second.stop()
        await first.stop()
        await producer.stop()

    asyncio.run(scenario())


def test_a_failing_handler_is_retried_not_skipped(kafka_bootstrap, unique_prefix):
    async def scenario() -> None:
        kafka, producer = await producer_on_lead_rejected(kafka_bootstrap, unique_prefix)
        attempts: list[str] = []

        async def flaky(envelope: Envelope) -> None:
            attempts.append(envelope.event_id)
            if len(attempts) < 3:
                raise ConnectionError("Redis went away")

        consumer = EventConsumer(kafka, "retry", {topics.LEAD_REJECTED: ev.LeadRejected}, flaky)
        await consumer.start()
        event_id = await producer.publish(topics.LEAD_REJECTED, "L1", ev.LeadRejected(lead_id="L1"), "fixed-id-1")
        while len(attempts) < 3:
            await asyncio.sleep(0.05)
        assert attempts == [event_id] * 3 == ["fixed-id-1"] * 3
        await consumer.stop()
        await producer.stop()

    asyncio.run(scenario())


def test_an_undecodable_record_is_set_aside_on_dead_letter_and_the_rest_still_handled(kafka_bootstrap, unique_prefix):
    async def scenario() -> None:
        kafka, producer = await producer_on_lead_rejected(kafka_bootstrap, unique_prefix)
        await ensure_topics(kafka, (topics.DEAD_LETTER,))
        topic = topics.name(unique_prefix, topics.LEAD_REJECTED)
        await producer._producer.send_and_wait(topic, value=b"\xff\xff\xff not protobuf", key=b"bad")
        await producer.publish(topics.LEAD_REJECTED, "L9", ev.LeadRejected(lead_id="L9"))
        seen: list[str] = []

        async def handler(envelope: Envelope) -> None:
            seen.append(envelope.message.lead_id)

        consumer = EventConsumer(kafka, "poison", {topics.LEAD_REJECTED: ev.LeadRejected}, handler,
                                 dead_letters=producer)
        await consumer.start()
        while not seen:
            await asyncio.sleep(0.05)
        await consumer.stop()
        assert seen == ["L9"]
        assert await committed(kafka_bootstrap, consumer.group_id, topic) == 2
        await producer.stop()
        [dead] = read_records(kafka_bootstrap, topics.name(unique_prefix, topics.DEAD_LETTER))
        assert (dead.key, dead.value) == (b"bad", b"\xff\xff\xff not protobuf")
        assert dict(dead.headers) == {"leadx-dead-topic": topic.encode(), "leadx-dead-partition": b"0",
                                      "leadx-dead-offset": b"0", "leadx-dead-group": consumer.group_id.encode(),
                                      "leadx-dead-reason": b"undecodable"}

    asyncio.run(scenario())


def test_records_with_one_key_are_handled_one_after_another_others_side_by_side(kafka_bootstrap, unique_prefix):
    """A repeated event (an auction closed twice) must find the first one's work done, not race it:
    records that share a key wait for each other; other keys do not wait for them."""
    async def scenario() -> None:
        kafka, producer = await producer_on_lead_rejected(kafka_bootstrap, unique_prefix)
        release = asyncio.Event()
        events: list[str] = []

        async def handler(envelope: Envelope) -> None:
            tag = f"{envelope.key}/{envelope.message.internal_detail}"
            events.append(f"start {tag}")
            if envelope.key == "A" and envelope.message.internal_detail == "first":
                await release.wait()
            events.append(f"end {tag}")

        consumer = EventConsumer(kafka, "ordered", {topics.LEAD_REJECTED: ev.LeadRejected}, handler)
        await consumer.start()
        for key, reason in (("A", "first"), ("A", "second"), ("B", "only"), ("", "keyless")):
            await producer.publish(topics.LEAD_REJECTED, key, ev.LeadRejected(lead_id=key, internal_detail=reason))
        while not {"end B/only", "end /keyless"} <= set(events):
            await asyncio.sleep(0.05)
        await asyncio.sleep(0.3)
        assert "start A/second" not in events  # waits for the first A, which is still in hand
        release.set()
        while "end A/second" not in events:
            await asyncio.sleep(0.05)
        assert events.index("end A/first") < events.index("start A/second")
        await consumer.stop()
        topic = topics.name(unique_prefix, topics.LEAD_REJECTED)
        assert await committed(kafka_bootstrap, consumer.group_id, topic) == 4
        await producer.stop()

    asyncio.run(scenario())


def test_a_record_whose_handler_fails_while_others_succeed_is_set_aside_with_the_reason(kafka_bootstrap,
                                                                                      unique_prefix):
    async def scenario() -> None:
        kafka, producer = await producer_on_lead_rejected(kafka_bootstrap, unique_prefix)
        await ensure_topics(kafka, (topics.DEAD_LETTER,))
        tries: dict[str, int] = {}

        async def handler(envelope: Envelope) -> None:
            lead_id = envelope.message.lead_id
            tries[lead_id] = tries.get(lead_id, 0) + 1
            if lead_id == "L1":
                raise ValueError("lead L1 has no vertical")

        consumer = EventConsumer(kafka, "poison", {topics.LEAD_REJECTED: ev.LeadRejected}, handler,
                                 dead_letters=producer, max_attempts=3)
        await consumer.start()
        await producer.publish(topics.LEAD_REJECTED, "L1", ev.LeadRejected(lead_id="L1"))
        while not tries.get("L1"):
            await asyncio.sleep(0.02)
        await producer.publish(topics.LEAD_REJECTED, "L2", ev.LeadRejected(lead_id="L2"))  # succeeds
        topic = topics.name(unique_prefix, topics.LEAD_REJECTED)
        while await committed(kafka_bootstrap, consumer.group_id, topic) != 2:
            await asyncio.sleep(0.1)
        await consumer.stop()
        await producer.stop()
        assert tries == {"L1": 3, "L2": 1}
        [dead] = read_records(kafka_bootstrap, topics.name(unique_prefix, topics.DEAD_LETTER))
        headers = dict(dead.headers)
        assert (dead.key, headers["leadx-dead-offset"], headers["leadx-dead-topic"]) == (b"L1", b"0", topic.encode())
        assert headers["leadx-dead-reason"] == (b"handler failed 3 times while other events succeeded: "
                                                b"ValueError: lead L1 has no vertical")
        assert ev.LeadRejected.FromString(dead.value).lead_id == "L1"  # the bytes as they were

    asyncio.run(scenario())


def test_when_every_record_fails_nothing_is_set_aside_and_all_are_handled_once_the_fault_clears(kafka_bootstrap,
                                                                                              unique_prefix):
    async def scenario() -> None:
        kafka, producer = await producer_on_lead_rejected(kafka_bootstrap, unique_prefix)
        await ensure_topics(kafka, (topics.DEAD_LETTER,))
        tries: dict[str, int] = {}
        redis_down = True

        async def handler(envelope: Envelope) -> None:
            tries[envelope.message.lead_id] = tries.get(envelope.message.lead_id, 0) + 1
            if redis_down:
                raise ConnectionError("Redis went away")

        consumer = EventConsumer(kafka, "outage", {topics.LEAD_REJECTED: ev.LeadRejected}, handler,
                                 dead_letters=producer, max_attempts=2)
        await consumer.start()
        for lead_id in ("L1", "L2", "L3"):
            await producer.publish(topics.LEAD_REJECTED, lead_id, ev.LeadRejected(lead_id=lead_id))
        while min(tries.get(lead_id, 0) for lead_id in ("L1", "L2", "L3")) < 4:  # twice the bound each
            await asyncio.sleep(0.05)
        redis_down = False
        topic = topics.name(unique_prefix, topics.LEAD_REJECTED)
        while await committed(kafka_bootstrap, consumer.group_id, topic) != 3:
            await asyncio.sleep(0.1)
        await consumer.stop()
        await producer.stop()
        assert read_records(kafka_bootstrap, topics.name(unique_prefix, topics.DEAD_LETTER)) == []

    asyncio.run(scenario())


def test_a_consumer_whose_loop_died_is_not_ready(kafka_bootstrap, unique_prefix):
    async def scenario() -> None:
        kafka, producer = await producer_on_lead_rejected(kafka_bootstrap, unique_prefix)

        async def handler(envelope: Envelope) -> None:
            pass

        consumer = EventConsumer(kafka, "dies", {topics.LEAD_REJECTED: ev.LeadRejected}, handler)
        await consumer.start()
        while not consumer.ready():
            await producer.publish(topics.LEAD_REJECTED, "L1", ev.LeadRejected(lead_id="L1"))
            await asyncio.sleep(0.1)

        async def broken(*args, **kwargs):
            raise RuntimeError("the fetcher broke")

        consumer._consumer.getmany = broken  # what an unexpected error in the loop leaves behind
        while consumer.ready():
            await asyncio.sleep(0.05)
        assert consumer.joined  # still in the group, yet reading nothing: not ready
        await consumer._consumer.stop()
        await producer.stop()

    asyncio.run(scenario())


def test_a_commit_refused_after_a_rebalance_is_made_again_and_the_loop_goes_on(kafka_bootstrap, unique_prefix):
    # A process frozen past its session timeout (SIGSTOP, a debugger, a VM paused) finds its group
    # rebalanced and its commit refused. Its loop must not die of it (the fault suite saw a dedup
    # worker stay unready for good): it goes on, and commits the finished records at a later round.
    async def scenario() -> None:
        kafka, producer = await producer_on_lead_rejected(kafka_bootstrap, unique_prefix)
        handled: list[str] = []

        async def handler(envelope: Envelope) -> None:
            handled.append(envelope.message.lead_id)

        consumer = EventConsumer(kafka, "rejoins", {topics.LEAD_REJECTED: ev.LeadRejected}, handler)
        await consumer.start()
        commit, refusals = consumer._consumer.commit, []

        async def refused_once(offsets):
            if not refusals:
                refusals.append(dict(offsets))
                raise CommitFailedError("the group has already rebalanced")
            return await commit(offsets)

        consumer._consumer.commit = refused_once
        await producer.publish(topics.LEAD_REJECTED, "L0", ev.LeadRejected(lead_id="L0"))
        while not refusals:
            await asyncio.sleep(0.05)
        assert consumer.ready()  # the loop goes on
        await producer.publish(topics.LEAD_REJECTED, "L1", ev.LeadRejected(lead_id="L1"))
        topic = topics.name(unique_prefix, topics.LEAD_REJECTED)
        while await committed(kafka_bootstrap, consumer.group_id, topic) != 2:
            await asyncio.sleep(0.1)
        assert handled == ["L0", "L1"] and consumer.ready()
        await consumer.stop()
        await producer.stop()

    asyncio.run(scenario())


def test_an_event_held_back_is_retried_past_the_bound_even_while_others_succeed(kafka_bootstrap, unique_prefix):
    # A lead held while dedup restores its records (HeldBack) is not poison, however many times it
    # is tried while a lead with nothing to check goes through.
    async def scenario() -> None:
        kafka, producer = await producer_on_lead_rejected(kafka_bootstrap, unique_prefix)
        await ensure_topics(kafka, (topics.DEAD_LETTER,))
        tries: dict[str, int] = {}
        restoring = True

        async def handler(envelope: Envelope) -> None:
            lead_id = envelope.message.lead_id
            tries[lead_id] = tries.get(lead_id, 0) + 1
            if lead_id == "held" and restoring:
                raise HeldBack("the records are being restored")

        consumer = EventConsumer(kafka, "held", {topics.LEAD_REJECTED: ev.LeadRejected}, handler,
                                 dead_letters=producer, max_attempts=2)
        await consumer.start()
        await producer.publish(topics.LEAD_REJECTED, "held", ev.LeadRejected(lead_id="held"))
        await producer.publish(topics.LEAD_REJECTED, "free", ev.LeadRejected(lead_id="free"))  # succeeds
        while tries.get("held", 0) < 5 or not tries.get("free"):  # past the bound, after a success
            await asyncio.sleep(0.05)
        restoring = False
        topic = topics.name(unique_prefix, topics.LEAD_REJECTED)
        while await committed(kafka_bootstrap, consumer.group_id, topic) != 2:
            await asyncio.sleep(0.1)
        await consumer.stop()
        await producer.stop()
        assert read_records(kafka_bootstrap, topics.name(unique_prefix, topics.DEAD_LETTER)) == []
        assert tries["free"] == 1 and tries["held"] >= 6  # handled once the restore was done

    asyncio.run(scenario())
