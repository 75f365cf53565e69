"""When the pipeline is slow the seller gets 202 and a status URL, and nothing is lost; services
stop cleanly on SIGTERM."""

from __future__ import annotations

import signal

import httpx
import pytest

from tests.conftest import poll_until
from tests.integration.harness import start_exchange

pytestmark = pytest.mark.integration


@pytest.fixture
def without_dedup(tmp_path, kafka_bootstrap, redis_url, unique_prefix):
    exchange = start_exchange(tmp_path, kafka_bootstrap, redis_url, unique_prefix, [], ["intake", "ledger"],
                              INTAKE_VERDICT_TIMEOUT_SECONDS="0.5")
    yield exchange
    exchange.stack.stop()
    exchange.buyers.stop()


def test_a_slow_verdict_answers_202_and_the_lead_is_verified_later(without_dedup):
    exchange = without_dedup
    response = exchange.post(exchange.new_consumer())

    assert response.status_code == 202, response.text
    body = response.json()
    assert body["status"] == "pending" and len(body["lead_id"]) == 10
    assert body["status_url"].endswith(f"/v1/leads/{body['lead_id']}")
    assert response.headers["location"] == body["status_url"]
    seller = {"Authorization": f"Bearer {exchange.seller_key}"}
    assert httpx.get(body["status_url"], headers=seller).json()["status"] == "pending"

    dedup = exchange.stack.add_service("dedup")
    dedup.start()
    exchange.stack.wait_ready(["dedup"])
    poll_until(lambda: httpx.get(body["status_url"], headers=seller).json()["status"] == "accepted",
               message="the queued lead verified once dedup runs")

    dedup.signal(signal.SIGTERM)
    assert dedup.process.wait(20) == 0  # drained, committed and left the group


def test_intake_stops_cleanly_on_sigterm(without_dedup):
    intake = without_dedup.stack.services["intake"]
    intake.signal(signal.SIGTERM)
    assert intake.process.wait(20) == 0
