"""AutoBid profiles: parsing profile documents and their errors, the best price among a profile's
criteria, and the AutoBid across a buyer's profiles (windows, caps, ties to the lowest id)."""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest

from leadx.auction.caps.limits import Caps
from leadx.auction.selection.criteria import LeadView, Price
from leadx.auction.selection.profiles import PROFILE_KEYS, AutoBid, Profile, ProfileError, autobid
from leadx.auction.selection.windows import WeeklyWindow

UTC_ZONE = ZoneInfo("UTC")
CHICAGO = ZoneInfo("America/Chicago")


def utc_ms(year, month, day, hour=0, minute=0) -> int:
    return int(datetime(year, month, day, hour, minute, tzinfo=UTC).timestamp() * 1000)


WEDNESDAY_NOON = utc_ms(2026, 1, 7, 12)  # a Wednesday
SATURDAY_NOON = utc_ms(2026, 1, 10, 12)  # a Saturday, in UTC and in Chicago

TEXAS = LeadView({"state": "TX", "gross_monthly_income": "450000", "zip": "75201"}, 0.42, "c2")
CALIFORNIA = LeadView({"state": "CA", "gross_monthly_income": "150000", "zip": "90210"}, 0.05, "c1")


def profile(spec: dict, profile_id: str = "p_1", buyer_id: str = "b_1") -> Profile:
    return Profile.parse(profile_id, buyer_id, {"name": "test"} | spec)


def refused(spec: object, *fragments: str) -> str:
    with pytest.raises(ProfileError) as caught:
        Profile.parse("p_1", "b_1", spec)
    message = str(caught.value)
    for fragment in fragments:
        assert fragment in message, message
    return message


# parsing


def test_the_documented_profile_parses_into_windows_criteria_price_and_caps():
    weekend = Profile.parse("p_1", "b_1", {
        "name": "  weekend push ",
        "windows": [{"from": "fri 08:00", "to": "sun 21:00"}],
        "price": 2500,
        "caps": {"leads_per_day": 50, "spend_per_day_cents": 100000},
        "criteria": [{"states": ["TX"], "income": {"min": 300000}, "price": 3000},
                     {"probability": {"min": 0.2, "max": 0.6}, "price": {"per_probability": 10000}}],
    })
    assert (weekend.id, weekend.buyer_id, weekend.name) == ("p_1", "b_1", "weekend push")
    assert weekend.windows == (WeeklyWindow(4 * 1440 + 480, 6 * 1440 + 1260),)
    assert weekend.price == Price(2500)
    assert weekend.caps == Caps(leads_per_day=50, spend_per_day_cents=100000)
    assert len(weekend.criteria) == 2
    assert weekend.criteria[0].price == Price(3000)
    assert weekend.criteria[1].price == Price(0, 10000)


def test_a_profile_without_criteria_has_one_criterion_matching_every_lead_at_its_price():
    anything = profile({"price": 2000})
    assert len(anything.criteria) == 1 and anything.criteria[0].conditions == ()
    assert anything.windows == () and anything.caps == Caps()
    assert anything.best_price(TEXAS) == anything.best_price(CALIFORNIA) == 2000
    assert anything.best_price(LeadView({})) == 2000


def test_the_profile_keys_are_the_documented_ones():
    assert {"name", "windows", "price", "caps", "criteria", "active"} == PROFILE_KEYS
    assert profile({"price": 1, "active": False}).name == "test"  # stored by the caller, not a parse error


@pytest.mark.parametrize("spec", [None, [], "name: x", 5])
def test_a_profile_must_be_a_mapping(spec):
    refused(spec, "a profile must be a mapping")


@pytest.mark.parametrize("spec", [{}, {"price": 100}, {"name": ""}, {"name": "   "}, {"name": None}, {"name": 5},
                                  {"name": ["a"]}])
def test_a_profile_needs_a_name(spec):
    refused(spec, "a profile needs a name")


def test_unknown_keys_are_named():
    message = refused({"name": "weekend", "price": 100, "colour": "red", "budget": 5},
                      "profile 'weekend' has unknown keys budget, colour")
    assert "price" not in message.split("keys")[1]


