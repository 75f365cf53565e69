"""AutoBid criteria: each condition (states, ZIPs, ZIP radius, income and amount ranges, residence
types, the probability band, clusters, any field with every operator), the errors for bad documents,
and prices (fixed, or per probability rounded half up)."""

from __future__ import annotations

import math

import pytest

from leadx.auction.selection.criteria import (
    CONDITION_KEYS,
    FIELD_OPS,
    Criterion,
    CriterionError,
    LeadView,
    Price,
    miles_between,
    zip_locations,
)


def lead(probability: float = 0.5, cluster: str = "c1", **fields: str) -> LeadView:
    return LeadView(fields, probability, cluster)


def criterion(**spec) -> Criterion:
    return Criterion.parse(spec, "criteria[0]")


def refused(spec: object, *fragments: str) -> str:
    with pytest.raises(CriterionError) as caught:
        Criterion.parse(spec, "criteria[0]")
    message = str(caught.value)
    for fragment in fragments:
        assert fragment in message, message
    return message


A_LEAD = lead(0.42, "c2", state="TX", zip="75201", gross_monthly_income="450000", requested_amount="1500000",
              residence_type="own", months_employed="24")


# absent conditions


def test_a_criterion_without_conditions_matches_every_lead():
    everything = criterion()
    assert everything.conditions == () and everything.price is None
    assert everything.matches(A_LEAD)
    assert everything.matches(lead())
    assert everything.matches(LeadView({}))


def test_a_criterion_with_only_a_price_matches_every_lead_at_that_price():
    priced = criterion(price=2500)
    assert priced.conditions == () and priced.price == Price(2500)
    assert priced.matches(LeadView({})) and priced.price.for_lead(A_LEAD) == 2500


def test_every_condition_must_hold():
    both = criterion(states=["TX"], clusters=["c2"])
    assert both.matches(lead(cluster="c2", state="TX"))
    assert not both.matches(lead(cluster="c1", state="TX"))
    assert not both.matches(lead(cluster="c2", state="OK"))


def test_a_timing_band_holds_on_the_scored_timing_factor():
    good_moment = criterion(timing={"min": 0.5})
    assert good_moment.matches(LeadView({}, 0.2, "c1", timing_factor=0.5))
    assert not good_moment.matches(LeadView({}, 0.2, "c1", timing_factor=0.49))
    assert good_moment.matches(LeadView({}))  # unscored: counts as the best moment


@pytest.mark.parametrize("spec", [{"income": {"min": 10**400}}, {"probability": {"max": float("inf")}},
                                  {"income": {"min": float("nan")}}, {"price": 10**400}])
def test_numbers_beyond_any_real_value_are_refused_not_crashed_on(spec):
    with pytest.raises(CriterionError):
        criterion(**spec)


def test_the_condition_keys_are_the_documented_ones():
    assert CONDITION_KEYS == ("states", "zips", "zip_radius", "income", "requested_amount", "residence_types",
                              "probability", "timing", "clusters", "fields")
    assert set(FIELD_OPS) == {"eq", "ne", "in", "not_in", "matches", "lt", "lte", "gt", "gte"}


# the document's shape


@pytest.mark.parametrize("spec", [None, [], "states: [TX]", 3])
def test_a_criterion_must_be_a_mapping(spec):
    refused(spec, "criteria[0] must be a mapping of conditions")


def test_unknown_keys_are_named_with_the_list_of_conditions():
    message = refused({"state": ["TX"], "zipcode": "75201", "states": ["TX"]},
                      "criteria[0] has unknown keys state, zipcode", "conditions are states, zips, zip_radius")
    assert "fields" in message


# states and zips


def test_states_match_the_leads_state_whatever_its_case():
    texas_or_oklahoma = criterion(states=["tx", "OK"])
    for state in ("TX", "tx", "Ok", "OK"):
        assert texas_or_oklahoma.matches(lead(state=state)), state
    assert not texas_or_oklahoma.matches(lead(state="CA"))
    assert not texas_or_oklahoma.matches(lead(state=""))
    assert not texas_or_oklahoma.matches(LeadView({}))


