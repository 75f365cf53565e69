"""A service's own loops that publish (the ledger's stall sweeps and list closes) run only while its
consumers and producer are up: started once they are, and let finish the round they are in when the
service stops, before the consumers and the producer stop; on the session's real broker."""

from __future__ import annotations

import asyncio
import logging

import pytest

from leadx.contracts import topics
from leadx.contracts.events.v1 import events_pb2 as ev
from leadx.dev.ports import private_port
from leadx.platform import runtime as runtime_module
from leadx.platform.config import CommonSettings, HmacKeyring, KafkaSettings
from leadx.platform.runtime import ServiceRuntime, stopped_within
from tests.conftest import TEST_FETCH_MIN_BYTES, TEST_SESSION_TIMEOUT_MS

pytestmark = pytest.mark.integration


@pytest.fixture
def service_runtime(kafka_bootstrap, unique_prefix, monkeypatch):
    """A ServiceRuntime on the session's broker. Its process-wide logging and tracing set-up is
    left out: this process is the test worker's."""
    monkeypatch.setattr(runtime_module, "setup_logging", lambda *_: None)
    monkeypatch.setattr(runtime_module, "setup_tracing", lambda *_: None)
    settings = CommonSettings(
        service="runtime-test", redis_url="", database_url="", health_port=private_port(), log_level="WARNING",
        kafka=KafkaSettings(bootstrap_servers=kafka_bootstrap, topic_prefix=unique_prefix, partitions=1,
                            replication_factor=1, idempotence=False,
                            session_timeout_ms=TEST_SESSION_TIMEOUT_MS, fetch_min_bytes=TEST_FETCH_MIN_BYTES),
        hmac_keys=HmacKeyring(keys=(("k0", b"a-test-identity-key-0123"),)))  # a test value, not a secret
    return lambda: ServiceRuntime(settings)


def test_a_background_round_begun_at_stop_publishes_before_the_producer_stops(service_runtime):
    seen: list[tuple[str, bool, bool]] = []

    async def scenario() -> None:
        runtime = service_runtime()

        async def handled(_envelope) -> None:
            pass
        consumer = runtime.consume("runtime-test", {topics.LEAD_REJECTED: ev.LeadRejected}, handled)
        rounds = 0

        def state(what: str) -> tuple[str, bool, bool]:
            # The consumer's loop started and not told to stop (its group may still be joining).
            running = consumer._task is not None and not consumer._stopping
            return what, runtime.producer.started, running

        async def sweeps(stop: asyncio.Event) -> None:
            nonlocal rounds
            seen.append(state("started"))
            while not await stopped_within(stop, 0.05):
                rounds += 1
                if rounds == 3:
                    stop.set()  # the service is told to stop in the middle of this round
                    await asyncio.sleep(0.5)  # the round goes on: its publish must still go out
                    await runtime.producer.publish(topics.LEAD_REJECTED, "L1", ev.LeadRejected(lead_id="L1"))
                    seen.append(state("published at stop"))
            seen.append(state("ended"))

        runtime.background(sweeps)
        assert seen == []  # nothing before the service runs
        await asyncio.wait_for(runtime.run(asyncio.Event()), 120)
        seen.append(state("service stopped"))

    asyncio.run(scenario())
    assert seen == [("started", True, True), ("published at stop", True, True), ("ended", True, True),
                    ("service stopped", False, False)]


def test_a_background_loop_that_outlives_the_stop_bound_is_cancelled(service_runtime, monkeypatch):
    monkeypatch.setattr(runtime_module, "BACKGROUND_STOP_S", 0.5)
    seen: list[str] = []

    async def scenario() -> None:
        runtime = service_runtime()

        async def stuck(stop: asyncio.Event) -> None:
            stop.set()
            try:
                await asyncio.sleep(3600)  # a round that never ends
            except asyncio.CancelledError:
                seen.append(f"cancelled, producer up: {runtime.producer.started}")
                raise

        runtime.background(stuck)
        await asyncio.wait_for(runtime.run(asyncio.Event()), 60)

    asyncio.run(scenario())
    assert seen == ["cancelled, producer up: True"]


def test_rounds_every_interval_go_on_after_a_failed_one_and_end_at_stop(service_runtime, caplog):
    rounds: list[float] = []

    async def scenario() -> None:
        runtime = service_runtime()
        stop = asyncio.Event()

        async def sweep() -> None:
            rounds.append(asyncio.get_running_loop().time())
            if len(rounds) == 2:
                raise RuntimeError("the database is away")
            if len(rounds) == 4:
                stop.set()

        runtime.every(0.05, sweep, "test sweep", logging.getLogger("leadx.test.sweeps"))
        await asyncio.wait_for(runtime.run(stop), 120)

    with caplog.at_level("WARNING", logger="leadx.test.sweeps"):
        asyncio.run(scenario())
    assert len(rounds) == 4  # the failed second round did not end the loop; the stop did, after the fourth
    assert all(later - earlier >= 0.04 for earlier, later in zip(rounds, rounds[1:], strict=False))
    # On the round's own logger, as the ledger's sweeps keep theirs.
    failures = [r for r in caplog.records if r.getMessage() == "test sweep failed" and r.name == "leadx.test.sweeps"]
    assert len(failures) == 1 and "the database is away" in str(failures[0].exc_info[1])
