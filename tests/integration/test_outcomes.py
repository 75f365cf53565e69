"""Outcome feedback through the real services: a buyer reports what became of a lead it bought;
the report is stored, published as lead.outcome with no PII, answered the same when repeated, and
read back as a training row. Bad reports get specific 4xx answers and store nothing."""

from __future__ import annotations

import httpx
import pytest
from sqlalchemy import func, select

from leadx.contracts import topics
from leadx.contracts.events.v1 import events_pb2 as ev
from leadx.ledger.outcomes import FUTURE_SLACK_MS, iso, training_rows
from leadx.platform.db.models import LeadOutcome, LeadReturn, Sale
from leadx.platform.ids import derived_event_id
from tests import http_calls as http
from tests.conftest import poll_until
from tests.integration.harness import Exchange, read_topic

pytestmark = pytest.mark.integration
PII_VALUES_OF = ("email", "home_phone", "ssn", "first_name", "last_name", "address", "date_of_birth")


def bought_by_alpha(market: Exchange) -> tuple[str, dict, int]:
    """A lead sold to alpha, its consumer, and its sale time as the ledger recorded it (a report is
    checked against the ledger)."""
    consumer = market.new_consumer()
    market.buyers.buyers["alpha"].bid = 2500
    response = market.post(consumer)
    assert response.status_code == 200, response.text
    lead_id = response.json()["lead_id"]

    def recorded() -> int | None:
        with market.sql() as session:
            return session.scalar(select(Sale.closed_at_ms).where(
                Sale.lead_id == lead_id, Sale.buyer_id == market.buyer_ids["alpha"], Sale.sold.is_(True)))
    return lead_id, consumer, poll_until(recorded, message=f"the ledger's sale of {lead_id}")


def report(market: Exchange, lead_id: str, buyer: str = "alpha", body: object = None, api_key: str | None = None,
           content: bytes | None = None, content_type: str = "application/json") -> httpx.Response:
    headers = {"Authorization": f"Bearer {api_key or market.buyer_keys[buyer]}", "Content-Type": content_type,
               "Accept": "application/json"}
    url = f"{market.intake_url()}/v1/leads/{lead_id}/outcome"
    if content is None:
        return http.post(url, json=body, headers=headers, timeout=10)
    return http.post(url, content=content, headers=headers, timeout=10)


def outcome_events(market: Exchange, lead_id: str) -> list[tuple[str, ev.LeadOutcome]]:
    return [(event_id, m) for event_id, m in read_topic(
        market.stack.kafka_bootstrap, topics.name(market.prefix, topics.LEAD_OUTCOME), ev.LeadOutcome)
        if m.lead_id == lead_id]


def refusal(response: httpx.Response, status: int, code: str, field: str | None) -> str:
    assert response.status_code == status, response.text
    error = response.json()["errors"][0]
    assert (error["code"], error["field"]) == (code, field), response.text
    return error["message"]