def test_zips_match_exactly_and_listed_zips_are_trimmed():
    dallas = criterion(zips=["75201", " 75202 "])
    assert dallas.matches(lead(zip="75201")) and dallas.matches(lead(zip="75202"))
    assert not dallas.matches(lead(zip="75203"))
    assert not dallas.matches(lead(zip="7520"))
    assert not dallas.matches(LeadView({}))


def test_a_zip_given_as_a_number_is_refused_with_the_reason():
    # Unquoted in YAML, 07302 is the number 7302: it would never match, so it is refused.
    refused({"zips": [7302]}, "quoted five-digit ZIP codes")
    refused({"zips": ["7302"]}, "quoted five-digit ZIP codes")


@pytest.mark.parametrize("key", ["states", "zips", "residence_types", "clusters"])
@pytest.mark.parametrize("value", ["TX", [], None, {"TX": 1}, [None], [["TX"]], [1.5]])
def test_list_conditions_must_be_non_empty_lists(key, value):
    refused({key: value}, f"criteria[0].{key} must be a non-empty list")


# zip_radius


def test_the_zip_database_places_real_zips():
    locations = zip_locations()
    assert locations is zip_locations()  # built once
    assert len(locations) > 40_000
    manhattan, jersey_city, beverly_hills = locations["10001"], locations["07302"], locations["90210"]
    assert manhattan == pytest.approx((40.75, -74.00), abs=0.05)
    assert jersey_city == pytest.approx((40.72, -74.05), abs=0.05)
    assert beverly_hills == pytest.approx((34.09, -118.41), abs=0.05)


def test_miles_between_is_a_great_circle_distance_in_statute_miles():
    new_york, los_angeles = (40.7128, -74.0060), (34.0522, -118.2437)
    assert miles_between(new_york, new_york) == 0
    assert miles_between(new_york, los_angeles) == pytest.approx(2445, abs=10)
    assert miles_between(new_york, los_angeles) == pytest.approx(miles_between(los_angeles, new_york))
    assert miles_between((0, 0), (1, 0)) == pytest.approx(2 * math.pi * 3958.8 / 360)  # ~69.1 miles
    assert miles_between((0, 0), (0, 1)) == pytest.approx(2 * math.pi * 3958.8 / 360)  # on the equator
    assert miles_between((0, 0), (90, 0)) == pytest.approx(math.pi / 2 * 3958.8)
    assert miles_between((0, 0), (0, 180)) == pytest.approx(math.pi * 3958.8)  # half way round


def test_jersey_city_is_within_five_miles_of_manhattan_and_beverly_hills_is_not_within_a_hundred():
    locations = zip_locations()
    distance = miles_between(locations["10001"], locations["07302"])
    assert 2 < distance < 5
    assert miles_between(locations["10001"], locations["90210"]) > 2000
    near_manhattan = criterion(zip_radius={"zip": "10001", "miles": 5})
    assert near_manhattan.matches(lead(zip="10001"))
    assert near_manhattan.matches(lead(zip="07302"))
    assert not near_manhattan.matches(lead(zip="90210"))
    assert not criterion(zip_radius={"zip": "10001", "miles": 100}).matches(lead(zip="90210"))
    assert criterion(zip_radius={"zip": "10001", "miles": 3000}).matches(lead(zip="90210"))


def test_the_radius_is_inclusive_to_the_mile():
    distance = miles_between(zip_locations()["10001"], zip_locations()["07302"])
    assert criterion(zip_radius={"zip": "10001", "miles": distance}).matches(lead(zip="07302"))
    assert not criterion(zip_radius={"zip": "10001", "miles": distance - 0.01}).matches(lead(zip="07302"))
    assert criterion(zip_radius={"zip": "10001", "miles": 0}).matches(lead(zip="10001"))


