"""The Buy Profiles form both ways (services/portal/profile_form.py), and the profile changes it
saves through (leadx.accounts.buyer_settings: save, pause, delete) on SQLite and PostgreSQL."""

from __future__ import annotations

import pytest

from leadx.accounts import accounts, buyer_settings
from leadx.accounts.buyer_settings import UnknownProfile
from leadx.accounts.directory import load_market
from leadx.auction.selection.criteria import LeadView
from leadx.auction.selection.profiles import Profile, ProfileError, autobid
from leadx.auction.selection.windows import zone
from services.portal import profile_form
from services.portal.profile_form import form_of_spec, read_form, windows_of

# A document with every kind of condition, as an import would carry it.
FULL = {
    "name": "weekend push",
    "windows": [{"from": "mon 09:00", "to": "mon 12:00"}, {"from": "fri 08:00", "to": "sun 21:00"}],  # week's order
    "price": 2500,
    "caps": {"leads_per_hour": 10, "spend_per_day_cents": 50000},
    "criteria": [
        {"states": ["TX", "OK"], "income": {"min": 400000}, "price": 3200},
        {"zip_radius": {"zip": "75201", "miles": 25}, "residence_types": ["own", "rent"], "zips": ["75201"]},
        {"probability": {"min": 0.2, "max": 0.6}, "timing": {"min": 0.5}, "clusters": ["c1", "c2"],
         "requested_amount": {"min": 500000, "max": 900000}, "price": {"per_probability": 10000}},
        {"fields": [{"name": "months_employed", "op": "gte", "value": 12},
                    {"name": "residence_type", "op": "in", "value": ["own", "other"]},
                    {"name": "employer_industry", "op": "matches", "value": "bank.*"}]},
    ],
}


