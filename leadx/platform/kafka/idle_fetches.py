"""Fetches that gather a batch while records flow, and sleep while none do (Apache Kafka).

A fetch asks the broker to hold it until `fetch_min_bytes` have arrived or `fetch_max_wait_ms` has
passed. While records flow the services want the batch (64 KB or 25 ms): a fetch brings every record
of its wait at once, where at 1 byte each record woke each consumer on its own (bench/README.md).
With nothing flowing the same setting has every consumer fetch forty times a second for nothing: the
exchange at rest on one Kafka broker used about half a core, the broker alone a quarter of one.

So after a fetch that brought no records, the next one waits for the first byte, up to the idle
wait: the broker answers it as soon as a record arrives (a lead after a quiet spell moves on at
once, not after the batch wait), and a consumer with nothing to read fetches about twice a second.
The fetch after one that brought records gathers a batch again. Kept per broker node: a consumer
fetches from each node that leads some of its partitions, and one node's quiet says nothing of
another's.

A fetch in flight holds back what the consumer next asks of its node (aiokafka sends a node no other
fetch or offset reset meanwhile, and the broker answers a connection's requests in order): a
partition seeked, reset, resumed or newly given, or an offset lookup, waits for it to end. So a
fetch that leaves out some of the node's partitions (records of theirs still unread: faust holding
a partition back, a consumer at its in-flight limit) gathers a batch instead, and the idle wait is
kept short (at most 5 s; 500 ms by default): that is the longest a seek or rebalance can now wait
for a quiet node's fetch to end, against the batch wait before.

The auction's faust consumer (services/auction/faust_consumer.py) keeps two more rules: a node is
quiet only after three empty fetches in a row, and a partition left out of three fetches in a row
is one it does not read (faust's table changelog once recovered, whose last records aiokafka keeps
unread for ever), which no longer keeps its fetches to a batch. Without them it never fetched idly.

Only where the batch waits for bytes (fetch_min_bytes above 1): at 1 byte every fetch already ends
at the first record. tansu, which the local stack gives 1 byte, holds a fetch for its whole wait even
when records arrive, so a long wait there would hold up the first record.

aiokafka has no setting for this: its fetcher builds every request from the consumer's fixed wait
and minimum. The consumer below changes the wait and minimum of each request its fetcher is about
to send to a quiet node (`Fetcher._proc_fetch_request` of aiokafka 0.14, pinned in requirements.lock).
tests/integration/test_kafka_idle_fetches.py records the fetches a consumer sends a real broker and
that a record ends an idle one at once; tests/unit/test_kafka_clients.py checks the method's name and
arguments and that a request's wait and minimum reach what it sends.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from typing import Any

from aiokafka import AIOKafkaConsumer, TopicPartition

IDLE_MIN_BYTES = 1
log = logging.getLogger(__name__)


class IdleFetchWait:
    """Which nodes' last fetches brought nothing, and the request made for them: the first byte,
    waited for up to `idle_wait_ms`.

    `quiet_after`: how many empty fetches in a row make a node quiet (1: the last one). `left_out_after`:
    a partition left out of this many fetches in a row to its node is taken for one the consumer
    does not read (faust's table changelog once recovered: aiokafka keeps its last records unread
    and leaves it out of every fetch), so a fetch without it may still wait for the first byte
    (None: never; every fetch leaving a partition out gathers a batch)."""

    def __init__(self, idle_wait_ms: int, *, quiet_after: int = 1, left_out_after: int | None = None) -> None:
        self.idle_wait_ms = idle_wait_ms
        self.quiet_after = max(1, quiet_after)
        self.left_out_after = left_out_after
        self._empty_in_a_row: dict[int, int] = {}  # per node
        self._left_out: dict[tuple[str, int], int] = {}  # per partition: fetches in a row to its node without it

    def adjust(self, node_id: int, request: Any, whole_node: Callable[[], bool]) -> None:
        """Make the request about to go to `node_id` an idle one if that node was quiet and the
        request asks for all of the node's partitions (`whole_node()`, asked only of a quiet node)."""
        if self._empty_in_a_row.get(node_id, 0) >= self.quiet_after and whole_node():
            request._max_wait_ms, request._min_bytes = self.idle_wait_ms, IDLE_MIN_BYTES

    def note(self, node_id: int, brought_records: bool) -> None:
        self._empty_in_a_row[node_id] = 0 if brought_records else self._empty_in_a_row.get(node_id, 0) + 1

    def not_read(self, partition: tuple[str, int]) -> bool:
        """Whether the partition was left out of enough fetches in a row to count as not read."""
        return self.left_out_after is not None and self._left_out.get(partition, 0) >= self.left_out_after

    def note_asked(self, cluster: Any, assigned: Iterable[TopicPartition], node_id: int, request: Any) -> None:
        """Count, for each assigned partition `node_id` leads, the fetches in a row that left it out."""
        if self.left_out_after is None:
            return
        asked = asked_partitions(request)
        counted: dict[tuple[str, int], int] = {}
        for tp in assigned:
            key = (tp.topic, tp.partition)
            if cluster.leader_for_partition(tp) != node_id:
                if key in self._left_out:
                    counted[key] = self._left_out[key]  # its own node's fetches count it
                continue
            counted[key] = 0 if key in asked else self._left_out.get(key, 0) + 1
        self._left_out = counted  # partitions no longer assigned are forgotten

    def install(self, fetcher: Any) -> None:
        """Wrap the fetcher's per-request coroutine. It returns whether the response added records
        (or an error) for the consumer to read: anything else, an empty answer, a failed request,
        a response dropped after a rebalance, counts as an empty fetch of that node."""
        send = fetcher._proc_fetch_request
        cluster = fetcher._client.cluster

        async def proc_fetch_request(assignment, node_id, request):
            try:
                self.adjust(node_id, request, lambda: asks_for_every_partition(
                    cluster, assignment.tps, node_id, request, ignoring=self.not_read))
                self.note_asked(cluster, assignment.tps, node_id, request)
            except Exception:  # noqa: BLE001 - an error here would end the fetcher's loop: batch as usual
                log.exception("idle fetch wait not applied; the fetch gathers a batch")
            brought = await send(assignment, node_id, request)
            self.note(node_id, bool(brought))
            return brought
        fetcher._proc_fetch_request = proc_fetch_request


