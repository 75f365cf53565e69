"""What Administration's Services page shows (services/portal/operations.py): each service's
readiness, each consumer group's lag per topic and the records set aside on dead.letter, read from
outside the services exactly as `leadx status` reads them (leadx.platform.exchange_health): `/readyz` at the
base URLs of LEADX_HEALTH_URLS, the lag from the broker's committed and end offsets.

A read asks every health server and the broker, so one is shared: however many operators look, the
exchange is read at most once per READ_EVERY_S, and a page that comes while a read is under way
waits for that read rather than starting another (docs/portal.md#services)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from leadx.platform.config import KafkaSettings
from leadx.platform.exchange_health import (
    HEALTH_URLS,
    DeadLetters,
    GroupLag,
    ServiceHealth,
    read_broker_or_why,
    read_services,
)

READ_EVERY_S = 5.0
# Each request to the broker within this (a down broker answers at once; one that holds connections
# without answering keeps the page waiting this, and 5 s more at most): shorter than `leadx status`'s
# 15 s, as an operator waits for the page.
BROKER_TIMEOUT_S = 5.0


@dataclass(frozen=True)
class ExchangeReading:
    """One read of the exchange; a part that could not be read is None, with why beside it."""
    read_at_ms: int
    services: list[ServiceHealth] | None
    services_error: str
    lag: list[GroupLag] | None
    dead_letters: DeadLetters | None
    broker_error: str

    @property
    def not_ready(self) -> list[ServiceHealth]:
        return [service for service in self.services or () if not service.ready]


class ExchangeWatch:
    """Reads the exchange when a page asks, at most once per `every_s` (the last read is kept). Pages
    that come during a read wait for it, and all get it: one read however many operators look."""

    def __init__(self, health_urls: Mapping[str, str], kafka: KafkaSettings | None, topic_prefix: str,
                 every_s: float = READ_EVERY_S, clock: Callable[[], float] = time.monotonic) -> None:
        self.health_urls = dict(health_urls)
        self.kafka = kafka
        self.topic_prefix = topic_prefix
        self.every_s = every_s
        self.clock = clock
        self._lock = asyncio.Lock()
        self._last: ExchangeReading | None = None
        self._last_at = 0.0

    async def reading(self) -> ExchangeReading:
        async with self._lock:
            if self._last is not None and self.clock() - self._last_at < self.every_s:
                return self._last
            self._last = await self._read()
            self._last_at = self.clock()
            return self._last

    async def _read(self) -> ExchangeReading:
        async def services() -> list[ServiceHealth] | str:
            if not self.health_urls:
                return (f"{HEALTH_URLS} is not set for the portal: give it each service's health server as "
                        "name=http://host:port,... (docs/configuration.md#portal)")
            return await read_services(self.health_urls)

        async def broker() -> tuple[list[GroupLag], DeadLetters] | str:
            if self.kafka is None:
                return "the portal is given no broker (KAFKA_BOOTSTRAP_SERVERS)"
            return await read_broker_or_why(self.kafka, self.topic_prefix, BROKER_TIMEOUT_S)

        read_at_ms = int(time.time() * 1000)
        found_services, found_broker = await asyncio.gather(services(), broker())
        lag, dead = (None, None) if isinstance(found_broker, str) else found_broker
        return ExchangeReading(
            read_at_ms=read_at_ms,
            services=None if isinstance(found_services, str) else found_services,
            services_error=found_services if isinstance(found_services, str) else "",
            lag=lag, dead_letters=dead, broker_error=found_broker if isinstance(found_broker, str) else "")
