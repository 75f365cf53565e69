"""`leadx status`'s pure parts: the LEADX_HEALTH_URLS setting, the lag sums, the dead letters'
headers, the report as printed and as JSON, its exit code; and the activity query on SQL."""

from __future__ import annotations

import asyncio
import json

import pytest

from leadx.cli import main as cli
from leadx.cli.status import Report, format_report, gather_report, report_json
from leadx.ledger.activity import MINUTE_MS, Activity, recent_activity
from leadx.platform.config import ConfigError
from leadx.platform.exchange_health import DeadLetters, GroupLag, ServiceHealth, group_lags, parse_health_urls
from leadx.platform.kafka.dead_letters import DeadLetter, dead_letter_from, replay_headers
from leadx.platform.db.models import Lead, Sale

NOW_MS = 1_700_000_000_000


# --- LEADX_HEALTH_URLS -------------------------------------------------------------------------

def test_health_urls_are_names_and_base_urls_in_the_order_given():
    assert parse_health_urls(" intake=http://127.0.0.1:8081, dedup = http://dedup:8081/ ,"
                             "ledger=https://ops.example/leadx/ledger/readyz,") == {
        "intake": "http://127.0.0.1:8081",
        "dedup": "http://dedup:8081",
        "ledger": "https://ops.example/leadx/ledger",  # a path behind a proxy; /readyz is added when asked
    }
    assert list(parse_health_urls("b=http://b:1,a=http://a:1")) == ["b", "a"]


@pytest.mark.parametrize(("value", "message"), [
    ("http://127.0.0.1:8081", "'http://127.0.0.1:8081' is not name=http://host:port"),
    ("=http://x:1", "'=http://x:1' is not name=http://host:port"),
    ("dedup=", "'dedup=' is not name=http://host:port"),
    ("dedup=http://a:1,dedup=http://b:1", "dedup is given twice"),
    ("dedup=127.0.0.1:8081", "dedup's URL '127.0.0.1:8081' is not http://host:port"),
    ("dedup=ftp://x:21", "dedup's URL 'ftp://x:21' is not http://host:port"),
    ("dedup=http://:8081", "dedup's URL 'http://:8081' is not http://host:port"),
    ("dedup=http://x:port", "dedup's URL 'http://x:port' has a bad host or port"),
    ("dedup=http://x:99999", "dedup's URL 'http://x:99999' has a bad host or port"),
    ("dedup=http://[::1:8081", "dedup's URL 'http://[::1:8081' has a bad host or port"),
    ("dedup=http://x:1/?a=b", "dedup's URL 'http://x:1/?a=b' is a base URL: no ? or #"),
    (" , ,", "LEADX_HEALTH_URLS names no service"),
])
def test_a_bad_health_url_setting_is_refused_naming_the_entry(value, message):
    with pytest.raises(ConfigError) as refused:
        parse_health_urls(value)
    assert message in str(refused.value)
    assert str(refused.value).startswith("LEADX_HEALTH_URLS")


# --- lag and dead letters ----------------------------------------------------------------------

def test_lag_is_summed_per_group_and_topic_with_its_largest_partition():
    committed = {
        "x.leadx-dedup": {("x.lead.submitted", 0): 10, ("x.lead.submitted", 1): 4, ("x.lead.submitted", 2): -1,
                          ("x.sale.closed", 0): -1, ("x.sale.closed", 1): -1},  # sale.closed: not read by it
        "x.leadx-auction": {("x.lead.scored", 0): 7},
    }
    starts = {("x.lead.submitted", 2): 2}
    ends = {("x.lead.submitted", 0): 12, ("x.lead.submitted", 1): 4, ("x.lead.submitted", 2): 5,
            ("x.lead.scored", 0): 5, ("x.sale.closed", 0): 9}
    assert group_lags(committed, starts, ends) == [
        # committed past a short reported end: never a negative lag
        GroupLag("x.leadx-auction", "x.lead.scored", lag=0, max_partition_lag=0, partitions=1),
        # partition 2 has no commit: all it holds from its start is unread
        GroupLag("x.leadx-dedup", "x.lead.submitted", lag=2 + 0 + 3, max_partition_lag=3, partitions=3),
    ]
    assert group_lags({}, {}, {}) == []


