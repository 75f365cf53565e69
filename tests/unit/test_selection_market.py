"""Buyer Selection: partnerships and the seller's three cases (sells to all, to named buyers, blocked),
duplicates and caps, wholesale buyers pinged versus AutoBid buyers bid for, and the caps themselves
(parsing, the boundary of each limit, and periods on the buyer's clock across DST)."""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest

from leadx.auction.caps.limits import LIMITS, Caps, CapsError, Periods, Usage, periods, reached
from leadx.auction.selection.criteria import LeadView
from leadx.auction.selection.market import (
    AUTOBID,
    BUYER_KINDS,
    SELLS_TO_ALL,
    SELLS_TO_NAMED,
    WHOLESALE,
    BuyerAccount,
    Market,
    Selection,
    SellerPolicy,
    select_buyers,
)
from leadx.auction.selection.profiles import AutoBid, Profile

UTC_ZONE = ZoneInfo("UTC")
CHICAGO = ZoneInfo("America/Chicago")
LOS_ANGELES = ZoneInfo("America/Los_Angeles")
NEW_YORK = ZoneInfo("America/New_York")


def utc_ms(year, month, day, hour=0, minute=0) -> int:
    return int(datetime(year, month, day, hour, minute, tzinfo=UTC).timestamp() * 1000)


WEDNESDAY_NOON = utc_ms(2026, 1, 7, 12)
SATURDAY_NOON = utc_ms(2026, 1, 10, 12)
TEXAS = LeadView({"state": "TX", "zip": "75201", "gross_monthly_income": "450000"}, 0.42, "c2")
OHIO = LeadView({"state": "OH", "zip": "43215"}, 0.1, "c1")


def profile(profile_id: str, buyer_id: str, price: int = 2500, **spec) -> Profile:
    return Profile.parse(profile_id, buyer_id, {"name": profile_id, "price": price} | spec)


NO_CAPS = Caps()


def buyer(buyer_id: str, kind: str = WHOLESALE, caps: Caps = NO_CAPS, profiles: tuple[Profile, ...] = (),
          tz: ZoneInfo = UTC_ZONE) -> BuyerAccount:
    return BuyerAccount(buyer_id, f"Buyer {buyer_id}", f"https://{buyer_id}.test/ping", f"https://{buyer_id}.test/post",
                        kind=kind, tz=tz, caps=caps, profiles=profiles)


def market(*buyers: BuyerAccount, partners: dict[str, set[str]] | None = None,
           policies: dict[str, SellerPolicy] | None = None) -> Market:
    accounts = {b.id: b for b in buyers}
    return Market(accounts, {s: frozenset(ids) for s, ids in (partners or {"s_1": set(accounts)}).items()},
                  policies or {})


def select(m: Market, lead: LeadView = TEXAS, now_ms: int = WEDNESDAY_NOON, **kwargs) -> Selection:
    return select_buyers(m, "s_1", lead, now_ms, **kwargs)


# the seller's policy


def test_a_seller_selling_to_all_sells_to_everyone_but_those_it_blocked():
    policy = SellerPolicy(SELLS_TO_ALL, blocked=frozenset({"b_2"}))
    assert policy.sells_to_buyer("b_1") and policy.sells_to_buyer("b_3")
    assert not policy.sells_to_buyer("b_2")
    assert SellerPolicy().sells_to_buyer("anyone")


def test_a_seller_selling_to_named_buyers_sells_only_to_those_it_allowed():
    policy = SellerPolicy(SELLS_TO_NAMED, allowed=frozenset({"b_1"}))
    assert policy.sells_to_buyer("b_1")
    assert not policy.sells_to_buyer("b_2")
    assert not SellerPolicy(SELLS_TO_NAMED).sells_to_buyer("b_1")


def test_a_block_wins_over_an_allow():
    policy = SellerPolicy(SELLS_TO_NAMED, allowed=frozenset({"b_1"}), blocked=frozenset({"b_1"}))
    assert not policy.sells_to_buyer("b_1")
    assert not SellerPolicy(SELLS_TO_ALL, allowed=frozenset({"b_1"}), blocked=frozenset({"b_1"})).sells_to_buyer("b_1")


def test_the_kinds_and_policies_are_named_as_stored():
    assert BUYER_KINDS == ("wholesale", "autobid") and (WHOLESALE, AUTOBID) == BUYER_KINDS
    assert (SELLS_TO_ALL, SELLS_TO_NAMED) == ("all", "named")


