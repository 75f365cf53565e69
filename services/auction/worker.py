"""The auction worker: a faust-streaming app that opens an auction per scored lead, collects
bids in a table, and closes each auction once, when its durable deadline passes.

Topics are co-partitioned: lead.scored and bid.placed are keyed by the auction id (a lead
auction's id is its lead id) and have the same partition count as the table's changelog, so the
worker that owns an auction's partition sees its lead and its bids (services.auction.bid_feed).

Deadlines are durable: each is part of its auction's table entry. An in-memory index of them is
rebuilt from the table whenever partitions are recovered, and a task closes each auction when its
deadline passes, after checking the table, and only on a partition this worker owns. A revocation
waits for the closes in hand and flushes their table writes before the partitions move, so
restarts and rebalances still close every auction exactly once.
"""

from __future__ import annotations

import asyncio
import logging
import time
import weakref
from collections.abc import Awaitable, Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager

import faust
import faust.streams as faust_streams
from opentelemetry import trace
from redis.asyncio import Redis
from redis.exceptions import RedisError

from leadx.accounts.directory import BuyerDirectory
from leadx.auction import rules
from leadx.auction.caps.counters import CapsStore
from leadx.auction.offers import OfferWriter
from leadx.auction.selection.criteria import LeadView
from leadx.auction.selection.market import Selection, select_buyers
from leadx.auction.state import Auction
from leadx.auction.terms import AuctionTerms, terms_by_vertical
from leadx.contracts import topics
from leadx.contracts.events.v1 import events_pb2 as ev
from leadx.leads.pii import IDENTIFYING_FIELDS
from leadx.leads.verticals import load_verticals
from leadx.platform.health import Readiness
from leadx.platform.ids import derived_event_id
from leadx.platform.kafka.envelope import HEADER_EVENT_ID, HEADER_EVENT_TYPE, partition_for
from leadx.platform.logs import log_event
from leadx.platform.telemetry import extract_context, inject_headers, tracer
from services.auction.bid_feed import BidFeed, owned_partitions
from services.auction.deadlines import CLOSE, PURGE, DeadlineIndex
from services.auction.settings import AuctionSettings
from services.auction.table import auctions_table

log = logging.getLogger(__name__)


def now_ms() -> int:
    return int(time.time() * 1000)


def _headers(raw: Mapping[str, bytes] | Iterable[tuple[str, bytes]] | None) -> list[tuple[str, bytes]]:
    if raw is None:
        return []
    return list(raw.items()) if isinstance(raw, Mapping) else list(raw)


@contextmanager
def writing_for(event: faust.EventT) -> Iterator[None]:
    """faust sends a table write's changelog record to the partition of the stream's current event;
    in a batch that is the batch's last event, so a write made for an earlier event names it. (The
    topics are co-partitioned: the event's partition is its auction's.)"""
    token = faust_streams._current_event.set(weakref.ref(event))
    try:
        yield
    finally:
        faust_streams._current_event.reset(token)


async def by_auction(events: Sequence[faust.EventT], handle: Callable[[faust.EventT], Awaitable[None]]) -> None:
    """Handle a batch of events keyed by auction id: one auction's events in their order, different
    auctions' side by side (each table write naming its own event, see writing_for). Returns once
    every event is handled; then the batch may be acknowledged. The first failure is raised after
    the others have finished, so none is left running behind the acknowledgement."""
    groups: dict[bytes, list[faust.EventT]] = {}
    for event in events:
        groups.setdefault(event.key, []).append(event)

    async def in_order(group: list[faust.EventT]) -> None:
        for event in group:
            with writing_for(event):
                await handle(event)

    outcomes = await asyncio.gather(*(in_order(group) for group in groups.values()), return_exceptions=True)
    for outcome in outcomes:
        if isinstance(outcome, BaseException):
            raise outcome