def test_a_lead_without_a_known_zip_is_never_within_a_radius():
    anywhere = criterion(zip_radius={"zip": "10001", "miles": 100_000})
    assert not anywhere.matches(LeadView({}))
    assert not anywhere.matches(lead(zip=""))
    assert not anywhere.matches(lead(zip="00000"))
    assert not anywhere.matches(lead(zip="not a zip"))


def test_a_centre_zip_given_as_a_number_is_read_as_text():
    assert criterion(zip_radius={"zip": 75201, "miles": 1}).matches(lead(zip="75201"))


@pytest.mark.parametrize("spec, fragment", [
    ("10001", "criteria[0].zip_radius must be {zip: '75201', miles: 25}"),
    ({"zip": "10001"}, "criteria[0].zip_radius must be {zip: '75201', miles: 25}"),
    ({"miles": 5}, "criteria[0].zip_radius must be {zip: '75201', miles: 25}"),
    ({"zip": "10001", "miles": 5, "units": "km"}, "criteria[0].zip_radius must be {zip: '75201', miles: 25}"),
    ({"zip": "00000", "miles": 5}, "criteria[0].zip_radius.zip 00000 is not a US ZIP code with a known location"),
    ({"zip": "1001", "miles": 5}, "is not a US ZIP code"),
    ({"zip": "10001", "miles": "5"}, "criteria[0].zip_radius.miles must be a number"),
    ({"zip": "10001", "miles": True}, "criteria[0].zip_radius.miles must be a number"),
])
def test_a_bad_zip_radius_is_refused_with_its_reason(spec, fragment):
    refused({"zip_radius": spec}, fragment)


# income and requested_amount: inclusive ranges on cents carried as strings


@pytest.mark.parametrize("key, field", [("income", "gross_monthly_income"), ("requested_amount", "requested_amount")])
def test_money_ranges_are_inclusive_on_cents_strings(key, field):
    band = criterion(**{key: {"min": 300000, "max": 900000}})
    assert band.matches(lead(**{field: "300000"}))
    assert band.matches(lead(**{field: "900000"}))
    assert band.matches(lead(**{field: "450000"}))
    assert band.matches(lead(**{field: "300000.0"}))
    assert not band.matches(lead(**{field: "299999"}))
    assert not band.matches(lead(**{field: "900001"}))
    assert not band.matches(lead(**{field: ""}))
    assert not band.matches(lead(**{field: "lots"}))
    assert not band.matches(LeadView({}))


@pytest.mark.parametrize("key, field", [("income", "gross_monthly_income"), ("requested_amount", "requested_amount")])
def test_a_range_may_give_only_a_minimum_or_only_a_maximum(key, field):
    at_least = criterion(**{key: {"min": 300000}})
    assert at_least.matches(lead(**{field: "300000"})) and at_least.matches(lead(**{field: "99999999999"}))
    assert not at_least.matches(lead(**{field: "299999"}))
    at_most = criterion(**{key: {"max": 900000}})
    assert at_most.matches(lead(**{field: "0"})) and at_most.matches(lead(**{field: "900000"}))
    assert not at_most.matches(lead(**{field: "900001"}))
    assert not at_most.matches(LeadView({}))  # no value is not a small value


def test_income_and_requested_amount_each_read_their_own_field():
    both = criterion(income={"min": 300000}, requested_amount={"max": 1000000})
    assert both.matches(lead(gross_monthly_income="500000", requested_amount="500000"))
    assert not both.matches(lead(gross_monthly_income="500000", requested_amount="2000000"))
    assert not both.matches(lead(gross_monthly_income="200000", requested_amount="500000"))
    assert not both.matches(lead(requested_amount="500000"))


def test_income_does_not_read_any_other_field():
    assert not criterion(income={"min": 1}).matches(lead(requested_amount="500000", income="500000"))