# eligibility: partnership first, then the seller's choices


THREE = (buyer("b_1"), buyer("b_2"), buyer("b_3"))


def eligible_ids(m: Market, seller_id: str = "s_1") -> list[str]:
    return [b.id for b in m.eligible(seller_id)]


def test_case_one_a_seller_selling_to_all_is_offered_to_every_partnered_buyer_but_the_blocked():
    m = market(*THREE, policies={"s_1": SellerPolicy(SELLS_TO_ALL, blocked=frozenset({"b_2"}))})
    assert eligible_ids(m) == ["b_1", "b_3"]
    assert select(m).pinged == ("b_1", "b_3")


def test_case_two_a_seller_selling_to_named_buyers_is_offered_only_to_them():
    m = market(*THREE, policies={"s_1": SellerPolicy(SELLS_TO_NAMED, allowed=frozenset({"b_3"}))})
    assert eligible_ids(m) == ["b_3"]
    assert select(m).pinged == ("b_3",)


def test_case_three_a_blocked_buyer_is_never_offered_the_sellers_leads():
    m = market(*THREE, policies={"s_1": SellerPolicy(SELLS_TO_NAMED, allowed=frozenset({"b_1", "b_2"}),
                                                     blocked=frozenset({"b_2"}))})
    assert eligible_ids(m) == ["b_1"]
    selection = select(m)
    assert "b_2" not in selection.offered and "b_2" not in selection.passed


def test_a_seller_without_a_policy_sells_to_all_its_partners():
    assert eligible_ids(market(*THREE)) == ["b_1", "b_2", "b_3"]


def test_a_buyer_that_has_not_partnered_with_the_seller_is_never_eligible():
    m = market(*THREE, partners={"s_1": {"b_1"}, "s_2": {"b_2", "b_3"}},
               policies={"s_1": SellerPolicy(SELLS_TO_NAMED, allowed=frozenset({"b_1", "b_2", "b_3"}))})
    assert eligible_ids(m, "s_1") == ["b_1"]  # named by the seller, yet b_2 and b_3 never opted in
    assert eligible_ids(m, "s_2") == ["b_2", "b_3"]
    assert eligible_ids(m, "s_3") == []
    selection = select(m)
    assert selection.offered == ["b_1"] and selection.passed == {}


def test_a_partnered_buyer_that_is_not_an_active_account_is_left_out():
    m = market(buyer("b_1"), partners={"s_1": {"b_1", "b_gone"}})
    assert eligible_ids(m) == ["b_1"]


def test_eligible_buyers_come_in_id_order():
    m = market(buyer("b_c"), buyer("b_a"), buyer("b_b"))
    assert eligible_ids(m) == ["b_a", "b_b", "b_c"]
    assert select(m).pinged == ("b_a", "b_b", "b_c")


def test_one_sellers_policy_does_not_apply_to_another_seller():
    m = market(*THREE, partners={"s_1": {"b_1", "b_2"}, "s_2": {"b_1", "b_2"}},
               policies={"s_1": SellerPolicy(SELLS_TO_ALL, blocked=frozenset({"b_1"}))})
    assert eligible_ids(m, "s_1") == ["b_2"]
    assert eligible_ids(m, "s_2") == ["b_1", "b_2"]


# duplicates and caps


def test_a_buyer_that_already_has_this_consumer_is_passed_with_the_reason():
    selection = select(market(*THREE), excluded=frozenset({"b_2"}))
    assert selection.pinged == ("b_1", "b_3")
    assert selection.passed == {"b_2": "already has this consumer"}
    assert selection.offered == ["b_1", "b_3"]


def test_a_capped_buyer_is_passed_with_the_cap_it_reached():
    m = market(buyer("b_1", caps=Caps(leads_per_day=10)), buyer("b_2", caps=Caps(spend_per_month_cents=50_000)),
               buyer("b_3", caps=Caps(leads_per_day=10)))
    usage = {"b_1": Usage(leads_day=10), "b_2": Usage(spend_month_cents=50_000), "b_3": Usage(leads_day=9)}
    selection = select(m, usage=usage)
    assert selection.passed == {"b_1": "cap reached: leads per day", "b_2": "cap reached: spend per month"}
    assert selection.pinged == ("b_3",)


def test_a_duplicate_is_reported_as_a_duplicate_even_when_the_buyer_is_also_capped():
    m = market(buyer("b_1", caps=Caps(leads_per_hour=0)))
    assert select(m, excluded=frozenset({"b_1"})).passed == {"b_1": "already has this consumer"}
    assert select(m).passed == {"b_1": "cap reached: leads per hour"}


