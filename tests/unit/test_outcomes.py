"""Outcome feedback: the pure rules of a report, its claim in SQL (SQLite and PostgreSQL), and the
rows a response model trains on."""

from __future__ import annotations

import pytest

from leadx.ledger.outcomes import (
    FUTURE_SLACK_MS,
    FieldProblem,
    OutcomeRow,
    Report,
    at_problem,
    iso,
    parse_at,
    read_report,
    training_rows,
)
from leadx.platform.db.models import Lead, LeadOutcome, Sale
from services.intake.outcomes import claim_outcome, unclaim
from services.intake.requests import ApiError

MAY_1 = 1_714_521_600_000  # 2024-05-01T00:00:00Z


@pytest.mark.parametrize("text, ms", [
    ("2024-05-01T00:00:00Z", MAY_1),
    ("2024-05-01T00:00:00.250+00:00", MAY_1 + 250),
    ("2024-05-01T02:00:00+02:00", MAY_1),  # another zone, converted
    (" 2024-05-01T00:00Z ", MAY_1),
])
def test_times_with_a_zone_are_read_as_unix_ms(text, ms):
    assert parse_at(text) == ms


@pytest.mark.parametrize("value", ["2024-05-01T00:00:00", "2024-05-01", "yesterday", "", 1714521600000, None,
                                   "2024-13-01T00:00:00Z", "2024-05-01T00:00:00+25:00"])
def test_times_without_a_zone_or_not_times_are_refused(value):
    assert parse_at(value) is None


def test_a_report_is_read_from_json_xml_or_form_fields():
    assert read_report({"outcome": "converted", "at": "2024-05-01T00:00:00Z", "note": " sold a car "}) == Report(
        "converted", MAY_1, "sold a car")
    assert read_report({"outcome": " Contacted ", "at": "", "note": ""}) == Report("contacted", None, "")
    assert read_report({"outcome": "not_contacted", "extra": 1}) == Report("not_contacted", None, "")


@pytest.mark.parametrize("payload, code, field", [
    ({}, "FIELD_MISSING", "outcome"),
    ({"outcome": ""}, "FIELD_MISSING", "outcome"),
    ({"outcome": "bought"}, "FIELD_INVALID", "outcome"),
    ({"outcome": 3}, "FIELD_INVALID", "outcome"),
    ({"outcome": "contacted", "at": "2024-05-01 noon"}, "FIELD_INVALID", "at"),
    ({"outcome": "contacted", "at": "2024-05-01T00:00:00"}, "FIELD_INVALID", "at"),
    ({"outcome": "contacted", "note": 5}, "FIELD_INVALID", "note"),
    ({"outcome": "contacted", "note": "x" * 501}, "FIELD_INVALID", "note"),
])
def test_a_bad_report_names_its_field(payload, code, field):
    problem = read_report(payload)
    assert isinstance(problem, FieldProblem) and (problem.code, problem.field) == (code, field)
    assert problem.message.startswith(field)


def test_a_time_may_not_precede_the_sale_nor_run_ahead_of_now_beyond_the_slack():
    now = MAY_1 + 3_600_000
    assert at_problem(MAY_1, MAY_1, now) is None
    assert at_problem(now + FUTURE_SLACK_MS, MAY_1, now) is None
    assert at_problem(MAY_1 - 1, MAY_1, now) == "at must not be before the lead was sold (2024-05-01T00:00:00.000Z)"
    assert at_problem(now + FUTURE_SLACK_MS + 1, MAY_1, now).startswith("at must not be in the future")
    assert iso(MAY_1 + 5) == "2024-05-01T00:00:00.005Z"


# ---------------------------------------------------------------------- SQL

def sell(session, lead_id: str, buyer_id: str, sold_at_ms: int, sold: bool = True, returned: bool = False) -> None:
    if session.get(Lead, lead_id) is None:
        session.add(Lead(id=lead_id, seller_id="s_1", vertical="auto_loan", state="NY", status="sold", status_rank=5,
                         fields={"zip": "10001", "email": "ann@example.com", "gross_monthly_income": 4000},
                         submitted_at_ms=sold_at_ms - 1000, updated_at_ms=sold_at_ms, probability=0.42,
                         cluster="c3"))
    session.add(Sale(lead_id=lead_id, buyer_id=buyer_id, auction_id=lead_id, sold=sold, seller_id="s_1",
                     price_cents=2500, seller_fee_cents=250, vertical="auto_loan", state="NY", attempts=1,
                     closed_at_ms=sold_at_ms, returned=returned))


def test_a_report_is_stored_once_and_its_repeat_answers_from_the_stored_row(sessions):
    with sessions.begin() as session:
        sell(session, "LEADAAAAA1", "b_1", MAY_1)
    now = MAY_1 + 60_000
    first = claim_outcome(sessions, "LEADAAAAA1", "b_1", Report("converted", MAY_1 + 1_000, "financed"), now)
    assert first.created
    assert (first.stored.at_ms, first.stored.reported_at_ms, first.stored.seller_id) == (MAY_1 + 1_000, now, "s_1")
    event = first.event
    assert (event.lead_id, event.buyer_id, event.seller_id, event.outcome, event.at_ms, event.sold_at_ms) == (
        "LEADAAAAA1", "b_1", "s_1", "converted", MAY_1 + 1_000, MAY_1)
    assert (event.vertical, event.state, event.zip3, event.cluster) == ("auto_loan", "NY", "100", "c3")
    assert event.probability == pytest.approx(0.42)
    assert "financed" not in str(event) and "ann@example.com" not in str(event)

    # Another time, another note, later: the first report stands.
    again = claim_outcome(sessions, "LEADAAAAA1", "b_1", Report("converted", None, "other"), now + 5_000)
    assert not again.created and again.event == first.event
    assert (again.stored.at_ms, again.stored.reported_at_ms, again.stored.note) == (MAY_1 + 1_000, now, "financed")
    with sessions() as session:
        assert session.query(LeadOutcome).count() == 1

    # Without a time: now, never before the sale even if our clock trails the sale's.
    assert claim_outcome(sessions, "LEADAAAAA1", "b_1", Report("contacted", None, ""), now).stored.at_ms == now
    early = claim_outcome(sessions, "LEADAAAAA1", "b_1", Report("returned", None, ""), MAY_1 - 10)
    assert early.stored.at_ms == MAY_1