def test_a_buyer_reports_each_outcome_of_a_lead_it_bought(market: Exchange):
    lead_id, consumer, sale = bought_by_alpha(market)
    alpha = market.buyer_ids["alpha"]
    contacted_at = sale + 1  # before the conversion below, reported without a time (now)

    # JSON with a time, XML with a note, a form, and JSON with neither (now).
    contacted = report(market, lead_id, body={"outcome": "contacted", "at": iso(contacted_at)})
    assert contacted.status_code == 201, contacted.text
    assert contacted.json() | {"reported_at_ms": 0} == {
        "status": "reported", "lead_id": lead_id, "errors": [], "outcome": "contacted", "at_ms": contacted_at,
        "reported_at_ms": 0, "note": ""}
    converted = report(market, lead_id, content=b"<outcome><outcome>converted</outcome>"
                       b"<note>financed a 2021 sedan for Ann</note></outcome>", content_type="application/xml")
    assert converted.status_code == 201, converted.text
    assert converted.json()["note"] == "financed a 2021 sedan for Ann"
    returned = report(market, lead_id, content=b"outcome=returned", content_type="application/x-www-form-urlencoded")
    assert returned.status_code == 201 and returned.json()["outcome"] == "returned", returned.text
    not_contacted = report(market, lead_id, body={"outcome": "not_contacted"})
    assert not_contacted.status_code == 201 and not_contacted.json()["at_ms"] >= sale

    # A repeat, even with another time, answers with the report as first stored and stores nothing more.
    again = report(market, lead_id, body={"outcome": "contacted", "at": iso(contacted_at + 1_000)})
    assert again.status_code == 200 and again.json() == contacted.json()
    with market.sql() as session:
        assert session.scalar(select(func.count()).select_from(LeadOutcome)
                              .where(LeadOutcome.lead_id == lead_id)) == 4
        # A "returned" report moves no money: it is no return.
        assert session.get(LeadReturn, (lead_id, alpha)) is None

    # Published once per report (the repeat under the same event id), with no PII and no note.
    events = outcome_events(market, lead_id)
    assert [m.outcome for _, m in events] == ["contacted", "converted", "returned", "not_contacted", "contacted"]
    ids = {m.outcome: event_id for event_id, m in events}
    assert ids["contacted"] == events[0][0] == events[-1][0] == derived_event_id(lead_id, "outcome", alpha, "contacted")
    assert len(set(ids.values())) == 4
    first = events[0][1]
    assert (first.buyer_id, first.seller_id, first.at_ms, first.sold_at_ms, first.vertical, first.state) == (
        alpha, market.seller_id, contacted_at, sale, "auto_loan", consumer["state"])
    assert first.zip3 == str(consumer["zip"])[:3]
    published = b"".join(m.SerializeToString() for _, m in events)
    assert b"Ann" not in published
    assert not any(str(consumer[name]).encode() in published for name in PII_VALUES_OF)

    # The trainer's row: converted implies contacted; the returned report counts as returned.
    with market.sql() as session:
        rows = [r for r in training_rows(session) if r.lead_id == lead_id]
    assert len(rows) == 1
    row = rows[0]
    assert (row.buyer_id, row.sold_at_ms, row.contacted, row.contacted_at_ms, row.converted, row.returned) == (
        alpha, sale, True, contacted_at, True, True)
    assert row.converted_at_ms == converted.json()["at_ms"] and row.fields["email"] == consumer["email"]


def test_bad_reports_get_specific_answers_and_store_nothing(market: Exchange):
    lead_id, _, sale = bought_by_alpha(market)

    assert refusal(report(market, lead_id, "beta", {"outcome": "contacted"}), 404, "LEAD_NOT_FOUND", "lead_id")
    refusal(report(market, "NOTALEAD!!", body={"outcome": "contacted"}), 404, "LEAD_NOT_FOUND", "lead_id")
    refusal(report(market, lead_id, body={"outcome": "contacted"}, api_key=market.seller_key), 401,
            "AUTH_INVALID", None)
    refusal(report(market, lead_id, body={}), 422, "FIELD_MISSING", "outcome")
    assert "contacted, converted, returned, not_contacted" in refusal(
        report(market, lead_id, body={"outcome": "sold_a_car"}), 422, "FIELD_INVALID", "outcome")
    assert "2024-05-01T14:30:00Z" in refusal(report(market, lead_id, body={"outcome": "contacted", "at": "monday"}),
                                             422, "FIELD_INVALID", "at")
    refusal(report(market, lead_id, body={"outcome": "contacted", "at": "2030-01-01T00:00:00"}), 422,
            "FIELD_INVALID", "at")  # no zone
    before = refusal(report(market, lead_id, body={"outcome": "contacted", "at": iso(sale - 1)}), 422,
                     "FIELD_INVALID", "at")
    assert before == f"at must not be before the lead was sold ({iso(sale)})"
    future = iso(sale + 24 * 3_600_000 + FUTURE_SLACK_MS)
    assert "future" in refusal(report(market, lead_id, body={"outcome": "converted", "at": future}), 422,
                               "FIELD_INVALID", "at")
    refusal(report(market, lead_id, body={"outcome": "contacted", "note": "x" * 501}), 422, "FIELD_INVALID", "note")
    refusal(report(market, lead_id, content=b"{not json"), 400, "PAYLOAD_MALFORMED", None)
    refusal(report(market, lead_id, content=b"<return><outcome>contacted</outcome></return>",
                   content_type="application/xml"), 400, "PAYLOAD_MALFORMED", None)
    refusal(report(market, lead_id, content=b"outcome,contacted", content_type="text/csv"), 415,
            "UNSUPPORTED_MEDIA_TYPE", None)
    with market.sql() as session:
        assert session.scalar(select(func.count()).select_from(LeadOutcome)
                              .where(LeadOutcome.lead_id == lead_id)) == 0
    assert outcome_events(market, lead_id) == []