def test_a_capped_autobid_buyer_does_not_bid():
    m = market(buyer("b_1", AUTOBID, caps=Caps(leads_per_day=1), profiles=(profile("p_1", "b_1", 3000),)))
    assert select(m).autobids == {"b_1": AutoBid(3000, "p_1")}
    selection = select(m, usage={"b_1": Usage(leads_day=1)})
    assert selection.autobids == {} and selection.passed == {"b_1": "cap reached: leads per day"}


def test_without_usage_nobody_has_used_anything():
    m = market(buyer("b_1", caps=Caps(leads_per_day=1)))
    assert select(m).pinged == ("b_1",) and select(m, usage={}).pinged == ("b_1",)


def test_another_owners_usage_does_not_count_against_a_buyer():
    m = market(buyer("b_1", caps=Caps(leads_per_day=1)), buyer("b_2", caps=Caps(leads_per_day=1)))
    assert select(m, usage={"b_2": Usage(leads_day=1)}).pinged == ("b_1",)


# AutoBid buyers


def test_an_autobid_buyer_is_offered_the_lead_with_the_bid_of_its_best_active_profile():
    m = market(buyer("b_1", AUTOBID, profiles=(profile("p_1", "b_1", 2000), profile("p_2", "b_1", 3500),
                                               profile("p_3", "b_1", 9000, criteria=[{"states": ["CA"]}]))))
    selection = select(m)
    assert selection.autobids == {"b_1": AutoBid(3500, "p_2")}
    assert selection.pinged == () and selection.passed == {} and selection.offered == ["b_1"]


def test_an_autobid_under_the_sellers_minimum_is_not_offered_and_one_at_it_is():
    m = market(buyer("b_1", AUTOBID, profiles=(profile("p_1", "b_1", 2000),)))
    under = select(m, reserve_cents=2001)
    assert under.autobids == {} and under.offered == []
    assert under.passed == {"b_1": "its AutoBid is below the seller's minimum"}
    assert select(m, reserve_cents=2000).autobids == {"b_1": AutoBid(2000, "p_1")}


def test_a_capped_profile_does_not_bid_and_the_buyers_next_profile_does():
    m = market(buyer("b_1", AUTOBID, profiles=(profile("p_1", "b_1", 2000, caps={"leads_per_day": 5}),
                                               profile("p_2", "b_1", 3500, caps={"spend_per_day_cents": 10_000}))))
    assert select(m, usage={"p_2": Usage(spend_day_cents=10_000)}).autobids == {"b_1": AutoBid(2000, "p_1")}
    assert select(m, usage={"p_2": Usage(spend_day_cents=9_999)}).autobids == {"b_1": AutoBid(3500, "p_2")}
    everything_capped = select(m, usage={"p_1": Usage(leads_day=5), "p_2": Usage(spend_day_cents=10_000)})
    assert everything_capped.autobids == {} and "b_1" in everything_capped.passed
    assert everything_capped.offered == []


def test_a_profile_without_caps_is_never_capped_by_its_usage():
    m = market(buyer("b_1", AUTOBID, profiles=(profile("p_1", "b_1", 2000),)))
    assert select(m, usage={"p_1": Usage(10**6, 10**6, 10**9, 10**9)}).autobids == {"b_1": AutoBid(2000, "p_1")}


def test_an_autobid_buyer_with_no_matching_active_profile_is_not_offered_the_lead():
    weekend = profile("p_1", "b_1", 5000, windows=[{"from": "fri 08:00", "to": "sun 21:00"}])
    california = profile("p_2", "b_1", 5000, criteria=[{"states": ["CA"]}])
    m = market(buyer("b_1", AUTOBID, profiles=(weekend, california)))
    selection = select(m, TEXAS, WEDNESDAY_NOON)
    assert selection.autobids == {} and selection.offered == []
    assert selection.passed == {"b_1": "no active profile matches"}
    assert select(m, TEXAS, SATURDAY_NOON).autobids == {"b_1": AutoBid(5000, "p_1")}


def test_an_autobid_buyer_without_profiles_is_never_offered_a_lead():
    selection = select(market(buyer("b_1", AUTOBID)))
    assert selection.offered == [] and selection.passed == {"b_1": "no active profile matches"}


