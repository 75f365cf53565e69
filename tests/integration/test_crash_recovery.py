"""Services killed with SIGKILL mid-stream and restarted lose no lead and sell none twice."""

from __future__ import annotations

import signal
import time
import uuid
from collections import defaultdict

import pytest

from leadx.contracts import topics
from leadx.contracts.events.v1 import events_pb2 as ev
from tests.conftest import poll_until
from tests.integration.harness import Exchange, read_records, read_topic, start_exchange

pytestmark = pytest.mark.integration

SERVICES = ["intake", "dedup", "scoring", "auction", "delivery", "ledger"]
KILLED = ["dedup", "auction", "delivery", "ledger"]
LEADS = 40
# Once every restarted service is ready, leads are posted one at a time, each once the last has
# closed unsold, until one sells: within this long the exchange must sell again.
RECOVERY_S = 240
# How long after a bid reaches the broker the auction worker may still not have read it (its
# batch wait and fetch wait, on a machine busy with every other test).
FEED_READ_MARGIN_MS = 1000


def fragile(tmp_path_factory, kafka_bootstrap, redis_url) -> Exchange:
    # A short stall threshold, so the ledger's safety net re-drives any lead a restarted
    # consumer lost within the test's patience (faust has been seen to drop events here). The
    # harness's window for the broker (1 s on tansu, 3 s on Apache Kafka, where a busy CI machine
    # left most bids of a 1 s window late even before the kill).
    return start_exchange(tmp_path_factory.mktemp("fragile"), kafka_bootstrap, redis_url, f"t{uuid.uuid4().hex[:8]}.",
                          ["alpha", "beta"], SERVICES, wait_ready=False, LEDGER_REDRIVE_AFTER_SECONDS="15")


