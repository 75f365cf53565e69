"""`EventConsumer` runs a consumer group whose offsets are committed only after the handler has
finished with every record of a batch (at-least-once), about every commit interval
(KafkaSettings.commit_interval_ms). Handlers must be idempotent."""

from __future__ import annotations

import asyncio
import functools
import logging
import time
from collections import deque
from collections.abc import Awaitable, Callable, Mapping

from aiokafka import ConsumerRebalanceListener, TopicPartition
from aiokafka.errors import CommitFailedError, KafkaError
from google.protobuf.message import DecodeError, Message
from opentelemetry import trace

from leadx.contracts import topics as topic_names
from leadx.platform.config import KafkaSettings
from leadx.platform.kafka import clients
from leadx.platform.kafka.envelope import HEADER_EVENT_ID, Envelope
from leadx.platform.kafka.producer import EventProducer
from leadx.platform.metrics import CONSUMER_LAG, EVENT_HANDLER_FAILURES, EVENTS_DEAD_LETTERED
from leadx.platform.telemetry import child_span, extract_context

log = logging.getLogger(__name__)


Handler = Callable[[Envelope], Awaitable[None]]
# With the backoff (0.1 s doubling to 5 s), about 25 s of failures before a record is set aside.
DEFAULT_MAX_ATTEMPTS = 10
UNDECODABLE, HANDLER_FAILED = "undecodable", "handler_failed"  # why records are set aside


def _failure_reason(attempts: int, exc: BaseException) -> str:
    # Exception texts carry ids and causes, not a lead's values (SQL errors hide their parameters).
    return f"handler failed {attempts} times while other events succeeded: {type(exc).__name__}: {exc}"[:500]


def _succeeded(task: asyncio.Task) -> bool:
    # A record abandoned at shutdown finished with an error: it must not be committed.
    return task.done() and not task.cancelled() and task.exception() is None


class HeldBack(Exception):
    """Raised by a handler when no event can be handled yet, for a reason outside the event (a
    store being restored): the event is retried with backoff as long as it takes, never counted
    toward setting it aside on dead.letter, and logged in one line, without a traceback."""


class _Listener(ConsumerRebalanceListener):
    def __init__(self, consumer: EventConsumer) -> None:
        self.consumer = consumer

    async def on_partitions_revoked(self, revoked) -> None:
        await self.consumer._drain(set(revoked))

    async def on_partitions_assigned(self, assigned) -> None:
        self.consumer.assigned = set(assigned)
        self.consumer.joined = True