def test_a_criterion_without_a_price_needs_the_profiles_price():
    refused({"name": "weekend", "criteria": [{"states": ["TX"], "price": 3000}, {"states": ["OK"]}]},
            "profile 'weekend': every criterion needs a price, or the profile one")
    refused({"name": "weekend"}, "profile 'weekend': every criterion needs a price, or the profile one")
    assert profile({"price": 100, "criteria": [{"states": ["OK"]}]}).best_price(LeadView({"state": "OK"})) == 100
    assert profile({"criteria": [{"states": ["OK"], "price": 7}]}).price is None


@pytest.mark.parametrize("windows, fragment", [
    ([{"from": "fri 8", "to": "sun 21:00"}], "profile 'w': 'fri 8' is not a time of week like 'fri 08:00'"),
    ([{"from": "fri 08:00", "to": "fri 08:00"}], "profile 'w': a window's start and end must differ"),
    ([{"from": "fri 08:00"}], "profile 'w': a window is {from: 'fri 08:00', to: 'sun 21:00'}"),
    ([{"from": "xyz 08:00", "to": "sun 21:00"}], "profile 'w': 'xyz 08:00' is not a time of week"),
    ([{"from": "fri 25:00", "to": "sun 21:00"}], "profile 'w': 'fri 25:00' has no such time of day"),
    ({"from": "fri 08:00", "to": "sun 21:00"}, "profile 'w': windows must be a list"),
    ("fri 08:00 to sun 21:00", "profile 'w': windows must be a list"),
])
def test_a_bad_window_is_refused_with_the_profiles_name(windows, fragment):
    refused({"name": "w", "price": 100, "windows": windows}, fragment)


@pytest.mark.parametrize("criteria, fragment", [
    ([{"states": "TX"}], "profile 'c': criteria[0].states must be a non-empty list"),
    ([{"states": ["TX"]}, {"state": ["OK"]}], "profile 'c': criteria[1] has unknown keys state"),
    ([{"price": -5}], "profile 'c': criteria[0].price must be a non-negative whole number of cents"),
    ({"states": ["TX"]}, "profile 'c': criteria must be a non-empty list"),
    # An emptied list would buy every lead: refused; leaving the key out is how to say "every lead".
    ([], "profile 'c': criteria must be a non-empty list (leave it out to match every lead)"),
    (["states: [TX]"], "profile 'c': criteria[0] must be a mapping of conditions"),
])
def test_a_bad_criterion_is_refused_with_the_profiles_name_and_its_place(criteria, fragment):
    refused({"name": "c", "price": 100, "criteria": criteria}, fragment)


@pytest.mark.parametrize("price, fragment", [
    (-1, "profile 'p': price must be a non-negative whole number of cents"),
    ("25", "profile 'p': price must be a non-negative whole number of cents"),
    ({"per_probability": -1}, "profile 'p': price.per_probability must be a non-negative whole number of cents"),
])
def test_a_bad_profile_price_is_refused(price, fragment):
    refused({"name": "p", "price": price}, fragment)


@pytest.mark.parametrize("caps, fragment", [
    ({"leads_per_week": 5}, "profile 'k': caps may set only leads_per_hour, leads_per_day, spend_per_day_cents, "
                            "spend_per_month_cents"),
    ({"leads_per_day": -1}, "profile 'k': caps.leads_per_day must be a non-negative whole number"),
    ({"spend_per_day_cents": True}, "profile 'k': caps.spend_per_day_cents must be a non-negative whole number"),
    ({"leads_per_hour": 2.5}, "profile 'k': caps.leads_per_hour must be a non-negative whole number"),
    ([50], "profile 'k': caps may set only"),
])
def test_bad_caps_are_refused_with_the_profiles_name(caps, fragment):
    refused({"name": "k", "price": 100, "caps": caps}, fragment)


def test_profile_errors_are_value_errors():
    assert issubclass(ProfileError, ValueError)


# best_price


