"""Bids read beside faust, and written to the auction table behind them.

Why not a faust agent: faust's per-event path (its conductor, stream buffer and acknowledgement
bookkeeping) and one changelog record per bid held the worker to ~3,700 bids/s (bench/auction.py),
while a plain consumer reads the same topic at hundreds of thousands a second. So bid.placed is
read by an aiokafka consumer assigned the partitions the faust worker owns, and:

- each bid is applied at once to the table's in-memory store (`table.data`), where the close reads
  it, so a bid counts as soon as it is read, whatever the flush interval;
- every `flush_interval_s` each auction changed since the last flush is written to the changelog
  once (however many bids it took meanwhile), and only when the broker has those records are the
  bids' offsets committed, in a consumer group of their own.

A crash between two flushes loses nothing: the table comes back from its changelog as of the last
flush and the bids after it are read again from the committed offsets; a bid applied twice changes
nothing (a buyer keeps its higher bid). After an assignment the feed has a backlog to read (bids
placed while no worker owned the partitions), so it says when it has caught up with the topic's
end as of the assignment, and the worker closes no auction before that (`holds_closes`): a bid
placed in time is never lost to a close that ran ahead of the feed.

When faust takes the partitions away, the feed stops, drops what it has not flushed and commits
nothing more: the next owner reads those bids again.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Iterable, Sequence

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.errors import KafkaError
from google.protobuf.message import DecodeError
from opentelemetry import trace

from leadx.contracts.events.v1 import events_pb2 as ev
from leadx.platform.config import KafkaSettings
from leadx.platform.kafka import clients
from leadx.platform.kafka.offsets import end_offsets
from leadx.platform.logs import log_event
from leadx.platform.metrics import CONSUMER_LAG
from leadx.platform.telemetry import links_to, tracer
from leadx.auction import rules
from services.auction import metrics

log = logging.getLogger(__name__)

FLUSH_TIMEOUT_S = 10.0
# How long closes wait for the feed to catch up after an assignment, at most: a feed that cannot
# read (the broker unreachable) must not hold every auction open for ever.
CATCH_UP_LIMIT_S = 30.0
POSITION_WAIT_S = 0.05
# How long a read waits for bids when the feed holds nothing to flush and has caught up. A bid
# fetched ends the wait at once, so this only bounds how often an idle feed wakes: at the batch
# wait (5 ms) an idle auction worker spent about a twentieth of a core on empty reads.
IDLE_READ_WAIT_MS = 500


def now_ms() -> int:
    return int(time.time() * 1000)


class WriteBehind:
    """What the next flush must write: each auction changed since the last flush (with its
    partition, which is its changelog partition), and per partition the offset after the last bid
    applied, which may be committed once those writes are acknowledged."""

    def __init__(self) -> None:
        self.changed: dict[str, int] = {}
        self.next_offsets: dict[int, int] = {}

    def note(self, partition: int, next_offset: int, auction_ids: Iterable[str]) -> None:
        for auction_id in auction_ids:
            self.changed[auction_id] = partition
        self.next_offsets[partition] = max(next_offset, self.next_offsets.get(partition, 0))

    def take(self) -> tuple[dict[str, int], dict[int, int]]:
        """Everything noted so far, leaving nothing behind."""
        taken = self.changed, self.next_offsets
        self.changed, self.next_offsets = {}, {}
        return taken

    def restore(self, changed: dict[str, int], next_offsets: dict[int, int]) -> None:
        """Put back what a failed flush took, under anything noted since."""
        for auction_id, partition in changed.items():
            self.changed.setdefault(auction_id, partition)
        for partition, offset in next_offsets.items():
            self.next_offsets[partition] = max(offset, self.next_offsets.get(partition, 0))

    def __bool__(self) -> bool:
        return bool(self.next_offsets)


class BidFeed:
    def __init__(self, kafka: KafkaSettings, group_id: str, topic: str, table, *, batch_max: int,
                 batch_wait_s: float, flush_interval_s: float) -> None:
        self.topic = topic
        self.table = table
        self.batch_max = batch_max
        self.batch_wait_ms = max(1, int(batch_wait_s * 1000))
        self.flush_interval_s = flush_interval_s
        self.kafka = kafka
        self.group_id = group_id
        self.consumer: AIOKafkaConsumer | None = None
        self.pending = WriteBehind()
        self.partitions: frozenset[int] = frozenset()
        # Held while bids are applied or flushed, and by assign/release: a revocation waits for a
        # flush in progress, and no bid read before it is applied after it.
        self._lock = asyncio.Lock()
        self._assigned = asyncio.Event()
        self._generation = 0
        self._last_flush = time.monotonic()
        # Per partition, the topic's end when it was assigned: read up to there, the feed has
        # caught up. Empty once caught up (or given up on, at `_catch_up_until`).
        self._catch_up: dict[TopicPartition, int] = {}
        self._catch_up_until = 0.0

    @property
    def _reader(self) -> AIOKafkaConsumer:
        """The consumer, once started: it is read only between `_started()` and `stop()`."""
        assert self.consumer is not None, "the bid feed reads only after it started"
        return self.consumer

    async def _started(self) -> AIOKafkaConsumer:
        # Made on first use (the first assignment can come before the feed's task runs): aiokafka
        # needs the running loop.
        if self.consumer is not None:
            return self.consumer
        self.consumer = clients.consumer(
            self.kafka, group_id=self.group_id, enable_auto_commit=False,
            # As the faust worker reads its topics: a feed without a commit starts at the beginning.
            auto_offset_reset="earliest", **clients.flow_fetches(self.kafka),
            **clients.group_timeouts(self.kafka))
        CONSUMER_LAG.watch(self.consumer, self.group_id)
        await self.consumer.start()
        return self.consumer

    async def stop(self) -> None:
        await self.release(unassign=False)  # the consumer's stop drops its assignment itself
        if self.consumer is not None:
            await self.consumer.stop()

    async def assign(self, partitions: Iterable[int]) -> None:
        """Read the bids of these partitions (the worker's, once its table is recovered), from
        the committed offsets."""
        async with self._lock:
            consumer = await self._started()
            self._generation += 1
            self.pending.take()
            self.partitions = frozenset(partitions)
            assigned = [TopicPartition(self.topic, p) for p in sorted(self.partitions)]
            consumer.assign(assigned)
            self._last_flush = time.monotonic()
            self._catch_up_until = time.monotonic() + CATCH_UP_LIMIT_S
            self._catch_up = await self._ends(assigned)
            if self.partitions:
                self._assigned.set()
            else:
                self._assigned.clear()
        log_event(log, "bid feed assigned", partitions=sorted(self.partitions))

    async def _ends(self, partitions: list[TopicPartition]) -> dict[TopicPartition, int]:
        """The topic's end per partition, the offsets to read up to (those with anything to read)."""
        if not partitions:
            return {}
        try:
            ends = await end_offsets(self.kafka, partitions)
        except KafkaError:
            # Unknown: closes wait for the limit, unless the feed reads something meanwhile.
            log.warning("bid topic's end offsets unknown; closes wait up to %ss", CATCH_UP_LIMIT_S, exc_info=True)
            return dict.fromkeys(partitions, 1 << 62)
        return {tp: end for tp, end in ends.items() if end > 0}

    def holds_closes(self) -> bool:
        """True while the feed is still reading the backlog it found at its assignment: an auction
        closed now could miss bids placed in time. Never longer than CATCH_UP_LIMIT_S."""
        if not self._catch_up:
            return False
        if time.monotonic() >= self._catch_up_until:
            log.warning("bid feed still behind after %ss; auctions close without waiting for it", CATCH_UP_LIMIT_S)
            self._catch_up = {}
            return False
        return True

    async def _check_caught_up(self) -> None:
        for tp, end in list(self._catch_up.items()):
            try:
                # Bounded: position() waits while the partition's starting offset is still being
                # looked up, and the lock is held here.
                position = await asyncio.wait_for(self._reader.position(tp), POSITION_WAIT_S)
            except (TimeoutError, KafkaError):
                continue  # looked at again after the next read
            if position >= end:
                del self._catch_up[tp]
        if not self._catch_up:
            log_event(log, "bid feed caught up", partitions=sorted(self.partitions))

    async def release(self, unassign: bool = True) -> None:
        """Stop reading: the partitions are being taken away. What is not flushed is dropped; the
        next owner reads those bids again from the last commit. Not unassigned when the feed stops:
        a change of assignment while aiokafka's coordinator still takes the previous one in can fail
        the coordinator's own assertion (aio-libs/aiokafka#796), which the consumer's stop raises."""
        async with self._lock:
            self._generation += 1
            self._assigned.clear()
            self.pending.take()
            self.partitions = frozenset()
            self._catch_up = {}
            if unassign and self.consumer is not None:
                self.consumer.assign([])

    async def serve(self) -> None:
        """Read bids until cancelled, then stop the consumer."""
        try:
            await self.run()
        finally:
            await self.stop()

    async def run(self) -> None:
        while True:
            await self._assigned.wait()
            generation = self._generation
            try:
                batch = await self._reader.getmany(timeout_ms=self._read_wait_ms(), max_records=self.batch_max)
            except KafkaError:
                log.warning("reading bids failed; retrying", exc_info=True)
                await asyncio.sleep(0.5)
                continue
            async with self._lock:
                if generation != self._generation:
                    # Read before a revocation or reassignment: the next owner reads them again,
                    # and so must this feed when the read, begun before, brought the first
                    # records of its new assignment.
                    await self._read_again(batch)
                    continue
                if batch:
                    self._apply(batch)
                if self._catch_up:
                    await self._check_caught_up()
                if self.pending and time.monotonic() - self._last_flush >= self.flush_interval_s:
                    await self._flush()

    async def _read_again(self, batch: dict[TopicPartition, Sequence]) -> None:
        """Puts the feed back to the first of these records where they were the first its new
        assignment read. A read waits until a record comes (up to IDLE_READ_WAIT_MS), and a
        reassignment does not end it: one begun before can return records of the new assignment
        (aiokafka drops those it fetched under the old one), which the new assignment must apply.
        Records of the old assignment are left alone: the new one reads from the committed offsets."""
        for tp, records in batch.items():
            if not records or tp.partition not in self.partitions:
                continue
            try:
                position = await asyncio.wait_for(self._reader.position(tp), POSITION_WAIT_S)
            except (TimeoutError, KafkaError):
                continue  # the new assignment has no position yet, so it has read nothing
            if position == records[-1].offset + 1:
                self._reader.seek(tp, records[0].offset)

    def _read_wait_ms(self) -> int:
        """The batch wait while bids wait for their flush or the feed catches up (each loop checks
        them), else IDLE_READ_WAIT_MS."""
        return self.batch_wait_ms if self.pending or self._catch_up else IDLE_READ_WAIT_MS

    def _apply(self, batch: dict[TopicPartition, Sequence]) -> None:
        records = [record for tp in sorted(batch, key=lambda tp: tp.partition) for record in batch[tp]]
        with tracer().start_as_current_span("bid.placed process", kind=trace.SpanKind.CONSUMER,
                                            links=links_to(list(r.headers or ()) for r in records)) as span:
            span.set_attribute("messaging.batch.message_count", len(records))
            bids = [decode(record) for record in records]
            placed = [(i, bid) for i, bid in enumerate(bids) if bid is not None]
            changed, refused = rules.apply_bids(
                ((b.auction_id, b.buyer_id, b.amount_cents, b.placed_at_ms or now_ms()) for _, b in placed),
                self.table.get)
            _count_bids([bid for _, bid in placed], {index for index, _ in refused})
            for index, reason in refused:
                bid = placed[index][1]
                log_event(log, "bid refused", auction_id=bid.auction_id, buyer_id=bid.buyer_id,
                          amount_cents=bid.amount_cents, reason=reason)
            # Straight into the store, where the close reads it; the changelog record comes at the flush.
            for auction_id, auction in changed.items():
                self.table.data[auction_id] = auction
            partition_of = {bid.auction_id: records[i].partition for i, bid in placed}
            for tp, tp_records in batch.items():
                self.pending.note(tp.partition, tp_records[-1].offset + 1,
                                  (a for a in changed if partition_of[a] == tp.partition))

    async def _flush(self) -> None:
        changed, next_offsets = self.pending.take()
        self._last_flush = time.monotonic()
        sent = []
        for auction_id, partition in changed.items():
            # The auction as it is now: a close or a purge may have replaced it since the bid.
            auction = self.table.data.get(auction_id)
            if auction is not None:
                sent.append(self.table.send_changelog(partition, auction_id, auction))
        try:
            # Bounded: a revocation waits for this flush (it holds the lock).
            async with asyncio.timeout(FLUSH_TIMEOUT_S):
                await asyncio.gather(*sent)
                await self._reader.commit({TopicPartition(self.topic, p): at for p, at in next_offsets.items()})
        except (KafkaError, TimeoutError):
            # Nothing committed: the next flush writes these auctions again and then commits.
            self.pending.restore(changed, next_offsets)
            log.warning("bid flush failed; retried at the next flush", exc_info=True)


def _count_bids(bids: list[ev.BidPlaced], refused: set[int]) -> None:
    by_source: dict[str, list[int]] = {}
    for index, bid in enumerate(bids):
        by_source.setdefault(bid.source, [0, 0])[index in refused] += 1
    for source, (accepted, refused_count) in by_source.items():
        metrics.bids(source, accepted, refused_count)


def decode(record) -> ev.BidPlaced | None:
    try:
        return ev.BidPlaced.FromString(record.value)
    except DecodeError:
        log_event(log, "bid undecodable", partition=record.partition, offset=record.offset)
        return None


def owned_partitions(assigned: Iterable, topic: str) -> list[int]:
    """The partitions of `topic` among a faust assignment (topic-partition pairs)."""
    return sorted(tp.partition for tp in assigned if tp.topic == topic)