def test_an_autobid_buyers_windows_are_read_on_its_own_clock():
    weekend = profile("p_1", "b_1", 5000, windows=[{"from": "fri 08:00", "to": "sun 21:00"}])
    m = market(buyer("b_1", AUTOBID, profiles=(weekend,), tz=CHICAGO))
    assert select(m, now_ms=utc_ms(2026, 1, 9, 13, 59)).autobids == {}  # 07:59 CST
    assert select(m, now_ms=utc_ms(2026, 1, 9, 14)).autobids == {"b_1": AutoBid(5000, "p_1")}  # 08:00 CST


def test_an_autobid_buyers_bid_follows_the_leads_probability():
    banded = profile("p_1", "b_1", 0, criteria=[{"probability": {"min": 0.2, "max": 0.6},
                                                 "price": {"per_probability": 10000}}])
    m = market(buyer("b_1", AUTOBID, profiles=(banded,)))
    assert select(m, TEXAS).autobids == {"b_1": AutoBid(4200, "p_1")}
    assert select(m, OHIO).passed == {"b_1": "no active profile matches"}


# wholesale buyers


def test_a_wholesale_buyer_without_profiles_is_pinged_for_every_lead():
    m = market(buyer("b_1"))
    for lead in (TEXAS, OHIO, LeadView({})):
        selection = select(m, lead)
        assert selection.pinged == ("b_1",) and selection.autobids == {} and selection.passed == {}


def test_a_wholesale_buyers_profiles_are_filters_it_is_pinged_only_when_one_matches():
    m = market(buyer("b_1", profiles=(profile("p_1", "b_1", criteria=[{"states": ["TX"]}]),
                                      profile("p_2", "b_1", criteria=[{"states": ["OK"]}]))))
    texas = select(m, TEXAS)
    assert texas.pinged == ("b_1",) and texas.autobids == {}  # pinged: it bids itself
    ohio = select(m, OHIO)
    assert ohio.pinged == () and ohio.passed == {"b_1": "no active profile matches"}


def test_a_wholesale_buyers_filter_outside_its_window_does_not_ping_it():
    m = market(buyer("b_1", profiles=(profile("p_1", "b_1", windows=[{"from": "fri 08:00", "to": "sun 21:00"}]),)))
    assert select(m, now_ms=WEDNESDAY_NOON).pinged == ()
    assert select(m, now_ms=SATURDAY_NOON).pinged == ("b_1",)


def test_a_wholesale_buyers_capped_profile_is_not_a_filter_that_lets_leads_through():
    m = market(buyer("b_1", profiles=(profile("p_1", "b_1", caps={"leads_per_hour": 2}),)))
    assert select(m, usage={"p_1": Usage(leads_hour=1)}).pinged == ("b_1",)
    capped = select(m, usage={"p_1": Usage(leads_hour=2)})
    assert capped.pinged == () and "b_1" in capped.passed


# the selection as a whole


def test_the_offered_buyers_are_the_pinged_and_the_autobid_buyers_in_id_order():
    m = market(buyer("b_4"), buyer("b_2", AUTOBID, profiles=(profile("p_2", "b_2", 3000),)), buyer("b_3"),
               buyer("b_1", AUTOBID, profiles=(profile("p_1", "b_1", 2000, criteria=[{"states": ["CA"]}]),)),
               buyer("b_5", AUTOBID, profiles=(profile("p_5", "b_5", 1000),)))
    selection = select(m, excluded=frozenset({"b_3"}))
    assert selection.pinged == ("b_4",)
    assert selection.autobids == {"b_2": AutoBid(3000, "p_2"), "b_5": AutoBid(1000, "p_5")}
    assert selection.passed == {"b_1": "no active profile matches", "b_3": "already has this consumer"}
    assert selection.offered == ["b_2", "b_4", "b_5"]
    eligible = {b.id for b in m.eligible("s_1")}
    assert set(selection.offered) | set(selection.passed) == eligible
    assert not set(selection.offered) & set(selection.passed)


def test_an_empty_market_offers_the_lead_to_nobody():
    selection = select_buyers(Market(), "s_1", TEXAS, WEDNESDAY_NOON)
    assert selection == Selection() and selection.offered == []


def test_selection_offered_is_the_sorted_union_of_pinged_and_autobids():
    assert Selection(("b_3", "b_1"), {"b_2": AutoBid(1, "p")}).offered == ["b_1", "b_2", "b_3"]
    assert Selection().offered == []


# capped_owners