def test_the_best_price_is_the_highest_among_the_matching_criteria():
    tiers = profile({"criteria": [{"states": ["TX"], "price": 3000},
                                  {"income": {"min": 400000}, "price": 3500},
                                  {"clusters": ["c2"], "price": 2000},
                                  {"states": ["CA"], "price": 9000}]})
    assert tiers.best_price(TEXAS) == 3500
    assert tiers.best_price(LeadView({"state": "TX"}, cluster="c2")) == 3000
    assert tiers.best_price(LeadView({}, cluster="c2")) == 2000
    assert tiers.best_price(CALIFORNIA) == 9000


def test_the_best_price_is_none_when_no_criterion_matches():
    texas_only = profile({"price": 2500, "criteria": [{"states": ["TX"]}, {"zips": ["75201"]}]})
    assert texas_only.best_price(CALIFORNIA) is None
    assert texas_only.best_price(LeadView({})) is None
    assert texas_only.best_price(TEXAS) == 2500


def test_a_criterions_price_overrides_the_profiles_price_even_when_lower():
    cheap_texas = profile({"price": 2500, "criteria": [{"states": ["TX"], "price": 1000}, {"states": ["OK"]}]})
    assert cheap_texas.best_price(TEXAS) == 1000
    assert cheap_texas.best_price(LeadView({"state": "OK"})) == 2500


def test_a_price_per_probability_is_compared_with_fixed_prices_at_the_leads_probability():
    by_probability = {"probability": {"min": 0.2}, "price": {"per_probability": 10000}}
    mixed = profile({"price": 3000, "criteria": [{}, by_probability]})
    assert mixed.best_price(TEXAS) == 4200  # 0.42 x 10000 beats 3000
    assert mixed.best_price(LeadView({}, 0.25)) == 3000  # 2500 loses to 3000
    assert mixed.best_price(CALIFORNIA) == 3000  # under the band: only the fixed price


def test_a_profile_price_per_probability_applies_to_its_criteria_without_prices():
    per_probability = profile({"price": {"per_probability": 10000}, "criteria": [{"states": ["TX"]}]})
    assert per_probability.best_price(TEXAS) == 4200
    assert per_probability.best_price(CALIFORNIA) is None


def test_a_zero_price_is_a_price_not_no_match():
    free = profile({"price": 0})
    assert free.best_price(TEXAS) == 0


# active_at


def test_a_profile_is_active_in_its_windows_on_the_buyers_clock():
    weekend = profile({"price": 100, "windows": [{"from": "fri 08:00", "to": "sun 21:00"}]})
    assert weekend.active_at(UTC_ZONE, SATURDAY_NOON)
    assert not weekend.active_at(UTC_ZONE, WEDNESDAY_NOON)
    friday_0730_chicago = utc_ms(2026, 1, 9, 13, 30)  # 13:30 UTC, 07:30 CST
    assert weekend.active_at(UTC_ZONE, friday_0730_chicago)
    assert not weekend.active_at(CHICAGO, friday_0730_chicago)
    assert profile({"price": 100}).active_at(CHICAGO, WEDNESDAY_NOON)  # no windows: always


# autobid


def weekend_profile(profile_id: str, price: int, **extra) -> Profile:
    return profile({"price": price, "windows": [{"from": "fri 08:00", "to": "sun 21:00"}]} | extra, profile_id)


def always(profile_id: str, price: int, **extra) -> Profile:
    return profile({"price": price} | extra, profile_id)


def test_the_autobid_is_the_highest_price_among_the_active_profiles():
    profiles = (always("p_a", 2000), always("p_b", 3500), always("p_c", 3000))
    assert autobid(profiles, UTC_ZONE, TEXAS, WEDNESDAY_NOON) == AutoBid(3500, "p_b")


def test_an_inactive_profile_does_not_bid_however_high_its_price():
    profiles = (always("p_a", 2000), weekend_profile("p_b", 9000))
    assert autobid(profiles, UTC_ZONE, TEXAS, WEDNESDAY_NOON) == AutoBid(2000, "p_a")
    assert autobid(profiles, UTC_ZONE, TEXAS, SATURDAY_NOON) == AutoBid(9000, "p_b")


