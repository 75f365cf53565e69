"""The life cycle every Kafka-consuming service shares: create topics, start the producer and the
consumer groups, serve health and readiness, and on SIGTERM stop in reverse order, finishing and
committing the records in hand."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Mapping

from google.protobuf.message import Message

from leadx.config import CommonSettings
from leadx.health import HealthServer, Readiness
from leadx.kafka import EventConsumer, EventProducer, Handler, ensure_topics
from leadx.logs import log_event, setup_logging
from leadx.telemetry import setup_tracing

log = logging.getLogger(__name__)


class ServiceRuntime:
    def __init__(self, settings: CommonSettings) -> None:
        setup_logging(settings.service, settings.log_level)
        setup_tracing(settings.service)
        self.settings = settings
        self.producer = EventProducer(settings.kafka, client_id=f"leadx-{settings.service}")
        self.readiness = Readiness()
        self.readiness.add("producer", lambda: self.producer.started)
        self.consumers: list[EventConsumer] = []
        self._on_stop: list[Callable[[], Awaitable[None]]] = []

    def consume(self, group: str, message_types: Mapping[str, type[Message]], handler: Handler,
                **options) -> EventConsumer:
        consumer = EventConsumer(self.settings.kafka, group, message_types, handler, **options)
        self.consumers.append(consumer)
        self.readiness.add(f"consumer:{group}", consumer.ready)
        return consumer

    def on_stop(self, callback: Callable[[], Awaitable[None]]) -> None:
        self._on_stop.append(callback)

    async def run(self, stop: asyncio.Event) -> None:
        health = HealthServer(self.readiness, self.settings.health_port)
        await health.start()
        await ensure_topics(self.settings.kafka)
        await self.producer.start()
        for consumer in self.consumers:
            await consumer.start()
        log_event(log, "service started", service=self.settings.service)
        await stop.wait()
        log_event(log, "service stopping", service=self.settings.service)
        for consumer in reversed(self.consumers):
            await consumer.stop()
        await self.producer.stop()
        for callback in reversed(self._on_stop):
            await callback()
        await health.stop()
