"""Waits for the pipeline's verdict on leads this replica submitted.

Every intake replica reads lead.verified and lead.rejected in full, outside any consumer group,
starting at the end of the log when it starts: it only ever waits for leads it published after
that point, and several replicas each see every verdict. The record key is the lead id, so a
verdict for a lead nobody here waits for is dropped without decoding.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass

from aiokafka import AIOKafkaConsumer

from leadx.contracts import topics
from leadx.contracts.events.v1 import events_pb2 as ev
from leadx.platform.config import KafkaSettings
from leadx.platform.kafka import clients
from leadx.platform.kafka.offsets import partitions_of

log = logging.getLogger(__name__)

ACCEPTED, DUPLICATE, REJECTED = "accepted", "duplicate", "rejected"


@dataclass(frozen=True)
class Verdict:
    status: str  # accepted | duplicate | rejected


class VerdictWaiter:
    def __init__(self, settings: KafkaSettings) -> None:
        self.settings = settings
        self._verified = topics.name(settings.topic_prefix, topics.LEAD_VERIFIED)
        self._rejected = topics.name(settings.topic_prefix, topics.LEAD_REJECTED)
        self._pending: dict[str, asyncio.Future[Verdict]] = {}
        self._consumer: AIOKafkaConsumer | None = None
        self._task: asyncio.Task | None = None
        self.positioned = False

    async def start(self) -> None:
        self._consumer = clients.consumer(self.settings, group_id=None, enable_auto_commit=False,
                                          client_id=topics.group(self.settings.topic_prefix, "intake-verdicts"),
                                          **clients.flow_fetches(self.settings, "answer"))
        await self._consumer.start()
        partitions = await partitions_of(self._consumer, (self._verified, self._rejected))
        if not partitions:
            raise RuntimeError("verdict topics have no partitions; were the topics created?")
        self._consumer.assign(partitions)
        await self._consumer.seek_to_end(*partitions)
        for tp in partitions:  # resolve the end offsets now, before this replica takes traffic
            await self._consumer.position(tp)
        self.positioned = True
        self._task = asyncio.create_task(self._run(), name="verdicts")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        if self._consumer is not None:
            await self._consumer.stop()

    def expect(self, lead_id: str) -> asyncio.Future[Verdict]:
        future: asyncio.Future[Verdict] = asyncio.get_running_loop().create_future()
        self._pending[lead_id] = future
        return future

    def forget(self, lead_id: str) -> None:
        self._pending.pop(lead_id, None)

    async def _run(self) -> None:
        consumer = self._consumer
        assert consumer is not None, "the verdict reader runs only after start()"
        while True:
            batch = await consumer.getmany(timeout_ms=500, max_records=1000)
            for records in batch.values():
                for record in records:
                    lead_id = (record.key or b"").decode()
                    future = self._pending.pop(lead_id, None)
                    if future is None or future.done():
                        continue
                    future.set_result(self._verdict(record.topic, record.value))

    def _verdict(self, topic: str, value: bytes) -> Verdict:
        if topic == self._verified:
            return Verdict(ACCEPTED)
        rejected = ev.LeadRejected.FromString(value)
        if rejected.reason == ev.REJECTION_REASON_DUPLICATE:
            return Verdict(DUPLICATE)
        return Verdict(REJECTED)
