"""Prints what happens in the exchange, one line per event, for `leadx run`."""

from __future__ import annotations

from collections import Counter

from leadx.contracts import topics
from leadx.contracts.events.v1 import events_pb2 as ev


def dollars(cents: int) -> str:
    return f"${cents / 100:,.2f}"


class EventPrinter:
    TOPICS = {t: topics.MESSAGE_TYPES[t] for t in (topics.LEAD_SUBMITTED, topics.LEAD_REJECTED,
                                                   topics.AUCTION_OPENED, topics.AUCTION_CLOSED, topics.SALE_CLOSED)}

    def __init__(self, buyer_names: dict[str, str], out=print) -> None:
        self.buyer_names = buyer_names
        self.out = out
        self.counts: Counter[str] = Counter()
        self.revenue_cents = 0
        self.fees_cents = 0

    def name(self, buyer_id: str) -> str:
        return self.buyer_names.get(buyer_id, buyer_id)

    def line(self, topic: str, message) -> str | None:
        if topic == topics.LEAD_SUBMITTED:
            lead = message.lead
            self.counts["submitted"] += 1
            return (f"lead    {lead.lead_id}  in        {lead.fields.get('state', '')} {lead.fields.get('zip', '')}"
                    f"  income {dollars(int(lead.fields.get('gross_monthly_income', '0')))}/mo"
                    f"  min {dollars(lead.min_price_cents)}")
        if topic == topics.LEAD_REJECTED:
            if message.reason == ev.REJECTION_REASON_DUPLICATE:
                self.counts["duplicates"] += 1
                return f"lead    {message.lead_id}  DUPLICATE ({message.internal_detail}; seller told only DUPLICATE)"
            self.counts["rejected"] += 1
            return f"lead    {message.lead_id}  REJECTED ({message.internal_detail})"
        if topic == topics.AUCTION_OPENED:
            self.counts["auctions"] += 1
            window = (message.closes_at_ms - message.opened_at_ms) / 1000
            return (f"auction {message.auction_id}  opened    {len(message.offered_buyer_ids)} buyers offered,"
                    f" p={message.ping.probability:.2f} {message.ping.cluster}, closes in {window:.1f}s")
        if topic == topics.AUCTION_CLOSED:
            best = message.ranked_bids[0] if message.ranked_bids else None
            top = "no bid over the minimum"
            if best:
                top = f"best {dollars(best.amount_cents)} from {self.name(best.buyer_id)}"
            return f"auction {message.auction_id}  closed    {message.bids_received} bids, {top}"
        if topic == topics.SALE_CLOSED:
            if message.outcome == ev.SALE_OUTCOME_SOLD:
                self.counts["sold"] += 1
                self.revenue_cents += message.price_cents
                self.fees_cents += message.seller_fee_cents
                return (f"SOLD    {message.lead_id}  to {self.name(message.buyer_id)} for "
                        f"{dollars(message.price_cents)} (seller fee {dollars(message.seller_fee_cents)},"
                        f" {message.attempts} post{'s' if message.attempts != 1 else ''})")
            self.counts["unsold"] += 1
            return f"UNSOLD  {message.lead_id}  ({message.attempts} buyers posted, none accepted)"
        return None

    def summary(self) -> str:
        c = self.counts
        return (f"leads in {c['submitted']}, duplicates caught {c['duplicates']}, auctions {c['auctions']}, "
                f"sold {c['sold']}, unsold {c['unsold']}, sales {dollars(self.revenue_cents)}, "
                f"seller fees {dollars(self.fees_cents)}")
