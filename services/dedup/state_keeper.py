"""Keeps the dedup records complete: finds a Redis that lost them and rebuilds them from SQL.

Redis holds an epoch key while its records are complete (leadx.dedup.store); the check script
refuses to run without it. At start, and whenever a check is refused, the keeper looks: no epoch
and nothing in SQL inside the window is a first start (the epoch is written over the empty state);
no epoch while SQL holds leads or postings is a loss (counted, logged, rebuilt). One replica
rebuilds at a time (the rebuild lock); the others wait for the epoch. Until it is back the worker
holds every lead: its handler raises, and the consumer retries the lead rather than pass it on.
"""

from __future__ import annotations

import asyncio
import contextvars
import logging
import time
from collections.abc import Callable

from redis.exceptions import RedisError
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from leadx.dedup.rebuild import RebuildBusy, RebuildLockLost, rebuild, sql_holds_records
from leadx.dedup.scopes import DedupPolicy
from leadx.dedup.store import DedupStore
from leadx.platform.config import HmacKeyring
from leadx.platform.kafka.consumer import HeldBack
from leadx.platform.logs import log_event
from services.dedup import metrics

log = logging.getLogger(__name__)


class DedupStateHeld(HeldBack):
    """The lead is held: the dedup records are being restored. Retried, never dead-lettered (a lead
    with no identity to check still succeeds meanwhile, which would otherwise make the held ones
    look like poison)."""


class StateKeeper:
    def __init__(self, store: DedupStore, sessions: sessionmaker[Session], policy: DedupPolicy,
                 hmac_keys: HmacKeyring, email_provider_rules: bool = True,
                 clock: Callable[[], float] = time.time, wait_s: float = 1.0) -> None:
        self.store, self.sessions, self.policy = store, sessions, policy
        self.hmac_keys, self.email_provider_rules = hmac_keys, email_provider_rules
        self.clock = clock
        self.wait_s = wait_s  # between looks while another replica rebuilds
        self._restoring: asyncio.Task | None = None
        # Whether the records were last seen complete: the replica's readiness (not ready while it
        # holds leads, so `leadx status` and a rollout see it).
        self.complete = False

    def lost(self) -> DedupStateHeld:
        """A check was refused: make sure a restore runs, and the error that holds the lead."""
        self.complete = False
        self.look()
        return DedupStateHeld("lead held: Redis lost the dedup records, which are being rebuilt from SQL")

    def look(self) -> None:
        """Start a restore (one at a time in this replica), which ends at once if the epoch is there."""
        if self._restoring is None or self._restoring.done():
            # A context of its own: the restore outlives the lead whose trace it would otherwise join.
            self._restoring = asyncio.create_task(self.restore(), context=contextvars.Context())
            self._restoring.add_done_callback(_log_failure)

    async def stop(self) -> None:
        """Cancel a restore and wait for it: its rebuild releases its lock on the way out, before
        Redis is closed, so another replica need not wait for the lock to expire."""
        if self._restoring is not None:
            self._restoring.cancel()
            await asyncio.gather(self._restoring, return_exceptions=True)

    async def restore(self) -> None:
        """Return once the epoch is there: written here (a first start, or this replica's rebuild)
        or by another replica's rebuild."""
        loss_noted = waiting_noted = False
        metrics.STATE_HELD.set(1)
        try:
            while True:
                try:
                    if await self.store.intact():
                        break
                    now_ms = int(self.clock() * 1000)
                    if not await asyncio.to_thread(sql_holds_records, self.sessions, self.policy, now_ms):
                        if await self.store.declare_intact(now_ms):
                            log_event(log, "dedup records started empty: SQL holds nothing to rebuild them from")
                            continue
                    else:
                        if not loss_noted:
                            loss_noted = True
                            metrics.STATE_LOST.inc()
                            log.warning("Redis lost the dedup records (no epoch, while SQL holds leads inside the "
                                        "window): leads are held and awards refused until they are rebuilt")
                        if await self._rebuild(now_ms):
                            continue
                    if not waiting_noted:
                        waiting_noted = True
                        log_event(log, "dedup rebuild running elsewhere: waiting for its epoch")
                except (RedisError, SQLAlchemyError):
                    # Redis or SQL unreachable (Redis restarting, most likely): look again shortly.
                    log.warning("dedup records not restored yet: Redis or SQL unavailable", exc_info=True)
                await asyncio.sleep(self.wait_s)  # another replica rebuilds, or a dependency is down
            self.complete = True
        finally:
            # Held until the records are known complete, even when this restore failed: the next
            # held lead starts another.
            metrics.STATE_HELD.set(0 if self.complete else 1)

    async def _rebuild(self, now_ms: int) -> bool:
        """Run the rebuild; False when another replica runs it."""
        started = time.monotonic()
        metrics.REBUILD_RUNNING.set(1)
        try:
            report = await rebuild(self.sessions, self.store, self.policy, self.hmac_keys, now_ms,
                                   self.email_provider_rules)
        except RebuildBusy:
            return False
        except RebuildLockLost:
            log.warning("dedup rebuild lost its lock before it was done: running it again")
            return True
        finally:
            metrics.REBUILD_RUNNING.set(0)
        log.warning("dedup records rebuilt from SQL: leads and awards go on", extra={"fields": {
            "platform_records": report.leads, "buyer_records": report.postings, "conflicts": report.conflicts,
            "seconds": round(time.monotonic() - started, 1)}})
        return True


def _log_failure(task: asyncio.Task) -> None:
    """A restore that failed on an error it does not expect is started again by the next refused check."""
    if not task.cancelled() and task.exception() is not None:
        log.error("dedup records not restored; the next held lead tries again", exc_info=task.exception())
