"""Topics read by the tests, each tailed into memory by one long-lived consumer.

A test polls a topic many times while it waits for an event (every 50 ms). Opening a consumer and
reading the topic from its beginning on every poll cost a connection, a metadata round and the
whole topic each time. Here one group-less consumer per broker, on a thread with its own event
loop, keeps its place in every topic the tests read: a read checks the topic's end (as
`end_offsets_with` checks it, so a broker that reports a short end does not cut the read short),
fetches only the records written since the last read, and answers from memory. A read therefore
sees every record written before it started, as a fresh read to the end would."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.structs import ConsumerRecord

from leadx.platform.kafka.offsets import end_offsets_with, partitions_of

# A read fetches only what its end check found written, so a fetch need not wait at the broker.
FETCH_WAIT_MS = 10
CATCH_UP_TIMEOUT_S = 30.0


class TopicTails:
    """The topics tailed on one broker: one event loop on its own thread, one consumer assigned
    every partition of them, and one more that finds the partitions' ends. Between reads the
    partitions are paused, so an idle tail sends the broker nothing."""

    def __init__(self, bootstrap: str) -> None:
        self.bootstrap = bootstrap
        self._records: dict[str, list[ConsumerRecord]] = {}  # per topic, as read (a partition's in order)
        self._decoded: dict[tuple[str, Callable], list] = {}
        self._partitions: dict[str, list[TopicPartition]] = {}
        self._reader: AIOKafkaConsumer | None = None
        self._probe: AIOKafkaConsumer | None = None
        self._lock = asyncio.Lock()  # one read at a time: each moves the probe and the reader
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name=f"topic tails {bootstrap}", daemon=True)
        self._thread.start()

    def records(self, topic: str) -> list[ConsumerRecord]:
        """Every record of the topic from its beginning to its end as of this call."""
        return self._call(self._read(topic, None))

    def decoded(self, topic: str, decode: Callable) -> list:
        """`decode(record)` of every record `records` would return (each record decoded once)."""
        return self._call(self._read(topic, decode))

    def forget(self, topic_prefix: str) -> None:
        """Stop reading the topics under the prefix (their stack stopped) and drop their records."""
        self._call(self._forget(topic_prefix))

    def stop(self) -> None:
        self._call(self._stop())
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)
        self._loop.close()

    def _call(self, coroutine):
        return asyncio.run_coroutine_threadsafe(coroutine, self._loop).result(CATCH_UP_TIMEOUT_S + 30)

    async def _read(self, topic: str, decode: Callable | None) -> list:
        async with self._lock:
            if topic not in self._partitions and not await self._follow(topic):
                return []  # no such topic yet: nothing was written to it
            partitions = self._partitions[topic]
            ends = await end_offsets_with(self._probe, partitions)
            # Left assigned, the probe would keep a fetch waiting at the broker, and the next check's
            # seek would wait for that fetch to answer before fetching.
            self._probe.unsubscribe()
            behind = [tp for tp in partitions if await self._reader.position(tp) < ends[tp]]
            if behind:
                await self._catch_up(topic, behind, ends)
            records = self._records[topic]
            if decode is None:
                return list(records)
            done = self._decoded.setdefault((topic, decode), [])
            done.extend(decode(record) for record in records[len(done):])
            return list(done)

    async def _catch_up(self, topic: str, behind: list[TopicPartition], ends: dict[TopicPartition, int]) -> None:
        deadline = time.monotonic() + CATCH_UP_TIMEOUT_S
        self._reader.resume(*behind)
        try:
            while behind:
                if time.monotonic() > deadline:
                    raise TimeoutError(f"the tail of {topic} did not reach the topic's end in {CATCH_UP_TIMEOUT_S}s")
                for records in (await self._reader.getmany(*behind, timeout_ms=200, max_records=10_000)).values():
                    self._records[topic].extend(records)
                behind = [tp for tp in behind if await self._reader.position(tp) < ends[tp]]
        finally:
            self._reader.pause(*self._partitions[topic])

    async def _follow(self, topic: str) -> bool:
        """Add the topic to the reader's partitions, from its beginning; False if it does not exist."""
        if self._probe is None:
            self._probe = AIOKafkaConsumer(bootstrap_servers=self.bootstrap, group_id=None, enable_auto_commit=False)
            await self._probe.start()
            self._reader = AIOKafkaConsumer(bootstrap_servers=self.bootstrap, group_id=None, enable_auto_commit=False,
                                            fetch_max_wait_ms=FETCH_WAIT_MS)
            await self._reader.start()
        numbers = await self._partitions_of(topic)
        if not numbers:
            return False
        await self._reassign({**self._partitions, topic: [TopicPartition(topic, p) for p in sorted(numbers)]}, topic)
        return True

    async def _partitions_of(self, topic: str) -> set[int]:
        """The topic's partitions as the brokers know them now (services create their topics as
        they start), asked of them afresh: on Apache Kafka a consumer's own metadata names only
        the topics it tracks."""
        assert self._probe is not None
        return {tp.partition for tp in await partitions_of(self._probe, [topic])}

    async def _reassign(self, partitions: dict[str, list[TopicPartition]], new_topic: str | None) -> None:
        """Assign the reader these partitions, paused: those it read keep their positions, a new
        topic's start at its beginning."""
        kept = [tp for topic, tps in partitions.items() if topic != new_topic for tp in tps]
        positions = {tp: await self._reader.position(tp) for tp in kept}
        self._partitions = partitions
        every = [tp for tps in partitions.values() for tp in tps]
        self._reader.assign(every)
        self._reader.pause(*every)
        for tp, position in positions.items():
            self._reader.seek(tp, position)
        if new_topic is not None:
            self._records[new_topic] = []
            await self._reader.seek_to_beginning(*partitions[new_topic])

    async def _forget(self, topic_prefix: str) -> None:
        async with self._lock:
            gone = [topic for topic in self._partitions if topic.startswith(topic_prefix)]
            if not gone:
                return
            await self._reassign({t: tps for t, tps in self._partitions.items() if t not in gone}, None)
            for topic in gone:
                self._records.pop(topic, None)
            self._decoded = {key: value for key, value in self._decoded.items() if key[0] not in gone}

    async def _stop(self) -> None:
        async with self._lock:
            for consumer in (self._reader, self._probe):
                if consumer is not None:
                    await consumer.stop()


_TAILS: dict[str, TopicTails] = {}
_TAILS_LOCK = threading.Lock()


def tails_of(bootstrap: str) -> TopicTails:
    """The tails on this broker, made at the first read."""
    with _TAILS_LOCK:
        if bootstrap not in _TAILS:
            _TAILS[bootstrap] = TopicTails(bootstrap)
        return _TAILS[bootstrap]


def forget_topics(bootstrap: str, topic_prefix: str) -> None:
    """The stack with this prefix stopped: stop reading its topics."""
    with _TAILS_LOCK:
        tails = _TAILS.get(bootstrap)
    if tails is not None:
        tails.forget(topic_prefix)


def stop_all_tails() -> None:
    with _TAILS_LOCK:
        stopping = list(_TAILS.values())
        _TAILS.clear()
    for tails in stopping:
        tails.stop()