def test_a_dead_letter_says_where_it_came_from_by_its_headers():
    headers = [("traceparent", b"00-abc"), ("leadx-dead-topic", b"x.lead.submitted"),
               ("leadx-dead-partition", b"2"), ("leadx-dead-offset", b"41"), ("leadx-dead-group", b"x.leadx-dedup"),
               ("leadx-dead-reason", b"undecodable")]
    assert dead_letter_from(headers, 5) == DeadLetter("x.lead.submitted", 2, 41, "x.leadx-dedup", "undecodable", 5)
    assert dead_letter_from(None, 6) == DeadLetter("", None, None, "", "", 6)  # raw bytes put there by hand


def test_a_replayed_record_keeps_its_own_headers_drops_the_dead_letter_ones_and_says_where_it_came_from():
    headers = [("event-id", b"e1"), ("leadx-dead-topic", b"x.lead.submitted"), ("leadx-dead-reason", b"undecodable"),
               ("traceparent", b"00-ab"), ("leadx-replayed-from", b"dead.letter 0:1")]
    assert replay_headers(headers, 3, 9) == [("event-id", b"e1"), ("traceparent", b"00-ab"),
                                             ("leadx-replayed-from", b"dead.letter 3:9")]


# --- the report --------------------------------------------------------------------------------

def full_report() -> Report:
    return Report(
        topic_prefix="x.",
        services=[ServiceHealth("intake", "http://127.0.0.1:8081", "ready"),
                  ServiceHealth("scoring", "http://127.0.0.1:8082", "not ready", failing=("kafka", "model")),
                  ServiceHealth("auction", "http://127.0.0.1:8083", "down", detail="connection refused")],
        lag=[GroupLag("x.leadx-auction", "x.lead.scored", 12, 9, 3),
             GroupLag("x.leadx-dedup", "x.lead.submitted", 0, 0, 3)],
        activity={"last_minute": Activity(leads=3, sales=2, sales_cents=2450, unsold=1),
                  "last_hour": Activity(leads=140, sales=101, sales_cents=123456, unsold=7)},
        dead_letters=DeadLetters(2, (
            DeadLetter("x.lead.submitted", 1, 17, "x.leadx-dedup", "undecodable", NOW_MS - 5000),
            DeadLetter("", None, None, "", "", NOW_MS - 600_000))),
    )


def test_the_report_reads_as_aligned_sections_with_the_prefix_taken_off():
    assert format_report(full_report(), now_ms=NOW_MS).splitlines() == [
        "services",
        "  intake   ready",
        "  scoring  not ready (failing: kafka, model)",
        "  auction  down (connection refused)",
        "consumer lag (groups and topics of prefix 'x.')",
        "  group          topic           lag  max/partition",
        "  leadx-auction  lead.scored      12              9",
        "  leadx-dedup    lead.submitted    0              0",
        "activity",
        "                  last minute  last hour",
        "  leads received            3        140",
        "  sales                     2        101",
        "  sales value          $24.50  $1,234.56",
        "  closed unsold             1          7",
        "dead letters: 2",
        "  from lead.submitted partition 1 offset 17, group leadx-dedup: undecodable, 5s ago",
        "  from an unknown topic (no leadx-dead-* headers), 10m ago",
        "status: NOT OK (scoring not ready; auction down; 2 dead-lettered)",
    ]


def test_all_well_is_exit_code_0_and_anything_else_1():
    good = Report(services=[ServiceHealth("dedup", "http://d:1", "ready")], lag=[], activity=None,
                  dead_letters=DeadLetters(0), errors={"activity": "SQL: OperationalError: no such table: leads"})
    assert good.exit_code() == 0 and good.problems() == []  # the activity does not decide it
    text = format_report(good)
    assert "consumer lag: no consumer group of this exchange has committed an offset yet" in text
    assert "activity: SQL: OperationalError: no such table: leads" in text
    assert text.endswith("dead letters: 0\nstatus: OK")
    assert full_report().exit_code() == 1
    unknown = Report(errors={"services": "LEADX_HEALTH_URLS is not set", "lag": "the broker at b:9: down",
                             "dead_letters": "the broker at b:9: down", "activity": "DATABASE_URL is not set"})
    assert unknown.exit_code() == 1 and unknown.problems() == ["services unknown", "dead letters unknown"]
    assert format_report(unknown).splitlines() == [
        "services: LEADX_HEALTH_URLS is not set",
        "consumer lag: the broker at b:9: down",
        "activity: DATABASE_URL is not set",
        "dead letters: the broker at b:9: down",
        "status: NOT OK (services unknown; dead letters unknown)",
    ]
    no_services = Report(services=[], dead_letters=DeadLetters(0))
    assert no_services.exit_code() == 0