def sigkill_mid_stream(fragile: Exchange) -> None:
    alpha, beta = fragile.buyers.buyers["alpha"], fragile.buyers.buyers["beta"]
    alpha.bid, beta.bid = 1500, 1000
    alpha.accept = lambda lead: int(lead["lead_id"], 36) % 3 != 0  # alpha turns down a third

    accepted: list[str] = []  # in the order they were posted

    def post_one() -> None:
        response = fragile.post(fragile.new_consumer())
        # Without dedup the verdict cannot come in time: 202 pending, but the lead is accepted.
        assert response.status_code in (200, 202), response.text
        accepted.append(response.json()["lead_id"])
        time.sleep(0.05)

    def one_sold() -> bool:
        posted = set(accepted)
        return any(sale.lead_id in posted and sale.outcome == ev.SALE_OUTCOME_SOLD
                   for _, sale in fragile.sales_events())

    for i in range(LEADS):
        if i == LEADS // 3:
            # Mid-stream is a stream that flows: the kill waits until one of the leads posted so far is
            # sold, usually long since. A CI run killed a new exchange whose first leads had not yet
            # reached their auctions on a loaded machine, and none posted before the kill was sold.
            poll_until(one_sold, timeout_s=120, interval_s=0.2, message="a lead sold before the kill")
            for name in KILLED:  # no warning, no drain: the worst case
                fragile.stack.services[name].signal(signal.SIGKILL)
        if i == 2 * LEADS // 3:
            for name in KILLED:
                fragile.stack.services[name].process.wait(10)
                fragile.stack.restart(name)
        post_one()

    fragile.stack.wait_ready(timeout_s=300)  # four restarts on a loaded machine
    # Ready is not yet caught up: the restarted services first work through what was published
    # while they were down (a CI run sold none of five leads posted at once after ready).
    after_recovery: list[str] = []
    deadline = time.monotonic() + RECOVERY_S
    while time.monotonic() < deadline:
        post_one()
        after_recovery.append(accepted[-1])
        sale = poll_until(lambda: fragile.sale_for(accepted[-1]), timeout_s=max(1.0, deadline - time.monotonic()),
                          interval_s=0.5, message="an outcome for a lead posted after the restart")
        if sale.outcome == ev.SALE_OUTCOME_SOLD:
            break

    def every_lead_closed():
        events = fragile.sales_events()
        closed = {sale.lead_id for _, sale in events}
        return events if set(accepted) <= closed else None

    events = poll_until(every_lead_closed, timeout_s=180, interval_s=1, message="a sale.closed for every lead")

    by_lead = defaultdict(set)
    for event_id, sale in events:
        by_lead[sale.lead_id].add((event_id, sale.outcome, sale.buyer_id, sale.price_cents))
    assert set(by_lead) == set(accepted)
    # At-least-once may repeat an event, but always the same event: one outcome per lead.
    assert all(len(outcomes) == 1 for outcomes in by_lead.values()), {
        lead: outcomes for lead, outcomes in by_lead.items() if len(outcomes) > 1}
    sold = {lead: next(iter(o))[2] for lead, o in by_lead.items() if next(iter(o))[1] == ev.SALE_OUTCOME_SOLD}
    # A bidder always accepts (alpha, or beta after alpha's refusal), so a lead may end unsold only
    # when no bid for it reached the auction worker before it closed. A bid placed just before the
    # close and still on its way is refused as late (docs/auction.md), and on a busy machine a
    # restarted delivery places many such bids. What must never happen: a bid that was on the
    # broker well before its auction closed, say one placed while the worker was dead, is lost to
    # the restart. The margin is the most the feed may take to read a bid the broker holds.
    closed_at: dict[str, int] = {}  # its first close, if it was closed again after a restart
    for _, closed in read_topic(fragile.stack.kafka_bootstrap, topics.name(fragile.prefix, topics.AUCTION_CLOSED),
                                ev.AuctionClosed):
        closed_at[closed.auction_id] = min(closed.closed_at_ms, closed_at.get(closed.auction_id, closed.closed_at_ms))
    closes_at = {opened.auction_id: opened.closes_at_ms for _, opened in
                 read_topic(fragile.stack.kafka_bootstrap, topics.name(fragile.prefix, topics.AUCTION_OPENED),
                            ev.AuctionOpened)}
    bids = [(record.timestamp, ev.BidPlaced.FromString(record.value)) for record in
            read_records(fragile.stack.kafka_bootstrap, topics.name(fragile.prefix, topics.BID_PLACED))]
    bids_in_time = {bid.auction_id for written_at, bid in bids
                    if bid.placed_at_ms <= closes_at[bid.auction_id]
                    and written_at <= closed_at.get(bid.auction_id, 1 << 62) - FEED_READ_MARGIN_MS}
    unsold = set(accepted) - set(sold)
    assert not unsold & bids_in_time, unsold & bids_in_time
    # The scenario really sold through the crash: leads posted before the kill were sold, and a lead
    # posted after the restart sold within RECOVERY_S. Leads posted while the services were dead or
    # rejoining their groups are held to the rules above only: whether their windows passed before a
    # restarted delivery pinged anyone depends on how busy the machine was, not on leadx (a CI run
    # with a 1 s window sold 5 of 40 leads in all).
    before_kill = accepted[:LEADS // 3]
    assert set(before_kill) & set(sold), (len(sold), sorted(bids_in_time))
    assert set(after_recovery) & set(sold), (len(after_recovery), len(sold), sorted(bids_in_time))

    # No lead was accepted by two buyers, and each sold lead was posted to its buyer.
    accepted_by = defaultdict(set)
    for name, behaviour in fragile.buyers.buyers.items():
        for post in behaviour.posts:
            if behaviour.accepts(post):
                accepted_by[post["lead_id"]].add(fragile.buyer_ids[name])
    assert all(len(buyers) == 1 for buyers in accepted_by.values())
    assert {lead: next(iter(b)) for lead, b in accepted_by.items()} == sold

    # The ledger, restarted too, recorded exactly one outcome per lead.
    rows = poll_until(lambda: (r := fragile.sale_rows()) and len(r) >= len(accepted) and r, timeout_s=60,
                      message="ledger rows for every lead")
    assert sorted(r.lead_id for r in rows) == sorted(accepted)


@pytest.mark.head_start(exchange=fragile, scenario=sigkill_mid_stream)
def test_sigkill_mid_stream_loses_no_lead_and_sells_none_twice(head_start):
    head_start.result()  # it ran beside the other tests (mostly waiting), from the first integration test on
