"""Field verification: types, constraint rules and their order (docs/integration-spec.md#fields)."""

from __future__ import annotations

import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from leadx.dev.demo.consumers import make_consumer
from leadx.leads.verticals import load_verticals, verify

AUTO_LOAN = load_verticals()["auto_loan"]


def valid_lead(**changes) -> dict:
    return make_consumer(random.Random(11)) | changes


def codes(result) -> set[tuple[str, str]]:
    return {(e.code, e.field) for e in result.errors}


def test_a_valid_lead_passes_with_normalised_values():
    result = verify(AUTO_LOAN, valid_lead(home_phone="+1 (212) 555-0142", ssn="123 45 6789", state="ny",
                                          zip="10001", residence_type="RENT"))
    assert result.ok, result.errors
    assert result.fields["home_phone"] == "2125550142"
    assert result.fields["ssn"] == "123456789"
    assert result.fields["state"] == "NY" and result.fields["residence_type"] == "rent"


def test_both_shipped_verticals_load():
    verticals = load_verticals()
    assert {"auto_loan", "auto_insurance"} <= set(verticals)
    required = {f.name for f in verticals["auto_loan"].fields if f.required}
    assert {"ssn", "email", "home_phone", "zip", "gross_monthly_income", "requested_amount"} <= required


def test_a_missing_required_field_stops_at_once():
    lead = valid_lead(email="not-an-email", ssn="000-12-3456")
    del lead["first_name"]
    result = verify(AUTO_LOAN, lead)
    assert [(e.code, e.field) for e in result.errors] == [("FIELD_MISSING", "first_name")]


def test_empty_strings_count_as_missing():
    assert codes(verify(AUTO_LOAN, valid_lead(last_name="  "))) == {("FIELD_MISSING", "last_name")}


def test_every_invalid_field_is_reported_together():
    result = verify(AUTO_LOAN, valid_lead(email="a@b", home_phone="555-1234", ssn="123-45-678",
                                          date_of_birth="02/01/1980", gross_monthly_income="5k",
                                          residence_type="boat", months_employed=-3))
    assert codes(result) == {("FIELD_INVALID", f) for f in
                             ("email", "home_phone", "ssn", "date_of_birth", "gross_monthly_income",
                              "residence_type", "months_employed")}
    assert all(e.message.startswith(e.field) for e in result.errors)


def test_impossible_social_security_numbers():
    for ssn in ("000-12-3456", "666-12-3456", "900-12-3456", "999-12-3456", "123-00-4567", "123-45-0000"):
        assert codes(verify(AUTO_LOAN, valid_lead(ssn=ssn))) == {("FIELD_INVALID", "ssn")}, ssn
    assert verify(AUTO_LOAN, valid_lead(ssn="899-12-3456")).ok


def test_phone_numbers_need_a_real_area_code_and_exchange():
    for phone in ("012-555-0142", "112-555-0142", "212-055-0142", "212-155-0142", "2125550", "22125550142"):
        assert codes(verify(AUTO_LOAN, valid_lead(home_phone=phone))) == {("FIELD_INVALID", "home_phone")}, phone


def test_zip_must_exist_and_match_the_state():
    assert codes(verify(AUTO_LOAN, valid_lead(zip="00000"))) == {("ZIP_UNKNOWN", "zip")}
    assert codes(verify(AUTO_LOAN, valid_lead(zip="1001"))) == {("FIELD_INVALID", "zip")}
    mismatch = verify(AUTO_LOAN, valid_lead(zip="10001", state="CA"))
    assert codes(mismatch) == {("ZIP_STATE_MISMATCH", "state")}
    assert "NY" in mismatch.errors[0].message


def test_dates_money_and_enums():
    assert codes(verify(AUTO_LOAN, valid_lead(date_of_birth="2999-01-01"))) == {("FIELD_INVALID", "date_of_birth")}
    assert codes(verify(AUTO_LOAN, valid_lead(date_of_birth="1850-01-01"))) == {("FIELD_INVALID", "date_of_birth")}
    assert codes(verify(AUTO_LOAN, valid_lead(requested_amount=12.5))) == {("FIELD_INVALID", "requested_amount")}
    assert codes(verify(AUTO_LOAN, valid_lead(requested_amount=True))) == {("FIELD_INVALID", "requested_amount")}
    assert verify(AUTO_LOAN, valid_lead(requested_amount=2_500_000.0)).fields["requested_amount"] == "2500000"
    assert codes(verify(AUTO_LOAN, valid_lead(first_name="x" * 201))) == {("FIELD_INVALID", "first_name")}
    assert codes(verify(AUTO_LOAN, valid_lead(first_name=["A"]))) == {("FIELD_INVALID", "first_name")}


