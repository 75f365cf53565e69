"""Opening auctions: a scored lead becomes an auction in the worker's table, with its deadline, the
bids the platform places for AutoBid buyers, the offer record the bid API reads, and auction.opened.
An auction with nobody to ping (a direct sale, or AutoBid buyers alone) is closed at once."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import replace
from typing import cast

import faust
from redis.exceptions import RedisError

from leadx.accounts.directory import BuyerDirectory
from leadx.auction import rules
from leadx.auction.caps.counters import CapsStore
from leadx.auction.offers import OfferWriter
from leadx.auction.selection.criteria import LeadView
from leadx.auction.selection.market import Selection, select_buyers
from leadx.auction.state import Auction
from leadx.auction.terms import AuctionTerms
from leadx.contracts.events.v1 import events_pb2 as ev
from leadx.leads.pii import IDENTIFYING_FIELDS
from leadx.platform.ids import derived_event_id
from leadx.platform.logs import log_event
from leadx.platform.telemetry import current_trace_parent
from services.auction import metrics
from services.auction.closing import AuctionCloser
from services.auction.opener_batches import take_batches
from services.auction.deadlines import CLOSE, DeadlineIndex
from services.auction.streams import by_auction, consumer_span, now_ms, publish
from services.auction.table import AuctionTable

log = logging.getLogger(__name__)


class AuctionOpener:
    def __init__(self, table: AuctionTable, deadlines: DeadlineIndex, closer: AuctionCloser,
                 opened_topic: faust.TopicT, directory: BuyerDirectory, caps: CapsStore, offers: OfferWriter,
                 terms_of: Mapping[str, AuctionTerms], *, window_ms: int, closed_retention_ms: int,
                 batch_max: int, batch_wait_s: float) -> None:
        self.table, self.deadlines, self.closer = table, deadlines, closer
        self.opened_topic = opened_topic
        self.directory, self.caps, self.offers, self.terms_of = directory, caps, offers, terms_of
        self.window_ms, self.closed_retention_ms = window_ms, closed_retention_ms
        self.batch_max, self.batch_wait_s = batch_max, batch_wait_s

    async def open_batches(self, stream: faust.StreamT) -> None:
        """The lead.scored agent. An open waits on Redis and on the broker's acknowledgement of
        auction.opened; one lead at a time, the worker idled through those round trips while leads
        queued (bench/auction.py: for seconds at 200 leads/s). So leads are taken in batches and
        opened side by side."""
        async for events in take_batches(cast(faust.Stream, stream), self.batch_max, self.batch_wait_s):
            await by_auction(events, self.open)

    async def open(self, event: faust.EventT) -> None:
        with consumer_span(event, "lead.scored process"):
            scored = ev.LeadScored.FromString(event.value)
            lead = scored.verified.lead
            auction_id = lead.lead_id
            if self.table.get(auction_id) is not None:
                return  # redelivered: this auction is already open or closed
            excluded = frozenset(scored.verified.duplicate_buyer_ids)
            direct = lead.direct_buyer_id
            opened_at = now_ms()
            pinged: list[str] = []
            if direct:
                # A direct sale (a seller's contract with one buyer): no pings and no window; the contracted
                # buyer's "bid" is the contract price that intake put in min_price_cents.
                offered = [direct] if direct not in excluded else []
                auction = rules.new_auction(offered, lead.min_price_cents, opened_at, 0, scored=event.value)
                if offered:
                    auction = rules.with_bid(auction, direct, lead.min_price_cents)
            else:
                auction, pinged = await self._select(scored, event.value, excluded, opened_at)
            # Kept so that the close at the deadline, a timer's work, continues this lead's trace.
            auction = replace(auction, trace=current_trace_parent())
            self.table[auction_id] = auction
            self.deadlines.push(auction.closes_at_ms, auction_id, CLOSE)
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
            await publish(self.opened_topic, auction_id, opened, derived_event_id(auction_id, "opened"))
            metrics.AUCTIONS_OPENED.inc()
            log_event(log, "auction opened", auction_id=auction_id, offered=len(auction.offered),
                      direct=bool(direct))
            if auction.closes_at_ms <= opened_at:
                # A direct sale, or nobody to ping: nothing to wait for. The deadline above
                # closes it if this worker dies first.
                await self.closer.close(auction_id)

    async def _select(self, scored: ev.LeadScored, scored_record: bytes, excluded: frozenset[str],
                      opened_at: int) -> tuple[Auction, list[str]]:
        """Buyer Selection and AutoBid (leadx.auction.selection.market): the auction, with the bids
        placed for AutoBid buyers, and the wholesale buyers to ping."""
        lead = scored.verified.lead
        market = self.directory.market
        eligible = market.eligible(lead.seller_id)
        try:
            usage = await self.caps.usage(market.capped_owners(eligible), opened_at)
        except RedisError:
            # Caps are only a filter here (delivery counts every sale against them atomically):
            # without Redis the auction still opens, capped buyers included.
            log.warning("caps unreadable; the auction opens without the caps filter", exc_info=True)
            usage = {}
        view = LeadView(lead.fields, scored.probability, scored.cluster, scored.timing_factor)
        selection: Selection = select_buyers(market, lead.seller_id, view, opened_at, excluded, usage,
                                             reserve_cents=lead.min_price_cents)
        offered = selection.offered
        terms = self.terms_of.get(lead.vertical, AuctionTerms())
        window = terms.window_ms(self.window_ms)
        # With nobody to ping, nobody else can bid: the auction closes at once on the AutoBids.
        auction = rules.new_auction(offered, lead.min_price_cents, opened_at, window if selection.pinged else 0,
                                    {b: market.buyers[b].weight for b in offered}, terms.pricing, terms.shares,
                                    scored_record)
        for buyer_id, bid in sorted(selection.autobids.items()):
            auction = rules.with_bid(auction, buyer_id, bid.amount_cents, bid.profile_id)
        metrics.bids(metrics.AUTOBID, len(selection.autobids))
        if selection.pinged:
            await self._record_offer(lead.lead_id, auction, window + self.closed_retention_ms)
        if selection.passed:
            log_event(log, "buyers passed over", auction_id=lead.lead_id, passed=dict(selection.passed))
        return auction, list(selection.pinged)

    async def _record_offer(self, auction_id: str, auction: Auction, ttl_ms: int) -> None:
        """The offer record the bid API reads (leadx.auction.offers). Without Redis the bid API
        refuses this auction's bids as not found; bids in ping replies still count."""
        try:
            await self.offers.write(auction_id, auction.closes_at_ms, auction.min_price_cents, auction.offered,
                                    ttl_ms)
        except RedisError:
            log.warning("offer record not written; the bid API will not know auction %s", auction_id, exc_info=True)
