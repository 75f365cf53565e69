"""services.auction.opener_batches.take_batches is faust-streaming's Stream.take_events without its timer:
it leans on the same internals of faust's Stream, pinned here so that an upgrade that moves them
fails this test rather than the auction worker. (The batches themselves are exercised by the
auction's integration tests, through a real worker on a real broker.)"""

from __future__ import annotations

import inspect
from importlib.metadata import version

import faust
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


def test_its_waits_are_the_ones_mode_takes():
    # mode's Service.wait and wait_for_stopped take its Event (asyncio's, typed for mode).
    assert batches.Event is Event
    assert {"set", "clear", "wait", "is_set"} <= set(dir(Event))
