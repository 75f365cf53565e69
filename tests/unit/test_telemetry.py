"""Spans are recorded only when something exports them; trace ids flow either way. OTEL_TRACES_EXPORTER
names the exporters, and a name it does not know stops the service. Each case that installs the
tracer provider runs in a fresh interpreter, because it is installed once per process."""

import json
import os
import subprocess
import sys

import pytest
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import ConsoleSpanExporter

from leadx.platform.config import ConfigError
from leadx.platform.telemetry import context_of, current_trace_parent, service_resource, span_exporters

PROBE = """
import json
from opentelemetry import trace
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from leadx.platform.telemetry import child_span, extract_context, inject_headers, links_to, setup_tracing, tracer
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
    "links_to_a_batch_of_two": len(links_to([headers, child_headers.items()])),
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
    # Nor are a batch's links read from its messages' headers: nobody would read them.
    assert probe(False) == {**CONTINUED, "recording": False, "exported": 0, "child_span_id": "parent's",
                            "links_to_a_batch_of_two": 0}


def test_with_a_span_processor_every_span_is_recorded_and_exported():
    assert probe(True) == {**CONTINUED, "recording": True, "exported": 4, "child_span_id": "own",
                           "links_to_a_batch_of_two": 2}


def test_an_explicit_sampler_setting_is_obeyed():
    assert probe(False, OTEL_TRACES_SAMPLER="always_on")["recording"] is True


# Which exporters OTEL_TRACES_EXPORTER names, as the OpenTelemetry SDK configuration spells them.

@pytest.fixture
def otel_env(monkeypatch):
    for name in [name for name in os.environ if name.startswith("OTEL_")]:
        monkeypatch.delenv(name)
    return monkeypatch


@pytest.mark.parametrize("value", [None, "", "none", " NONE "])
def test_by_default_or_with_none_nothing_exports(otel_env, value):
    if value is not None:
        otel_env.setenv("OTEL_TRACES_EXPORTER", value)
    assert span_exporters() == []


def test_otlp_sends_over_http_to_the_endpoint_of_the_standard_variables(otel_env):
    otel_env.setenv("OTEL_TRACES_EXPORTER", "otlp")
    otel_env.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "http://collector:4318")
    [exporter] = span_exporters()
    assert isinstance(exporter, OTLPSpanExporter)
    assert exporter._endpoint == "http://collector:4318/v1/traces"  # the exporter's own reading of the variable


def test_console_prints(otel_env):
    otel_env.setenv("OTEL_TRACES_EXPORTER", "console")
    assert [type(e) for e in span_exporters()] == [ConsoleSpanExporter]


@pytest.mark.parametrize("value", ["otlp,console", " otlp , Console ", "otlp,console,otlp,"])
def test_a_comma_list_names_several_each_once(otel_env, value):
    otel_env.setenv("OTEL_TRACES_EXPORTER", value)
    assert [type(e) for e in span_exporters()] == [OTLPSpanExporter, ConsoleSpanExporter]


@pytest.mark.parametrize("value, unknown", [("jaeger", "'jaeger'"), ("otlp,zipkin", "'zipkin'"),
                                            ("logging,prometheus", "'logging', 'prometheus'")])
def test_an_unknown_exporter_is_refused_with_the_variable_and_the_accepted_values(otel_env, value, unknown):
    otel_env.setenv("OTEL_TRACES_EXPORTER", value)
    with pytest.raises(ConfigError) as refused:
        span_exporters()
    assert str(refused.value) == (f"OTEL_TRACES_EXPORTER={value!r}: unknown exporter {unknown};"
                                  " expected one of otlp, console, none, or a comma list such as otlp,console")


def test_none_with_another_exporter_is_refused(otel_env):
    otel_env.setenv("OTEL_TRACES_EXPORTER", "none,otlp")
    with pytest.raises(ConfigError, match="none cannot be listed with other exporters"):
        span_exporters()


@pytest.mark.parametrize("variable", ["OTEL_EXPORTER_OTLP_PROTOCOL", "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL"])
def test_an_otlp_protocol_other_than_http_protobuf_is_refused(otel_env, variable):
    otel_env.setenv("OTEL_TRACES_EXPORTER", "otlp")
    otel_env.setenv(variable, "http/protobuf")
    assert [type(e) for e in span_exporters()] == [OTLPSpanExporter]
    otel_env.setenv(variable, "grpc")
    with pytest.raises(ConfigError, match=f"{variable}='grpc': leadx exports spans over OTLP as http/protobuf"):
        span_exporters()


def test_the_service_name_is_the_services_own_unless_the_environment_names_one(otel_env):
    otel_env.setenv("OTEL_RESOURCE_ATTRIBUTES", "deployment.environment=staging")
    assert service_resource("dedup").attributes["service.name"] == "dedup"
    assert service_resource("dedup").attributes["deployment.environment"] == "staging"
    otel_env.setenv("OTEL_RESOURCE_ATTRIBUTES", "service.name=leadx-dedup")
    assert service_resource("dedup").attributes["service.name"] == "leadx-dedup"
    otel_env.setenv("OTEL_SERVICE_NAME", "dedup-eu")  # the deployment's name wins, as the SDK documents
    assert service_resource("dedup").attributes["service.name"] == "dedup-eu"


def test_a_service_with_an_unknown_exporter_stops_at_start_and_says_why(env):
    service_env = {k: v for k, v in os.environ.items() if not k.startswith("OTEL_")}
    service_env |= {"OTEL_TRACES_EXPORTER": "jaeger", "KAFKA_BOOTSTRAP_SERVERS": "127.0.0.1:9",
                    "REDIS_URL": "redis://127.0.0.1:9", "HEALTH_PORT": "0"}
    done = subprocess.run([sys.executable, "-m", "services.dedup.main"], env=service_env, capture_output=True,
                          text=True, timeout=60)
    assert done.returncode == 1
    assert done.stderr.strip().splitlines()[-1] == (
        "leadx.platform.config.ConfigError: OTEL_TRACES_EXPORTER='jaeger': unknown exporter 'jaeger';"
        " expected one of otlp, console, none, or a comma list such as otlp,console")


EXIT_PROBE = """
from leadx.platform.telemetry import setup_tracing, tracer
setup_tracing("probe")
with tracer().start_as_current_span("last words"):
    pass
"""


def test_spans_still_waiting_in_the_batch_are_exported_when_the_process_exits():
    # A minute's schedule delay: only the provider's shutdown at exit can export the span in time.
    clean = {k: v for k, v in os.environ.items() if not k.startswith("OTEL_")}
    done = subprocess.run([sys.executable, "-c", EXIT_PROBE], capture_output=True, text=True, check=True,
                          env={**clean, "OTEL_TRACES_EXPORTER": "console", "OTEL_BSP_SCHEDULE_DELAY": "60000",
                               "OTEL_SERVICE_NAME": "exit-probe"}, timeout=60)
    printed = json.loads(done.stdout)
    assert printed["name"] == "last words"
    assert printed["resource"]["attributes"]["service.name"] == "exit-probe"


def test_a_trace_parent_kept_in_state_lets_later_work_continue_the_trace():
    local = TracerProvider().get_tracer("unit")  # this test process installs no global provider
    with local.start_as_current_span("auction opening") as opening:
        kept = current_trace_parent()
    assert kept.split("-")[1] == format(opening.get_span_context().trace_id, "032x")
    with local.start_as_current_span("auction close", context=context_of(kept)) as close:
        assert close.get_span_context().trace_id == opening.get_span_context().trace_id
    assert context_of("") is None
