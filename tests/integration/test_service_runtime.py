"""A service's own loops that publish (the ledger's stall sweeps and list closes) run only while its
producer is up: started once it is, and cancelled before the consumers and the producer stop, on the
session's real broker."""

from __future__ import annotations

import asyncio
import logging

import pytest

from leadx.dev.stack import free_port
from leadx.platform.config import CommonSettings, HmacKeyring, KafkaSettings
from leadx.platform.runtime import ServiceRuntime

pytestmark = pytest.mark.integration


@pytest.fixture
def root_logging():
    """ServiceRuntime sets up the process's logging as a service's: put the test process's back."""
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)


def test_background_work_runs_only_while_the_producer_is_up(kafka_bootstrap, unique_prefix, root_logging):
    settings = CommonSettings(
        service="runtime-test", redis_url="", database_url="", health_port=free_port(), log_level="WARNING",
        kafka=KafkaSettings(bootstrap_servers=kafka_bootstrap, topic_prefix=unique_prefix, partitions=1,
                            replication_factor=1, idempotence=False),
        hmac_keys=HmacKeyring(keys=(("k0", b"a-test-identity-key-0123"),)))
    seen: list[tuple[str, bool]] = []

    async def scenario() -> None:
        runtime = ServiceRuntime(settings)
        stop = asyncio.Event()

        async def sweeps() -> None:
            seen.append(("started", runtime.producer.started))
            stop.set()  # the service is told to stop while this loop runs
            try:
                await asyncio.sleep(3600)
            except asyncio.CancelledError:
                seen.append(("cancelled", runtime.producer.started))
                raise

        runtime.background(sweeps)
        assert seen == []  # not before the service runs
        await asyncio.wait_for(runtime.run(stop), 120)
        seen.append(("service stopped", runtime.producer.started))

    asyncio.run(scenario())
    assert seen == [("started", True), ("cancelled", True), ("service stopped", False)]
