"""Auction rules: opening, bids (and the AutoBid profile behind them), ranking by weighted bid, first and
second price, and the fairness of the random tie-break."""

import asyncio
import json
import random
from collections import Counter
from dataclasses import replace
from decimal import Decimal

import pytest

from leadx.auction import rules
from leadx.auction.state import Auction
from services.auction.deadlines import CLOSE, PURGE, DeadlineIndex


def auction(**changes) -> Auction:
    return replace(rules.new_auction(["b1", "b2", "b3"], 500, now_ms=1_000, window_ms=3_000), **changes)


def test_a_new_auction_closes_after_its_window_or_at_once_when_nobody_is_offered_it():
    assert auction().closes_at_ms == 4_000 and auction().status == rules.OPEN
    assert rules.new_auction([], 500, now_ms=1_000, window_ms=3_000).closes_at_ms == 1_000


def test_bid_refusals_each_with_its_reason():
    assert rules.bid_refusal(None, "b1", 900, 2_000) == "no such auction"
    assert "closed" in rules.bid_refusal(auction(status=rules.CLOSED), "b1", 900, 2_000)
    assert "after the auction closed" in rules.bid_refusal(auction(), "b1", 900, 4_001)
    assert "not offered" in rules.bid_refusal(auction(), "stranger", 900, 2_000)
    assert "below the seller's minimum of 500" in rules.bid_refusal(auction(), "b1", 499, 2_000)
    assert rules.bid_refusal(auction(), "b1", 500, 4_000) is None  # at the reserve, on the deadline


def test_a_buyer_bidding_twice_keeps_its_higher_bid():
    state = rules.with_bid(rules.with_bid(auction(), "b1", 900), "b1", 700)
    assert state.bids == {"b1": 900}
    assert rules.with_bid(state, "b1", 1200).bids == {"b1": 1200}


def test_ranking_drops_bids_under_the_reserve_and_orders_by_amount():
    ranked = rules.rank_bids({"b1": 700, "b2": 1200, "b3": 400, "b4": 900}, 500, seed=1)
    assert [(r.buyer_id, r.amount_cents) for r in ranked] == [("b2", 1200), ("b4", 900), ("b1", 700)]


def test_ties_are_broken_reproducibly_by_the_seed():
    bids = {"b1": 1000, "b2": 1000, "b3": 1000}
    assert rules.rank_bids(bids, 0, seed=99) == rules.rank_bids(bids, 0, seed=99)
    orders = {tuple(r.buyer_id for r in rules.rank_bids(bids, 0, seed)) for seed in range(50)}
    assert len(orders) > 1


def test_the_tie_break_is_fair():
    wins = Counter(rules.rank_bids({"b1": 1000, "b2": 1000, "b3": 1000}, 0, seed)[0].buyer_id
                   for seed in range(6000))
    expected = 2000
    chi_square = sum((wins[b] - expected) ** 2 / expected for b in ("b1", "b2", "b3"))
    assert chi_square < 13.82, wins  # the 0.999 quantile of chi-square with 2 degrees of freedom


def test_the_tie_break_seed_is_keyed_and_stable():
    seed = rules.tie_break_seed(b"secret-one-xxxxxxxx", "AUCTION001")
    assert seed == rules.tie_break_seed(b"secret-one-xxxxxxxx", "AUCTION001")
    assert seed != rules.tie_break_seed(b"secret-two-xxxxxxxx", "AUCTION001")
    assert seed != rules.tie_break_seed(b"secret-one-xxxxxxxx", "AUCTION002")
    assert 0 <= seed < 2**63


def test_deadlines_pop_in_order_and_on_the_boundary():
    index = DeadlineIndex()
    for due, auction_id in ((300, "c"), (100, "a"), (200, "b")):
        index.push(due, auction_id, CLOSE)
    assert index.pop_due(99) == []
    assert index.pop_due(200) == [("a", CLOSE), ("b", CLOSE)]
    index.rebuild([(50, "x", PURGE), (400, "y", CLOSE)])
    assert len(index) == 2 and index.pop_due(1_000) == [("x", PURGE), ("y", CLOSE)]


