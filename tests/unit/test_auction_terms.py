"""Per-vertical auction terms from verticals.toml: window, pricing and shares, and their errors."""

from __future__ import annotations

import pytest

from leadx.auction.terms import AuctionTerms, terms_by_vertical
from leadx.leads.verticals import load_verticals


def test_the_shipped_verticals_terms():
    terms = terms_by_vertical(load_verticals())
    assert terms["auto_loan"] == AuctionTerms(None, "first", 1)
    assert terms["auto_insurance"] == AuctionTerms(None, "second", 3)


def test_a_vertical_without_a_window_takes_the_default_and_one_with_a_window_its_own():
    assert AuctionTerms().window_ms(3_000) == 3_000
    assert AuctionTerms.from_table("live", {"window_seconds": 120}).window_ms(3_000) == 120_000
    assert AuctionTerms.from_table("fast", {"window_seconds": 1.5}).window_ms(3_000) == 1_500


@pytest.mark.parametrize("table, fragment", [
    ({"window": 3}, "unknown setting(s) window"),
    ({"window_seconds": 0}, "window_seconds must be a number of seconds above 0"),
    ({"window_seconds": "3"}, "window_seconds must be a number of seconds above 0"),
    ({"window_seconds": True}, "window_seconds must be a number of seconds above 0"),
    ({"pricing": "third"}, "pricing must be one of first, second"),
    ({"shares": 0}, "shares must be a whole number from 1 to 10"),
    ({"shares": 11}, "shares must be a whole number from 1 to 10"),
    ({"shares": 2.0}, "shares must be a whole number from 1 to 10"),
])
def test_bad_terms_are_refused_naming_the_vertical(table, fragment):
    with pytest.raises(ValueError) as caught:
        AuctionTerms.from_table("x", table)
    assert str(caught.value).startswith("[x.auction]: ") and fragment in str(caught.value)
