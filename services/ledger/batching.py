"""Groups the ledger's events into one SQL transaction per flush.

One transaction per event made the ledger the busiest process on the machine (about half a core
at 100 leads/s on SQLite). Handlers now hand their event to this writer and wait for the flush
that commits it, so the consumer still commits offsets only after the event is in SQL.

A transaction has a fixed cost, some fifteen statements whatever its size (one query per table,
services/ledger/batch_rows.py), then little per event: on PostgreSQL bench/ledger.py records a sold
lead for about 0.5 ms of CPU in batches of 180 events and 1.5 ms in batches of 30 (SQLite: 0.35 and
1.0 ms; 2026-12-07). So the writer lingers for a batch to
gather, 300 ms unless LEDGER_LINGER_MS says otherwise: in the whole at 100 leads/s that makes
batches of 169 to 195 events rather than 95 at 100 ms, and saved 0.6 ms of the ledger's CPU and
0.5 of PostgreSQL's a sold lead (bench/README.md, 2026-12-07); `leadx_ledger_batch_events` shows
the sizes. A batch holds at most `max_batch` events. The ledger is not on a sale's path (delivery
publishes sale.closed), so a lead's record is later in SQL by the linger plus the flush, and by a
linger more for each event that waits behind another of the same key on the same topic (the
consumer applies those in order: the sales of a lead sold to several buyers).
"""

from __future__ import annotations

import asyncio
import logging

from leadx.platform.config import ConfigError, env_int
from leadx.platform.kafka.envelope import Envelope
from services.ledger import metrics
from services.ledger.recorder import Recorder

log = logging.getLogger(__name__)
DEFAULT_LINGER_MS = 300


def linger_s_from_env() -> float:
    """LEDGER_LINGER_MS, in seconds."""
    linger_ms = env_int("LEDGER_LINGER_MS", DEFAULT_LINGER_MS)
    if linger_ms < 0:
        raise ConfigError(f"LEDGER_LINGER_MS must be at least 0, got {linger_ms}")
    return linger_ms / 1000


class BatchWriter:
    def __init__(self, recorder: Recorder, max_batch: int = 500, linger_s: float = DEFAULT_LINGER_MS / 1000) -> None:
        self.recorder = recorder
        self.max_batch = max_batch
        self.linger_s = linger_s
        self._queue: list[tuple[Envelope, asyncio.Future]] = []
        self._pending = asyncio.Event()
        self._task: asyncio.Task | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="ledger-batches")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)

    async def apply(self, envelope: Envelope) -> bool:
        future = asyncio.get_running_loop().create_future()
        self._queue.append((envelope, future))
        self._pending.set()
        return await future

    async def _run(self) -> None:
        while True:
            await self._pending.wait()
            await asyncio.sleep(self.linger_s)  # let a batch gather
            while self._queue:
                batch, self._queue = self._queue[: self.max_batch], self._queue[self.max_batch:]
                await self._flush(batch)
            self._pending.clear()

    async def _flush(self, batch: list[tuple[Envelope, asyncio.Future]]) -> None:
        try:
            results = await asyncio.to_thread(self.recorder.apply_many, [envelope for envelope, _ in batch])
        except Exception:
            # One bad event must not hold back the others: retry them one transaction each, so
            # only the failing event's handler sees the error (and retries it).
            log.warning("ledger batch failed; applying its events one by one", exc_info=True)
            for envelope, future in batch:
                try:
                    future.set_result(await asyncio.to_thread(self.recorder.apply, envelope))
                    metrics.BATCH_EVENTS.observe(1)
                except Exception as exc:
                    future.set_exception(exc)
            return
        metrics.BATCH_EVENTS.observe(len(batch))
        for (_, future), result in zip(batch, results, strict=True):
            future.set_result(result)
