"""Auction rules: opening, bids, ranking, and the fairness of the random tie-break."""

from collections import Counter

from services.auction import rules
from services.auction.deadlines import CLOSE, PURGE, DeadlineIndex


def auction(**changes) -> dict:
    return rules.new_auction(["b1", "b2", "b3"], 500, now_ms=1_000, window_ms=3_000) | changes


def test_a_new_auction_closes_after_its_window_or_at_once_when_nobody_is_offered_it():
    assert auction()["closes_at_ms"] == 4_000 and auction()["status"] == rules.OPEN
    assert rules.new_auction([], 500, now_ms=1_000, window_ms=3_000)["closes_at_ms"] == 1_000


def test_bid_refusals_each_with_its_reason():
    assert rules.bid_refusal(None, "b1", 900, 2_000) == "no such auction"
    assert "closed" in rules.bid_refusal(auction(status=rules.CLOSED), "b1", 900, 2_000)
    assert "after the auction closed" in rules.bid_refusal(auction(), "b1", 900, 4_001)
    assert "not offered" in rules.bid_refusal(auction(), "stranger", 900, 2_000)
    assert "below the seller's minimum of 500" in rules.bid_refusal(auction(), "b1", 499, 2_000)
    assert rules.bid_refusal(auction(), "b1", 500, 4_000) is None  # at the reserve, on the deadline


def test_a_buyer_bidding_twice_keeps_its_higher_bid():
    state = rules.with_bid(rules.with_bid(auction(), "b1", 900), "b1", 700)
    assert state["bids"] == {"b1": 900}
    assert rules.with_bid(state, "b1", 1200)["bids"] == {"b1": 1200}


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
