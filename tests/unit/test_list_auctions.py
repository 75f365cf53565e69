"""Customer lists and list-auction winners (docs/list-auctions.md): lists built by profile, grouped by cluster
and probability band and sorted by probability; per-customer, per-cluster and per-band bids
competing; limits; duplicates and earlier purchases; nobody sold a customer twice."""

from __future__ import annotations

import random
from collections import Counter

import pytest

from leadx.auction.selection.criteria import CriterionError
from leadx.lists.award import ListBid, award, check_bid
from leadx.lists.building import Band, Customer, ListProfile, band_of, build_list


def customer(pid: str, probability: float, cluster: str = "c1", **fields: str) -> Customer:
    return Customer(pid, probability, cluster, fields)


POOL = [
    customer("P1", 0.31, "c1", state="TX", residence_type="own"),
    customer("P2", 0.12, "c2", state="TX", residence_type="rent"),
    customer("P3", 0.27, "c2", state="OK", residence_type="own"),
    customer("P4", 0.05, "c1", state="TX", residence_type="rent"),
    customer("P5", 0.18, "c3", state="CA", residence_type="own"),
]


# building lists


def test_a_list_takes_the_profiles_customers_best_first():
    texas_or_owners = ListProfile.parse({"criteria": [{"states": ["TX"]}, {"residence_types": ["own"]}]})
    built = build_list(POOL, texas_or_owners)
    assert [c.prospect_id for c in built.customers] == ["P1", "P3", "P5", "P2", "P4"]
    only_texas = build_list(POOL, ListProfile.parse([{"states": ["TX"], "probability": {"min": 0.1}}]))
    assert [c.prospect_id for c in only_texas.customers] == ["P1", "P2"]


def test_an_empty_profile_takes_the_whole_pool():
    assert len(build_list(POOL, ListProfile.parse({})).customers) == len(POOL)


def test_a_list_is_grouped_by_cluster_and_by_band_each_best_first():
    built = build_list(POOL, ListProfile.parse([]), band_width=0.1)
    assert {k: [c.prospect_id for c in v] for k, v in built.by_cluster.items()} == {
        "c1": ["P1", "P4"], "c2": ["P3", "P2"], "c3": ["P5"]}
    assert list(built.by_cluster) == ["c1", "c2", "c3"]
    assert {k: [c.prospect_id for c in v] for k, v in built.by_band.items()} == {
        "0.30-0.40": ["P1"], "0.20-0.30": ["P3"], "0.10-0.20": ["P5", "P2"], "0.00-0.10": ["P4"]}
    assert list(built.by_band) == ["0.30-0.40", "0.20-0.30", "0.10-0.20", "0.00-0.10"]


@pytest.mark.parametrize(("probability", "width", "label"), [
    (0.0, 0.05, "0.00-0.05"), (0.049, 0.05, "0.00-0.05"), (0.05, 0.05, "0.05-0.10"),
    (0.3, 0.1, "0.30-0.40"), (1.0, 0.1, "0.90-1.00"), (0.999, 0.25, "0.75-1.00")])
def test_bands_are_half_open_with_one_inside_the_top_band(probability, width, label):
    band = band_of(probability, width)
    assert band.label == label and band.holds(probability)


@pytest.mark.parametrize("spec", [{"criteria": [{"price": 100}]}, {"criteria": "TX"}, {"states": ["TX"]},
                                  [{"colour": "red"}]])
def test_a_bad_profile_is_refused_with_its_place(spec):
    with pytest.raises(CriterionError):
        ListProfile.parse(spec)


def test_a_band_label_is_checked():
    assert Band.parse("0.10-0.20") == Band(0.1, 0.2)
    for bad in ("0.2-0.1", "x", "0.1-1.5", "0.1"):
        with pytest.raises(ValueError):
            Band.parse(bad)


# winners


def bid(bid_id: int, buyer: str, scope: str, target: str, price: int, **limits) -> ListBid:
    return ListBid(bid_id, buyer, scope, target, price, limits.get("max_count"), limits.get("max_budget"))


def winners(bids, reserve=100, excluded=None, seed=1, customers=POOL) -> dict[str, tuple[str, int]]:
    return {a.prospect_id: (a.buyer_id, a.price_cents)
            for a in award(customers, bids, reserve, excluded or {}, seed)}


def test_each_customer_goes_to_the_highest_applicable_bid_of_any_kind():
    bids = [bid(1, "b_cluster", "cluster", "c2", 500),
            bid(2, "b_band", "band", "0.10-0.20", 400),
            bid(3, "b_one", "customer", "P2", 450),
            bid(4, "b_exact", "band", "0.27", 650)]
    assert winners(bids) == {"P2": ("b_cluster", 500), "P3": ("b_exact", 650), "P5": ("b_band", 400)}


def test_bids_below_the_reserve_never_win():
    assert winners([bid(1, "b_1", "cluster", "c1", 99)], reserve=100) == {}
    assert winners([bid(1, "b_1", "cluster", "c1", 100)], reserve=100) == {"P1": ("b_1", 100), "P4": ("b_1", 100)}


