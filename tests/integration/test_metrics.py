"""What an operator watches, through the real services of the shared exchange: `leadx status` (every
service ready, each consumer group's lag, the sales, dead letters, a service that is down); every
service's /metrics on its health port, moved by a sale, a refusal and an undecodable event as
docs/operations.md says, with no lead id in any label; and a real Prometheus scraping them all.
`leadx status` runs first: the dead-letter test leaves records on dead.letter."""

from __future__ import annotations

import asyncio
import json
import shutil
import subprocess
from pathlib import Path

import httpx
import pytest
import yaml
from aiokafka import AIOKafkaProducer
from prometheus_client.parser import text_string_to_metric_families

from leadx.cli.main import main
from leadx.contracts import topics
from leadx.dev.stack import free_port
from tests import http_calls as http
from tests.conftest import poll_until
from tests.integration.conftest import ALL_SERVICES, GROUPS
from tests.integration.harness import Exchange, read_records

pytestmark = pytest.mark.integration

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def metrics_text(market: Exchange, service: str) -> str:
    port = market.stack.port_of(service, "HEALTH_PORT")
    response = http.get(f"http://127.0.0.1:{port}/metrics", timeout=10)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    return response.text


def scrape(market: Exchange, service: str) -> Samples:
    return {(sample.name, tuple(sorted(sample.labels.items()))): sample.value
            for family in text_string_to_metric_families(metrics_text(market, service))
            for sample in family.samples}


def value(samples: Samples, name: str, **labels: str) -> float:
    """The sum of the samples of `name` whose labels include `labels` (0 when there are none)."""
    wanted = set(labels.items())
    return sum(v for (n, sample_labels), v in samples.items() if n == name and wanted <= set(sample_labels))


def grew(before: Samples, after: Samples, name: str, **labels: str) -> float:
    return value(after, name, **labels) - value(before, name, **labels)


def scrape_all(market: Exchange) -> dict[str, Samples]:
    return {service: scrape(market, service) for service in ALL_SERVICES}


@pytest.fixture
def status(market: Exchange, monkeypatch, capsys):
    """Runs `leadx status [args]` in this process, with the exchange's settings as `leadx run` writes
    them: (exit code, what it printed). The portal the portal modules add to the shared stack is not
    among ALL_SERVICES: it is left out whichever modules ran first."""
    for name, setting in {"KAFKA_BOOTSTRAP_SERVERS": market.stack.kafka_bootstrap,
                          "DATABASE_URL": market.stack.database_url, "LEADX_TOPIC_PREFIX": market.prefix,
                          "LEADX_HEALTH_URLS": market.stack.health_urls(without="portal")}.items():
        monkeypatch.setenv(name, setting)

    def run(*args: str) -> tuple[int, str]:
        code = main(["status", *args])
        return code, capsys.readouterr().out

    return run


def json_status(status) -> tuple[int, dict]:
    code, out = status("--json")
    return code, json.loads(out)


def test_leadx_status_shows_every_service_ready_each_groups_lag_and_the_sales(market: Exchange, status):
    market.buyers.buyers["alpha"].bid = 1500
    response = market.post(market.new_consumer() | {"min_price": 1000})
    assert response.status_code == 200, response.text
    lead_id = response.json()["lead_id"]
    poll_until(lambda: any(r.lead_id == lead_id and r.sold for r in market.sale_rows()), message="the sale")

    def every_group_committed():
        code, report = json_status(status)
        return {g["group"].removeprefix(market.prefix) for g in report["lag"]} >= GROUPS and (code, report)

    code, report = poll_until(every_group_committed, message="a commit of every consumer group")
    assert code == 0 and report["ok"] and report["problems"] == [] and report["errors"] == {}
    assert [(s["name"], s["state"]) for s in report["services"]] == [(name, "ready") for name in ALL_SERVICES]
    assert report["topic_prefix"] == market.prefix
    for lag in report["lag"]:
        assert lag["group"].startswith(f"{market.prefix}leadx-") and lag["topic"].startswith(market.prefix)
        assert 0 <= lag["max_partition_lag"] <= lag["lag"] and lag["partitions"] >= 1
    by_group = {(g["group"], g["topic"]) for g in report["lag"]}
    assert (f"{market.prefix}leadx-auction", f"{market.prefix}{topics.LEAD_SCORED}") in by_group  # faust's
    assert report["activity"]["last_minute"]["leads"] >= 1 and report["activity"]["last_minute"]["sales"] >= 1
    assert report["activity"]["last_hour"]["sales_cents"] >= 1500
    assert report["dead_letters"] == {"count": 0, "newest": []}

    code, text = status()
    assert code == 0 and text.endswith("status: OK\n")
    assert "  dedup     ready\n" in text and "dead letters: 0\n" in text
    assert f"consumer lag (groups and topics of prefix '{market.prefix}')" in text