def test_the_closing_task_sleeps_until_the_earliest_deadline_and_wakes_for_an_earlier_one():
    clock = {"ms": 0}
    index = DeadlineIndex()

    async def waited(longest_s: float, meanwhile=None) -> float:
        started = asyncio.get_running_loop().time()
        waiting = asyncio.ensure_future(index.wait_due(lambda: clock["ms"], longest_s))
        await asyncio.sleep(0)  # let it look at the heap
        if meanwhile:
            meanwhile()
        await waiting
        return asyncio.get_running_loop().time() - started

    # Bounds far apart, for a busy machine: an early wake takes well under a second, a sleep the
    # whole of its 0.3 s (or 5 s, where an early wake is expected).
    async def scenario() -> None:
        assert await waited(0.3) >= 0.29  # nothing due: the longest sleep
        index.push(60, "a", CLOSE)
        assert 0.05 <= await waited(5) < 1  # until a's deadline, 60 ms on
        clock["ms"] = 60
        assert await waited(5) < 1  # due already
        index.pop_due(60)
        index.push(10_000, "later", CLOSE)
        assert await waited(5, lambda: index.push(0, "direct", CLOSE)) < 1  # an earlier one wakes it
        assert index.pop_due(60) == [("direct", CLOSE)]
        assert await waited(0.3, lambda: index.push(20_000, "after", PURGE)) >= 0.29  # a later one does not
        assert await waited(5, lambda: index.rebuild([(70, "moved", CLOSE)])) < 1  # a rebuild does
        assert index.next_due_ms() == 70

    asyncio.run(scenario())


# Weights, pricing and AutoBid profiles (the Sale Completion Process, docs/auction.md).

def order(bids: dict, seed: int, weights: dict | None = None, reserve: int = 0, pricing: str = rules.FIRST_PRICE):
    return [r.buyer_id for r in rules.rank_bids(bids, reserve, seed, weights, pricing)]


def priced(bids: dict, reserve: int, weights: dict | None = None, seed: int = 1) -> list[tuple[str, int]]:
    return [(r.buyer_id, r.amount_cents) for r in rules.rank_bids(bids, reserve, seed, weights, rules.SECOND_PRICE)]


def test_a_new_auction_records_the_offered_buyers_weights_other_than_one_and_its_pricing():
    state = rules.new_auction(["b3", "b1", "b2"], 500, now_ms=1_000, window_ms=3_000,
                              weights={"b1": 2.0, "b2": 1.0, "b9": 3.0}, pricing=rules.SECOND_PRICE)
    assert state.offered == ("b1", "b2", "b3")
    assert state.weights == {"b1": 2.0}  # b2 weighs the default, b9 was not offered
    assert state.pricing == "second" and state.profiles == {} and state.bids == {}


def test_a_new_auction_defaults_to_no_weights_and_first_price():
    state = rules.new_auction(["b1"], 500, now_ms=1_000, window_ms=3_000)
    assert state.weights == {} and state.pricing == rules.FIRST_PRICE == "first" and state.profiles == {}
    assert rules.new_auction(["b1"], 500, 1_000, 3_000, weights={}).weights == {}
    assert rules.SECOND_PRICE == "second"


def test_a_bid_placed_from_a_profile_records_the_profile():
    state = rules.with_bid(auction(), "b1", 900, "p_1")
    assert state.bids == {"b1": 900} and state.profiles == {"b1": "p_1"}


def test_a_lower_or_equal_bid_changes_nothing_not_even_the_profile():
    state = rules.with_bid(auction(), "b1", 900, "p_1")
    assert rules.with_bid(state, "b1", 700, "p_2") is state
    assert rules.with_bid(state, "b1", 900, "p_2") is state
    assert rules.with_bid(state, "b1", 900).profiles == {"b1": "p_1"}


def test_a_higher_bid_replaces_the_profile_of_the_bid_that_counted():
    state = rules.with_bid(auction(), "b1", 900, "p_1")
    higher = rules.with_bid(state, "b1", 1_000, "p_2")
    assert higher.bids == {"b1": 1_000} and higher.profiles == {"b1": "p_2"}
    manual = rules.with_bid(higher, "b1", 1_100)  # the buyer's own bid: no profile placed it
    assert manual.bids == {"b1": 1_100} and manual.profiles == {}


