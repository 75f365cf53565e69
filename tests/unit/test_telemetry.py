"""Spans are recorded only when something exports them; trace ids flow either way. Each case runs
in a fresh interpreter because the tracer provider is installed once per process."""

import json
import os
import subprocess
import sys

PROBE = """
import json
from opentelemetry import trace
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from leadx.platform.telemetry import child_span, extract_context, inject_headers, setup_tracing, tracer
exporter = InMemorySpanExporter()
setup_tracing("probe", SimpleSpanProcessor(exporter) if {with_processor} else None)
with tracer().start_as_current_span("outer") as outer:
    headers = inject_headers()
    recording = outer.is_recording()
with tracer().start_as_current_span("inner", context=extract_context(headers)) as inner:
    pass
with child_span("publish", trace.SpanKind.PRODUCER, extract_context(headers)) as child:
    child_headers = dict(inject_headers())
with child_span("timer", trace.SpanKind.INTERNAL) as orphan:
    orphan_valid = orphan.get_span_context().is_valid
print(json.dumps({{
    "recording": recording,
    "same_trace": inner.get_span_context().trace_id == outer.get_span_context().trace_id,
    "valid": outer.get_span_context().is_valid,
    "exported": len(exporter.get_finished_spans()),
    "child_same_trace": child.get_span_context().trace_id == outer.get_span_context().trace_id,
    "child_span_id": "own" if child.get_span_context().span_id != outer.get_span_context().span_id else "parent's",
    "child_headers_trace": child_headers["traceparent"].decode().split("-")[1]
                           == format(outer.get_span_context().trace_id, "032x"),
    "orphan_starts_a_trace": orphan_valid,
}}))
"""


def probe(with_processor: bool, **env: str) -> dict:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("OTEL_")}
    done = subprocess.run([sys.executable, "-c", PROBE.format(with_processor=with_processor)],
                          env={**clean, **env}, capture_output=True, text=True, check=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


CONTINUED = {"same_trace": True, "valid": True, "child_same_trace": True, "child_headers_trace": True,
             "orphan_starts_a_trace": True}


def test_without_an_exporter_spans_are_not_recorded_but_carry_the_trace_across_kafka_headers():
    # A child step makes no span of its own: it runs in its parent's context, whose trace id it passes on.
    assert probe(False) == {**CONTINUED, "recording": False, "exported": 0, "child_span_id": "parent's"}


def test_with_a_span_processor_every_span_is_recorded_and_exported():
    assert probe(True) == {**CONTINUED, "recording": True, "exported": 4, "child_span_id": "own"}


def test_an_explicit_sampler_setting_is_obeyed():
    assert probe(False, OTEL_TRACES_SAMPLER="always_on")["recording"] is True