def posted(form: profile_form.ProfileForm) -> dict[str, str]:
    """What a browser posts back for a form as shown: its values and its ticked hours."""
    fields = dict(form.values)
    fields.update({profile_form.hour_cell(h // 24, h % 24): "1" for h in form.hours})
    return fields


def test_a_document_shown_in_the_form_and_posted_back_is_the_same_document():
    form = form_of_spec(FULL)
    assert form.value("schedule") == "hours" and form.criteria == 5  # four, and a blank one to add
    assert len(form.hours) == 16 + 24 + 21 + 3  # Friday from 08:00, Saturday, Sunday to 21:00; Monday 09-12
    assert form.value("price") == "25.00" and form.value("spend_per_day") == "500.00"
    assert form.value("c0-states") == "TX, OK" and form.value("c0-income_min") == "4000.00"
    assert form.value("c1-residence-own") == "1" and form.value("c1-residence-other") == ""
    assert form.value("c2-price_kind") == "per_probability" and form.value("c2-price") == "100.00"
    assert form.value("c3-fields").splitlines() == ["months_employed >= 12", "residence_type in own, other",
                                                   "employer_industry matches bank.*"]
    spec, again = read_form(posted(form))
    assert again.errors == {} and spec == FULL


def test_the_weekly_grid_becomes_windows_each_run_one_window_and_a_run_may_wrap():
    friday_8, sunday_21 = 4 * 24 + 8, 6 * 24 + 21
    assert windows_of(frozenset(range(friday_8, sunday_21))) == [{"from": "fri 08:00", "to": "sun 21:00"}]
    late_sunday_to_monday = frozenset([6 * 24 + 22, 6 * 24 + 23, 0, 1, 2])
    assert windows_of(late_sunday_to_monday) == [{"from": "sun 22:00", "to": "mon 03:00"}]
    assert windows_of(frozenset([6 * 24 + 23])) == [{"from": "sun 23:00", "to": "sun 24:00"}]
    assert windows_of(frozenset([9, 10, 33])) == [{"from": "mon 09:00", "to": "mon 11:00"},
                                                  {"from": "tue 09:00", "to": "tue 10:00"}]
    # Every hour ticked is the same as always.
    everything = {profile_form.hour_cell(h // 24, h % 24): "1" for h in range(profile_form.HOURS)}
    spec, _ = read_form({"name": "n", "schedule": "hours", "price": "1", **everything})
    assert spec == {"name": "n", "price": 100}


def test_windows_off_the_hour_are_shown_by_the_hours_they_reach_and_said():
    form = form_of_spec({"name": "n", "price": 1, "windows": [{"from": "tue 08:30", "to": "tue 10:00"}]})
    assert form.off_the_hour and form.hours == frozenset([24 + 9])  # 09:00 is in it, 08:00 is not


@pytest.mark.parametrize(("fields", "field", "message"), [
    ({"name": ""}, "name", "give the profile a name"),
    ({"schedule": "hours"}, "schedule", "tick at least one hour"),
    ({"price": "twelve"}, "price", "a price in dollars"),
    ({"price": "-5"}, "price", "a price in dollars"),
    ({"leads_per_day": "1.5"}, "leads_per_day", "a whole number of leads"),
    ({"spend_per_month": "lots"}, "spend_per_month", "an amount in dollars"),
    ({"c0-states": "TX, XX"}, "c0-states", "XX: not a US state code"),
    ({"c0-zips": "7520"}, "c0-zips", "7520: a ZIP code is five digits"),
    ({"c0-radius_zip": "75201"}, "c0-radius_miles", "the radius in miles"),
    ({"c0-income_min": "4k"}, "c0-income_min", "an amount in dollars"),
    ({"c0-probability_max": "1.5"}, "c0-probability_max", "a number from 0 to 1"),
    ({"c0-fields": "months_employed about 12"}, "c0-fields", "line 1: write a condition"),
    # Refused by the import's own rules (Profile.parse), said beside the field they concern:
    ({"c0-income_min": "5000", "c0-income_max": "4000"}, "c0-income_min", "income.min is above its max"),
    ({"c0-radius_zip": "00000", "c0-radius_miles": "5"}, "c0-radius_zip", "zip_radius.zip 00000 is not a US ZIP"),
    ({"c0-fields": "ssn = 123"}, "c0-fields", "fields[0].name: ssn identifies the consumer"),
    ({"c0-fields": "employer_industry matches ba(nk"}, "c0-fields", "fields[0].value is not a regular expression"),
    ({"price": "", "c0-states": "TX"}, "price", "every criterion needs a price, or the profile one"),
])
def test_each_mistake_is_said_beside_its_field_and_nothing_is_returned(fields, field, message):
    spec, form = read_form({"name": "p", "schedule": "always", "price": "20.00", **fields})
    assert spec is None and list(form.errors) == [field] and form.errors[field].startswith(message)
    assert form.values["name"] == fields.get("name", "p")  # what was typed is shown again


def test_a_rules_refusal_lands_beside_its_field_whatever_the_profile_is_called():
    spec, form = read_form({"name": "Bob's \"best\" leads", "price": "1", "c0-radius_zip": "00000",
                            "c0-radius_miles": "5"})
    assert spec is None and list(form.errors) == ["c0-radius_zip"]
    assert form.errors["c0-radius_zip"].startswith("zip_radius.zip 00000 is not a US ZIP")


def test_a_profile_with_more_criteria_than_the_form_holds_is_said_not_cut():
    many = {"name": "n", "price": 1, "criteria": [{"states": ["TX"]}] * (profile_form.MAX_CRITERIA + 1)}
    form = form_of_spec(many)
    assert form.too_many and form.criteria == profile_form.MAX_CRITERIA
    assert not form_of_spec(FULL).too_many


def test_blank_criteria_are_dropped_and_a_paused_profile_stays_paused():
    spec, form = read_form({"name": "p", "price": "$1,250.5", "c0-states": "", "c1-states": "ny", "c2-zips": ""},
                           paused=True)
    assert spec == {"name": "p", "active": False, "price": 125050, "criteria": [{"states": ["NY"]}]}
    assert form.criteria == 3
    assert profile_form.dollars("12") == 1200 and profile_form.dollars("0.5") == 50
    assert profile_form.dollars("1.234") is None and profile_form.dollars("1e3") is None


# ---------------------------------------------------------------- saving

@pytest.fixture
def buyer_id(sessions) -> str:
    with sessions() as session:
        return accounts.create_buyer(session, "Acme", "", "", kind="autobid").id


def test_a_profile_is_created_changed_paused_resumed_and_deleted(sessions, buyer_id):
    lead = LeadView({"state": "TX"})
    with sessions() as session:
        profile_id = buyer_settings.save_profile(session, buyer_id, None, {"name": "texas", "price": 2000,
                                                                          "criteria": [{"states": ["TX"]}]})
        assert [p.id for p in buyer_settings.current_profiles(session, buyer_id)] == [profile_id]
        # Changed in place: the same id, so the caps it used today still count.
        changed = buyer_settings.save_profile(session, buyer_id, profile_id, {"name": "texas", "price": 3125})
        assert changed == profile_id
    with sessions() as session:
        profiles = load_market(session).buyers[buyer_id].profiles
        assert autobid(profiles, zone("UTC"), lead, 0).amount_cents == 3125
        buyer_settings.set_profile_paused(session, buyer_id, profile_id, True)
    with sessions() as session:
        (row,) = buyer_settings.current_profiles(session, buyer_id)
        assert row.spec == {"name": "texas", "price": 3125, "active": False}  # paused: still listed
        assert autobid(load_market(session).buyers[buyer_id].profiles, zone("UTC"), lead, 0) is None
        assert buyer_settings.buyer_settings(session, buyer_id)["profiles"][0]["active"] is False
        buyer_settings.set_profile_paused(session, buyer_id, profile_id, False)
    with sessions() as session:
        assert autobid(load_market(session).buyers[buyer_id].profiles, zone("UTC"), lead, 0).amount_cents == 3125
        buyer_settings.delete_profile(session, buyer_id, profile_id)
    with sessions() as session:
        assert buyer_settings.current_profiles(session, buyer_id) == []
        assert load_market(session).buyers[buyer_id].profiles == ()
        with pytest.raises(UnknownProfile):
            buyer_settings.set_profile_paused(session, buyer_id, profile_id, True)  # deleted is gone


def test_a_bad_profile_saves_nothing_and_another_buyers_profile_is_not_found(sessions, buyer_id):
    with sessions() as session:
        other = accounts.create_buyer(session, "Other", "", "", kind="autobid").id
        theirs = buyer_settings.save_profile(session, other, None, {"name": "theirs", "price": 100})
        with pytest.raises(ProfileError, match="criteria"):
            buyer_settings.save_profile(session, buyer_id, None, {"name": "bad", "price": 1, "criteria": []})
        with pytest.raises(UnknownProfile):
            buyer_settings.save_profile(session, buyer_id, theirs, {"name": "mine now", "price": 1})
        with pytest.raises(UnknownProfile):
            buyer_settings.delete_profile(session, buyer_id, theirs)
    with sessions() as session:
        assert buyer_settings.current_profiles(session, buyer_id) == []
        assert [p.name for p in buyer_settings.current_profiles(session, other)] == ["theirs"]


def test_an_imported_paused_profile_is_kept_and_listed_not_dropped(sessions, buyer_id):
    with sessions() as session:
        buyer_settings.replace_profiles(session, buyer_id, [{"name": "resting", "price": 1, "active": False}])
        assert [p["name"] for p in buyer_settings.buyer_settings(session, buyer_id)["profiles"]] == ["resting"]
        (profile,) = load_market(session).buyers[buyer_id].profiles
        assert profile.paused and not profile.active_at(zone("UTC"), 0)
    # A new profile says true or false; a stored one is paused by false only, as it always was read.
    with pytest.raises(ProfileError, match="active is true or false"):
        buyer_settings.check_profile("p_1", buyer_id, {"name": "n", "price": 1, "active": "no"})
    with sessions() as session, pytest.raises(ValueError, match="active is true or false"):
        buyer_settings.replace_profiles(session, buyer_id, [{"name": "n", "price": 1, "active": None}])
    assert not Profile.parse("p_1", buyer_id, {"name": "n", "price": 1, "active": None}).paused
