"""Traces out: every service exports its spans over OTLP/HTTP to a collector (here a receiver in
the test process), configured by the standard OTEL_* variables alone, and one lead's spans make one
trace from the seller's POST on. tests/integration/test_tracing.py checks the trace context in the
Kafka headers of the shared exchange's events; this module runs an exchange of its own that exports."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from opentelemetry.proto.trace.v1.trace_pb2 import Span

from tests.conftest import poll_until
from tests.integration.harness import Exchange, start_exchange

pytestmark = pytest.mark.integration

SERVICES = ["intake", "dedup", "scoring", "auction", "delivery", "ledger"]


@dataclass(frozen=True)
class Received:
    service: str  # the service.name resource attribute of the export that carried it
    span: Span

    @property
    def trace_id(self) -> str:
        return self.span.trace_id.hex()


class OtlpReceiver:
    """A collector's OTLP/HTTP traces endpoint: POST /v1/traces, protobuf in, 200 and an empty
    ExportTraceServiceResponse out. Keeps every span it is sent."""

    def __init__(self) -> None:
        self.spans: list[Received] = []
        self.content_types: set[str] = set()
        self._lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - the name http.server dispatches to
                body = self.rfile.read(int(self.headers["Content-Length"]))
                if self.path != "/v1/traces":
                    self.send_error(404)
                    return
                receiver.take(self.headers.get("Content-Type", ""), ExportTraceServiceRequest.FromString(body))
                answer = ExportTraceServiceResponse().SerializeToString()
                self.send_response(200)
                self.send_header("Content-Type", "application/x-protobuf")
                self.send_header("Content-Length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)

            def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - http.server's name
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, name="otlp-receiver", daemon=True)

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def take(self, content_type: str, request: ExportTraceServiceRequest) -> None:
        received = []
        for resource_spans in request.resource_spans:
            attributes = {a.key: a.value.string_value for a in resource_spans.resource.attributes}
            for scope_spans in resource_spans.scope_spans:
                received += [Received(attributes.get("service.name", ""), span) for span in scope_spans.spans]
        with self._lock:
            self.content_types.add(content_type)
            self.spans += received

    def received(self) -> list[Received]:
        with self._lock:
            return list(self.spans)

    def __enter__(self) -> OtlpReceiver:
        self.thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture(scope="module")
def collector() -> Iterator[OtlpReceiver]:
    with OtlpReceiver() as receiver:
        yield receiver


@pytest.fixture(scope="module")
def traced(tmp_path_factory, kafka_bootstrap, redis_url, collector: OtlpReceiver) -> Iterator[Exchange]:
    prefix = f"{tmp_path_factory.mktemp('otlp').name[-6:]}."
    exchange = start_exchange(tmp_path_factory.mktemp("traced"), kafka_bootstrap, redis_url, prefix, ["alpha"],
                              SERVICES, window_s=1.0, OTEL_TRACES_EXPORTER="otlp",
                              OTEL_EXPORTER_OTLP_ENDPOINT=collector.endpoint, OTEL_BSP_SCHEDULE_DELAY="200")
    yield exchange
    exchange.stop()


# (service, span name) of a span and of its parent: the lead's trace from the seller's POST to the
# auction's opening and the bid it drew. Kafka spans are named "<topic> publish" and "<topic> process".
OPENING = {
    ("intake", "lead.submitted publish"): ("intake", "POST /v1/post"),
    ("dedup", "lead.submitted process"): ("intake", "lead.submitted publish"),
    ("ledger", "lead.submitted process"): ("intake", "lead.submitted publish"),
    ("dedup", "lead.verified publish"): ("dedup", "lead.submitted process"),
    ("scoring", "lead.verified process"): ("dedup", "lead.verified publish"),
    ("ledger", "lead.verified process"): ("dedup", "lead.verified publish"),
    ("scoring", "lead.scored publish"): ("scoring", "lead.verified process"),
    ("auction", "lead.scored process"): ("scoring", "lead.scored publish"),
    ("ledger", "lead.scored process"): ("scoring", "lead.scored publish"),
    ("auction", "auction.opened publish"): ("auction", "lead.scored process"),
    ("delivery", "auction.opened process"): ("auction", "auction.opened publish"),
    ("ledger", "auction.opened process"): ("auction", "auction.opened publish"),
    ("delivery", "bid.placed publish"): ("delivery", "auction.opened process"),
}
ROOT = ("intake", "POST /v1/post")
# The auction reads bids in batches: one span per batch, in a trace of its own, linked to each bid's.
BIDS_READ = ("auction", "bid.placed process")
# The sale: the auction closes at its deadline, delivery posts the lead to the winner and publishes
# the sale, the ledger books it (and keeps the auction's ranked bids).
CLOSING = {
    ("auction", "auction.closed publish"): ("auction", "auction close"),
    ("delivery", "auction.closed process"): ("auction", "auction.closed publish"),
    ("ledger", "auction.closed process"): ("auction", "auction.closed publish"),  # the ranked bids kept
    ("delivery", "sale.closed publish"): ("delivery", "auction.closed process"),
    ("ledger", "sale.closed process"): ("delivery", "sale.closed publish"),
}
EVERY_SPAN = {ROOT, BIDS_READ, *OPENING, *CLOSING, *CLOSING.values()}
Key = tuple[str, str]


@dataclass
class Lead:
    """What the collector received for the one lead sold on the exchange."""
    lead_id: str
    spans: dict[Key, Received]  # each span of EVERY_SPAN, by (service, name)
    content_types: set[str]

    def __getitem__(self, key: Key) -> Received:
        return self.spans[key]

    @property
    def trace_id(self) -> str:
        return self.spans[ROOT].trace_id


def keyed(received: list[Received], prefix: str) -> dict[Key, Received]:
    # The auction names its publish spans by the full topic name ("<prefix>auction.opened publish"),
    # the other services by the topic alone.
    return {(r.service, r.span.name.removeprefix(prefix)): r for r in received}


@pytest.fixture(scope="module")
def sold(traced: Exchange, collector: OtlpReceiver) -> Lead:
    traced.buyers.buyers["alpha"].bid = 1500
    response = traced.post(traced.new_consumer() | {"min_price": 1000})
    assert response.status_code == 200, response.text
    lead_id = response.json()["lead_id"]
    poll_until(lambda: traced.sale_for(lead_id), message=f"the sale of {lead_id}")

    def every_span() -> dict[Key, Received] | None:
        spans = keyed(collector.received(), traced.prefix)
        return spans if spans.keys() >= EVERY_SPAN else None

    spans = poll_until(every_span, message=f"every service's spans of the lead at the collector: {sorted(EVERY_SPAN)}")
    return Lead(lead_id, spans, set(collector.content_types))


def describe(spans: dict[Key, Received]) -> str:
    return "\n".join(f"{r.trace_id} {r.span.span_id.hex()} <- {r.span.parent_span_id.hex() or '(root)':16}"
                      f" {service}: {name}" for (service, name), r in sorted(spans.items(), key=lambda kv:
                                                                            kv[1].span.start_time_unix_nano))


def test_spans_go_out_over_otlp_http_as_protobuf_each_with_its_services_name(sold: Lead):
    assert sold.content_types == {"application/x-protobuf"}
    # service.name comes from each export's resource: the key's service is what the service said.
    assert {service for service, _ in sold.spans} == set(SERVICES)


def test_one_lead_is_one_trace_from_the_sellers_post_through_every_service_to_its_auctions_bid(sold: Lead):
    root = sold[ROOT].span
    assert root.kind == Span.SPAN_KIND_SERVER and root.parent_span_id == b""
    for child, parent in OPENING.items():
        assert sold[child].trace_id == sold.trace_id, f"{child} left the lead's trace:\n{describe(sold.spans)}"
        assert sold[child].span.parent_span_id == sold[parent].span.span_id, (
            f"{child}'s parent is not {parent}:\n{describe(sold.spans)}")
    for service, name in OPENING:
        kind = Span.SPAN_KIND_PRODUCER if name.endswith(" publish") else Span.SPAN_KIND_CONSUMER
        assert sold[(service, name)].span.kind == kind, (service, name)


def test_the_auctions_batch_of_bids_links_to_the_trace_of_the_bid(sold: Lead):
    batch = sold[BIDS_READ].span
    bid = sold[("delivery", "bid.placed publish")].span
    assert batch.kind == Span.SPAN_KIND_CONSUMER and batch.parent_span_id == b""
    assert [(link.trace_id, link.span_id) for link in batch.links] == [(bid.trace_id, bid.span_id)]


def test_the_sale_closes_in_the_lead_s_trace(sold: Lead):
    for child, parent in CLOSING.items():
        assert sold[child].span.parent_span_id == sold[parent].span.span_id, (
            f"{child}'s parent is not {parent}:\n{describe(sold.spans)}")
    # The close at the deadline, a timer's work, continues the trace the auction's opening kept.
    close = sold[("auction", "auction close")]
    assert close.trace_id == sold.trace_id, (
        f"the sale is not in the lead's trace {sold.trace_id}:\n{describe(sold.spans)}")
    assert close.span.parent_span_id == sold[("auction", "lead.scored process")].span.span_id