def test_a_bid_leaves_other_buyers_bids_and_profiles_alone_and_does_not_change_the_old_state():
    state = rules.with_bid(rules.with_bid(auction(), "b1", 900, "p_1"), "b2", 800, "p_9")
    before = {"bids": dict(state.bids), "profiles": dict(state.profiles)}
    after = rules.with_bid(state, "b2", 1_200)
    assert after.bids == {"b1": 900, "b2": 1_200} and after.profiles == {"b1": "p_1"}
    assert {"bids": state.bids, "profiles": state.profiles} == before
    assert after.offered == state.offered and after.status == rules.OPEN


def test_a_state_from_before_profiles_were_recorded_still_takes_bids():
    layout = json.loads(auction().to_json())
    del layout["profiles"]
    old = Auction.from_json(json.dumps(layout))
    assert rules.with_bid(old, "b1", 900, "p_1").profiles == {"b1": "p_1"}
    assert rules.with_bid(old, "b1", 900).profiles == {}


def test_a_first_bid_of_zero_counts():
    assert rules.with_bid(auction(min_price_cents=0), "b1", 0, "p_1").bids == {"b1": 0}


# weighting


def test_a_batch_of_bids_changes_each_auction_once_with_all_its_bids():
    tables = {"A": auction(), "B": auction(), "done": auction(status=rules.CLOSED)}
    batch = [("A", "b1", 900, 2_000), ("B", "b2", 600, 2_000), ("A", "b2", 700, 2_000), ("A", "b1", 800, 2_000),
             ("done", "b1", 900, 2_000), ("A", "stranger", 900, 2_000), ("B", "b2", 650, 2_000),
             ("nowhere", "b1", 900, 2_000)]
    changed, refused = rules.apply_bids(batch, tables.get)
    assert changed["A"].bids == {"b1": 900, "b2": 700}  # the later, lower bid of b1 does not count
    assert changed["B"].bids == {"b2": 650}  # a higher bid in the same batch replaces the lower
    assert set(changed) == {"A", "B"}
    assert [index for index, _ in refused] == [4, 5, 7]
    assert ["closed" in refused[0][1], "not offered" in refused[1][1], refused[2][1]] == [
        True, True, "no such auction"]
    assert tables["A"].bids == {}  # the states read are not changed in place


def test_a_batch_replayed_after_a_crash_changes_nothing_so_writes_nothing():
    batch = [("A", "b1", 900, 2_000), ("A", "b2", 700, 2_000)]
    first, _ = rules.apply_bids(batch, {"A": auction()}.get)
    again, refused = rules.apply_bids(batch, first.get)
    assert again == {} and refused == []


def test_weight_two_on_a_400_cent_bid_beats_799():
    for seed in range(50):
        ranked = rules.rank_bids({"b_weighted": 400, "b_799": 799}, 0, seed, {"b_weighted": 2.0})
        assert [r.buyer_id for r in ranked] == ["b_weighted", "b_799"]
        assert ranked[0] == rules.Ranked("b_weighted", 400, 400, 2.0)  # first price: it pays its bid
        assert ranked[1] == rules.Ranked("b_799", 799, 799, 1.0)


def test_weight_two_on_a_400_cent_bid_loses_to_801():
    for seed in range(50):
        assert order({"b_weighted": 400, "b_801": 801}, seed, {"b_weighted": 2.0}) == ["b_801", "b_weighted"]


def test_weight_two_on_a_400_cent_bid_ties_800_exactly_and_the_tie_is_broken_at_random():
    winners = Counter(order({"b_weighted": 400, "b_800": 800}, seed, {"b_weighted": 2.0})[0] for seed in range(2000))
    assert set(winners) == {"b_weighted", "b_800"}
    chi_square = sum((winners[b] - 1000) ** 2 / 1000 for b in winners)
    assert chi_square < 10.83, winners  # the 0.999 quantile of chi-square with 1 degree of freedom


def test_weighted_bids_are_compared_exactly_300_times_1_1_ties_330():
    winners = Counter(order({"b_a": 300, "b_b": 330}, seed, {"b_a": 1.1})[0] for seed in range(400))
    assert set(winners) == {"b_a", "b_b"}
    assert 100 * 1.1 > 110  # in floats 100 x 1.1 would beat 110 outright; in decimals it ties
    winners = Counter(order({"b_a": 100, "b_b": 110}, seed, {"b_a": 1.1})[0] for seed in range(400))
    assert set(winners) == {"b_a", "b_b"}
    assert order({"b_a": 300, "b_b": 331}, 7, {"b_a": 1.1}) == ["b_b", "b_a"]
    assert order({"b_a": 301, "b_b": 330}, 7, {"b_a": 1.1}) == ["b_a", "b_b"]