@pytest.mark.parametrize("key", ["income", "requested_amount", "probability"])
@pytest.mark.parametrize("spec, fragment", [
    ({}, "must be {min: .., max: ..}"),
    (300000, "must be {min: .., max: ..}"),
    ([1, 2], "must be {min: .., max: ..}"),
    ({"min": 1, "maximum": 2}, "must be {min: .., max: ..}"),
    ({"min": "300000"}, ".min must be a number"),
    ({"max": None}, ".max must be a number"),
    ({"min": True}, ".min must be a number"),
    ({"min": 2, "max": 1}, ".min is above its max"),
])
def test_a_bad_range_is_refused_with_its_reason(key, spec, fragment):
    refused({key: spec}, f"criteria[0].{key}", fragment)


def test_a_range_with_min_equal_to_max_is_a_single_value():
    exactly = criterion(income={"min": 500000, "max": 500000})
    assert exactly.matches(lead(gross_monthly_income="500000"))
    assert not exactly.matches(lead(gross_monthly_income="500001"))


# residence types, probability, clusters


def test_residence_types_match_the_listed_kinds():
    owners = criterion(residence_types=["own"])
    assert owners.matches(lead(residence_type="own"))
    assert not owners.matches(lead(residence_type="rent"))
    assert not owners.matches(LeadView({}))
    assert criterion(residence_types=["own", "other"]).matches(lead(residence_type="other"))


def test_the_probability_band_is_inclusive_at_both_ends():
    band = criterion(probability={"min": 0.2, "max": 0.6})
    for inside in (0.2, 0.4, 0.6):
        assert band.matches(lead(inside)), inside
    for outside in (0.0, 0.19999, 0.60001, 1.0):
        assert not band.matches(lead(outside)), outside
    assert criterion(probability={"min": 0.9}).matches(lead(1.0))
    assert not criterion(probability={"min": 0.9}).matches(lead(0.89))
    assert criterion(probability={"max": 0.1}).matches(lead(0.0))


def test_clusters_match_the_leads_cluster():
    c2 = criterion(clusters=["c2"])
    assert c2.matches(lead(cluster="c2"))
    assert not c2.matches(lead(cluster="c1"))
    assert not c2.matches(lead(cluster=""))
    assert criterion(clusters=["c1", "c3"]).matches(lead(cluster="c3"))


# fields, with every operator


def field(op: str | None, value: object, name: str = "months_employed") -> Criterion:
    spec = {"name": name, "value": value} | ({"op": op} if op else {})
    return criterion(fields=[spec])


def employed(months: str | None) -> LeadView:
    return LeadView({} if months is None else {"months_employed": months})


def test_eq_compares_the_field_as_text_and_is_the_default_operator():
    for twelve in (field("eq", 12), field("eq", "12"), field(None, 12)):
        assert twelve.matches(employed("12"))
        assert not twelve.matches(employed("13"))
        assert not twelve.matches(employed("12.0"))
        assert not twelve.matches(employed(None))


def test_ne_holds_for_any_other_value_and_for_a_missing_field():
    not_twelve = field("ne", 12)
    assert not not_twelve.matches(employed("12"))
    assert not_twelve.matches(employed("13"))
    assert not_twelve.matches(employed(None))


def test_in_and_not_in_test_membership_of_the_listed_values():
    short = field("in", ["0", "1", 2])
    assert short.matches(employed("0")) and short.matches(employed("2"))
    assert not short.matches(employed("3")) and not short.matches(employed(None))
    not_short = field("not_in", ["0", "1", 2])
    assert not not_short.matches(employed("0")) and not not_short.matches(employed("2"))
    assert not_short.matches(employed("3")) and not_short.matches(employed(None))


def test_matches_needs_the_whole_field_to_match_the_pattern():
    two_digits = field("matches", "[0-9]{2}")
    assert two_digits.matches(employed("12"))
    assert not two_digits.matches(employed("123"))
    assert not two_digits.matches(employed("1"))
    assert not two_digits.matches(employed("a12"))
    assert not two_digits.matches(employed(None))
    assert field("matches", ".*").matches(employed(None))  # a missing field is read as ""
    assert criterion(fields=[{"name": "city", "op": "matches", "value": r"New .+"}]).matches(
        LeadView({"city": "New York"}))


