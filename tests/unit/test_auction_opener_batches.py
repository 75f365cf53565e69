"""services.auction.opener_batches.take_batches: faust-streaming's Stream.take_events without its
timer. Driven here on a stand-in for faust's Stream that offers what take_batches uses of it, with
mode's wait semantics (a timeout reads as "stopped"); the faust internals it relies on are pinned
too, so that an upgrade that moves them fails here rather than in the auction worker. (The real
worker runs it in the auction's integration tests, on a real broker.)"""

from __future__ import annotations

import asyncio
import functools
import gc
import inspect
import logging
from importlib.metadata import version

import faust
import pytest
from mode.utils.locks import Event

from services.auction import opener_batches as batches


def test_the_faust_it_was_written_against():
    assert version("faust-streaming") == "0.15.3"  # requirements.lock: read take_batches again on an upgrade


def test_the_stream_internals_it_uses_are_there():
    stream = faust.Stream
    for name in ("add_processor", "_enable_passive", "wait", "wait_for_stopped", "ack", "crash"):
        assert callable(getattr(stream, name)), name
    assert "channel" in inspect.signature(stream._enable_passive).parameters
    source = inspect.getsource(stream.__init__)
    for attribute in ("self.enable_acks", "self._processors", "self.channel"):
        assert attribute in source, attribute
    assert "self.current_event = " in inspect.getsource(stream._set_current_event)  # the event being added
    # take_events, which take_batches follows, is still built on the same parts.
    take_events = inspect.getsource(stream.take_events)
    for part in ("self.add_processor(add_to_buffer)", "self._enable_passive(", "await self.ack(event)",
                 "self.enable_acks = False", "self._processors.remove(add_to_buffer)"):
        assert part in take_events, part


class StandInStream:
    """What take_batches uses of a faust Stream. `add` is faust's passive drainer handing one event
    to the stream's processors; the waits answer as mode's Service does."""

    def __init__(self) -> None:
        self.enable_acks = True
        self._processors: list = []
        self.channel: list = []
        self.current_event: object | None = None
        self.stopped = asyncio.Event()
        self.acked: list[object] = []
        self.waits: list[float | None] = []  # the timeout of each wait_for_stopped
        self.log = logging.getLogger("stand-in stream")

    @property
    def should_stop(self) -> bool:
        return self.stopped.is_set()

    def add_processor(self, processor) -> None:
        self._processors.append(processor)

    def _enable_passive(self, channel) -> None:
        pass

    async def add(self, event: object) -> None:
        self.current_event = event
        for processor in list(self._processors):
            await processor(event)

    async def ack(self, event: object) -> bool:
        self.acked.append(event)
        return True

    async def crash(self, exc: BaseException) -> None:
        raise AssertionError(f"the stream crashed: {exc!r}")

    async def wait(self, event: Event) -> None:
        await self.wait_for_stopped(event)

    async def wait_for_stopped(self, event: Event, timeout: float | None = None) -> bool:
        """As mode's: True when stopped, and when the timeout passed (mode does not tell them apart)."""
        self.waits.append(timeout)
        waiting = [asyncio.ensure_future(event.wait()), asyncio.ensure_future(self.stopped.wait())]
        done, pending = await asyncio.wait(waiting, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
        for future in pending:
            future.cancel()
        return self.stopped.is_set() or not done


def in_a_loop(test):
    """A test written as a coroutine, run in a loop of its own (as this suite's other async tests)."""
    @functools.wraps(test)
    def run() -> None:
        asyncio.run(test())
    return run


async def _settle() -> None:
    for _ in range(20):
        await asyncio.sleep(0)


async def _first_event_in(max_: int, within_s: float):
    """A stand-in stream, its batches, the first batch asked for, and one event added to it."""
    stream = StandInStream()
    batches_ = batches.take_batches(stream, max_, within_s)
    taking = asyncio.ensure_future(batches_.__anext__())
    await _settle()
    await stream.add("a")
    return stream, batches_, taking


@in_a_loop
async def test_an_idle_stream_is_waited_on_once_with_no_timer():
    stream = StandInStream()
    batches_ = batches.take_batches(stream, 10, 0.005)
    taking = asyncio.ensure_future(batches_.__anext__())
    await asyncio.sleep(0.1)  # twenty of faust's 5 ms wakes
    assert not taking.done() and stream.waits == [None]
    stream.stopped.set()
    with pytest.raises(StopAsyncIteration):
        await taking


@in_a_loop
async def test_a_batch_gathers_for_the_wait_after_its_first_event_and_is_acked_once_handled():
    stream, batches_, taking = await _first_event_in(10, 0.02)
    await _settle()
    await stream.add("b")  # within the wait: the same batch
    assert await taking == ["a", "b"]
    assert stream.waits == [None, 0.02] and stream.acked == [] and stream.enable_acks is False
    adding = asyncio.ensure_future(stream.add("c"))  # while the batch is handled: held back
    await _settle()
    assert not adding.done()
    following = asyncio.ensure_future(batches_.__anext__())  # the opener asks for the next batch
    await _settle()
    assert stream.acked == ["a", "b"] and adding.done()
    assert await following == ["c"]
    await batches_.aclose()
    assert stream.acked == ["a", "b"] and stream.enable_acks is True and stream._processors == []


@in_a_loop
async def test_a_full_batch_is_handed_over_at_once_and_no_more_than_max_are_taken():
    stream, batches_, taking = await _first_event_in(2, 60.0)
    second = asyncio.ensure_future(stream.add("b"))  # fills the batch: waits until it is handled
    await _settle()
    assert await asyncio.wait_for(taking, 1) == ["a", "b"]  # not the 60 s wait
    third = asyncio.ensure_future(stream.add("c"))
    await _settle()
    assert not second.done() and not third.done()
    following = asyncio.ensure_future(batches_.__anext__())
    await _settle()
    assert stream.acked == ["a", "b"] and second.done() and third.done()
    stream.stopped.set()
    with pytest.raises(StopAsyncIteration):  # stopping: "c" is not handed over, nor acked
        await following
    assert stream.acked == ["a", "b"]


@in_a_loop
async def test_a_batch_whose_handling_failed_is_not_acked():
    stream = StandInStream()

    async def opener() -> None:
        async for batch in batches.take_batches(stream, 10, 0.001):
            raise RuntimeError(f"could not open {batch}")

    running = asyncio.ensure_future(opener())
    await _settle()
    await stream.add("a")
    with pytest.raises(RuntimeError, match="could not open"):
        await running
    await _settle()  # the abandoned generator is closed by the loop's finalizer
    gc.collect()
    await _settle()
    assert stream.acked == []  # read again by the partition's next owner
    assert stream.enable_acks is True and stream._processors == []


def test_its_waits_are_the_ones_mode_takes():
    # mode's Service.wait and wait_for_stopped take its Event (asyncio's, typed for mode).
    assert batches.Event is Event
    assert {"set", "clear", "wait", "is_set"} <= set(dir(Event))
