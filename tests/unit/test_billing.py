"""Double-entry bookkeeping and the return rules, as pure functions."""

from __future__ import annotations

import pytest

from leadx.ledger import billing
from leadx.ledger.returns import ReturnPolicy, reason_problem
from leadx.platform.utc_days import DAY_MS


def test_a_sale_charges_the_buyer_pays_the_seller_less_the_fee_and_books_the_fee():
    entries = billing.sale_entries("b_1", "s_1", 1500, 150)
    assert {(e.account, e.amount_cents) for e in entries} == {
        ("buyer:b_1", -1500), ("seller:s_1", 1350), ("platform:fees", 150)}
    assert sum(e.amount_cents for e in entries) == 0


def test_a_return_is_the_exact_reverse_of_its_sale():
    sale = billing.sale_entries("b_1", "s_1", 1999, 200)
    returned = billing.return_entries("b_1", "s_1", 1999, 200)
    assert {(e.account, e.amount_cents) for e in returned} == {
        ("buyer:b_1", 1999), ("seller:s_1", -1799), ("platform:fees", -200)}
    assert sum(e.amount_cents for e in sale + returned) == 0


@pytest.mark.parametrize("price, fee", [(-1, 0), (100, 101), (100, -1)])
def test_impossible_amounts_are_refused(price, fee):
    with pytest.raises(ValueError):
        billing.sale_entries("b_1", "s_1", price, fee)


def test_the_fee_is_rounded_half_up_in_decimal():
    assert billing.seller_fee(5, 10) == 1  # 0.5 -> 1 (binary floating point would give 0.5000000001 or 0.4999)
    assert billing.seller_fee(1005, 10) == 101
    assert billing.seller_fee(1004, 10) == 100
    assert billing.seller_fee(333, 12.5) == 42  # 41.625
    assert billing.seller_fee(1000, 0) == 0 and billing.seller_fee(1000, 100) == 1000
    with pytest.raises(ValueError):
        billing.seller_fee(1000, 101)


def test_the_return_window_is_inclusive_to_the_millisecond():
    policy = ReturnPolicy(window_days=7, rate_cap_percent=100)
    sold = 1_000_000
    assert policy.refusal(sold, sold + 7 * DAY_MS, purchases=1, returns=0) is None
    late = policy.refusal(sold, sold + 7 * DAY_MS + 1, purchases=1, returns=0)
    assert late.code == "RETURN_WINDOW_CLOSED" and "7 days" in late.message


def test_the_return_rate_after_this_return_may_reach_the_cap_but_not_pass_it():
    policy = ReturnPolicy(window_days=7, rate_cap_percent=25)
    assert policy.refusal(0, 0, purchases=4, returns=0) is None  # 1 of 4 = 25%
    refused = policy.refusal(0, 0, purchases=4, returns=1)  # 2 of 4 = 50%
    assert refused.code == "RETURN_RATE_EXCEEDED" and "2 of 4" in refused.message
    assert policy.refusal(0, 0, purchases=3, returns=0).code == "RETURN_RATE_EXCEEDED"  # 1 of 3 = 33%
    assert policy.refusal(0, 0, purchases=8, returns=1) is None  # 2 of 8
    assert ReturnPolicy(rate_cap_percent=0).refusal(0, 0, purchases=100, returns=0).code == "RETURN_RATE_EXCEEDED"


def test_a_return_policy_refuses_nonsense_settings():
    for bad in ({"window_days": -1}, {"rate_cap_percent": 101}, {"rate_period_days": 0}):
        with pytest.raises(ValueError):
            ReturnPolicy(**bad)


def test_a_return_needs_a_reason_of_reasonable_length():
    assert "required" in reason_problem("  ")
    assert "500" in reason_problem("x" * 501)
    assert reason_problem("consumer says they never applied") is None
