"""OpenTelemetry tracing, with the W3C trace context carried in Kafka headers so a lead's spans
link from the seller's HTTP request through every service to the buyer's POST."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterable, Iterator

from opentelemetry import context, propagate, trace
from opentelemetry.sdk.resources import SERVICE_NAME, OTELResourceDetector, Resource
from opentelemetry.sdk.trace import SpanProcessor, TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, ConsoleSpanExporter, SpanExporter
from opentelemetry.sdk.trace.sampling import ALWAYS_OFF

from leadx.platform.config import ConfigError

EXPORTERS_VARIABLE = "OTEL_TRACES_EXPORTER"
EXPORTERS = ("otlp", "console", "none")
OTLP_PROTOCOL = "http/protobuf"  # the only OTLP transport leadx ships (opentelemetry-exporter-otlp-proto-http)

_configured = False
_recording = True  # until setup_tracing decides: spans are recorded unless nothing exports them


def setup_tracing(service: str, extra_processor: SpanProcessor | None = None) -> None:
    """Install the SDK tracer provider once per process.

    `OTEL_TRACES_EXPORTER` names the exporters, as the OpenTelemetry SDK configuration does: `otlp`
    sends spans over OTLP/HTTP to a collector (set by the exporter's own OTEL_EXPORTER_OTLP_*
    variables), `console` prints them, a comma list does both; `none` or unset, nothing (unlike the
    SDK's default of `otlp`, see below). A name it does not know stops the service at start
    (ConfigError), never a silent lack of traces. `OTEL_SERVICE_NAME` (or `service.name` in
    `OTEL_RESOURCE_ATTRIBUTES`) renames the service, which is `service` otherwise.

    When nothing exports spans, they are not recorded either: each span still carries a trace id
    (continued from its parent), so trace ids reach logs and Kafka headers, but its attributes and
    timings, which nobody would read, are not kept. Recording spans for nothing cost ~100 µs of an
    intake POST and ~80 µs of a dedup check. `OTEL_TRACES_SAMPLER`, when set, decides as the
    OpenTelemetry SDK documents.

    Exported spans wait in a BatchSpanProcessor (`OTEL_BSP_*`); the provider is shut down at process
    exit (atexit: every service's main returns, or raises SystemExit, once it has drained), which
    exports what is left.
    """
    global _configured, _recording
    if _configured:
        return
    exporters = span_exporters()
    exporting = bool(exporters) or extra_processor is not None
    # sampler=None lets the SDK read OTEL_TRACES_SAMPLER (default: parent-based, always on).
    sampler = None if exporting or os.environ.get("OTEL_TRACES_SAMPLER") else ALWAYS_OFF
    provider = TracerProvider(resource=service_resource(service), sampler=sampler, shutdown_on_exit=True)
    _recording = sampler is not ALWAYS_OFF
    for exporter in exporters:
        provider.add_span_processor(BatchSpanProcessor(exporter))
    if extra_processor is not None:
        provider.add_span_processor(extra_processor)
    trace.set_tracer_provider(provider)
    _configured = True


def span_exporters() -> list[SpanExporter]:
    """The exporters `OTEL_TRACES_EXPORTER` names (a comma list; case and spaces do not matter)."""
    raw = os.environ.get(EXPORTERS_VARIABLE, "")
    names = list(dict.fromkeys(name.strip().lower() for name in raw.split(",") if name.strip()))
    accepted = f"one of {', '.join(EXPORTERS)}, or a comma list such as otlp,console"
    unknown = [name for name in names if name not in EXPORTERS]
    if unknown:
        raise ConfigError(f"{EXPORTERS_VARIABLE}={raw!r}: unknown exporter {', '.join(map(repr, unknown))};"
                          f" expected {accepted}")
    if "none" in names and len(names) > 1:
        raise ConfigError(f"{EXPORTERS_VARIABLE}={raw!r}: none cannot be listed with other exporters")
    exporters: list[SpanExporter] = []
    for name in names:
        if name == "otlp":
            exporters.append(_otlp_exporter())
        elif name == "console":
            exporters.append(ConsoleSpanExporter())
    return exporters


def _otlp_exporter() -> SpanExporter:
    for variable in ("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", "OTEL_EXPORTER_OTLP_PROTOCOL"):
        protocol = os.environ.get(variable, "").strip()
        if protocol:
            if protocol != OTLP_PROTOCOL:
                raise ConfigError(f"{variable}={protocol!r}: leadx exports spans over OTLP as {OTLP_PROTOCOL}"
                                  " only (a collector's port 4318)")
            break
    # Imported only when spans go out over OTLP: the exporter and the HTTP client under it add
    # ~75 ms to a service's start.
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

    # No arguments: the exporter reads its OTEL_EXPORTER_OTLP_* variables itself (endpoint,
    # headers, timeout, compression, certificates).
    return OTLPSpanExporter()


def service_resource(service: str) -> Resource:
    """The resource every span carries: `OTEL_RESOURCE_ATTRIBUTES`, with `service.name` from
    `OTEL_SERVICE_NAME` or those attributes, `service` when neither names one."""
    from_environment = OTELResourceDetector().detect().attributes.get(SERVICE_NAME)
    return Resource.create({SERVICE_NAME: from_environment or service})


_tracer: trace.Tracer | None = None


def tracer() -> trace.Tracer:
    # Looked up once: get_tracer costs ~6% of a PING. The proxy it returns before setup_tracing
    # follows the provider installed later, so caching early is safe.
    global _tracer
    if _tracer is None:
        _tracer = trace.get_tracer("leadx")
    return _tracer


@contextlib.contextmanager
def child_span(name: str, kind: trace.SpanKind, parent: context.Context | None = None) -> Iterator[trace.Span]:
    """A span under `parent` (default: the current context) for one step of a traced flow.

    When spans are not recorded and there is a trace to continue, no span is made: the parent's
    context is made current instead, so the trace id flows on into logs and Kafka headers and the
    step costs nothing (a span nobody records cost ~15 µs, two per Kafka record handled). With no
    trace to continue (a record from an untraced producer, a timer's publish), a span is made,
    recorded or not, because it is what starts a trace id."""
    if _recording:
        with tracer().start_as_current_span(name, context=parent, kind=kind) as span:
            yield span
        return
    token = context.attach(parent) if parent is not None else None
    try:
        current = trace.get_current_span()
        if current.get_span_context().is_valid:
            yield current
        else:
            with tracer().start_as_current_span(name, kind=kind) as span:
                yield span
    finally:
        if token is not None:
            context.detach(token)


def inject_headers() -> list[tuple[str, bytes]]:
    carrier: dict[str, str] = {}
    propagate.inject(carrier)
    return [(k, v.encode()) for k, v in carrier.items()]


def extract_context(headers: Iterable[tuple[str, bytes]]) -> context.Context:
    carrier = {k: v.decode(errors="replace") for k, v in headers if v is not None}
    return propagate.extract(carrier)


def current_trace_parent() -> str:
    """The W3C `traceparent` of the current span ("" without one), to keep in stored state whose
    later work (an auction's close at its deadline) continues this trace."""
    carrier: dict[str, str] = {}
    propagate.inject(carrier)
    return carrier.get("traceparent", "")


def context_of(trace_parent: str) -> context.Context | None:
    """The context a `current_trace_parent()` value names, to start a child span in (None: none)."""
    return propagate.extract({"traceparent": trace_parent}) if trace_parent else None


def links_to(headers_of_each: Iterable[Iterable[tuple[str, bytes]]]) -> list[trace.Link]:
    """Links to the traces of a batch's messages, for the one span that processes the batch (a
    span has one parent, and each message of the batch comes from a trace of its own). None when
    spans are not recorded: nobody would read them, and reading every message's headers for them
    cost the auction's bid feed about 3% of its CPU."""
    if not _recording:
        return []
    links = []
    for headers in headers_of_each:
        span_context = trace.get_current_span(extract_context(headers)).get_span_context()
        if span_context.is_valid:
            links.append(trace.Link(span_context))
    return links
