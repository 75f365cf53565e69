"""The faust plumbing the auction worker's handlers share: a batch of events handled auction by
auction, the changelog partition of a write made for one event, spans, and publishing."""

from __future__ import annotations

import asyncio
import time
import weakref
from collections.abc import Awaitable, Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager, contextmanager

import faust
import faust.streams as faust_streams
from google.protobuf.message import Message
from opentelemetry import trace

from leadx.platform.kafka.envelope import HEADER_EVENT_ID, HEADER_EVENT_TYPE
from leadx.platform.telemetry import child_span, extract_context, inject_headers


def now_ms() -> int:
    return int(time.time() * 1000)


def _headers(raw: Mapping[str, bytes] | Iterable[tuple[str, bytes]] | None) -> list[tuple[str, bytes]]:
    if raw is None:
        return []
    return list(raw.items()) if isinstance(raw, Mapping) else list(raw)


def consumer_span(event: faust.EventT, name: str) -> AbstractContextManager:
    """A span for handling this event, a child of the trace its headers carry; when spans are not
    recorded, that trace's context made current instead (leadx.platform.telemetry.child_span, as the
    other services' consumers do: a span nobody records cost ~15 µs, a few a lead here)."""
    return child_span(name, trace.SpanKind.CONSUMER, extract_context(_headers(event.headers)))


async def publish(target: faust.TopicT, key: str, message: Message, event_id: str) -> None:
    """Publish an event and wait for the broker's acknowledgement."""
    with child_span(f"{target.get_topic_name()} publish", trace.SpanKind.PRODUCER):
        headers = [(HEADER_EVENT_ID, event_id.encode()),
                   (HEADER_EVENT_TYPE, message.DESCRIPTOR.full_name.encode()), *inject_headers()]
        # force=True sends now instead of at the next offset commit; awaiting the returned
        # future waits for the broker's acknowledgement.
        sent = await target.send(key=key.encode(), value=message.SerializeToString(), headers=headers, force=True)
        await sent


@contextmanager
def writing_for(event: faust.EventT) -> Iterator[None]:
    """faust sends a table write's changelog record to the partition of the stream's current event;
    in a batch that is the batch's last event, so a write made for an earlier event names it. (The
    topics are co-partitioned: the event's partition is its auction's.)"""
    token = faust_streams._current_event.set(weakref.ref(event))
    try:
        yield
    finally:
        faust_streams._current_event.reset(token)


async def by_auction(events: Sequence[faust.EventT], handle: Callable[[faust.EventT], Awaitable[None]]) -> None:
    """Handle a batch of events keyed by auction id: one auction's events in their order, different
    auctions' side by side (each table write naming its own event, see writing_for). Returns once
    every event is handled; then the batch may be acknowledged. The first failure is raised after
    the others have finished, so none is left running behind the acknowledgement."""
    groups: dict[object, list[faust.EventT]] = {}
    for event in events:
        groups.setdefault(event.key, []).append(event)

    async def in_order(group: list[faust.EventT]) -> None:
        for event in group:
            with writing_for(event):
                await handle(event)

    outcomes = await asyncio.gather(*(in_order(group) for group in groups.values()), return_exceptions=True)
    for outcome in outcomes:
        if isinstance(outcome, BaseException):
            raise outcome
