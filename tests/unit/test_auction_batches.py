"""How the auction worker handles a batch of events (services.auction.streams.by_auction) and the
batch settings it reads."""

import asyncio

import faust.streams as faust_streams
import pytest

from leadx.platform.config import ConfigError
from services.auction.settings import AuctionSettings
from services.auction.streams import by_auction


class FakeEvent:
    """The two things by_auction reads of a faust event: its key, and that it can be referenced weakly."""

    def __init__(self, key: str, name: str) -> None:
        self.key = key.encode()
        self.name = name


def test_one_auctions_events_run_in_order_and_different_auctions_side_by_side():
    events = [FakeEvent("a", "a1"), FakeEvent("b", "b1"), FakeEvent("a", "a2"), FakeEvent("c", "c1")]
    log: list[str] = []
    running = {"now": 0, "most": 0}

    async def handle(event: FakeEvent) -> None:
        running["now"] += 1
        running["most"] = max(running["most"], running["now"])
        log.append(f"start {event.name}")
        await asyncio.sleep(0.01)
        # Each write made now is for this event's partition (writing_for).
        assert faust_streams._current_event.get()() is event
        log.append(f"end {event.name}")
        running["now"] -= 1

    asyncio.run(by_auction(events, handle))

    assert running["most"] == 3  # a, b and c at once; never a's two events at once
    assert log.index("end a1") < log.index("start a2")
    assert sorted(entry for entry in log if entry.startswith("end")) == ["end a1", "end a2", "end b1", "end c1"]


def test_a_failure_is_raised_only_after_the_rest_of_the_batch_is_handled():
    finished: list[str] = []

    async def handle(event: FakeEvent) -> None:
        if event.name == "bad":
            raise ValueError("broken lead")
        await asyncio.sleep(0.01)
        finished.append(event.name)

    with pytest.raises(ValueError, match="broken lead"):
        asyncio.run(by_auction([FakeEvent("x", "bad"), FakeEvent("y", "slow"), FakeEvent("x", "after bad")], handle))
    # The other auction finished before the batch failed; the failed auction's later event did not run:
    # the batch stays unacknowledged, so the partition's next owner reads it again, in order.
    assert finished == ["slow"]



def test_batch_settings_have_defaults_and_refuse_nonsense(env):
    settings = AuctionSettings.from_env()
    assert (settings.open_batch_max, settings.bid_batch_max, settings.close_batch_max) == (100, 500, 200)
    assert settings.batch_wait_s == 0.005 and settings.bid_flush_s == 0.25
    env.setenv("AUCTION_CLOSE_BATCH", "0")
    with pytest.raises(ConfigError, match="AUCTION_CLOSE_BATCH must be at least 1"):
        AuctionSettings.from_env()
    env.setenv("AUCTION_CLOSE_BATCH", "200")
    env.setenv("AUCTION_BATCH_WAIT_MS", "0")
    with pytest.raises(ConfigError, match="AUCTION_BATCH_WAIT_MS must be above 0"):
        AuctionSettings.from_env()
    env.setenv("AUCTION_BATCH_WAIT_MS", "5")
    env.setenv("AUCTION_BID_FLUSH_MS", "0")
    with pytest.raises(ConfigError, match="AUCTION_BID_FLUSH_MS must be above 0"):
        AuctionSettings.from_env()
