"""The ledger's batch writer: events handed in within its linger are one SQL transaction, of at most
max_batch events, and each transaction's size is counted (leadx_ledger_batch_events)."""

from __future__ import annotations

import asyncio

import pytest
from prometheus_client import REGISTRY
from sqlalchemy import func, select

from leadx.platform.db.models import Lead
from leadx.platform.kafka.envelope import Envelope
from leadx.platform.config import ConfigError
from services.ledger.batching import BatchWriter, linger_s_from_env
from services.ledger.recorder import Recorder
from tests.conftest import TEST_KEYRING
from tests.unit.test_ledger_recorder import life_cycle


def batch_figures() -> tuple[float, float]:
    """The histogram's count of transactions and sum of events so far."""
    return (REGISTRY.get_sample_value("leadx_ledger_batch_events_count") or 0.0,
            REGISTRY.get_sample_value("leadx_ledger_batch_events_sum") or 0.0)


def test_events_handed_in_within_the_linger_are_one_transaction_and_counted(sessions):
    events = life_cycle("LEADB00001") + life_cycle("LEADB00002")
    transactions, recorded = batch_figures()

    async def run() -> list[bool]:
        writer = BatchWriter(Recorder(sessions, TEST_KEYRING), linger_s=0.05)
        writer.start()
        try:
            applied = await asyncio.gather(*(writer.apply(envelope) for envelope in events))
            again = await writer.apply(events[0])  # a repeat, in a transaction of its own
            return [*applied, again]
        finally:
            await writer.stop()

    assert asyncio.run(run()) == [True] * 10 + [False]
    assert batch_figures() == (transactions + 2, recorded + 11)
    with sessions() as session:
        assert session.scalar(select(func.count()).select_from(Lead).where(Lead.id.like("LEADB%"))) == 2


def test_a_batch_holds_at_most_max_batch_events(sessions):
    events = life_cycle("LEADB00003")  # five events
    transactions, recorded = batch_figures()

    async def run() -> list[bool]:
        writer = BatchWriter(Recorder(sessions, TEST_KEYRING), max_batch=3, linger_s=0.05)
        writer.start()
        try:
            return list(await asyncio.gather(*(writer.apply(envelope) for envelope in events)))
        finally:
            await writer.stop()

    assert asyncio.run(run()) == [True] * 5
    assert batch_figures() == (transactions + 2, recorded + 5)  # three, then two


def test_a_failed_batch_is_recorded_one_event_a_transaction_and_only_the_bad_event_fails(sessions):
    events = life_cycle("LEADB00004")[:2]
    bad = Envelope(topic="no.such.topic", key="LEADB00004", event_id="bad-1", message=events[0].message,
                   partition=0, offset=0)
    transactions, recorded = batch_figures()

    async def run() -> list[object]:
        writer = BatchWriter(Recorder(sessions, TEST_KEYRING), linger_s=0.05)
        writer.start()
        try:
            return list(await asyncio.gather(*(writer.apply(envelope) for envelope in [events[0], bad, events[1]]),
                                             return_exceptions=True))
        finally:
            await writer.stop()

    first, failed, second = asyncio.run(run())
    assert (first, second) == (True, True) and isinstance(failed, AttributeError)  # its message read as no topic has it
    assert batch_figures() == (transactions + 2, recorded + 2)  # the two that committed, one each
    with sessions() as session:
        assert session.get(Lead, "LEADB00004") is not None


def test_the_linger_is_read_from_the_environment_and_a_negative_one_refused(monkeypatch):
    monkeypatch.delenv("LEDGER_LINGER_MS", raising=False)
    assert linger_s_from_env() == 0.3
    monkeypatch.setenv("LEDGER_LINGER_MS", "0")
    assert linger_s_from_env() == 0.0
    monkeypatch.setenv("LEDGER_LINGER_MS", "-5")
    with pytest.raises(ConfigError, match="LEDGER_LINGER_MS must be at least 0, got -5"):
        linger_s_from_env()
    monkeypatch.setenv("LEDGER_LINGER_MS", "soon")
    with pytest.raises(ConfigError, match="LEDGER_LINGER_MS must be an integer"):
        linger_s_from_env()