def test_capped_owners_are_the_buyers_and_profiles_that_have_caps_with_the_buyers_zone():
    capped_buyer = buyer("b_1", caps=Caps(leads_per_day=5), tz=CHICAGO,
                         profiles=(profile("p_1", "b_1", caps={"leads_per_hour": 1}), profile("p_2", "b_1")))
    profile_only = buyer("b_2", AUTOBID, tz=LOS_ANGELES,
                         profiles=(profile("p_3", "b_2"), profile("p_4", "b_2", caps={"spend_per_day_cents": 0})))
    uncapped = buyer("b_3", profiles=(profile("p_5", "b_3"),))
    m = market(capped_buyer, profile_only, uncapped)
    assert m.capped_owners([capped_buyer, profile_only, uncapped]) == [
        ("b_1", CHICAGO, "b_1"), ("p_1", CHICAGO, "b_1"), ("p_4", LOS_ANGELES, "b_2")]
    assert m.capped_owners([uncapped]) == []
    assert m.capped_owners([]) == []


def test_capped_owners_count_a_zero_cap_as_a_cap():
    zero = buyer("b_1", caps=Caps(leads_per_day=0))
    assert market(zero).capped_owners([zero]) == [("b_1", UTC_ZONE, "b_1")]


# caps: parsing


def test_no_caps_parse_to_caps_with_no_limits():
    for spec in (None, {}):
        caps = Caps.parse(spec)
        assert caps == Caps() and caps.as_dict() == {} and not caps.any


def test_caps_parse_every_limit():
    spec = {"leads_per_hour": 5, "leads_per_day": 50, "spend_per_day_cents": 100_000, "spend_per_month_cents": 0}
    caps = Caps.parse(spec)
    assert caps == Caps(5, 50, 100_000, 0)
    assert caps.as_dict() == spec and caps.any
    assert tuple(spec) == LIMITS


def test_a_limit_set_to_none_is_no_limit():
    caps = Caps.parse({"leads_per_day": None, "leads_per_hour": 3})
    assert caps == Caps(leads_per_hour=3) and caps.as_dict() == {"leads_per_hour": 3}
    assert not Caps.parse({"leads_per_day": None}).any


def test_a_zero_limit_is_a_limit():
    assert Caps(leads_per_day=0).any and Caps(leads_per_day=0).as_dict() == {"leads_per_day": 0}


@pytest.mark.parametrize("spec", [{"leads_per_week": 1}, {"leads_per_day": 1, "budget": 5}, [], ["leads_per_day"],
                                  "leads_per_day: 5", 5, True])
def test_caps_with_unknown_keys_or_not_a_mapping_are_refused_with_the_limits(spec):
    with pytest.raises(CapsError, match="caps may set only leads_per_hour, leads_per_day, spend_per_day_cents, "
                                        "spend_per_month_cents"):
        Caps.parse(spec)


@pytest.mark.parametrize("name", LIMITS)
@pytest.mark.parametrize("value", [-1, True, False, 2.5, 5.0, "5", [5]])
def test_a_limit_must_be_a_non_negative_whole_number(name, value):
    with pytest.raises(CapsError, match=f"caps.{name} must be a non-negative whole number"):
        Caps.parse({name: value})


def test_caps_errors_are_value_errors():
    assert issubclass(CapsError, ValueError)


# caps: reached


@pytest.mark.parametrize("caps, at_limit, just_under, reason", [
    (Caps(leads_per_hour=5), Usage(leads_hour=5), Usage(leads_hour=4), "leads per hour"),
    (Caps(leads_per_day=50), Usage(leads_day=50), Usage(leads_day=49), "leads per day"),
    (Caps(spend_per_day_cents=100_000), Usage(spend_day_cents=100_000), Usage(spend_day_cents=99_999),
     "spend per day"),
    (Caps(spend_per_month_cents=5_000_000), Usage(spend_month_cents=5_000_000), Usage(spend_month_cents=4_999_999),
     "spend per month"),
])
def test_a_cap_is_reached_when_the_usage_equals_its_limit_and_not_one_below(caps, at_limit, just_under, reason):
    assert reached(caps, at_limit) == reason
    assert reached(caps, just_under) is None
    over = Usage(*(value * 2 + 1 for value in (at_limit.leads_hour, at_limit.leads_day, at_limit.spend_day_cents,
                                                at_limit.spend_month_cents)))
    assert reached(caps, over) == reason