def test_a_sale_a_refusal_and_a_bad_event_show_in_every_services_metrics(market: Exchange):
    before = scrape_all(market)
    alpha = market.buyer_ids["alpha"]
    market.buyers.buyers["alpha"].bid = 2500
    sold = market.post(market.new_consumer())
    assert sold.status_code == 200, sold.text
    lead_id = sold.json()["lead_id"]
    refused = market.post({**market.new_consumer(), "zip": "00000"})
    assert refused.status_code == 422, refused.text
    code = refused.json()["errors"][0]["code"]
    poll_until(lambda: grew(before["ledger"], scrape(market, "ledger"), "leadx_sales_total") >= 1,
               message="the ledger counting the sale")
    after = scrape_all(market)

    intake = before["intake"], after["intake"]
    assert grew(*intake, "leadx_leads_received_total", kind="post") == 2
    assert grew(*intake, "leadx_leads_accepted_total", kind="post") == 1
    assert grew(*intake, "leadx_leads_rejected_total", kind="post", code=code) == 1
    assert grew(*intake, "leadx_http_requests_total", route="/v1/post", method="POST", status="200") == 1
    assert grew(*intake, "leadx_http_requests_total", route="/v1/post", method="POST", status="422") == 1
    assert grew(*intake, "leadx_http_request_duration_seconds_count", route="/v1/post") == 2
    assert grew(*intake, "leadx_redis_command_duration_seconds_count") > 0
    assert grew(*intake, "leadx_sql_query_duration_seconds_count", operation="select") > 0

    assert grew(before["dedup"], after["dedup"], "leadx_dedup_checks_total") >= 1
    assert grew(before["scoring"], after["scoring"], "leadx_leads_scored_total") >= 1
    auction = before["auction"], after["auction"]
    assert grew(*auction, "leadx_auctions_opened_total") >= 1
    assert grew(*auction, "leadx_auctions_closed_total", outcome="winner") >= 1
    assert grew(*auction, "leadx_auction_close_lateness_seconds_count") >= 1
    assert grew(*auction, "leadx_bids_total", source="ping_reply", outcome="accepted") >= 1
    delivery = before["delivery"], after["delivery"]
    assert grew(*delivery, "leadx_buyer_pings_total", buyer=alpha, outcome="bid") >= 1
    assert grew(*delivery, "leadx_buyer_ping_duration_seconds_count", buyer=alpha) >= 1
    assert grew(*delivery, "leadx_buyer_posts_total", buyer=alpha, outcome="accepted") >= 1
    assert value(after["delivery"], "leadx_buyer_breaker_open", buyer=alpha, call="post") == 0
    ledger = before["ledger"], after["ledger"]
    assert grew(*ledger, "leadx_sale_price_dollars_sum") >= 25
    assert grew(*ledger, "leadx_sale_price_dollars_count") >= 1

    # Every consumer reports its lag, per group, topic and partition, and has caught up.
    for service in ("dedup", "scoring", "auction", "delivery", "ledger"):
        lags = [(dict(labels), v) for (name, labels), v in after[service].items()
                if name == "leadx_consumer_lag_records"]
        assert lags, f"{service} reports no consumer lag"
        assert all(labels["topic"].startswith(market.prefix) for labels, _ in lags)
    # No label anywhere holds the lead's id.
    for service in ALL_SERVICES:
        assert lead_id not in metrics_text(market, service)


