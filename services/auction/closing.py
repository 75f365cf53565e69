"""Closing auctions: each once, when its durable deadline passes, on a partition this worker owns.

Deadlines are durable: each is part of its auction's table entry. An in-memory index of them
(services.auction.deadlines) is rebuilt from the table whenever partitions are recovered, and a
task closes each auction when its deadline passes, after checking the table, and only on a
partition this worker owns. A revocation waits for the closes in hand and flushes their table
writes before the partitions move, so restarts and rebalances still close every auction exactly
once.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Iterable
from typing import Any

import faust
from opentelemetry import trace

from leadx.auction import rules
from leadx.auction.state import Auction
from leadx.contracts.events.v1 import events_pb2 as ev
from leadx.platform.ids import derived_event_id
from leadx.platform.logs import log_event
from leadx.platform.telemetry import child_span, context_of
from services.auction import metrics
from services.auction.bid_feed import BidFeed
from services.auction.deadlines import CLOSE, PURGE, DeadlineIndex
from services.auction.streams import now_ms, publish
from services.auction.table import AuctionTable

log = logging.getLogger(__name__)

RETRY_MS = 1000
# While the bid feed holds closes, the closing task looks this often; otherwise it sleeps until the
# earliest deadline, waking at least this often.
HELD_LOOK_S = 0.01
LONGEST_SLEEP_S = 1.0


class AuctionCloser:
    """An open auction → auction.closed, with its ranked bids and its lead; then what the table keeps
    of it until its purge."""

    def __init__(self, table: AuctionTable, deadlines: DeadlineIndex, closed_topic: faust.TopicT,
                 hmac_key: bytes, *, closed_retention_ms: int) -> None:
        self.table, self.deadlines, self.closed_topic = table, deadlines, closed_topic
        self.hmac_key = hmac_key
        self.closed_retention_ms = closed_retention_ms
        self._in_hand: set[str] = set()

    def in_hand(self, auction_id: str) -> bool:
        return auction_id in self._in_hand

    async def close(self, auction_id: str) -> None:
        # An auction closed at its opening (nobody to ping) is still open in the table while its
        # auction.closed is being acknowledged, and its deadline is already due: one close at a time.
        if auction_id in self._in_hand:
            return
        # The caller's copy may be stale: an opening waits on the broker before it closes, and the
        # deadline task may have closed the auction meanwhile. The table says whether it is open.
        current = self.table.get(auction_id)
        if current is None or not current.is_open:
            return
        self._in_hand.add(auction_id)
        try:
            await self._close_now(auction_id, current)
        finally:
            self._in_hand.discard(auction_id)

    async def _close_now(self, auction_id: str, auction: Auction) -> None:
        scored = ev.LeadScored.FromString(auction.scored)
        seed = rules.tie_break_seed(self.hmac_key, auction_id)
        ranked = rules.rank_bids(auction.bids, auction.min_price_cents, seed, auction.weights, auction.pricing)
        closed_at = now_ms()
        closed = ev.AuctionClosed(
            auction_id=auction_id,
            ranked_bids=[ev.RankedBid(buyer_id=r.buyer_id, amount_cents=r.amount_cents, rank=i + 1,
                                      bid_cents=r.bid_cents, weight=r.weight,
                                      profile_id=auction.profiles.get(r.buyer_id, ""))
                         for i, r in enumerate(ranked)],
            closed_at_ms=closed_at, tie_break_seed=seed, lead=scored.verified.lead,
            identity_keys=scored.verified.identity_keys, bids_received=len(auction.bids),
            probability=scored.probability, cluster=scored.cluster, pricing=auction.pricing,
            shares=auction.shares,
        )
        # Publish first: if the worker dies before the table write, the auction is closed again
        # with the same event id and delivery recognises the repeat.
        await publish(self.closed_topic, auction_id, closed, derived_event_id(auction_id, "closed"))
        self.table.write(auction_id, rules.closed(auction, closed_at))
        metrics.closed(bool(ranked), closed_at - auction.closes_at_ms)
        self.deadlines.push(closed_at + self.closed_retention_ms, auction_id, PURGE)
        log_event(log, "auction closed", auction_id=auction_id, bids=len(auction.bids),
                  winner=ranked[0].buyer_id if ranked else None, late_ms=closed_at - auction.closes_at_ms)


class DeadlineKeeper:
    """Acts on the deadlines of the auctions on the partitions this worker owns: closes the due
    ones, purges the closed ones kept long enough; rebuilds the deadlines from the table when faust
    recovers the worker's partitions, and lets the partitions go when faust revokes them."""

    def __init__(self, table: AuctionTable, deadlines: DeadlineIndex, closer: AuctionCloser, bids: BidFeed,
                 assigned_partitions: Callable[[], Iterable[int]], flush_writes: Callable[[], Awaitable],
                 *, close_batch_max: int, closed_retention_ms: int, recovery_grace_ms: int) -> None:
        self.table, self.deadlines, self.closer, self.bids = table, deadlines, closer, bids
        self.assigned_partitions, self.flush_writes = assigned_partitions, flush_writes
        self.close_batch_max = close_batch_max
        self.closed_retention_ms, self.recovery_grace_ms = closed_retention_ms, recovery_grace_ms
        # The lead.scored partitions (those of the table's changelog too) whose auctions this worker
        # closes; held while closing, and by a revocation, which empties it.
        self.owned: set[int] = set()
        self._closing = asyncio.Lock()
        self._recovered = False

    def recovered(self) -> bool:
        """Whether the worker's partitions have been assigned and its table recovered once."""
        return self._recovered

    async def close_due(self) -> None:
        """The closing task. It sleeps until the earliest deadline, or an earlier one is pushed
        (DeadlineIndex.wait_due). Due auctions are closed side by side, each waiting on the broker's
        acknowledgement of its auction.closed; the look after waits for them."""
        while True:
            if self.bids.holds_closes():
                # The bid feed is still reading bids placed while nobody owned these auctions: look
                # again shortly (it lets go within a flush or two, and pushes no deadline to wake us).
                await asyncio.sleep(HELD_LOOK_S)
                continue
            await self.deadlines.wait_due(now_ms, LONGEST_SLEEP_S)
            if self.bids.holds_closes():
                continue
            due = list(dict.fromkeys(self.deadlines.pop_due(now_ms())))
            for first in range(0, len(due), self.close_batch_max):
                chunk = due[first:first + self.close_batch_max]
                async with self._closing:
                    outcomes = await asyncio.gather(*(self.act_on(a, action) for a, action in chunk),
                                                    return_exceptions=True)
                # Logged, never raised: this task must outlive any one auction's fault.
                for (auction_id, action), outcome in zip(chunk, outcomes, strict=True):
                    if isinstance(outcome, Exception):
                        log.error("deadline %s of auction %s failed", action, auction_id, exc_info=outcome)

    async def act_on(self, auction_id: str, action: str) -> None:
        if self.table.changelog_partition(auction_id) not in self.owned:
            return  # its partition moved: the new owner rebuilt this deadline from the table
        auction = self.table.get(auction_id)
        if auction is None:
            return
        if action == PURGE:
            if auction.status == rules.CLOSED:
                self.table.write(auction_id, None)
            return
        if not auction.is_open:
            return  # closed already (a deadline rebuilt while its close was in hand)
        if self.closer.in_hand(auction_id):
            # Being closed at its opening: looked at again in a second, in case that close fails.
            self.deadlines.push(now_ms() + RETRY_MS, auction_id, CLOSE)
            return
        if now_ms() < auction.closes_at_ms:
            self.deadlines.push(auction.closes_at_ms, auction_id, CLOSE)
            return
        try:
            with child_span("auction close", trace.SpanKind.INTERNAL, context_of(auction.trace)):
                await self.closer.close(auction_id)
        except Exception:  # noqa: BLE001 - one failed close must not stop the closing of the others
            log.exception("closing auction %s failed; retried in a second", auction_id)
            self.deadlines.push(now_ms() + RETRY_MS, auction_id, CLOSE)

    async def rebuild(self) -> None:
        """The table's recovery callback. Auctions that fell due while no worker owned them wait a
        short grace, for the bids delivery has in hand; and none closes before the bid feed has read
        the bids queued meanwhile (BidFeed.holds_closes), however long its start takes on a busy
        machine."""
        earliest_close = now_ms() + self.recovery_grace_ms
        entries = []
        for auction_id, auction in self.table.items():
            if auction is None:
                continue
            if auction.is_open:
                entries.append((max(auction.closes_at_ms, earliest_close), auction_id, CLOSE))
            else:
                entries.append((auction.closed_at_ms + self.closed_retention_ms, auction_id, PURGE))
        partitions = list(self.assigned_partitions())
        async with self._closing:
            self.deadlines.rebuild(entries)
            self.owned.clear()
            self.owned.update(partitions)
        # The table is whole again: read the bids of the partitions this worker now owns.
        await self.bids.assign(partitions)
        self._recovered = True
        log_event(log, "deadlines rebuilt", open_or_closed=len(entries))

    async def let_partitions_go(self, sender: Any, *args: Any, signal: Any = None, **kwargs: Any) -> None:
        """The app's partitions-revoked signal. The closes in hand finish and their table writes
        reach the broker before the partitions move, so the next owner finds those auctions closed;
        bids not yet flushed are read again by the next owner (services.auction.bid_feed)."""
        async with self._closing:
            self.owned.clear()
        await self.bids.release()
        await self.flush_writes()
