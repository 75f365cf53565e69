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
from leadx.telemetry import extract_context, inject_headers, setup_tracing, tracer
exporter = InMemorySpanExporter()
setup_tracing("probe", SimpleSpanProcessor(exporter) if {with_processor} else None)
with tracer().start_as_current_span("outer") as outer:
    headers = inject_headers()
    recording = outer.is_recording()
with tracer().start_as_current_span("inner", context=extract_context(headers)) as inner:
    pass
print(json.dumps({{
    "recording": recording,
    "same_trace": inner.get_span_context().trace_id == outer.get_span_context().trace_id,
    "valid": outer.get_span_context().is_valid,
    "exported": len(exporter.get_finished_spans()),
}}))
"""


def probe(with_processor: bool, **env: str) -> dict:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("OTEL_")}
    done = subprocess.run([sys.executable, "-c", PROBE.format(with_processor=with_processor)],
                          env={**clean, **env}, capture_output=True, text=True, check=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_without_an_exporter_spans_are_not_recorded_but_carry_the_trace_across_kafka_headers():
    assert probe(False) == {"recording": False, "same_trace": True, "valid": True, "exported": 0}


def test_with_a_span_processor_every_span_is_recorded_and_exported():
    assert probe(True) == {"recording": True, "same_trace": True, "valid": True, "exported": 2}


def test_an_explicit_sampler_setting_is_obeyed():
    assert probe(False, OTEL_TRACES_SAMPLER="always_on")["recording"] is True