def test_the_json_report_holds_every_part_or_null_with_its_reason():
    document = json.loads(json.dumps(report_json(full_report())))
    assert document["ok"] is False
    assert document["problems"] == ["scoring not ready", "auction down", "2 dead-lettered"]
    assert document["topic_prefix"] == "x."
    assert document["services"][1] == {"name": "scoring", "url": "http://127.0.0.1:8082", "ready": False,
                                       "state": "not ready", "failing": ["kafka", "model"], "detail": ""}
    assert document["lag"][0] == {"group": "x.leadx-auction", "topic": "x.lead.scored", "lag": 12,
                                  "max_partition_lag": 9, "partitions": 3}
    assert document["activity"]["last_hour"] == {"leads": 140, "sales": 101, "sales_cents": 123456, "unsold": 7}
    assert document["dead_letters"]["count"] == 2
    assert document["dead_letters"]["newest"][0]["topic"] == "x.lead.submitted"
    unread = report_json(Report(errors={"lag": "x"}))
    assert unread["services"] is None and unread["lag"] is None and unread["errors"] == {"lag": "x"}


def test_without_settings_each_part_says_what_is_missing_and_the_command_exits_1(monkeypatch, capsys):
    report = asyncio.run(gather_report({}))
    assert report.errors["services"].startswith("LEADX_HEALTH_URLS is not set")
    assert report.errors["lag"] == report.errors["dead_letters"] == "KAFKA_BOOTSTRAP_SERVERS is not set"
    assert report.errors["activity"] == "DATABASE_URL is not set"
    bad = asyncio.run(gather_report({"LEADX_HEALTH_URLS": "dedup"}))
    assert bad.errors["services"] == "LEADX_HEALTH_URLS: 'dedup' is not name=http://host:port"

    for name in ("LEADX_HEALTH_URLS", "KAFKA_BOOTSTRAP_SERVERS", "DATABASE_URL", "LEADX_TOPIC_PREFIX"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("LEADX_ENV", "off")
    assert cli.main(["status", "--json"]) == 1
    assert json.loads(capsys.readouterr().out)["problems"] == ["services unknown", "dead letters unknown"]


def test_a_missing_sqlite_file_is_said_and_not_created(tmp_path):
    missing = tmp_path / "none.db"
    report = asyncio.run(gather_report({"DATABASE_URL": f"sqlite:///{missing}"}))
    assert report.errors["activity"] == f"SQL: FileNotFoundError: no SQLite database at {missing}"
    assert not missing.exists()


# --- the activity query ------------------------------------------------------------------------

def test_recent_activity_counts_leads_and_sales_in_each_window(sessions):
    def lead(lead_id: str, age_ms: int) -> Lead:
        at = NOW_MS - age_ms
        return Lead(id=lead_id, seller_id="s_1", vertical="auto_loan", status="submitted", status_rank=0,
                    submitted_at_ms=at, updated_at_ms=at)

    def sale(lead_id: str, buyer: str, sold: bool, cents: int, age_ms: int) -> Sale:
        return Sale(lead_id=lead_id, buyer_id=buyer, auction_id=lead_id, sold=sold, seller_id="s_1",
                    price_cents=cents, seller_fee_cents=0, vertical="auto_loan", state="NY", attempts=1,
                    closed_at_ms=NOW_MS - age_ms)

    with sessions.begin() as session:
        session.add_all([lead("L1", 1_000), lead("L2", MINUTE_MS - 1), lead("L3", MINUTE_MS + 1),
                         lead("L4", 59 * MINUTE_MS), lead("L5", 61 * MINUTE_MS)])
        session.add_all([sale("L1", "b_1", True, 1500, 500), sale("L1", "b_2", True, 700, 500),  # a shared sale
                         sale("L2", "", False, 0, 2_000), sale("L3", "b_1", True, 1000, 30 * MINUTE_MS),
                         sale("L5", "b_1", True, 9999, 2 * 60 * MINUTE_MS)])
    with sessions() as session:
        assert recent_activity(session, NOW_MS) == {
            "last_minute": Activity(leads=2, sales=2, sales_cents=2200, unsold=1),
            "last_hour": Activity(leads=4, sales=3, sales_cents=3200, unsold=1),
        }
        assert recent_activity(session, NOW_MS + 10 * 60 * MINUTE_MS) == {
            "last_minute": Activity(0, 0, 0, 0), "last_hour": Activity(0, 0, 0, 0)}
