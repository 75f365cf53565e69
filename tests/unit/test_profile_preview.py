"""A buy profile's preview (leadx.accounts.profile_preview) on SQLite and PostgreSQL: the buyer's
latest offered leads, newest first and only its own, judged by a profile as the auction judged them
(fields, scores, the windows on the buyer's clock when each was offered)."""

from __future__ import annotations

import datetime as dt

from leadx.accounts.profile_preview import BELOW_MINIMUM, CLOSED, NO_MATCH, latest_offers, preview
from leadx.auction.selection.profiles import Profile
from leadx.auction.selection.windows import zone
from leadx.platform.db.models import AuctionOffer, Lead

MONDAY_NOON = int(dt.datetime(2026, 11, 30, 12, 0, tzinfo=dt.UTC).timestamp() * 1000)
HOUR_MS = 3600 * 1000


def add_lead(session, lead_id: str, state: str, income: str, probability: float, timing: float | None,
             offered_to: dict[str, int], minimum: int = 0) -> None:
    session.add(Lead(id=lead_id, seller_id="s_1", vertical="auto_loan", state=state, status="sold", status_rank=9,
                     min_price_cents=minimum,
                     fields={"state": state, "gross_monthly_income": income, "email": "x@example.com"},
                     submitted_at_ms=0, updated_at_ms=0, probability=probability, cluster="c2",
                     timing_factor=timing))
    session.add_all(AuctionOffer(buyer_id=buyer, lead_id=lead_id, offered_at_ms=at) for buyer, at in offered_to.items())


def test_the_latest_offers_are_the_buyers_own_newest_first_and_limited(sessions):
    with sessions() as session:
        add_lead(session, "LEAD00000A", "TX", "500000", 0.5, 0.9, {"b_1": MONDAY_NOON, "b_2": MONDAY_NOON})
        add_lead(session, "LEAD00000B", "NY", "200000", 0.2, None, {"b_1": MONDAY_NOON + HOUR_MS})
        add_lead(session, "LEAD00000C", "TX", "900000", 0.8, 0.4, {"b_2": MONDAY_NOON + 2 * HOUR_MS})
        session.commit()
        mine = latest_offers(session, "b_1")
        assert [o.lead_id for o in mine] == ["LEAD00000B", "LEAD00000A"]
        assert mine[0].view.timing_factor == 1.0 and mine[1].view.timing_factor == 0.9  # unknown: the best
        assert (mine[1].view.probability, mine[1].view.cluster, mine[1].state) == (0.5, "c2", "TX")
        assert [o.lead_id for o in latest_offers(session, "b_2", limit=1)] == ["LEAD00000C"]


def test_each_offer_is_judged_by_the_profiles_criteria_prices_hours_and_the_sellers_minimum(sessions):
    with sessions() as session:
        add_lead(session, "LEAD00000A", "TX", "500000", 0.5, 0.9, {"b_1": MONDAY_NOON})
        add_lead(session, "LEAD00000B", "NY", "200000", 0.2, 0.9, {"b_1": MONDAY_NOON + HOUR_MS})
        add_lead(session, "LEAD00000C", "TX", "100000", 0.8, 0.9, {"b_1": MONDAY_NOON + 10 * HOUR_MS})
        add_lead(session, "LEAD00000D", "NY", "100000", 0.1, 0.9, {"b_1": MONDAY_NOON + 2 * HOUR_MS}, minimum=1500)
        session.commit()
        offers = latest_offers(session, "b_1")
    spec = {"name": "texas days", "windows": [{"from": "mon 08:00", "to": "mon 18:00"}],
            "criteria": [{"states": ["TX"], "income": {"min": 300000}, "price": 3000},
                         {"states": ["TX", "NY"], "price": {"per_probability": 10000}}]}
    rows = preview(Profile.parse("p_x", "b_1", spec), zone("UTC"), offers)
    assert [(r.lead_id, r.takes, r.bid_cents, r.why_not) for r in rows] == [
        ("LEAD00000C", False, None, CLOSED),  # Monday 22:00: outside its hours
        ("LEAD00000D", False, 1000, BELOW_MINIMUM),  # 10000 x 0.1, under the seller's $15.00
        ("LEAD00000B", True, 2000, ""),  # NY: the second criterion, 10000 x 0.2
        ("LEAD00000A", True, 5000, "")]  # TX with the income: the better of 3000 and 10000 x 0.5
    # A wholesale buyer's profile filters pings: the seller's minimum is for the bids it makes itself.
    wholesale = preview(Profile.parse("p_x", "b_1", spec), zone("UTC"), offers, autobid=False)
    assert [r.takes for r in wholesale] == [False, True, True, True]
    # On the buyer's clock: 22:00 UTC is 16:00 in Chicago, inside its hours there.
    chicago = preview(Profile.parse("p_x", "b_1", spec), zone("America/Chicago"), offers)
    assert (chicago[0].takes, chicago[0].bid_cents) == (True, 8000)
    elsewhere = preview(Profile.parse("p_x", "b_1", {"name": "n", "price": 1, "criteria": [{"states": ["CA"]}]}),
                        zone("UTC"), offers)
    assert {r.why_not for r in elsewhere} == {NO_MATCH}
    # A paused profile is judged as if resumed: the preview is for trying it before it bids again.
    paused = preview(Profile.parse("p_x", "b_1", {**spec, "active": False}), zone("UTC"), offers)
    assert [(r.takes, r.bid_cents) for r in paused] == [(r.takes, r.bid_cents) for r in rows]