def test_the_reserve_applies_to_the_bid_not_the_weighted_bid():
    ranked = rules.rank_bids({"b_heavy": 400, "b_plain": 600}, 500, 3, {"b_heavy": 3.0})
    assert [r.buyer_id for r in ranked] == ["b_plain"]
    assert [r.buyer_id for r in rules.rank_bids({"b_heavy": 500}, 500, 3, {"b_heavy": 0.5})] == ["b_heavy"]


def test_a_weight_below_one_lowers_the_rank():
    assert order({"b_light": 1000, "b_plain": 600}, 1, {"b_light": 0.5}) == ["b_plain", "b_light"]


def test_explicit_weights_of_one_rank_exactly_as_no_weights():
    bids = {"b1": 700, "b2": 1200, "b3": 700, "b4": 900}
    for seed in range(20):
        assert rules.rank_bids(bids, 500, seed, {b: 1.0 for b in bids}) == rules.rank_bids(bids, 500, seed)
        assert rules.rank_bids(bids, 500, seed, {"b_other": 5.0}) == rules.rank_bids(bids, 500, seed)


def test_ranked_bids_record_the_bid_and_the_weight():
    ranked = rules.rank_bids({"b1": 400, "b2": 700}, 0, 1, {"b1": 2.0})
    assert ranked == [rules.Ranked("b1", 400, 400, 2.0), rules.Ranked("b2", 700, 700, 1.0)]


def test_the_tie_break_is_fair_between_weighted_bids():
    bids, weights = {"b1": 1000, "b2": 500, "b3": 400}, {"b2": 2.0, "b3": 2.5}  # all weigh 1000
    wins = Counter(rules.rank_bids(bids, 0, seed, weights)[0].buyer_id for seed in range(6000))
    expected = 2000
    chi_square = sum((wins[b] - expected) ** 2 / expected for b in ("b1", "b2", "b3"))
    assert chi_square < 13.82, wins  # the 0.999 quantile of chi-square with 2 degrees of freedom


def test_a_weighted_tie_break_is_reproducible_from_its_seed():
    bids, weights = {"b1": 1000, "b2": 500, "b3": 400}, {"b2": 2.0, "b3": 2.5}
    for seed in (0, 1, 99, 2**62):
        assert rules.rank_bids(bids, 0, seed, weights) == rules.rank_bids(bids, 0, seed, weights)
    assert len({tuple(order(bids, seed, weights)) for seed in range(60)}) == 6  # every order occurs


# second price


def test_second_price_each_pays_one_cent_more_than_the_next_bid_and_the_last_pays_the_reserve():
    ranked = rules.rank_bids({"a": 1000, "b": 700, "c": 600}, 500, 1, pricing=rules.SECOND_PRICE)
    assert ranked == [rules.Ranked("a", 701, 1000, 1.0), rules.Ranked("b", 601, 700, 1.0),
                      rules.Ranked("c", 500, 600, 1.0)]


def test_second_price_never_charges_more_than_the_bid():
    assert priced({"a": 1000, "b": 1000}, 500)[0][1] == 1000  # a tie: the next bid plus one would be 1001
    assert priced({"a": 701, "b": 700}, 500) == [("a", 701), ("b", 500)]


def test_second_price_never_charges_less_than_the_reserve():
    assert priced({"a": 600, "b": 500}, 500, {"a": 2.0}) == [("a", 500), ("b", 500)]  # 251 beats 500 weighted
    assert priced({"a": 900, "b": 500}, 700) == [("a", 700)]  # b is under the reserve and dropped


def test_a_single_bidder_pays_the_reserve():
    assert priced({"a": 900}, 500) == [("a", 500)]
    assert priced({"a": 900}, 0) == [("a", 0)]
    assert priced({"a": 900}, 500, {"a": 3.0}) == [("a", 500)]
    assert priced({}, 500) == []