class EventConsumer:
    """A consumer group over one or more topics, each with its protobuf message type.

    Records are handled concurrently (up to `max_in_flight`), because some handlers wait seconds
    on buyers' HTTP servers; but records with the same key are handled one after another, in
    their order, so a repeated event (the same auction.closed published twice) finds the first
    one's work done instead of racing it. Offsets are committed per partition only up to the
    highest record below which every record is finished, so a crash never skips unfinished work;
    it may repeat finished work, hence handlers must be idempotent.

    A handler error is retried with backoff (skipping the record would lose a lead). A record is
    set aside on dead.letter through `dead_letters` (logged and skipped when none is given, as in
    tools that only read) when no retry can ever handle it: it is undecodable, or its handler failed
    `max_attempts` times while the handler succeeded with other records since its first failure, so
    the fault is the record's own. When nothing succeeds (Redis or SQL down) records are retried
    for as long as it takes: an outage must not empty the topics onto dead.letter.
    """

    def __init__(
        self,
        settings: KafkaSettings,
        group: str,
        message_types: Mapping[str, type[Message]],
        handler: Handler,
        *,
        dead_letters: EventProducer | None = None,
        max_attempts: int = DEFAULT_MAX_ATTEMPTS,
        max_in_flight: int = 256,
        waiting: clients.Waiting = "sale",
    ) -> None:
        """`waiting`: what waits on this consumer's records, which sets how long its fetches wait
        (leadx.platform.kafka.clients.flow_fetches): "answer" for a seller's (the two hops of every
        answer: KAFKA_ANSWER_FETCH_MAX_WAIT_MS when set), "sale" for a sale's, "background" for
        nobody's (the ledger's records, list awards: a longer wait, fewer idle fetches)."""
        self.settings = settings
        self.handler = handler
        self.dead_letters = dead_letters
        self.max_attempts = max_attempts
        self._last_success = 0.0  # time.monotonic() of the handler's latest success
        self.types = {topic_names.name(settings.topic_prefix, base): (base, t)
                      for base, t in message_types.items()}
        self.group_id = topic_names.group(settings.topic_prefix, group)
        self.joined = False
        self.assigned: set[TopicPartition] = set()
        self._slots = asyncio.Semaphore(max_in_flight)
        self._max_batch = max_in_flight
        self._in_flight: dict[TopicPartition, deque[tuple[int, asyncio.Task]]] = {}
        # One commit at a time: the loop's and a revoke's (run by aiokafka's coordinator) would
        # otherwise both count the same finished records and pop them twice.
        self._commit_lock = asyncio.Lock()
        self._last_by_key: dict[tuple[str, bytes], asyncio.Task] = {}  # the latest task per key
        self._consumer = clients.consumer(
            settings,
            group_id=self.group_id,
            enable_auto_commit=False,
            # 'earliest' so that a new group never silently skips events already published.
            auto_offset_reset="earliest",
            **clients.group_timeouts(settings),
            **clients.flow_fetches(settings, waiting),
        )
        CONSUMER_LAG.watch(self._consumer, self.group_id)
        self._task: asyncio.Task | None = None
        self._stopping = False

    def ready(self) -> bool:
        """Joined its group, and its consume loop still running (a loop that died consumes nothing)."""
        return self.joined and self._task is not None and not self._task.done()

    async def start(self) -> None:
        await self._consumer.start()
        self._consumer.subscribe(list(self.types), listener=_Listener(self))
        self._task = asyncio.create_task(self._run(), name=f"consume:{self.group_id}")
        self._task.add_done_callback(self._loop_ended)

    def _loop_ended(self, task: asyncio.Task) -> None:
        if not task.cancelled() and task.exception() is not None and not self._stopping:
            log.error("consume loop died; the service reports not ready", exc_info=task.exception(),
                      extra={"fields": {"group": self.group_id}})

    async def stop(self) -> None:
        """Finish the records in hand, commit them, then leave the group."""
        self._stopping = True
        if self._task is not None:
            await self._task
        async with self._commit_lock:
            # A revoke may have come while the loop was queueing a batch, leaving queues of
            # partitions gone elsewhere: a commit naming them would be refused whole.
            self._drop_unassigned()
        await self._drain(set(self._in_flight))
        await self._consumer.stop()

    async def _run(self) -> None:
        interval_s = self.settings.commit_interval_ms / 1000
        last_commit = time.monotonic()
        while not self._stopping:
            batch = await self._consumer.getmany(timeout_ms=100, max_records=self._max_batch)
            for tp, records in batch.items():
                queue = self._in_flight.setdefault(tp, deque())
                for record in records:
                    await self._slots.acquire()
                    key = (record.topic, record.key) if record.key else None  # keyless: no order
                    after = self._last_by_key.get(key) if key else None
                    task = asyncio.create_task(self._process(record, after=after))
                    if key is not None:
                        self._last_by_key[key] = task
                    task.add_done_callback(functools.partial(self._finished, key))
                    queue.append((record.offset, task))
            # Finished records are committed about every commit interval (KafkaSettings), not
            # after every fetch: a commit is a broker request, and a crash redoes the uncommitted
            # ones (handlers are idempotent). getmany returns within 100 ms, so a round comes soon
            # after the interval unless the loop waits for a free slot (max_in_flight records in hand).
            if time.monotonic() - last_commit < interval_s:
                continue
            last_commit = time.monotonic()
            try:
                await self._commit_finished()
            except KafkaError as exc:
                if not (isinstance(exc, CommitFailedError) or exc.retriable):
                    raise
                # The group moved on while this process could not answer it (frozen, paused, cut off
                # past its session timeout), or the commit failed in a way worth retrying (aiokafka
                # itself retries most of those). Not a reason to stop consuming: the next getmany
                # rejoins the group; a partition that moved is redone by its new owner from the last
                # commit (handlers are idempotent), one that stayed is committed at the next round.
                log.warning("commit failed; going on", extra={"fields": {"group": self.group_id, "error": repr(exc)}})

    async def _commit_finished(self, only: set[TopicPartition] | None = None) -> None:
        """Commit each partition up to its first unfinished record. Records leave the in-flight
        queues only once their commit succeeded, so a failed commit is made again later. The loop's
        rounds (`only` None) also drop the queues of partitions no longer assigned (records of a
        batch read before a revoke): their new owner redoes that work, and a commit naming them
        would be refused."""
        async with self._commit_lock:
            if only is None:
                self._drop_unassigned()
            offsets: dict[TopicPartition, int] = {}
            for tp, queue in self._in_flight.items():
                if only is not None and tp not in only:
                    continue
                done = 0
                while done < len(queue) and _succeeded(queue[done][1]):
                    done += 1
                if done:
                    offsets[tp] = queue[done - 1][0] + 1
            if not offsets:
                return
            await self._consumer.commit(offsets)
            for tp, end in offsets.items():
                queue = self._in_flight.get(tp, deque())
                while queue and queue[0][0] < end:
                    queue.popleft()

    def _drop_unassigned(self) -> None:
        assigned = self._consumer.assignment()
        for tp in [tp for tp in self._in_flight if tp not in assigned]:
            del self._in_flight[tp]

    async def _drain(self, partitions: set[TopicPartition]) -> None:
        """Wait for the records of these partitions and commit them (before a revoke or stop)."""
        tasks = [task for tp in partitions for _, task in self._in_flight.get(tp, ())]
        if tasks:
            await asyncio.gather(*tasks, return_exceptions=True)
        try:
            await self._commit_finished(only=partitions)
        except Exception:  # the group moved on; the next owner repeats the work (idempotent)
            log.warning("commit after drain failed", exc_info=True)
        for tp in partitions:
            self._in_flight.pop(tp, None)

    def _finished(self, key: tuple[str, bytes] | None, task: asyncio.Task) -> None:
        self._slots.release()
        if key is not None and self._last_by_key.get(key) is task:
            del self._last_by_key[key]

    async def _process(self, record, after: asyncio.Task | None = None) -> None:
        if after is not None:
            # The same key's previous record first; its failure is its own (it stays uncommitted).
            await asyncio.wait([after])
        envelope = self._decode(record)
        poison = UNDECODABLE if envelope is None else ""
        delay, attempts, first_failure = 0.1, 0, 0.0
        while True:
            try:
                if poison or envelope is None:
                    await self._set_aside(record, poison)
                else:
                    await self._handle(envelope, record.headers)
                    self._last_success = time.monotonic()
                return
            except Exception as exc:
                if self._stopping:
                    # Left unfinished: its offset is not committed, so the next owner redoes it.
                    raise
                where = {"topic": record.topic, "partition": record.partition, "offset": record.offset,
                         "event_id": envelope.event_id if envelope is not None else None}
                if isinstance(exc, HeldBack):
                    log.warning("event held back; retrying", extra={"fields": {**where, "reason": str(exc)}})
                    await asyncio.sleep(delay)
                    delay = min(delay * 2, 5.0)
                    continue
                log.exception("handler failed; retrying", extra={"fields": where})
                if not poison:
                    EVENT_HANDLER_FAILURES.labels(record.topic).inc()
                    attempts += 1
                    first_failure = first_failure or time.monotonic()
                    if self._its_own_fault(attempts, first_failure):
                        poison = _failure_reason(attempts, exc)
                        continue
                await asyncio.sleep(delay)
                delay = min(delay * 2, 5.0)

    def _its_own_fault(self, attempts: int, first_failure: float) -> bool:
        return (self.dead_letters is not None and attempts >= self.max_attempts
                and self._last_success > first_failure)

    async def _set_aside(self, record, reason: str) -> None:
        where = {"topic": record.topic, "partition": record.partition, "offset": record.offset, "reason": reason}
        if self.dead_letters is None:
            log.error("event skipped", extra={"fields": where})
            return
        await self.dead_letters.set_aside(record, self.group_id, reason)
        # The label is the kind (a bounded set); the full reason rides in the record's header.
        EVENTS_DEAD_LETTERED.labels(record.topic, UNDECODABLE if reason == UNDECODABLE else HANDLER_FAILED).inc()
        log.error("event set aside on dead.letter", extra={"fields": where})

    async def _handle(self, envelope: Envelope, headers) -> None:
        parent = extract_context(headers or ())
        with child_span(f"{envelope.topic} process", trace.SpanKind.CONSUMER, parent) as span:
            span.set_attribute("messaging.message.id", envelope.event_id)
            span.set_attribute("messaging.consumer.group.name", self.group_id)
            await self.handler(envelope)

    def _decode(self, record) -> Envelope | None:
        base, message_type = self.types[record.topic]
        headers = dict(record.headers or ())
        event_id = (headers.get(HEADER_EVENT_ID, b"").decode()
                    or f"{record.topic}:{record.partition}:{record.offset}")
        try:
            message = message_type.FromString(record.value or b"")
        except DecodeError:
            return None
        return Envelope(
            topic=base,
            key=(record.key or b"").decode(),
            event_id=event_id,
            message=message,
            partition=record.partition,
            offset=record.offset,
        )