@pytest.mark.parametrize("op, below, at, above", [
    ("lt", True, False, False),
    ("lte", True, True, False),
    ("gt", False, False, True),
    ("gte", False, True, True),
])
def test_comparisons_read_the_field_as_a_number(op, below, at, above):
    twelve = field(op, 12)
    assert twelve.matches(employed("11")) is below
    assert twelve.matches(employed("12")) is at
    assert twelve.matches(employed("12.0")) is at
    assert twelve.matches(employed(" 12 ")) is at
    assert twelve.matches(employed("13")) is above
    assert twelve.matches(employed("11.99")) is below
    assert twelve.matches(employed("12.01")) is above


@pytest.mark.parametrize("op", ["lt", "lte", "gt", "gte"])
@pytest.mark.parametrize("value", ["twelve", "", "12 months", "1,200", None, "nan"])
def test_a_field_that_is_not_a_number_never_matches_a_comparison(op, value):
    assert not field(op, 12).matches(employed(value))


def test_a_comparison_bound_may_be_a_float():
    assert field("gte", 0.5, name="ratio").matches(LeadView({"ratio": "0.5"}))
    assert not field("gt", 0.5, name="ratio").matches(LeadView({"ratio": "0.5"}))


def test_several_field_conditions_must_all_hold():
    tenure = criterion(fields=[{"name": "months_employed", "op": "gte", "value": 12},
                               {"name": "months_employed", "op": "lt", "value": 60},
                               {"name": "residence_type", "op": "ne", "value": "other"}])
    assert tenure.matches(LeadView({"months_employed": "24", "residence_type": "own"}))
    assert not tenure.matches(LeadView({"months_employed": "60", "residence_type": "own"}))
    assert not tenure.matches(LeadView({"months_employed": "24", "residence_type": "other"}))


def test_an_empty_fields_list_adds_no_condition():
    assert criterion(fields=[]).matches(LeadView({}))


@pytest.mark.parametrize("spec, fragment", [
    ("months_employed >= 12", "criteria[0].fields[0] must be {name: FIELD, op: OP, value: VALUE}"),
    ({"op": "gte", "value": 12}, "criteria[0].fields[0] must be {name: FIELD, op: OP, value: VALUE}"),
    ({"name": 7, "op": "gte", "value": 12}, "criteria[0].fields[0] must be {name: FIELD, op: OP, value: VALUE}"),
    ({"name": "months_employed", "op": "gte"}, "criteria[0].fields[0] must be {name: FIELD, op: OP, value: VALUE}"),
    ({"name": "months_employed", "op": "like", "value": 12},
     "criteria[0].fields[0].op must be one of eq, ne, in, not_in, matches, lt, lte, gt, gte"),
    ({"name": "months_employed", "op": "matches", "value": "[0-9"},
     "criteria[0].fields[0].value is not a regular expression"),
    ({"name": "months_employed", "op": "gte", "value": "12"}, "criteria[0].fields[0].value must be a number"),
    ({"name": "months_employed", "op": "lt", "value": True}, "criteria[0].fields[0].value must be a number"),
    ({"name": "months_employed", "op": "in", "value": "12"}, "criteria[0].fields[0].value must be a non-empty list"),
    ({"name": "months_employed", "op": "not_in", "value": []},
     "criteria[0].fields[0].value must be a non-empty list"),
    ({"name": "employer", "op": "eq", "value": "Acme"},
     "criteria[0].fields[0].name: employer identifies the consumer and cannot be a criterion"),
    ({"name": "date_of_birth", "op": "matches", "value": "19.*"},
     "criteria[0].fields[0].name: date_of_birth identifies the consumer and cannot be a criterion"),
])
def test_a_bad_field_condition_is_refused_with_its_place_and_reason(spec, fragment):
    refused({"fields": [spec]}, fragment)


def test_the_place_of_a_bad_field_condition_counts_from_zero():
    refused({"fields": [{"name": "a", "value": 1}, {"name": "b", "op": "??", "value": 1}]},
            "criteria[0].fields[1].op must be one of")


