"""Events carry their event id and the W3C trace context, so one lead is one trace from the
seller's request through dedup, scoring and the auction."""

from __future__ import annotations

import pytest

from leadx.contracts import topics
from tests.conftest import poll_until
from tests.integration.harness import Exchange, read_records

pytestmark = pytest.mark.integration

CHAIN = [topics.LEAD_SUBMITTED, topics.LEAD_VERIFIED, topics.LEAD_SCORED, topics.AUCTION_OPENED]


def headers_for(market: Exchange, topic: str, lead_id: str) -> dict[str, bytes] | None:
    found = None
    for record in read_records(market.stack.kafka_bootstrap, topics.name(market.prefix, topic)):
        if record.key == lead_id.encode():
            found = dict(record.headers)
    return found


def test_one_lead_is_one_trace_across_services(market: Exchange):
    lead_id = market.post(market.new_consumer()).json()["lead_id"]
    poll_until(lambda: market.sale_for(lead_id), message="the sale")
    trace_ids = []
    for topic in CHAIN:
        headers = headers_for(market, topic, lead_id)
        assert headers is not None, f"no {topic} event for {lead_id}"
        assert len(headers["event-id"]) >= 16
        assert headers["event-type"].startswith(b"leadx.events.v1.")
        version, trace_id, span_id, flags = headers["traceparent"].decode().split("-")
        assert version == "00" and len(trace_id) == 32 and len(span_id) == 16
        trace_ids.append(trace_id)
    assert len(set(trace_ids)) == 1, dict(zip(CHAIN, trace_ids, strict=True))
