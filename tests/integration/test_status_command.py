"""`leadx status` on a running exchange of its own: every service ready, the lag of each consumer
group, the sale just made, nothing dead-lettered and exit code 0; then a record on dead.letter and a
stopped service, each said, with exit code 1."""

from __future__ import annotations

import asyncio
import json

import pytest
from aiokafka import AIOKafkaProducer

from leadx.cli.main import main
from leadx.contracts import topics
from leadx.dev.demo.exchange import health_urls
from leadx.dev.stack import SERVICES
from tests.conftest import poll_until
from tests.integration.harness import Exchange, start_exchange

pytestmark = pytest.mark.integration

# Every consumer group of the exchange that has committed once a lead was sold through an auction
# with a bid (`bid.placed`); the auction's faust app's group among them.
GROUPS = {"leadx-dedup", "leadx-scoring", "leadx-auction", "leadx-auction-bids", "leadx-delivery-pings",
          "leadx-delivery-sales", "leadx-ledger"}


@pytest.fixture(scope="module")
def exchange(tmp_path_factory, kafka_bootstrap, redis_url) -> Exchange:
    exchange = start_exchange(tmp_path_factory.mktemp("status"), kafka_bootstrap, redis_url, "status.",
                              ["alpha"], list(SERVICES))
    yield exchange
    exchange.stop()


@pytest.fixture
def status(exchange: Exchange, monkeypatch, capsys):
    """Runs `leadx status [args]` in this process, with the exchange's settings as `leadx run` writes
    them: (exit code, what it printed)."""
    for name, value in {"KAFKA_BOOTSTRAP_SERVERS": exchange.stack.kafka_bootstrap,
                        "DATABASE_URL": exchange.stack.database_url, "LEADX_TOPIC_PREFIX": exchange.prefix,
                        "LEADX_HEALTH_URLS": health_urls(exchange.stack)}.items():
        monkeypatch.setenv(name, value)

    def run(*args: str) -> tuple[int, str]:
        code = main(["status", *args])
        return code, capsys.readouterr().out

    return run


def json_status(status) -> tuple[int, dict]:
    code, out = status("--json")
    return code, json.loads(out)


def test_status_shows_a_working_exchange_then_a_dead_letter_and_a_stopped_service(exchange: Exchange, status):
    exchange.buyers.buyers["alpha"].bid = 1500
    response = exchange.post(exchange.new_consumer() | {"min_price": 1000})
    assert response.status_code == 200, response.text
    lead_id = response.json()["lead_id"]
    poll_until(lambda: any(r.lead_id == lead_id and r.sold for r in exchange.sale_rows()), message="the sale")

    def every_group_committed():
        code, report = json_status(status)
        return {g["group"].removeprefix(exchange.prefix) for g in report["lag"]} >= GROUPS and (code, report)

    code, report = poll_until(every_group_committed, message="a commit of every consumer group")
    assert code == 0 and report["ok"] and report["problems"] == [] and report["errors"] == {}
    assert [(s["name"], s["state"]) for s in report["services"]] == [(name, "ready") for name in SERVICES]
    assert report["topic_prefix"] == exchange.prefix
    for lag in report["lag"]:
        assert lag["group"].startswith(f"{exchange.prefix}leadx-") and lag["topic"].startswith(exchange.prefix)
        assert 0 <= lag["max_partition_lag"] <= lag["lag"] and lag["partitions"] >= 1
    by_group = {(g["group"], g["topic"]) for g in report["lag"]}
    assert (f"{exchange.prefix}leadx-auction", f"{exchange.prefix}{topics.LEAD_SCORED}") in by_group  # faust's
    assert report["activity"]["last_minute"]["leads"] >= 1 and report["activity"]["last_minute"]["sales"] >= 1
    assert report["activity"]["last_hour"]["sales_cents"] >= 1500
    assert report["dead_letters"] == {"count": 0, "newest": []}

    code, text = status()
    assert code == 0 and text.endswith("status: OK\n")
    assert "  dedup     ready\n" in text and "dead letters: 0\n" in text
    assert f"consumer lag (groups and topics of prefix '{exchange.prefix}')" in text

    # An undecodable record set aside as the consumers do it: its bytes, and headers saying whence.
    asyncio.run(produce_dead_letter(exchange))
    code, report = json_status(status)
    assert code == 1 and report["problems"] == ["1 dead-lettered"]
    assert report["dead_letters"]["count"] == 1
    assert report["dead_letters"]["newest"][0] | {"at_ms": 0} == {
        "topic": f"{exchange.prefix}{topics.LEAD_SUBMITTED}", "partition": 2, "offset": 7,
        "group": f"{exchange.prefix}leadx-dedup", "reason": "undecodable", "at_ms": 0}
    code, text = status()
    assert code == 1
    assert "dead letters: 1\n  from lead.submitted partition 2 offset 7, group leadx-dedup: undecodable" in text

    exchange.stack.services["scoring"].stop()
    code, report = json_status(status)
    assert code == 1 and report["problems"] == ["scoring down", "1 dead-lettered"]
    scoring = next(s for s in report["services"] if s["name"] == "scoring")
    assert not scoring["ready"] and scoring["detail"] == "connection refused"
    code, text = status()
    assert code == 1 and "  scoring   down (connection refused)\n" in text
    assert text.endswith("status: NOT OK (scoring down; 1 dead-lettered)\n")


async def produce_dead_letter(exchange: Exchange) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=exchange.stack.kafka_bootstrap)
    await producer.start()
    try:
        where = {"topic": f"{exchange.prefix}{topics.LEAD_SUBMITTED}", "partition": "2", "offset": "7",
                 "group": f"{exchange.prefix}leadx-dedup", "reason": "undecodable"}
        headers = [(f"leadx-dead-{name}", value.encode()) for name, value in where.items()]
        await producer.send_and_wait(topics.name(exchange.prefix, topics.DEAD_LETTER), b"\xff\x00 not protobuf",
                                     key=b"L1", headers=headers)
    finally:
        await producer.stop()
