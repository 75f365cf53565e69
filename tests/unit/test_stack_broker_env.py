"""The settings the local stack gives its services for the broker it started: tansu holds every
group join for half the session timeout and an idle fetch for its whole wait, so the services get a
shorter session and no fetch minimum there; on Apache Kafka (or a broker given to the stack) the
product's defaults stand."""

from __future__ import annotations

from pathlib import Path

import pytest

from leadx.dev.stack import TANSU_FETCH_MIN_BYTES, TANSU_SESSION_TIMEOUT_MS, LocalStack, ManagedProcess


def stack_with(tmp_path: Path, broker: str, started_here: bool) -> LocalStack:
    stack = LocalStack(tmp_path, broker=broker, kafka_bootstrap="127.0.0.1:9092", redis_url="redis://unused")
    if started_here:  # as start_infra records the broker it started (nothing is run here)
        stack.infra.append(ManagedProcess("broker", ["true"], {}, tmp_path / "broker.log"))
    return stack


def test_services_on_a_tansu_the_stack_started_get_its_session_and_fetch_settings(tmp_path):
    env = stack_with(tmp_path, "tansu", started_here=True).base_env()
    assert env["KAFKA_SESSION_TIMEOUT_MS"] == str(TANSU_SESSION_TIMEOUT_MS)
    assert env["KAFKA_FETCH_MIN_BYTES"] == str(TANSU_FETCH_MIN_BYTES) == "1"


@pytest.mark.parametrize(("broker", "started_here"), [("kafka", True), ("tansu", False)])
def test_services_on_apache_kafka_or_a_given_broker_keep_the_defaults(tmp_path, broker, started_here):
    env = stack_with(tmp_path, broker, started_here).base_env()
    assert "KAFKA_SESSION_TIMEOUT_MS" not in env and "KAFKA_FETCH_MIN_BYTES" not in env


def test_a_setting_given_to_the_stack_wins_over_the_brokers(tmp_path):
    stack = stack_with(tmp_path, "tansu", started_here=True)
    stack.extra_env["KAFKA_FETCH_MIN_BYTES"] = "65536"
    assert stack.base_env()["KAFKA_FETCH_MIN_BYTES"] == "65536"


def test_broker_properties_given_to_the_stack_win_over_its_own(tmp_path):
    stack = LocalStack(tmp_path, broker="kafka", partitions=4, kafka_properties={"num.io.threads": "2",
                                                                                 "broker.session.timeout.ms": "6000"})
    properties = stack._broker_properties()
    assert properties["num.io.threads"] == "2" and properties["broker.session.timeout.ms"] == "6000"
    assert properties["offsets.topic.num.partitions"] == "4" and properties["broker.heartbeat.interval.ms"] == "1000"
    assert "num.io.threads" not in LocalStack(tmp_path, broker="kafka")._broker_properties()
