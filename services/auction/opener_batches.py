"""The opener's batches of lead.scored events: faust's `Stream.take_events`, waking only when a lead
has come.

faust's `take_events(max_, within)` gathers a stream's events and hands them over every `within`
(the batch wait, 5 ms) or when `max_` have gathered. It does so by waiting on its buffer with a
timeout in a loop, so it wakes every 5 ms whether or not a lead came: two hundred times a second,
each a few futures and tasks through mode's `Service.wait`, which was the auction's largest cost at
rest (0.05-0.1 of a core) and a part of each lead's under load. `take_batches` waits for the
buffer's first event with no timeout, then up to the batch wait for more (or until `max_` have
gathered): a batch is handed over at most the batch wait after its first lead, as before, and the
worker sleeps while none come.

Otherwise it follows faust-streaming 0.15's `take_events`, whose internals it uses (the stream's
processors, its passive drainer, its acks): while a batch is handled no event is added, and the
batch's events are acknowledged when the opener asks for the next batch, i.e. once all of it is
opened. Two differences, both so that no lead is acknowledged unopened:

- a batch whose handling failed is not acknowledged. faust's `take_events` acknowledges it all the
  same when the abandoned generator is closed (after the opener raised, faust restarting its
  agent), so a lead that failed to open was lost; here it stays unacknowledged, faust commits no
  offset past it, and the partition's next owner (after a restart or a rebalance) reads it again;
- at the stream's stop, events gathered but not yet handed over are left unacknowledged (read
  again by the next owner), and the generator is not registered for faust to close at its stop,
  which would acknowledge a batch still being opened.

tests/unit/test_auction_opener_batches.py drives it on a stand-in stream and pins the faust
internals it relies on.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any, cast

import faust
from mode.utils.aiter import aiter
from mode.utils.futures import notify
from mode.utils.locks import Event


async def take_batches(stream: faust.Stream, max_: int, within_s: float) -> AsyncIterator[list[faust.EventT]]:
    """The stream's events in batches of at most `max_`, each handed over at most `within_s` after
    its first event was added; acknowledged once the consumer of the batch asks for the next, never
    if it gave the batch up (an exception)."""
    events: list[faust.EventT] = []
    arrived, full, consumed = Event(), Event(), Event()  # mode's asyncio.Event, which its waits take
    consuming: asyncio.Future | None = None  # set while a batch is handled: no event is added meanwhile

    async def add_to_batch(value: Any) -> Any:
        nonlocal consuming
        try:
            if consuming is not None:
                try:
                    await consuming
                finally:
                    consuming = None
            event = stream.current_event
            if event is None:
                raise RuntimeError("take_batches found the stream's current event None")
            events.append(event)
            arrived.set()
            if len(events) >= max_:
                full.set()
                consumed.clear()  # no more than max_: the next waits for this batch to be handled
                await stream.wait(consumed)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # noqa: BLE001 - as faust's take_events: the stream crashes, logged
            stream.log.exception("Error adding to take_batches: %r", exc)
            await stream.crash(exc)
        return value

    acks_before = stream.enable_acks
    stream.enable_acks = False  # acknowledged here, once each batch is handled
    stream.add_processor(add_to_batch)
    stream._enable_passive(cast(Any, aiter(stream.channel)))
    try:
        while not stream.should_stop:
            if await stream.wait_for_stopped(arrived):  # no timeout: asleep until a lead comes
                break
            # (Its answer does not tell a timeout from the stop: mode calls both "stopped".)
            await stream.wait_for_stopped(full, timeout=within_s)
            if stream.should_stop:
                break  # what was gathered stays unacknowledged, for the next owner
            consuming = asyncio.get_running_loop().create_future()
            handled = False
            try:
                yield list(events)
                handled = True  # the opener asked for the next batch: this one is opened
            finally:
                if handled:
                    for event in events:
                        await stream.ack(event)
                events.clear()
                arrived.clear()
                full.clear()
                notify(consuming)
                consumed.set()
    finally:
        stream.enable_acks = acks_before
        stream._processors.remove(add_to_batch)