def build_worker(settings: AuctionSettings, directory: BuyerDirectory, readiness: Readiness,
                 redis: Redis) -> faust.App:
    kafka = settings.common.kafka
    prefix = kafka.topic_prefix
    app = faust.App(
        f"{prefix}leadx-auction",
        broker=[f"kafka://{server.strip()}" for server in kafka.bootstrap_servers.split(",")],
        store="memory://",
        datadir=settings.data_dir,
        topic_partitions=kafka.partitions,
        topic_replication_factor=kafka.replication_factor,
        table_standby_replicas=0,
        consumer_auto_offset_reset="earliest",
        producer_acks=-1,
        broker_commit_interval=0.5,
        # Short timeouts: a killed worker's partitions move within seconds, not minutes.
        broker_session_timeout=10.0,
        broker_heartbeat_interval=2.0,
        broker_rebalance_timeout=10.0,
        web_enabled=False,
    )

    def topic(base: str) -> faust.TopicT:
        return app.topic(topics.name(prefix, base), key_type=bytes, value_type=bytes,
                         key_serializer="raw", value_serializer="raw")

    scored_topic = topic(topics.LEAD_SCORED)
    opened_topic, closed_topic = topic(topics.AUCTION_OPENED), topic(topics.AUCTION_CLOSED)
    auctions = auctions_table(app, kafka.partitions)
    deadlines = DeadlineIndex()
    caps = CapsStore(redis, prefix)
    offers = OfferWriter(redis, prefix)
    terms_of = terms_by_vertical(load_verticals())
    state = {"rebalanced": False}
    # The lead.scored partitions (those of the table's changelog too) whose auctions this worker
    # closes; held while closing, and by a revocation, which empties it.
    owned: set[int] = set()
    closing = asyncio.Lock()
    closes_in_hand: set[str] = set()
    readiness.add("partitions assigned and recovered", lambda: state["rebalanced"])
    readiness.add("buyers loaded", lambda: directory.loaded)

    async def publish(target: faust.TopicT, key: str, message, event_id: str) -> None:
        with tracer().start_as_current_span(f"{target.get_topic_name()} publish",
                                            kind=trace.SpanKind.PRODUCER):
            headers = [(HEADER_EVENT_ID, event_id.encode()),
                       (HEADER_EVENT_TYPE, message.DESCRIPTOR.full_name.encode()), *inject_headers()]
            # force=True sends now instead of at the next offset commit; awaiting the returned
            # future waits for the broker's acknowledgement.
            sent = await target.send(key=key.encode(), value=message.SerializeToString(),
                                     headers=headers, force=True)
            await sent

    def span_for(event, name: str):
        parent = extract_context(_headers(event.headers))
        return tracer().start_as_current_span(name, context=parent, kind=trace.SpanKind.CONSUMER)

    @app.agent(scored_topic)
    async def open_auctions(stream):
        # An open waits on Redis and on the broker's acknowledgement of auction.opened; one lead at a
        # time, the worker idled through those round trips while leads queued (bench/auction.py: for
        # seconds at 200 leads/s). So leads are taken in batches and opened side by side.
        async for events in stream.take_events(settings.open_batch_max, within=settings.batch_wait_s):
            await by_auction(events, open_one)

    async def open_one(event: faust.EventT) -> None:
        with span_for(event, "lead.scored process"):
            scored = ev.LeadScored.FromString(event.value)
            lead = scored.verified.lead
            auction_id = lead.lead_id
            if auctions.get(auction_id) is not None:
                return  # redelivered: this auction is already open or closed
            excluded = frozenset(scored.verified.duplicate_buyer_ids)
            direct = lead.direct_buyer_id
            opened_at = now_ms()
            pinged: list[str] = []
            if direct:
                # A direct sale (the patent's Lite Dealer): no pings and no window; the contracted
                # buyer's "bid" is the contract price that intake put in min_price_cents.
                offered = [direct] if direct not in excluded else []
                auction = rules.new_auction(offered, lead.min_price_cents, opened_at, 0, scored=event.value)
                if offered:
                    auction = rules.with_bid(auction, direct, lead.min_price_cents)
            else:
                auction, pinged = await open_auction(scored, event.value, excluded, opened_at)
                offered = auction.offered
            auctions[auction_id] = auction
            deadlines.push(auction.closes_at_ms, auction_id, CLOSE)
            fields = lead.fields
            income = fields.get("gross_monthly_income", "")
            opened = ev.AuctionOpened(
                auction_id=auction_id, lead_id=lead.lead_id, offered_buyer_ids=auction.offered,
                min_price_cents=lead.min_price_cents, opened_at_ms=opened_at,
                closes_at_ms=auction.closes_at_ms, direct=bool(direct), pinged_buyer_ids=pinged,
                ping=ev.PingSubset(vertical=lead.vertical, zip=fields.get("zip", ""),
                                   state=fields.get("state", ""),
                                   gross_monthly_income_cents=int(income) if income.isdigit() else 0,
                                   probability=scored.probability, cluster=scored.cluster,
                                   fields={k: v for k, v in fields.items() if k not in IDENTIFYING_FIELDS}),
            )
            await publish(opened_topic, auction_id, opened, derived_event_id(auction_id, "opened"))
            log_event(log, "auction opened", auction_id=auction_id, offered=len(offered), direct=bool(direct))
            if auction.closes_at_ms <= opened_at:
                # A direct sale, or nobody to ping: nothing to wait for. The deadline above
                # closes it if this worker dies first.
                await close(auction_id)

    async def open_auction(scored: ev.LeadScored, scored_record: bytes, excluded: frozenset[str],
                           opened_at: int) -> tuple[Auction, list[str]]:
        """Buyer Selection and AutoBid (leadx.auction.selection.market): the auction, with the bids placed for
        AutoBid buyers, and the wholesale buyers to ping."""
        lead = scored.verified.lead
        market = directory.market
        eligible = market.eligible(lead.seller_id)
        try:
            usage = await caps.usage(market.capped_owners(eligible), opened_at)
        except RedisError:
            # Caps are only a filter here (delivery counts every sale against them atomically):
            # without Redis the auction still opens, capped buyers included.
            log.warning("caps unreadable; the auction opens without the caps filter", exc_info=True)
            usage = {}
        view = LeadView(lead.fields, scored.probability, scored.cluster, scored.timing_factor)
        selection: Selection = select_buyers(market, lead.seller_id, view, opened_at, excluded, usage,
                                             reserve_cents=lead.min_price_cents)
        offered = selection.offered
        terms = terms_of.get(lead.vertical, AuctionTerms())
        window = terms.window_ms(settings.window_ms)
        # With nobody to ping, nobody else can bid: the auction closes at once on the AutoBids.
        auction = rules.new_auction(offered, lead.min_price_cents, opened_at, window if selection.pinged else 0,
                                    {b: market.buyers[b].weight for b in offered}, terms.pricing, terms.shares,
                                    scored_record)
        for buyer_id, bid in sorted(selection.autobids.items()):
            auction = rules.with_bid(auction, buyer_id, bid.amount_cents, bid.profile_id)
        if selection.pinged:
            await record_offer(lead.lead_id, auction, window + settings.closed_retention_ms)
        if selection.passed:
            log_event(log, "buyers passed over", auction_id=lead.lead_id, passed=dict(selection.passed))
        return auction, list(selection.pinged)

    async def record_offer(auction_id: str, auction: Auction, ttl_ms: int) -> None:
        """The offer record the bid API reads (leadx.auction.offers). Without Redis the bid API
        refuses this auction's bids as not found; bids in ping replies still count."""
        try:
            await offers.write(auction_id, auction.closes_at_ms, auction.min_price_cents, auction.offered, ttl_ms)
        except RedisError:
            log.warning("offer record not written; the bid API will not know auction %s", auction_id, exc_info=True)

    # Bids are read beside faust (services.auction.bid_feed): applied to the table's store as they
    # come, written to its changelog behind them, on the partitions this worker owns.
    bids = BidFeed(kafka, topics.group(prefix, "auction-bids"), topics.name(prefix, topics.BID_PLACED),
                   auctions, batch_max=settings.bid_batch_max, batch_wait_s=settings.batch_wait_s,
                   flush_interval_s=settings.bid_flush_s)

    @app.task
    async def read_bids() -> None:
        try:
            await bids.run()
        finally:
            await bids.stop()

    def changelog_partition(auction_id: str) -> int:
        # The auction's lead.scored partition: its lead was keyed by this id with the default partitioner.
        return partition_for(auction_id, kafka.partitions)

    def write(auction_id: str, auction: Auction | None) -> None:
        """A table write from outside an agent (the closing task): faust's own `auctions[id] = ...`
        takes the changelog partition from the stream's current event."""
        partition = changelog_partition(auction_id)
        if auction is None:
            auctions.data.pop(auction_id, None)
            auctions.send_changelog(partition, auction_id, None, value_serializer="raw")  # a tombstone
        else:
            auctions.data[auction_id] = auction
            auctions.send_changelog(partition, auction_id, auction)

    @app.task
    async def close_due_auctions() -> None:
        # Every 10 ms: a deadline waits for the next look, and the look is cheap (the heap's top).
        # Due auctions are closed side by side, each waiting on the broker's acknowledgement of its
        # auction.closed; the look after waits for them.
        while True:
            await asyncio.sleep(0.01)
            if bids.holds_closes():
                continue  # the bid feed is still reading bids placed while nobody owned these auctions
            due = list(dict.fromkeys(deadlines.pop_due(now_ms())))
            for first in range(0, len(due), settings.close_batch_max):
                chunk = due[first:first + settings.close_batch_max]
                async with closing:
                    outcomes = await asyncio.gather(*(act_on_deadline(a, action) for a, action in chunk),
                                                    return_exceptions=True)
                # Logged, never raised: this task must outlive any one auction's fault.
                for (auction_id, action), outcome in zip(chunk, outcomes, strict=True):
                    if isinstance(outcome, Exception):
                        log.error("deadline %s of auction %s failed", action, auction_id, exc_info=outcome)

    async def act_on_deadline(auction_id: str, action: str) -> None:
        if changelog_partition(auction_id) not in owned:
            return  # its partition moved: the new owner rebuilt this deadline from the table
        auction = auctions.get(auction_id)
        if auction is None:
            return
        if action == PURGE:
            if auction.status == rules.CLOSED:
                write(auction_id, None)
            return
        if not auction.is_open:
            return  # closed already (a deadline rebuilt while its close was in hand)
        if auction_id in closes_in_hand:
            # Being closed at its opening: looked at again in a second, in case that close fails.
            deadlines.push(now_ms() + 1000, auction_id, CLOSE)
            return
        if now_ms() < auction.closes_at_ms:
            deadlines.push(auction.closes_at_ms, auction_id, CLOSE)
            return
        try:
            with tracer().start_as_current_span("auction close", kind=trace.SpanKind.INTERNAL):
                await close(auction_id)
        except Exception:  # noqa: BLE001 - one failed close must not stop the closing of the others
            log.exception("closing auction %s failed; retried in a second", auction_id)
            deadlines.push(now_ms() + 1000, auction_id, CLOSE)

    @app.on_partitions_revoked.connect
    async def let_partitions_go(sender, revoked, **kwargs) -> None:
        # The closes in hand finish and their table writes reach the broker before the partitions
        # move, so the next owner finds those auctions closed; bids not yet flushed are read again
        # by the next owner (services.auction.bid_feed).
        async with closing:
            owned.clear()
        await bids.release()
        await app.producer.flush()

    async def close(auction_id: str) -> None:
        # An auction closed at its opening (nobody to ping) is still open in the table while its
        # auction.closed is being acknowledged, and its deadline is already due: one close at a time.
        if auction_id in closes_in_hand:
            return
        # The caller's copy may be stale: an opening waits on the broker before it closes, and the
        # deadline task may have closed the auction meanwhile. The table says whether it is open.
        current = auctions.get(auction_id)
        if current is None or not current.is_open:
            return
        closes_in_hand.add(auction_id)
        try:
            await close_now(auction_id, current)
        finally:
            closes_in_hand.discard(auction_id)

    async def close_now(auction_id: str, auction: Auction) -> None:
        scored = ev.LeadScored.FromString(auction.scored)
        seed = rules.tie_break_seed(settings.common.hmac_key, auction_id)
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
        await publish(closed_topic, auction_id, closed, derived_event_id(auction_id, "closed"))
        write(auction_id, rules.closed(auction, closed_at))
        deadlines.push(closed_at + settings.closed_retention_ms, auction_id, PURGE)
        lateness = closed_at - auction.closes_at_ms
        log_event(log, "auction closed", auction_id=auction_id, bids=len(auction.bids),
                  winner=ranked[0].buyer_id if ranked else None, late_ms=lateness)

    @auctions.on_recover
    async def rebuild_deadlines() -> None:
        # Auctions that fell due while no worker owned them wait a short grace, for the bids
        # delivery has in hand; and none closes before the bid feed has read the bids queued
        # meanwhile (BidFeed.holds_closes), however long its start takes on a busy machine.
        earliest_close = now_ms() + settings.recovery_grace_ms
        entries = []
        for auction_id, auction in auctions.items():
            if auction is None:
                continue
            if auction.is_open:
                entries.append((max(auction.closes_at_ms, earliest_close), auction_id, CLOSE))
            else:
                entries.append((auction.closed_at_ms + settings.closed_retention_ms, auction_id, PURGE))
        partitions = owned_partitions(app.assignor.assigned_actives(), scored_topic.get_topic_name())
        async with closing:
            deadlines.rebuild(entries)
            owned.clear()
            owned.update(partitions)
        # The table is whole again: read the bids of the partitions this worker now owns.
        await bids.assign(partitions)
        state["rebalanced"] = True
        log_event(log, "deadlines rebuilt", open_or_closed=len(entries))

    @app.timer(interval=directory.refresh_s)
    async def refresh_buyers() -> None:
        await asyncio.to_thread(directory.load)

    return app