def test_second_price_with_weights_pays_the_least_price_whose_weighted_value_beats_the_next():
    # Weight 2.0 on a 500 bid (1000) beats 700; 351 x 2 = 702 > 700, and 350 x 2 = 700 would only tie.
    assert priced({"w": 500, "n": 700}, 0, {"w": 2.0}) == [("w", 351), ("n", 0)]
    assert priced({"w": 500, "n": 700}, 100, {"w": 2.0}) == [("w", 351), ("n", 100)]
    # The next bidder weighs more: 450 x 2 = 900, so a 1000 bid at weight 1 pays 901.
    assert priced({"a": 1000, "b": 450}, 0, {"b": 2.0}) == [("a", 901), ("b", 0)]
    # 100 / 3 = 33.3: 34 x 3 = 102 beats 100, 33 x 3 = 99 does not.
    assert priced({"a": 100, "b": 100}, 0, {"a": 3.0}) == [("a", 34), ("b", 0)]


def test_second_price_with_weights_is_exact_in_decimals():
    # 300 x 1.1 only ties 330, so the winner pays 301.
    assert priced({"a": 400, "b": 330}, 0, {"a": 1.1}) == [("a", 301), ("b", 0)]
    assert Decimal(301) * Decimal("1.1") > 330 and Decimal(300) * Decimal("1.1") == 330
    # 110 / 1.1 is 99.99999999999999 in floats, whose floor plus one would charge 100, which only ties 110.
    assert 110 / 1.1 < 100
    assert priced({"a": 200, "b": 110}, 0, {"a": 1.1}) == [("a", 101), ("b", 0)]


def test_a_weighted_tie_in_second_price_pays_the_bid():
    for seed in range(20):
        ranked = rules.rank_bids({"w": 400, "n": 800}, 0, seed, {"w": 2.0}, rules.SECOND_PRICE)
        assert ranked[0].amount_cents == ranked[0].bid_cents
        assert ranked[1].amount_cents == 0


def test_second_price_ranks_exactly_as_first_price():
    bids, weights = {"a": 1000, "b": 500, "c": 400, "d": 1000, "e": 300}, {"b": 2.0, "c": 2.5, "e": 1.1}
    for seed in range(30):
        first = rules.rank_bids(bids, 300, seed, weights)
        second = rules.rank_bids(bids, 300, seed, weights, rules.SECOND_PRICE)
        assert [r.buyer_id for r in first] == [r.buyer_id for r in second]
        assert [r.bid_cents for r in first] == [r.bid_cents for r in second] == [r.amount_cents for r in first]
        assert [r.weight for r in first] == [r.weight for r in second]


def test_first_price_is_the_default_and_pays_the_bid():
    bids = {"a": 1000, "b": 700}
    assert rules.rank_bids(bids, 500, 1) == rules.rank_bids(bids, 500, 1, None, rules.FIRST_PRICE)
    assert [(r.buyer_id, r.amount_cents) for r in rules.rank_bids(bids, 500, 1)] == [("a", 1000), ("b", 700)]


@pytest.mark.parametrize("seed", range(40))
def test_second_prices_are_the_least_whole_cent_that_beats_the_next_weighted_bid(seed):
    rng = random.Random(seed)
    reserve = rng.choice([0, 100, 500])
    bids = {f"b{i}": rng.randint(reserve, 2000) for i in range(rng.randint(1, 6))}
    weights = {b: rng.choice([0.5, 1.0, 1.1, 1.25, 2.0, 2.5, 3.0, 7.3]) for b in bids}
    ranked = rules.rank_bids(bids, reserve, seed, weights, rules.SECOND_PRICE)
    assert [r.bid_cents for r in ranked] == [bids[r.buyer_id] for r in ranked]
    for here, after in zip(ranked, [*ranked[1:], None], strict=True):
        assert reserve <= here.amount_cents <= here.bid_cents
        if after is None:
            assert here.amount_cents == reserve
            continue
        weight, next_weighted = Decimal(repr(here.weight)), Decimal(after.bid_cents) * Decimal(repr(after.weight))
        assert Decimal(here.bid_cents) * weight >= next_weighted  # ranked highest weighted bid first
        amount = Decimal(here.amount_cents)
        if here.amount_cents == here.bid_cents:  # capped at the bid: nothing cheaper beats the next
            assert amount * weight >= next_weighted
            assert here.amount_cents == reserve or (amount - 1) * weight <= next_weighted
        elif here.amount_cents == reserve:  # lifted to the reserve, which already beats the next
            assert amount * weight > next_weighted
        else:  # the least whole cent whose weighted value beats the next
            assert amount * weight > next_weighted >= (amount - 1) * weight