def test_no_caps_are_never_reached():
    assert reached(Caps(), Usage(10**9, 10**9, 10**12, 10**12)) is None
    assert reached(Caps(), Usage()) is None


def test_a_zero_cap_is_reached_before_anything_is_bought():
    assert reached(Caps(leads_per_day=0), Usage()) == "leads per day"
    assert reached(Caps(spend_per_month_cents=0), Usage()) == "spend per month"


def test_a_limit_only_counts_its_own_usage():
    assert reached(Caps(leads_per_hour=5), Usage(leads_day=100, spend_day_cents=10**9)) is None
    assert reached(Caps(spend_per_day_cents=1000), Usage(leads_hour=100, spend_month_cents=10**9)) is None


def test_when_several_caps_are_reached_the_first_in_order_is_named():
    caps = Caps(1, 1, 1, 1)
    assert reached(caps, Usage(1, 1, 1, 1)) == "leads per hour"
    assert reached(caps, Usage(0, 1, 1, 1)) == "leads per day"
    assert reached(caps, Usage(0, 0, 1, 1)) == "spend per day"
    assert reached(caps, Usage(0, 0, 0, 1)) == "spend per month"
    assert reached(caps, Usage(0, 0, 0, 0)) is None


# caps: periods on the buyer's clock


def test_periods_are_named_on_the_buyers_clock():
    # 2026-11-25 05:00 UTC is 2026-11-24 21:00 in Los Angeles (PST, UTC-8).
    assert periods(utc_ms(2026, 11, 25, 5), LOS_ANGELES) == Periods("2026-11-24T21-0800", "2026-11-24", "2026-11")
    assert periods(utc_ms(2026, 11, 25, 5), UTC_ZONE) == Periods("2026-11-25T05+0000", "2026-11-25", "2026-11")
    assert periods(utc_ms(2026, 11, 25, 8), LOS_ANGELES).day == "2026-11-25"


def test_a_buyers_month_ends_at_its_own_midnight():
    # 2026-12-01 05:00 UTC is still November 30th in Los Angeles.
    assert periods(utc_ms(2026, 12, 1, 5), LOS_ANGELES).month == "2026-11"
    assert periods(utc_ms(2026, 12, 1, 5), UTC_ZONE).month == "2026-12"
    assert periods(utc_ms(2027, 1, 1, 7, 59), LOS_ANGELES) == Periods("2026-12-31T23-0800", "2026-12-31", "2026-12")
    assert periods(utc_ms(2027, 1, 1, 8), LOS_ANGELES) == Periods("2027-01-01T00-0800", "2027-01-01", "2027-01")


def test_the_two_repeated_hours_at_fall_back_are_different_hours_of_the_same_day():
    # Sunday 2026-11-01 in New York: 05:30 UTC is 01:30 EDT, 06:30 UTC is 01:30 EST.
    first, second = periods(utc_ms(2026, 11, 1, 5, 30), NEW_YORK), periods(utc_ms(2026, 11, 1, 6, 30), NEW_YORK)
    assert first.hour == "2026-11-01T01-0400" and second.hour == "2026-11-01T01-0500"
    assert first.hour != second.hour
    assert first.day == second.day == "2026-11-01" and first.month == second.month == "2026-11"


def test_each_real_hour_has_its_own_name_across_both_dst_changes():
    for day in (utc_ms(2026, 3, 8), utc_ms(2026, 11, 1)):
        names = [periods(day + h * 3_600_000, NEW_YORK).hour for h in range(48)]
        assert len(set(names)) == 48, names


def test_the_spring_forward_day_has_twenty_three_hours_and_fall_back_twenty_five():
    def hours_in(local_day: str, start_ms: int) -> int:
        return len({p.hour for p in (periods(start_ms + h * 3_600_000, NEW_YORK) for h in range(48))
                    if p.day == local_day})
    assert hours_in("2026-03-08", utc_ms(2026, 3, 7, 12)) == 23
    assert hours_in("2026-11-01", utc_ms(2026, 10, 31, 12)) == 25
    assert hours_in("2026-01-07", utc_ms(2026, 1, 6, 12)) == 24


def test_minutes_within_an_hour_share_its_name():
    assert periods(utc_ms(2026, 1, 7, 12), CHICAGO) == periods(utc_ms(2026, 1, 7, 12, 59), CHICAGO)
    assert periods(utc_ms(2026, 1, 7, 12, 59), CHICAGO).hour != periods(utc_ms(2026, 1, 7, 13), CHICAGO).hour