@pytest.mark.parametrize("value", [{"name": "a", "value": 1}, "a", None])
def test_fields_must_be_a_list(value):
    refused({"fields": value}, "criteria[0].fields must be a list")


# prices


def test_a_fixed_price_is_the_same_for_every_lead():
    price = Price.parse(2500, "price")
    assert price == Price(cents=2500, per_probability_cents=None)
    assert price.for_lead(lead(0.0)) == price.for_lead(lead(0.99)) == 2500
    assert Price.parse(0, "price").for_lead(A_LEAD) == 0


@pytest.mark.parametrize("per_probability, probability, cents", [
    (10000, 0.12345, 1235),  # 1234.5 rounds half up (round() would give 1234)
    (2500, 0.0002, 1),  # 0.5 rounds up
    (2500, 0.0001, 0),  # 0.25 rounds down
    (2500, 0.0006, 2),  # 1.5 rounds up
    (10000, 0.30000000000000004, 3000),
    (10000, 0.42, 4200),
    (2500, 0.1, 250),
    (10000, 1.0, 10000),
    (10000, 0.0, 0),
    (10000, 1, 10000),
    (9999, 0.5, 5000),  # 4999.5
    (1, 0.5, 1),
])
def test_a_price_per_probability_is_that_many_cents_times_the_probability_rounded_half_up(
        per_probability, probability, cents):
    price = Price.parse({"per_probability": per_probability}, "price")
    assert price == Price(cents=0, per_probability_cents=per_probability)
    amount = price.for_lead(lead(probability))
    assert amount == cents and isinstance(amount, int)


def test_half_cent_rounding_goes_up_where_round_would_go_to_even():
    assert round(1234.5) == 1234  # the banker's rounding the price must not use
    assert Price(per_probability_cents=10000).for_lead(lead(0.12345)) == 1235


@pytest.mark.parametrize("spec, fragment", [
    (-1, "criteria[0].price must be a non-negative whole number of cents"),
    (25.5, "criteria[0].price must be a non-negative whole number of cents"),
    ("2500", "criteria[0].price must be a non-negative whole number of cents"),
    (True, "criteria[0].price must be a non-negative whole number of cents"),
    (None, "criteria[0].price must be a non-negative whole number of cents"),
    ({}, "criteria[0].price must be a non-negative whole number of cents"),
    ({"per_probability": 100, "min": 5}, "criteria[0].price must be a non-negative whole number of cents"),
    ({"per_probability": -1}, "criteria[0].price.per_probability must be a non-negative whole number of cents"),
    ({"per_probability": 0.5}, "criteria[0].price.per_probability must be a non-negative whole number of cents"),
    ({"per_probability": "100"}, "criteria[0].price.per_probability must be a non-negative whole number of cents"),
    ({"per_probability": False}, "criteria[0].price.per_probability must be a non-negative whole number"),
])
def test_a_bad_price_is_refused_with_its_place(spec, fragment):
    refused({"states": ["TX"], "price": spec}, fragment)


def test_a_criterion_carries_its_own_price_or_none():
    assert criterion(states=["TX"], price=3000).price == Price(3000)
    assert criterion(states=["TX"], price={"per_probability": 10000}).price == Price(0, 10000)
    assert criterion(states=["TX"]).price is None


def test_criterion_errors_are_value_errors():
    assert issubclass(CriterionError, ValueError)


def test_the_seeds_example_criterion_matches_a_texas_lead_with_enough_income():
    texas = criterion(states=["TX"], income={"min": 300000}, price=3000)
    assert texas.matches(A_LEAD) and texas.price.for_lead(A_LEAD) == 3000
    assert not texas.matches(lead(state="TX", gross_monthly_income="299999"))
    assert not texas.matches(lead(state="OK", gross_monthly_income="450000"))
    banded = criterion(probability={"min": 0.2, "max": 0.6}, price={"per_probability": 10000})
    assert banded.matches(A_LEAD) and banded.price.for_lead(A_LEAD) == 4200
