"""Ratings between trading partners: stars, replacement, averages, who may rate."""

from __future__ import annotations

import pytest

from leadx.accounts import accounts, ratings
from leadx.accounts.ids import UnknownAccount
from leadx.platform.db.models import Sale


@pytest.mark.parametrize("stars", [1, 5, "3", " 4 "])
def test_whole_stars_from_one_to_five_are_fine(stars):
    assert ratings.stars_problem(stars) is None


@pytest.mark.parametrize("stars", [0, 6, 2.5, "", "five", True, None, [3]])
def test_anything_else_is_refused_with_the_rule(stars):
    assert ratings.stars_problem(stars) == "stars must be a whole number from 1 to 5"


def test_a_new_rating_replaces_the_raters_last_and_the_average_counts_each_rater_once(sessions):
    with sessions.begin() as session:
        for rater, stars in (("b_1", 5), ("b_2", 2), ("b_1", 3)):
            ratings.rate(session, rater, "s_1", stars, 1_000)
            session.flush()
        with pytest.raises(ratings.RatingRefused):
            ratings.rate(session, "b_3", "s_1", 9, 1_000)
    with sessions() as session:
        assert ratings.view(session, "b_1", "s_1") == ratings.RatingView("s_1", 3, 2.5, 2)
        assert ratings.view(session, "b_9", "s_1") == ratings.RatingView("s_1", None, 2.5, 2)
        assert ratings.view(session, "b_1", "s_2") == ratings.RatingView("s_2", None, None, 0)


def test_only_parties_to_a_sale_have_traded(sessions):
    with sessions.begin() as session:
        for lead_id, sold in (("L1", True), ("L2", False)):
            session.add(Sale(lead_id=lead_id, auction_id=lead_id, sold=sold, buyer_id=f"b_{lead_id}", seller_id="s_1",
                             price_cents=100, seller_fee_cents=10, vertical="auto_loan", state="NY", attempts=1,
                             closed_at_ms=1))
    with sessions() as session:
        assert ratings.have_traded(session, "b_L1", "s_1")
        assert not ratings.have_traded(session, "b_L2", "s_1")  # unsold: the buyer rejected it
        assert not ratings.have_traded(session, "b_L1", "s_2")


def test_a_trading_partner_rates_the_other_side_and_no_one_else_does(sessions):
    """The rule the API and the portal share: a buyer rates a seller it bought from, a seller a
    buyer it sold to; an account that does not exist, or one not traded with, is refused."""
    with sessions() as session:  # the accounts' functions commit themselves
        seller = accounts.create_seller(session, "Northwind leads").id
        buyer = accounts.create_buyer(session, "Bank one", "", "", kind="autobid").id
        other = accounts.create_buyer(session, "Bank two", "", "", kind="autobid").id
        session.add(Sale(lead_id="L1", auction_id="L1", sold=True, buyer_id=buyer, seller_id=seller, price_cents=100,
                         seller_fee_cents=10, vertical="auto_loan", state="NY", attempts=1, closed_at_ms=1))
        session.commit()
    with sessions.begin() as session:
        ratings.rate_trading_partner(session, "seller", buyer, seller, 4, 1_000)
        ratings.rate_trading_partner(session, "buyer", seller, buyer, 5, 1_000)
        with pytest.raises(ratings.NotTradingPartners, match="once you have traded with it"):
            ratings.rate_trading_partner(session, "seller", other, seller, 1, 1_000)
        with pytest.raises(ratings.NotTradingPartners):
            ratings.rate_trading_partner(session, "buyer", seller, other, 1, 1_000)
        with pytest.raises(UnknownAccount):
            ratings.rate_trading_partner(session, "seller", buyer, "s_nobody", 3, 1_000)
    with sessions() as session:
        assert ratings.view(session, buyer, seller) == ratings.RatingView(seller, 4, 4.0, 1)
        assert ratings.view(session, seller, buyer) == ratings.RatingView(buyer, 5, 5.0, 1)