def test_only_the_buyer_of_a_sold_lead_may_report_and_only_a_possible_time(sessions):
    with sessions.begin() as session:
        sell(session, "LEADBBBBB1", "b_1", MAY_1)
        sell(session, "LEADBBBBB2", "b_2", MAY_1, sold=False)  # posted to b_2, which rejected it
    now = MAY_1 + 60_000
    for lead_id, buyer_id in (("LEADBBBBB1", "b_2"), ("LEADBBBBB2", "b_2"), ("NOSUCHLEAD", "b_1")):
        with pytest.raises(ApiError) as refused:
            claim_outcome(sessions, lead_id, buyer_id, Report("contacted", None, ""), now)
        assert (refused.value.http_status, refused.value.code) == (404, "LEAD_NOT_FOUND")
    for at_ms in (MAY_1 - 1, now + FUTURE_SLACK_MS + 1):
        with pytest.raises(ApiError) as refused:
            claim_outcome(sessions, "LEADBBBBB1", "b_1", Report("contacted", at_ms, ""), now)
        assert (refused.value.http_status, refused.value.code, refused.value.field) == (422, "FIELD_INVALID", "at")
    with sessions() as session:
        assert session.query(LeadOutcome).count() == 0


def test_unclaim_takes_back_only_the_report_this_request_stored(sessions):
    with sessions.begin() as session:
        sell(session, "LEADCCCCC1", "b_1", MAY_1)
    claim_outcome(sessions, "LEADCCCCC1", "b_1", Report("contacted", None, ""), MAY_1 + 10)
    unclaim(sessions, "LEADCCCCC1", "b_1", "contacted", MAY_1 + 20)  # a later repeat's failed publish
    with sessions() as session:
        assert session.get(LeadOutcome, ("LEADCCCCC1", "b_1", "contacted")) is not None
    unclaim(sessions, "LEADCCCCC1", "b_1", "contacted", MAY_1 + 10)
    with sessions() as session:
        assert session.get(LeadOutcome, ("LEADCCCCC1", "b_1", "contacted")) is None


def test_training_rows_one_per_sold_lead_and_buyer_with_a_report(sessions):
    day = 86_400_000
    with sessions.begin() as session:
        sell(session, "LEADDDDDD1", "b_1", MAY_1)  # contacted, then converted
        sell(session, "LEADDDDDD1", "b_2", MAY_1)  # shared sale: b_2 never reached them
        sell(session, "LEADDDDDD2", "b_1", MAY_1 + day)  # converted only, reported "returned" too
        sell(session, "LEADDDDDD3", "b_1", MAY_1 + 2 * day, returned=True)  # returned for money, contacted
        sell(session, "LEADDDDDD4", "b_1", MAY_1 + 3 * day)  # no report: not a training row
        sell(session, "LEADDDDDD5", "b_9", MAY_1, sold=False)  # unsold to b_9; a stray report is ignored
        reports = [("LEADDDDDD1", "b_1", "contacted", MAY_1 + 500), ("LEADDDDDD1", "b_1", "converted", MAY_1 + 9_000),
                   ("LEADDDDDD1", "b_2", "not_contacted", MAY_1 + 700),
                   ("LEADDDDDD2", "b_1", "converted", MAY_1 + day + 4_000),
                   ("LEADDDDDD2", "b_1", "returned", MAY_1 + day + 8_000),
                   ("LEADDDDDD3", "b_1", "contacted", MAY_1 + 2 * day + 100),
                   ("LEADDDDDD5", "b_9", "contacted", MAY_1 + 100)]
        for lead_id, buyer_id, outcome, at_ms in reports:
            session.add(LeadOutcome(lead_id=lead_id, buyer_id=buyer_id, outcome=outcome, seller_id="s_1",
                                    at_ms=at_ms, reported_at_ms=at_ms, note=""))
    fields = {"zip": "10001", "email": "ann@example.com", "gross_monthly_income": 4000}
    with sessions() as session:
        rows = training_rows(session)
        assert rows == [
            OutcomeRow("LEADDDDDD1", "b_1", fields, "auto_loan", MAY_1, True, MAY_1 + 500, True, MAY_1 + 9_000, False),
            OutcomeRow("LEADDDDDD1", "b_2", fields, "auto_loan", MAY_1, False, None, False, None, False, MAY_1 + 700),
            OutcomeRow("LEADDDDDD2", "b_1", fields, "auto_loan", MAY_1 + day, True, MAY_1 + day + 4_000, True,
                       MAY_1 + day + 4_000, True),
            OutcomeRow("LEADDDDDD3", "b_1", fields, "auto_loan", MAY_1 + 2 * day, True, MAY_1 + 2 * day + 100, False,
                       None, True),
        ]
        # The period is of the sales, half-open.
        assert [r.lead_id for r in training_rows(session, since_ms=MAY_1 + day)] == ["LEADDDDDD2", "LEADDDDDD3"]
        assert [r.lead_id for r in training_rows(session, since_ms=MAY_1 + day, until_ms=MAY_1 + 2 * day)] == [
            "LEADDDDDD2"]
        assert training_rows(session, until_ms=MAY_1) == []