def test_unknown_fields_are_not_carried():
    result = verify(AUTO_LOAN, valid_lead(favourite_colour="blue"))
    assert result.ok and "favourite_colour" not in result.fields


json_values = st.recursive(st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=30),
                           lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner,
                                                                                        max_size=3),
                           max_leaves=8)


@settings(max_examples=300, deadline=None)
@given(st.dictionaries(st.sampled_from([f.name for f in AUTO_LOAN.fields] + ["other"]), json_values))
def test_verify_never_raises_on_arbitrary_json(payload):
    result = verify(AUTO_LOAN, payload)
    assert all(e.code in {"FIELD_MISSING", "FIELD_INVALID", "ZIP_UNKNOWN", "ZIP_STATE_MISMATCH"} for e in result.errors)


@settings(max_examples=200, deadline=None)
@given(st.dictionaries(st.sampled_from([f.name for f in AUTO_LOAN.fields]), st.text(max_size=40)))
def test_overlaying_random_text_on_a_valid_lead_never_raises(changes):
    verify(AUTO_LOAN, valid_lead(**changes))


def test_a_phone_needs_a_real_geographic_area_code():
    for fake in ("555-234-5678", "800-234-5678", "999-234-5678"):
        result = verify(AUTO_LOAN, valid_lead(home_phone=fake))
        assert codes(result) == {("FIELD_INVALID", "home_phone")}, fake
        assert "not a geographic US area code" in result.errors[0].message


def test_a_phone_from_another_state_is_a_warning_by_default_and_an_error_by_setting():
    lead = valid_lead(zip="10001", state="NY", city="New York", home_phone="415-234-5678")  # San Francisco
    lenient = verify(AUTO_LOAN, lead)
    assert lenient.ok
    assert [(w.code, w.field) for w in lenient.warnings] == [("PHONE_AREA_MISMATCH", "home_phone")]
    assert "415 is in CA" in lenient.warnings[0].message
    strict = verify(AUTO_LOAN, lead, phone_area_must_match=True)
    assert codes(strict) == {("FIELD_INVALID", "home_phone")}
    assert verify(AUTO_LOAN, lead | {"home_phone": "212-234-5678"}).warnings == []


def test_money_and_ages_must_be_sane():
    import datetime as dt

    today = dt.date.today()
    minor = today.replace(year=today.year - 17).isoformat()
    result = verify(AUTO_LOAN, valid_lead(gross_monthly_income=100, requested_amount=99_000_000,
                                          months_employed=2000, date_of_birth=minor))
    messages = {e.field: e.message for e in result.errors}
    assert set(messages) == {"gross_monthly_income", "requested_amount", "months_employed", "date_of_birth"}
    assert "at least 50000" in messages["gross_monthly_income"]
    assert "at most 25000000" in messages["requested_amount"]
    assert "under the minimum age of 18" in messages["date_of_birth"]
    eighteen_today = today.replace(year=today.year - 18).isoformat() if (today.month, today.day) != (2, 29) else None
    if eighteen_today:
        assert verify(AUTO_LOAN, valid_lead(date_of_birth=eighteen_today)).ok


def test_a_partial_check_verifies_only_what_a_ping_carries():
    result = verify(AUTO_LOAN, {"zip": "10001", "ssn": "123-45-6789", "gross_monthly_income": "450000"}, partial=True)
    assert result.ok and result.fields == {"zip": "10001", "ssn": "123456789", "gross_monthly_income": "450000"}
    assert codes(verify(AUTO_LOAN, {"zip": "00000"}, partial=True)) == {("ZIP_UNKNOWN", "zip")}


def test_dedup_scopes_come_per_vertical_and_the_environment_overrides_them():
    from leadx.dedup.scopes import DedupPolicy, DedupScopes, ScopeOverrides, scopes_by_vertical

    scopes = scopes_by_vertical(load_verticals())
    assert scopes["auto_loan"] == DedupScopes(platform=True, per_buyer=True, window_days=30)
    assert scopes["auto_insurance"].platform is False
    policy = DedupPolicy(scopes, ScopeOverrides(platform=False, window_days=7))
    assert policy.scopes("auto_loan") == DedupScopes(platform=False, per_buyer=True, window_days=7)
    assert policy.scopes("unknown").window_ms == 7 * 24 * 3600 * 1000


@pytest.mark.parametrize(("table", "message"), [
    ({"window": 30}, "unknown setting"),
    ({"window_days": 0}, "at least 1"),
    ({"platform": "yes"}, "true or false"),
])
def test_bad_dedup_scopes_are_refused_with_the_reason(table, message):
    from leadx.dedup.scopes import DedupScopes

    with pytest.raises(ValueError, match=message):
        DedupScopes.from_table("auto_loan", table)
