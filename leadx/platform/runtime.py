"""A service's life cycle.

- `run(main)`: the process runs `main` on uvloop until SIGTERM/SIGINT, then `main` shuts its parts down
  in order (graceful drain); the garbage collector is kept off the hot path.
- `ServiceRuntime`: what every Kafka-consuming service shares on top: create topics, start the producer
  and the consumer groups, serve health and readiness, and on SIGTERM stop in reverse order, finishing
  and committing the records in hand."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import signal
from collections.abc import Awaitable, Callable, Coroutine, Mapping
from typing import Any

import uvloop
from google.protobuf.message import Message

from leadx.platform.config import CommonSettings, env_int
from leadx.platform.health import HealthServer, Readiness
from leadx.platform.kafka import clients
from leadx.platform.kafka.admin import ensure_topics
from leadx.platform.kafka.consumer import DEFAULT_MAX_ATTEMPTS, EventConsumer, Handler
from leadx.platform.kafka.producer import EventProducer
from leadx.platform.logs import log_event, setup_logging
from leadx.platform.telemetry import setup_tracing

log = logging.getLogger(__name__)


def install_stop_signals(stop: asyncio.Event) -> None:
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)


# CPython's three thresholds: a youngest-generation collection every 50,000 net allocations (700 by
# default), a middle-generation one every 20 of those (10), and a full one only after 100 middle-
# generation ones (10): see tune_garbage_collection.
GC_THRESHOLDS = (50_000, 20, 100)


def tune_garbage_collection() -> None:
    """Keep the cyclic garbage collector off the hot path of a long-running service.

    Every object alive now (modules, settings, clients, lookup tables) is frozen out of the
    collector's reach: each full collection walked them all again, 158 ms in intake (PINGs stalled
    at 1,000/s) and 100-120 ms every few seconds in the auction worker under load. And collections
    run far less often: with 100,000 auctions open, the auction worker's state alone made a full
    collection of ~180 ms every ~1.2 s while bids came in (measured with `gc.callbacks`). Objects
    made later are still collected, and reference counting frees all acyclic garbage at once, as
    before; only cyclic garbage waits longer."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(*GC_THRESHOLDS)


def run(main: Callable[[asyncio.Event], Awaitable[None]]) -> None:
    """`main(stop)` starts its parts, awaits `stop`, and stops its parts."""

    async def _runner() -> None:
        stop = asyncio.Event()
        install_stop_signals(stop)
        await main(stop)

    tune_garbage_collection()
    # uvloop: the same asyncio API at a fraction of the per-task and per-callback cost, which a
    # consumer running hundreds of records at once pays many times over (bench/dedup.py).
    uvloop.run(_runner())


# How long a service at stop waits for its background loops to finish the round they are in.
BACKGROUND_STOP_S = 10.0


async def stopped_within(stop: asyncio.Event, seconds: float) -> bool:
    """Waits `seconds`, or less if `stop` is set meanwhile; whether it is set: a background loop's
    pause between rounds."""
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stop.wait(), seconds)
    return stop.is_set()


async def _finish(tasks: list[asyncio.Task]) -> None:
    """Background loops given BACKGROUND_STOP_S to end their round, then cancelled; a loop that
    died of an error is logged, not lost in the stop."""
    if not tasks:
        return
    _, pending = await asyncio.wait(tasks, timeout=BACKGROUND_STOP_S)
    for task in pending:
        task.cancel()
    for task, outcome in zip(tasks, await asyncio.gather(*tasks, return_exceptions=True), strict=True):
        if isinstance(outcome, Exception):
            log.error("background loop %s failed", task.get_name(), exc_info=outcome)


class ServiceRuntime:
    def __init__(self, settings: CommonSettings, producer_waiting: clients.Waiting = "sale") -> None:
        """`producer_waiting`: what waits on the records the service writes (its producer's linger)."""
        setup_logging(settings.service, settings.log_level)
        setup_tracing(settings.service)
        self.settings = settings
        self.producer = EventProducer(settings.kafka, client_id=f"leadx-{settings.service}",
                                      waiting=producer_waiting)
        self.readiness = Readiness()
        self.readiness.add("producer", lambda: self.producer.started)
        self.consumers: list[EventConsumer] = []
        self._on_stop: list[Callable[[], Awaitable[None]]] = []
        self._background: list[Callable[[asyncio.Event], Coroutine[Any, Any, None]]] = []

    def consume(self, group: str, message_types: Mapping[str, type[Message]], handler: Handler,
                **options) -> EventConsumer:
        options.setdefault("max_attempts", env_int("EVENT_MAX_ATTEMPTS", DEFAULT_MAX_ATTEMPTS))
        consumer = EventConsumer(self.settings.kafka, group, message_types, handler,
                                 dead_letters=self.producer, **options)
        self.consumers.append(consumer)
        self.readiness.add(f"consumer:{group}", consumer.ready)
        return consumer

    def on_stop(self, callback: Callable[[], Awaitable[None]]) -> None:
        self._on_stop.append(callback)

    def background(self, work: Callable[[asyncio.Event], Coroutine[Any, Any, None]]) -> None:
        """`work(stop)`, a loop of the service's own that publishes (the ledger's stall sweeps and
        list closes), runs while the producer is up: started once the consumers are, and awaited
        when the service stops, before the consumers and the producer stop. The loop ends at
        `stop` between its rounds (`stopped_within`), so a round that claimed leads publishes them
        all (a sweep on a stopped producer failed, and its claimed leads waited a further stall);
        one still running after BACKGROUND_STOP_S is cancelled."""
        self._background.append(work)

    def every(self, interval_s: float, round_: Callable[[], Awaitable[object]], name: str,
              logger: logging.Logger = log) -> None:
        """`round_()` every `interval_s` while the service runs (a `background` loop): a round begun
        at stop is finished, and a failed round is logged (on `logger`, the round's own module's)
        and tried again at the next interval (whatever it was doing, a stalled lead or an open
        list auction, is still there then)."""
        async def rounds(stop: asyncio.Event) -> None:
            while not await stopped_within(stop, interval_s):
                try:
                    await round_()
                except Exception:
                    logger.warning("%s failed", name, exc_info=True)
        rounds.__qualname__ = name
        self.background(rounds)

    async def run(self, stop: asyncio.Event) -> None:
        health = HealthServer(self.readiness, self.settings.health_port)
        await health.start()
        await ensure_topics(self.settings.kafka)
        await self.producer.start()
        for consumer in self.consumers:
            await consumer.start()
        background = [asyncio.create_task(work(stop), name=getattr(work, "__qualname__", repr(work)))
                      for work in self._background]
        try:
            log_event(log, "service started", service=self.settings.service)
            await stop.wait()
            log_event(log, "service stopping", service=self.settings.service)
        finally:
            stop.set()  # also when this run is cancelled rather than stopped: the loops end their round
            await _finish(background)
        for consumer in reversed(self.consumers):
            await consumer.stop()
        await self.producer.stop()
        for callback in reversed(self._on_stop):
            await callback()
        await health.stop()
