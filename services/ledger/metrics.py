"""The ledger's Prometheus metrics (docs/operations.md): sales, their prices and fees, and returns,
counted once per event the ledger records for the first time (a repeated event is not counted)."""

from __future__ import annotations

from collections.abc import Iterable

from prometheus_client import Counter, Histogram

from leadx.contracts import topics
from leadx.contracts.events.v1 import events_pb2 as ev
from leadx.platform.kafka.envelope import Envelope

SALES = Counter("leadx_sales", "Sales recorded.")
SALE_PRICE = Histogram("leadx_sale_price_dollars", "The price of each sale recorded.",
                       buckets=(1, 2.5, 5, 10, 15, 20, 25, 30, 40, 50, 75, 100, 150, 250, 500))
SELLER_FEES = Counter("leadx_seller_fees_dollars", "The exchange's fee on the sales recorded.")
UNSOLD = Counter("leadx_unsold_leads", "Leads recorded as not sold (no bid, or every buyer declined).")
RETURNS = Counter("leadx_returns", "Returns recorded.")
# A transaction's cost is mostly fixed (services/ledger/batching.py): its size says what a recorded
# event costs, and whether LEDGER_LINGER_MS gathers enough.
BATCH_EVENTS = Histogram("leadx_ledger_batch_events", "Events the ledger recorded in one SQL transaction.",
                         buckets=(1, 2, 5, 10, 20, 50, 100, 200, 300, 500, 1000))


def count_recorded(recorded: Iterable[Envelope]) -> None:
    for envelope in recorded:
        if envelope.topic == topics.SALE_CLOSED:
            sale: ev.SaleClosed = envelope.message
            if sale.outcome == ev.SALE_OUTCOME_SOLD:
                SALES.inc()
                SALE_PRICE.observe(sale.price_cents / 100)
                SELLER_FEES.inc(sale.seller_fee_cents / 100)
            else:
                UNSOLD.inc()
        elif envelope.topic == topics.LEAD_RETURNED:
            RETURNS.inc()