def asked_partitions(request: Any) -> set[tuple[str, int]]:
    return {(topic, partition) for topic, partitions in request.topics for partition, *_ in partitions}


def asks_for_every_partition(cluster: Any, assigned: Iterable[TopicPartition], node_id: int, request: Any,
                             ignoring: Callable[[tuple[str, int]], bool] = lambda _: False) -> bool:
    """Whether the fetch asks for every assigned partition that `node_id` leads (but those `ignoring`
    says the consumer does not read). aiokafka fetches from the leader unless a consumer names its
    rack (KIP-392), which the exchange's do not. A partition without a leader is in no node's
    fetch; once it has one, its first fetch may wait for that node's idle fetch, as a newly given
    partition does."""
    asked = asked_partitions(request)
    return all((tp.topic, tp.partition) in asked or ignoring((tp.topic, tp.partition))
               for tp in assigned if cluster.leader_for_partition(tp) == node_id)


class IdleAwareConsumer(AIOKafkaConsumer):
    """aiokafka's consumer whose fetches wait long, for the first byte, after one that brought
    nothing; as aiokafka's own when the idle wait is 0 or the fetch minimum 1 byte."""

    # See IdleFetchWait: the services' own consumers read every partition they are given, and a
    # seller's answer may wait on their first fetch after a gap between leads.
    quiet_after: int = 1
    left_out_after: int | None = None

    def __init__(self, *topics: str, idle_fetch_wait_ms: int, **options: Any) -> None:
        super().__init__(*topics, **options)
        # Never shorter than its batch wait: an idle consumer would fetch more often than a busy one.
        self.idle_fetches = IdleFetchWait(max(idle_fetch_wait_ms, self._fetch_max_wait_ms) if idle_fetch_wait_ms else 0,
                                          quiet_after=self.quiet_after, left_out_after=self.left_out_after)

    @property
    def waits_when_idle(self) -> bool:
        return self.idle_fetches.idle_wait_ms > 0 and self._fetch_min_bytes > IDLE_MIN_BYTES

    async def start(self) -> None:
        await super().start()
        if not self.waits_when_idle:
            return
        # The fetcher is made by start(), and sends nothing before the consumer has partitions: the
        # exchange's consumers subscribe or are assigned after start(), so all their fetches pass
        # through the wrapper (a consumer given its topics when made may send a first batch fetch
        # before it).
        self.idle_fetches.install(self._fetcher)