def test_a_limited_bid_gets_the_best_customers_and_the_rest_pass_to_the_next_bid():
    bids = [bid(1, "b_top", "band", "0.00-1.00", 800, max_count=2),
            bid(2, "b_next", "cluster", "c1", 300),
            bid(3, "b_budget", "band", "0.00-0.20", 250, max_budget=500)]
    assert winners(bids) == {"P1": ("b_top", 800), "P3": ("b_top", 800), "P4": ("b_next", 300),
                             "P5": ("b_budget", 250), "P2": ("b_budget", 250)}


def test_a_budget_is_never_exceeded():
    awards = award(POOL, [bid(1, "b_1", "band", "0.00-1.00", 300, max_budget=700)], 100, {}, 1)
    assert sum(a.price_cents for a in awards) == 600 and len(awards) == 2


def test_a_customer_never_goes_to_a_buyer_that_has_it_or_bought_it():
    bids = [bid(1, "b_has_it", "cluster", "c1", 900), bid(2, "b_other", "cluster", "c1", 200)]
    excluded = {"P1": frozenset({"b_has_it"})}
    assert winners(bids, excluded=excluded) == {"P1": ("b_other", 200), "P4": ("b_has_it", 900)}
    assert winners([bids[0]], excluded=excluded) == {"P4": ("b_has_it", 900)}


def test_every_customer_is_sold_at_most_once_and_never_twice_to_one_buyer():
    rng = random.Random(3)
    customers = [customer(f"P{i:03d}", rng.random() * 0.6, f"c{rng.randint(1, 6)}") for i in range(300)]
    bids = []
    for i in range(60):
        scope = rng.choice(["customer", "cluster", "band"])
        target = {"customer": f"P{rng.randrange(300):03d}", "cluster": f"c{rng.randint(1, 6)}",
                  "band": rng.choice(["0.00-0.20", "0.20-0.40", "0.10-0.30", "0.25"])}[scope]
        limits = {} if scope == "customer" else rng.choice([{}, {"max_count": 5}, {"max_budget": 5000}])
        bids.append(bid(i, f"b_{rng.randrange(8)}", scope, target, rng.randrange(50, 1000), **limits))
    awards = award(customers, bids, 100, {}, seed=9)
    assert len({a.prospect_id for a in awards}) == len(awards)
    by_id = {b.bid_id: b for b in bids}
    for a in awards:
        chosen = by_id[a.bid_id]
        the_customer = next(c for c in customers if c.prospect_id == a.prospect_id)
        assert chosen.applies_to(the_customer) and a.price_cents == chosen.price_cents >= 100
        # No applicable bid with room left paid more for this customer than the one that won it.
    for b in bids:
        won = [a for a in awards if a.bid_id == b.bid_id]
        if b.max_count is not None:
            assert len(won) <= b.max_count
        if b.max_budget_cents is not None:
            assert sum(a.price_cents for a in won) <= b.max_budget_cents


def test_equal_bids_for_one_customer_are_drawn_at_random_and_fairly_and_the_draw_repeats_by_seed():
    one = [customer("P1", 0.3)]
    bids = [bid(1, "b_a", "cluster", "c1", 500), bid(2, "b_b", "band", "0.00-1.00", 500)]
    assert winners(bids, seed=5, customers=one) == winners(bids, seed=5, customers=one)
    wins = Counter(winners(bids, seed=seed, customers=one)["P1"][0] for seed in range(2000))
    assert abs(wins["b_a"] - 1000) < 120  # about half each (4 standard deviations is 89)


@pytest.mark.parametrize(("scope", "target", "price", "limits", "fields"), [
    ("everyone", "x", 100, {}, {"scope"}),
    ("cluster", "", 100, {}, {"target"}),
    ("band", "0.3-0.2", 100, {}, {"target"}),
    ("band", "1.5", 100, {}, {"target"}),
    ("cluster", "c1", 0, {}, {"price"}),
    ("cluster", "c1", 1.5, {}, {"price"}),
    ("cluster", "c1", 100, {"max_count": 0}, {"max_count"}),
    ("customer", "P1", 100, {"max_count": 3}, {"scope"}),
])
def test_a_bad_bid_is_refused_naming_its_field(scope, target, price, limits, fields):
    problems = check_bid(scope, target, price, limits.get("max_count"), limits.get("max_budget"))
    assert {field for field, _ in problems} == fields


def test_a_sound_bid_has_no_problems():
    assert check_bid("band", "0.10-0.20", 300, max_budget_cents=10_000) == []
    assert check_bid("band", "0.15", 300) == []
    assert check_bid("customer", "P1", 300) == []


@pytest.mark.parametrize("width", [0.0, 0.025, 1.5, -0.1])
def test_a_band_width_that_gives_no_biddable_labels_is_refused(width):
    with pytest.raises(ValueError, match="hundredths"):
        build_list(POOL, ListProfile.parse([]), band_width=width)