def test_windows_are_read_in_the_buyers_zone():
    profiles = (weekend_profile("p_a", 9000),)
    friday_0730_chicago = utc_ms(2026, 1, 9, 13, 30)
    assert autobid(profiles, UTC_ZONE, TEXAS, friday_0730_chicago) == AutoBid(9000, "p_a")
    assert autobid(profiles, CHICAGO, TEXAS, friday_0730_chicago) is None
    assert autobid(profiles, CHICAGO, TEXAS, utc_ms(2026, 1, 9, 14)) == AutoBid(9000, "p_a")


def test_a_capped_profile_does_not_bid_and_the_next_best_one_does():
    profiles = (always("p_a", 2000), always("p_b", 3500), always("p_c", 3000))
    assert autobid(profiles, UTC_ZONE, TEXAS, WEDNESDAY_NOON, frozenset({"p_b"})) == AutoBid(3000, "p_c")
    assert autobid(profiles, UTC_ZONE, TEXAS, WEDNESDAY_NOON, frozenset({"p_b", "p_c"})) == AutoBid(2000, "p_a")
    assert autobid(profiles, UTC_ZONE, TEXAS, WEDNESDAY_NOON, frozenset({"p_a", "p_b", "p_c"})) is None
    assert autobid(profiles, UTC_ZONE, TEXAS, WEDNESDAY_NOON, frozenset({"p_other"})) == AutoBid(3500, "p_b")


def test_profiles_whose_criteria_do_not_match_do_not_bid():
    profiles = (always("p_a", 5000, criteria=[{"states": ["CA"]}]), always("p_b", 1500, criteria=[{"states": ["TX"]}]))
    assert autobid(profiles, UTC_ZONE, TEXAS, WEDNESDAY_NOON) == AutoBid(1500, "p_b")
    assert autobid(profiles, UTC_ZONE, CALIFORNIA, WEDNESDAY_NOON) == AutoBid(5000, "p_a")
    assert autobid(profiles, UTC_ZONE, LeadView({"state": "NY"}), WEDNESDAY_NOON) is None


def test_no_profiles_means_no_autobid():
    assert autobid((), UTC_ZONE, TEXAS, WEDNESDAY_NOON) is None


def test_equal_prices_go_to_the_lowest_profile_id_whatever_the_order_given():
    a, b, c = always("p_a", 3000), always("p_b", 3000), always("p_c", 3000)
    for order in ((a, b, c), (c, b, a), (b, c, a)):
        assert autobid(order, UTC_ZONE, TEXAS, WEDNESDAY_NOON) == AutoBid(3000, "p_a")
    assert autobid((c, b), UTC_ZONE, TEXAS, WEDNESDAY_NOON) == AutoBid(3000, "p_b")
    assert autobid((c, b, a), UTC_ZONE, TEXAS, WEDNESDAY_NOON, frozenset({"p_a"})) == AutoBid(3000, "p_b")


def test_a_higher_price_beats_a_lower_id():
    assert autobid((always("p_a", 2999), always("p_z", 3000)), UTC_ZONE, TEXAS, WEDNESDAY_NOON) == AutoBid(3000, "p_z")


def test_the_autobid_uses_each_profiles_best_matching_criterion():
    first = always("p_a", 1000, criteria=[{"states": ["TX"], "price": 2000}, {"clusters": ["c2"], "price": 4000}])
    second = always("p_b", 3000, criteria=[{"states": ["TX"]}])
    assert autobid((first, second), UTC_ZONE, TEXAS, WEDNESDAY_NOON) == AutoBid(4000, "p_a")
    assert autobid((first, second), UTC_ZONE, LeadView({"state": "TX"}), WEDNESDAY_NOON) == AutoBid(3000, "p_b")


def test_a_zero_price_is_still_a_bid():
    assert autobid((always("p_a", 0),), UTC_ZONE, TEXAS, WEDNESDAY_NOON) == AutoBid(0, "p_a")
