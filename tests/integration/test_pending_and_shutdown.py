"""When the pipeline is slow the seller gets 202 and a status URL, and nothing is lost; services
stop cleanly on SIGTERM."""

from __future__ import annotations

import signal

import pytest

from leadx.contracts import topics
from leadx.contracts.events.v1 import events_pb2 as ev
from tests import http_calls as http
from tests.conftest import poll_until
from tests.integration.harness import read_topic, start_exchange

pytestmark = pytest.mark.integration


@pytest.fixture
def without_dedup(tmp_path, kafka_bootstrap, redis_url, unique_prefix):
    exchange = start_exchange(tmp_path, kafka_bootstrap, redis_url, unique_prefix, [], ["intake", "ledger"],
                              INTAKE_VERDICT_TIMEOUT_SECONDS="0.5", LEDGER_REDRIVE_AFTER_SECONDS="2")
    yield exchange
    exchange.stop()


def test_a_slow_verdict_answers_202_and_the_lead_is_verified_later(without_dedup):
    exchange = without_dedup
    response = exchange.post(exchange.new_consumer())

    assert response.status_code == 202, response.text
    body = response.json()
    assert body["status"] == "pending" and len(body["lead_id"]) == 10
    assert body["status_url"].endswith(f"/v1/leads/{body['lead_id']}")
    assert response.headers["location"] == body["status_url"]
    seller = {"Authorization": f"Bearer {exchange.seller_key}"}
    assert http.get(body["status_url"], headers=seller).json()["status"] == "pending"

    dedup = exchange.stack.add_service("dedup")
    dedup.start()
    exchange.stack.wait_ready(["dedup"])
    poll_until(lambda: http.get(body["status_url"], headers=seller).json()["status"] == "accepted",
               message="the queued lead verified once dedup runs")

    dedup.signal(signal.SIGTERM)
    assert dedup.process.wait(20) == 0  # drained, committed and left the group


def test_the_ledger_re_drives_a_lead_that_stalls(without_dedup):
    """With no dedup running the lead cannot move; the ledger publishes it again after the stall
    threshold, and once dedup runs the lead is verified exactly once."""
    exchange = without_dedup
    lead_id = exchange.post(exchange.new_consumer()).json()["lead_id"]
    submitted = topics.name(exchange.prefix, topics.LEAD_SUBMITTED)

    def copies() -> list:
        return [m for _, m in read_topic(exchange.stack.kafka_bootstrap, submitted, ev.LeadSubmitted)
                if m.lead.lead_id == lead_id]

    resent = poll_until(lambda: len(c := copies()) >= 2 and c, timeout_s=30, message="a re-driven lead.submitted")
    assert resent[1].lead.fields == resent[0].lead.fields and resent[1].lead.seller_id == resent[0].lead.seller_id

    dedup = exchange.stack.add_service("dedup")
    dedup.start()
    exchange.stack.wait_ready(["dedup"])
    seller = {"Authorization": f"Bearer {exchange.seller_key}"}
    poll_until(lambda: http.get(f"{exchange.intake_url()}/v1/leads/{lead_id}", headers=seller).json()["status"]
               == "accepted", message="the lead verified")
    verified = topics.name(exchange.prefix, topics.LEAD_VERIFIED)
    events = [(i, m) for i, m in read_topic(exchange.stack.kafka_bootstrap, verified, ev.LeadVerified)
              if m.lead.lead_id == lead_id]
    assert len({event_id for event_id, _ in events}) == 1  # however many copies, one verification


def test_intake_stops_cleanly_on_sigterm(without_dedup):
    intake = without_dedup.stack.services["intake"]
    intake.signal(signal.SIGTERM)
    assert intake.process.wait(20) == 0