def test_an_event_no_retry_can_handle_is_set_aside_on_dead_letter_counted_and_shown(market: Exchange, status,
                                                                                    monkeypatch):
    submitted = topics.name(market.prefix, topics.LEAD_SUBMITTED)
    before = {service: scrape(market, service) for service in ("dedup", "ledger")}

    async def produce_garbage() -> None:
        producer = AIOKafkaProducer(bootstrap_servers=market.stack.kafka_bootstrap)
        await producer.start()
        try:
            await producer.send_and_wait(submitted, value=b"\xff\xfe not a protobuf", key=b"garbage")
        finally:
            await producer.stop()
    asyncio.run(produce_garbage())

    # Both groups that read lead.submitted give up on it, each once.
    def set_aside_by(service: str) -> bool:
        return grew(before[service], scrape(market, service), "leadx_events_dead_lettered_total",
                    topic=submitted, reason="undecodable") == 1
    for service in ("dedup", "ledger"):
        poll_until(lambda: set_aside_by(service), message=f"{service} setting the event aside")  # noqa: B023
    dead = [{name: value.decode() for name, value in r.headers}
            for r in read_records(market.stack.kafka_bootstrap, topics.name(market.prefix, topics.DEAD_LETTER))
            if r.value == b"\xff\xfe not a protobuf" and r.key == b"garbage"]
    assert sorted(headers["leadx-dead-group"] for headers in dead) == [
        topics.group(market.prefix, "dedup"), topics.group(market.prefix, "ledger")]
    for headers in dead:
        assert headers["leadx-dead-topic"] == submitted and headers["leadx-dead-reason"] == "undecodable"
        assert int(headers["leadx-dead-offset"]) >= 0
    # The partition moved on: the next lead is handled.
    market.buyers.buyers["beta"].bid = 1800
    assert market.post(market.new_consumer()).status_code == 200

    # `leadx status` says so, and exits 1; and a service that does not answer is down.
    code, report = json_status(status)
    assert code == 1 and report["problems"] == ["2 dead-lettered"] and report["dead_letters"]["count"] == 2
    assert {(d["topic"], d["group"], d["reason"]) for d in report["dead_letters"]["newest"]} == {
        (submitted, topics.group(market.prefix, "dedup"), "undecodable"),
        (submitted, topics.group(market.prefix, "ledger"), "undecodable")}
    code, text = status()
    assert code == 1 and "dead letters: 2\n  from lead.submitted partition" in text
    gone = f"gone=http://127.0.0.1:{free_port()}"  # nothing listens there: a stopped service
    monkeypatch.setenv("LEADX_HEALTH_URLS", f"{market.stack.health_urls()},{gone}")
    code, report = json_status(status)
    assert code == 1 and report["problems"] == ["gone down", "2 dead-lettered"]
    assert next(s for s in report["services"] if s["name"] == "gone")["detail"] == "connection refused"
    code, text = status()
    assert "  gone      down (connection refused)\n" in text
    assert text.endswith("status: NOT OK (gone down; 2 dead-lettered)\n")


def test_a_real_prometheus_scrapes_every_service_and_sees_sales(market: Exchange, tmp_path: Path):
    prometheus = shutil.which("prometheus")
    assert prometheus, "the Prometheus server is missing: apt-get install prometheus (.ci/run installs it)"
    market.buyers.buyers["gamma"].bid = 2200
    assert market.post(market.new_consumer()).status_code == 200
    targets = [{"targets": [f"127.0.0.1:{market.stack.port_of(name, 'HEALTH_PORT')}"], "labels": {"service": name}}
               for name in ALL_SERVICES]
    config = tmp_path / "prometheus.yml"
    config.write_text(yaml.safe_dump({
        "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
        "scrape_configs": [{"job_name": "leadx", "metrics_path": "/metrics", "static_configs": targets}],
    }))
    port = free_port()
    server = subprocess.Popen([prometheus, f"--config.file={config}", f"--storage.tsdb.path={tmp_path / 'data'}",
                               f"--web.listen-address=127.0.0.1:{port}"],
                              stdout=subprocess.DEVNULL, stderr=(tmp_path / "prometheus.log").open("w"))
    try:
        def query(expression: str) -> list[dict]:
            try:
                answer = http.get(f"http://127.0.0.1:{port}/api/v1/query", params={"query": expression}, timeout=5)
            except httpx.TransportError:
                return []
            return answer.json()["data"]["result"] if answer.status_code == 200 else []

        up = poll_until(lambda: (lambda r: r if len(r) == len(ALL_SERVICES) else None)(query("up == 1")),
                        timeout_s=60, message="Prometheus scraping every service")
        assert {r["metric"]["service"] for r in up} == set(ALL_SERVICES)
        sales = poll_until(lambda: query("sum(leadx_sales_total) > 0"), timeout_s=60,
                           message="leadx_sales_total in Prometheus")
        assert float(sales[0]["value"][1]) >= 1
        assert query('count(leadx_consumer_lag_records{service="delivery"})')
    finally:
        server.terminate()
        try:
            server.wait(timeout=10)
        except subprocess.TimeoutExpired:
            server.kill()
