"""Apache Kafka's request log read into counts by kind and client (leadx.dev.broker_requests): the
lines are the broker's own format (its request logger at DEBUG, one JSON document a request)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from leadx.dev.broker_requests import RequestLog, count
from leadx.dev.stack import LocalStack


def line(api: str, client_id: str, local_ms: float = 0.1, request: dict | None = None,
         response: dict | None = None) -> str:
    entry = {"isForwarded": False,
             "requestHeader": {"requestApiKey": 0, "requestApiVersion": 7, "correlationId": 1,
                               "clientId": client_id, "requestApiKeyName": api},
             "request": request or {}, "response": response or {}, "totalTimeMs": local_ms + 0.1,
             "localTimeMs": local_ms, "securityProtocol": "PLAINTEXT"}
    return f"44303 [data-plane-kafka-network-thread-1-CLIENT-PLAINTEXT-0] DEBUG kafka.request.logger - " \
           f"Completed request:{json.dumps(entry)}"


def produce(client_id: str, partitions_by_topic: dict[str, int]) -> str:
    return line("PRODUCE", client_id, request={"acks": -1, "topicData": [
        {"name": name, "partitionData": [{"index": i, "recordsSizeInBytes": 100} for i in range(partitions)]}
        for name, partitions in partitions_by_topic.items()]})


def fetch(client_id: str, sizes: list[int]) -> str:
    partitions = [{"partitionIndex": i, "recordsSizeInBytes": size} for i, size in enumerate(sizes)]
    return line("FETCH", client_id, response={"responses": [{"topic": "t", "partitions": partitions}]})


def test_requests_are_counted_by_kind_and_client_with_what_they_carried():
    counts = count([
        "12 [main] INFO kafka.server.KafkaRaftServer - Kafka Server started",  # not a request
        produce("leadx-intake", {"bench.lead.submitted": 1}),
        produce("leadx-intake", {"bench.lead.submitted": 2}),
        produce("leadx-delivery", {"bench.bid.placed": 1, "bench.sale.closed": 1}),
        fetch("bench.leadx-dedup", [0, 0]),
        fetch("bench.leadx-dedup", [350, 0]),
        fetch("bench.leadx-dedup", [350, 120]),
        line("OFFSET_COMMIT", "bench.leadx-dedup", local_ms=0.3),
    ])
    summary = counts.summary(seconds=2.0, sold_leads=4, topic_prefix="bench.")

    assert counts.total == 7 and counts.unreadable == 0
    assert summary["requests"] == 7 and summary["per_s"] == 3.5 and summary["a_sold_lead"] == 1.75
    assert summary["a_sold_lead_by_api"] == {"FETCH": 0.75, "PRODUCE": 0.75, "OFFSET_COMMIT": 0.25}
    assert summary["per_s_by_api"] == {"FETCH": 1.5, "PRODUCE": 1.5, "OFFSET_COMMIT": 0.5}
    at_rest = counts.summary(seconds=2.0, sold_leads=0)  # counted while no lead was offered
    assert at_rest["a_sold_lead"] is None and at_rest["per_s"] == 3.5
    assert all(row["a_sold_lead"] is None for row in at_rest["by_api_and_client"])
    rows = {(row["api"], row["client_id"]): row for row in summary["by_api_and_client"]}
    assert summary["by_api_and_client"][0]["client_id"] == "bench.leadx-dedup"  # the most requests first
    fetches = rows[("FETCH", "bench.leadx-dedup")]
    assert fetches["requests"] == 3 and fetches["partitions_with_records_a_fetch"] == 1.0
    assert fetches["empty_share"] == pytest.approx(0.333)
    assert rows[("PRODUCE", "leadx-intake")]["partition_batches_by_topic"] == {"lead.submitted": 3}
    assert rows[("PRODUCE", "leadx-delivery")]["partition_batches_by_topic"] == {"bid.placed": 1, "sale.closed": 1}
    assert rows[("OFFSET_COMMIT", "bench.leadx-dedup")]["local_ms_mean"] == 0.3


def test_a_request_line_that_cannot_be_read_is_counted_as_such_not_as_a_request():
    cut = produce("leadx-intake", {"bench.lead.submitted": 1})[:-20]
    odd_fetch = line("FETCH", "leadx-dedup", response={"responses": ["not a topic"]})
    counts = count([cut, "x Completed request:{\"requestHeader\": {}}", odd_fetch,
                    produce("leadx-intake", {"t": 1})])
    assert counts.total == 1 and counts.unreadable == 3
    assert list(counts.by_kind) == [("PRODUCE", "leadx-intake")]  # nothing of the odd fetch was counted


def test_the_log_is_read_from_its_mark_to_its_last_whole_line(tmp_path: Path):
    path = tmp_path / "broker.log"
    path.write_text(produce("before-the-mark", {"t": 1}) + "\n")
    log = RequestLog(path)
    log.mark()
    with path.open("a") as output:
        output.write(produce("after-the-mark", {"t": 1}) + "\n" + fetch("after-the-mark", [10]) + "\n")
        output.write(produce("still-being-written", {"t": 1})[:40])  # no newline yet
    counts = log.read()
    assert {client for _, client in counts.by_kind} == {"after-the-mark"} and counts.total == 2
    assert counts.unreadable == 0


def test_only_a_stack_that_starts_its_own_apache_kafka_can_log_its_requests(tmp_path: Path):
    with pytest.raises(ValueError, match="kafka_request_log"):
        LocalStack(tmp_path, broker="tansu", kafka_request_log=True)
    with pytest.raises(ValueError, match="kafka_request_log"):
        LocalStack(tmp_path, broker="kafka", kafka_bootstrap="127.0.0.1:9092", kafka_request_log=True)
    assert LocalStack(tmp_path, broker="kafka", kafka_request_log=True).kafka_request_log
