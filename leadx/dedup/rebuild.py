"""`leadx dedup rebuild`: restore the Redis dedup state from the SQL record, so losing Redis loses
no protection. Platform records come from the leads submitted inside their vertical's window (all
but those refused as duplicates or invalid, as the dedup worker records them), per-buyer records
from the buyers each lead was posted to (buyer_postings, written by the ledger from sale.closed).

Records keep their original times, so every window ends when it would have. Leads are replayed
oldest first, each checked as dedup checks a lead: one that repeats an older lead's consumer inside
the window (a lead not judged yet, held while Redis was empty) is not recorded, so dedup then finds
it a duplicate. Replaying is idempotent (a lead's own record is no duplicate of it) and a newer
record is never replaced by an older one, so a rebuild may run over live state. A posting is
dated by its sale's close, seconds after the reservation: a rebuilt buyer record may outlive the
original by those seconds, never the other way round.

One rebuild runs at a time: it holds the store's rebuild lock (renewed while it runs), writes
under it, which the scripts allow without an epoch, and writes the epoch once done, so the
services' checks and awards, refused meanwhile on a Redis that lost its data, go on.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from leadx.dedup.scopes import DedupPolicy
from leadx.dedup.store import DedupStore
from leadx.leads import pii
from leadx.leads import status as lead_status
from leadx.platform.config import HmacKeyring
from leadx.platform.db.models import BuyerPosting, Lead

CHUNK = 500  # calls in flight at once: the store pipelines them


@dataclass
class RebuildReport:
    leads: int = 0  # platform records restored
    postings: int = 0  # per-buyer records restored
    conflicts: int = 0  # postings the store refused (another lead of the consumer already held the buyer)
    flushed: int = 0  # keys deleted first (flush_first)


class RebuildBusy(RuntimeError):
    """Another rebuild holds the lock: it writes the epoch when done."""


class RebuildLockLost(RuntimeError):
    """The lock expired or Redis lost it mid-rebuild: what was written may be incomplete, so the
    epoch is not written and the rebuild must run again."""


LOCK_TTL_MS = 30_000  # renewed every third of it: a rebuild whose process dies frees it this soon


async def rebuild(sessions: sessionmaker[Session], store: DedupStore, policy: DedupPolicy,
                  hmac_keys: HmacKeyring | bytes, now_ms: int, email_provider_rules: bool = True,
                  *, flush_first: bool = False) -> RebuildReport:
    """Records are made under the current HMAC key; while a rotation lists others, a posting whose
    buyer holds the consumer under any of them is a conflict, as at an award. Holds the rebuild
    lock (raises RebuildBusy when another rebuild holds it), writes the epoch when done.
    `flush_first` deletes the current records under the lock first."""
    token = await store.take_rebuild_lock(LOCK_TTL_MS)
    if token is None:
        raise RebuildBusy("another dedup rebuild holds the lock")
    keeper = asyncio.create_task(_keep_lock(store, token))
    # Its failure (Redis gone) fails the rebuild's own writes too, which raise it; marked read here.
    keeper.add_done_callback(lambda task: task.cancelled() or task.exception())
    try:
        flushed = await flush(store) if flush_first else 0
        report = await _replay(sessions, store.rebuilding(token), policy, hmac_keys, now_ms, email_provider_rules)
        report.flushed = flushed
        if keeper.done() or not await store.seal_epoch(token, now_ms):
            raise RebuildLockLost("the dedup rebuild lost its lock before it was done; run it again")
        return report
    finally:
        keeper.cancel()
        await store.release_rebuild_lock(token)


async def _keep_lock(store: DedupStore, token: str) -> None:
    """Renew the lock while the rebuild runs; returns (so the rebuild fails) once it is lost."""
    while await store.keep_rebuild_lock(token, LOCK_TTL_MS):
        await asyncio.sleep(LOCK_TTL_MS / 3000)


def sql_holds_records(sessions: sessionmaker[Session], policy: DedupPolicy, now_ms: int) -> bool:
    """Whether SQL holds anything a rebuild would restore (a lead or a posting inside the longest
    window): an empty Redis is then a loss, not a first start."""
    longest = max([policy.scopes(v).window_ms for v in _verticals(sessions)] or [0])
    since = now_ms - longest
    with sessions() as session:
        lead = session.scalar(select(Lead.id).where(Lead.submitted_at_ms > since).limit(1))
        posting = lead or session.scalar(select(BuyerPosting.lead_id).where(BuyerPosting.posted_at_ms > since).limit(1))
    return bool(lead or posting)


async def _replay(sessions: sessionmaker[Session], store: DedupStore, policy: DedupPolicy,
                  hmac_keys: HmacKeyring | bytes, now_ms: int, email_provider_rules: bool) -> RebuildReport:
    report = RebuildReport()
    keyring = hmac_keys if isinstance(hmac_keys, HmacKeyring) else HmacKeyring.single(hmac_keys)
    longest = max([policy.scopes(v).window_ms for v in _verticals(sessions)] or [0])
    since = now_ms - longest

    def identities(lead: Lead) -> dict[str, list[str]]:
        return pii.identity_keys_under(keyring, {k: str(v) for k, v in (lead.fields or {}).items()},
                                       email_provider_rules)

    # Oldest first, each checked as it was when submitted: a lead the records show to repeat an older
    # one is not recorded. Such a lead is one not judged yet (Redis lost its data while it waited):
    # recorded, it would stand for the consumer, and dedup would then take it for its own record and
    # accept a repeat of a consumer already sold.
    leads = select(Lead).where(Lead.submitted_at_ms > since, Lead.fields.is_not(None),
                               Lead.status.not_in([lead_status.DUPLICATE, lead_status.REJECTED])) \
        .order_by(Lead.submitted_at_ms, Lead.id)
    recorded = _Batches()
    for lead in _stream(sessions, leads):
        scopes = policy.scopes(lead.vertical)
        if not scopes.platform:
            continue
        if lead.submitted_at_ms <= now_ms - scopes.window_ms:
            continue  # a vertical with a shorter window than the longest
        report.leads += 1
        await recorded.add(store.check_submission(lead.id, lead.vertical, identities(lead), lead.submitted_at_ms,
                                                  scopes.window_ms, platform=True, buyers=False, record=True))
    await recorded.finish()

    postings = select(BuyerPosting, Lead).join(Lead, Lead.id == BuyerPosting.lead_id).where(
        BuyerPosting.posted_at_ms > since, Lead.fields.is_not(None))
    reserved = _Batches()
    for posting, lead in _stream(sessions, postings, rows=True):
        scopes = policy.scopes(lead.vertical)
        if not scopes.per_buyer:
            continue
        if posting.posted_at_ms <= now_ms - scopes.window_ms:
            continue
        report.postings += 1
        await reserved.add(store.reserve_for_buyer(posting.buyer_id, lead.id, lead.vertical,
                                                   pii.listed(identities(lead)), posting.posted_at_ms,
                                                   scopes.window_ms))
    await reserved.finish()
    report.conflicts = reserved.results.count(False)
    return report


class _Batches:
    """Store calls run CHUNK at a time, so they share pipelines without piling up unbounded."""

    def __init__(self) -> None:
        self.calls: list = []
        self.results: list = []

    async def add(self, call) -> None:
        self.calls.append(call)
        if len(self.calls) >= CHUNK:
            await self.finish()

    async def finish(self) -> None:
        self.results += await asyncio.gather(*self.calls)
        self.calls = []


def _verticals(sessions: sessionmaker[Session]) -> list[str]:
    with sessions() as session:
        return list(session.scalars(select(Lead.vertical).distinct()))


def _stream(sessions: sessionmaker[Session], query, rows: bool = False):
    with sessions() as session:
        result = session.execute(query.execution_options(yield_per=1000))
        yield from (result if rows else result.scalars())


async def flush(store: DedupStore) -> int:
    """Delete this namespace's dedup state (before a rebuild from scratch), the epochs with it: until
    a rebuild writes them again, checks and awards are refused. Returns the keys deleted. On a
    cluster the scan visits every primary, and the deletes go to each key's node."""
    deleted = await store.redis.unlink(*(store.state_keys(shard)[1] for shard in range(store.shards)))
    batch = []
    async for key in store.redis.scan_iter(match=f"dd:{store.namespace}*", count=1000):
        batch.append(key)
        if len(batch) >= 1000:
            deleted += await store.redis.unlink(*batch)
            batch = []
    if batch:
        deleted += await store.redis.unlink(*batch)
    return deleted
