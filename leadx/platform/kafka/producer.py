"""`EventProducer` publishes protobuf events with acks=all, the event id, the event type and the
W3C trace context in headers: `publish` returns only once the broker has the event; `hand_over`
returns once the event is in the producer's buffer, with the broker's acknowledgement to await."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from contextlib import contextmanager

from aiokafka import AIOKafkaProducer
from google.protobuf.message import Message
from opentelemetry import trace

from leadx.contracts import topics as topic_names
from leadx.platform.config import KafkaSettings
from leadx.platform.ids import new_event_id
from leadx.platform.kafka import clients
from leadx.platform.kafka.envelope import HEADER_EVENT_ID, HEADER_EVENT_TYPE
from leadx.platform.telemetry import child_span, inject_headers


class EventProducer:
    def __init__(self, settings: KafkaSettings, client_id: str, waiting: clients.Waiting = "sale") -> None:
        """`waiting`: what waits on the records it writes, which sets its linger
        (leadx.platform.kafka.clients.producer_linger_ms)."""
        self.settings = settings
        self.client_id = client_id
        self.linger_ms = clients.producer_linger_ms(settings, waiting)
        self._producer: AIOKafkaProducer | None = None
        self.started = False

    async def start(self) -> None:
        # Created here, not in __init__: aiokafka binds its clients to the running event loop.
        self._producer = clients.producer(
            self.settings,
            client_id=self.client_id,
            acks="all",
            enable_idempotence=self.settings.idempotence,
            linger_ms=self.linger_ms,
        )
        await self._producer.start()
        self.started = True

    async def stop(self) -> None:
        if self.started and self._producer is not None:
            await self._producer.stop()
            self.started = False

    async def publish(self, topic: str, key: str, message: Message, event_id: str | None = None) -> str:
        """Publish and wait for the broker's acknowledgement; returns the event id."""
        event_id = event_id or new_event_id()
        with self._publishing(topic, event_id) as (producer, full_topic):
            await producer.send_and_wait(
                full_topic, value=message.SerializeToString(), key=key.encode(), headers=_headers(message, event_id)
            )
        return event_id

    async def hand_over(self, topic: str, key: str, message: Message, event_id: str) -> asyncio.Future:
        """Put the event in the producer's buffer; returns the future of the broker's acknowledgement.

        If this raises, or is cancelled, the event never entered the buffer and will never be
        written. Once it has returned the event may be written even if the future then fails: a
        request that timed out or lost its connection may have reached the broker."""
        with self._publishing(topic, event_id) as (producer, full_topic):
            return await producer.send(full_topic, value=message.SerializeToString(), key=key.encode(),
                                       headers=_headers(message, event_id))

    @contextmanager
    def _publishing(self, topic: str, event_id: str) -> Iterator[tuple[AIOKafkaProducer, str]]:
        """The producer span of one event (its headers, made inside it, carry the trace on), with
        the started client and the topic's full name."""
        full_topic = topic_names.name(self.settings.topic_prefix, topic)
        with child_span(f"{topic} publish", trace.SpanKind.PRODUCER) as span:
            span.set_attribute("messaging.destination.name", full_topic)
            span.set_attribute("messaging.message.id", event_id)
            if self._producer is None:
                raise RuntimeError("publish before start()")
            yield self._producer, full_topic

    async def set_aside(self, record, group: str, reason: str) -> None:
        """Publish a consumed record, bytes and headers as they were, to dead.letter, with headers
        naming its topic, partition and offset, the consumer group and why it was set aside; wait
        for the broker."""
        if self._producer is None:
            raise RuntimeError("set_aside before start()")
        where = (record.topic, str(record.partition), str(record.offset), group, reason)
        headers = [*(record.headers or ()), *((name, value.encode()) for name, value in
                                              zip(topic_names.DEAD_LETTER_HEADERS, where, strict=True))]
        await self._producer.send_and_wait(topic_names.name(self.settings.topic_prefix, topic_names.DEAD_LETTER),
                                           value=record.value, key=record.key, headers=headers)


def _headers(message: Message, event_id: str) -> list[tuple[str, bytes]]:
    """The event id and type, and the current span's trace context."""
    return [(HEADER_EVENT_ID, event_id.encode()), (HEADER_EVENT_TYPE, message.DESCRIPTOR.full_name.encode()),
            *inject_headers()]
