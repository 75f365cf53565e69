"""Buyer Selection, AutoBid and the auction's rules, through the real services: partnerships and
the sellers' three cases, AutoBid profiles bidding (and accepting) for their buyers, weights,
second price, the bid API's refusals, and caps held exactly under simultaneous sales.

Each test makes its own seller and buyers (in SQL, as the admin API and CLI do), so that none
depends on another's partnerships; the services re-read accounts every half second here."""

from __future__ import annotations

import concurrent.futures
import random
import time
from datetime import UTC, datetime, timedelta

import httpx
import pytest

from leadx.accounts import accounts, partnerships
from leadx.accounts import buyer_settings as buyer_profiles
from leadx.auction.selection.windows import DAYS
from leadx.contracts import topics
from leadx.contracts.events.v1 import events_pb2 as ev
from leadx.dev.demo.buyers import BuyerBehaviour
from leadx.dev.demo.consumers import make_consumer
from tests import http_calls as http
from tests.conftest import poll_until
from tests.integration.harness import Exchange, read_topic, start_exchange

pytestmark = pytest.mark.integration

REFRESH_S = 0.5
# The bid API test places three bids after the ping inside one window. On loaded CI machines a
# 2 s and then a 3 s window each closed first once, so that test starts again with a fresh lead
# when it does.
WINDOW_S = 3.0


@pytest.fixture(scope="module")
def market(tmp_path_factory, kafka_bootstrap, redis_url) -> Exchange:
    prefix = f"{tmp_path_factory.mktemp('sel').name[-6:]}."
    exchange = start_exchange(tmp_path_factory.mktemp("selection"), kafka_bootstrap, redis_url, prefix, [],
                              ["intake", "dedup", "scoring", "auction", "delivery", "ledger"], window_s=WINDOW_S,
                              DEDUP_PLATFORM_SCOPE="false", ACCOUNTS_REFRESH_SECONDS=str(REFRESH_S),
                              RETURN_RATE_CAP_PERCENT="100")
    yield exchange
    exchange.stop()


class Accounts:
    """Makes a test's own seller and buyers, and waits for the services to see them."""

    def __init__(self, market: Exchange, tag: str) -> None:
        self.market, self.tag = market, tag
        self.seller_key = ""
        self.seller_id = ""
        self.ids: dict[str, str] = {}
        self.keys: dict[str, str] = {}
        with market.sql() as session:
            created = accounts.create_seller(session, f"{tag} seller")
        self.seller_id, self.seller_key = created.id, created.api_key

    def wholesale(self, name: str, bid: int | None, partner: bool = True, **settings) -> BuyerBehaviour:
        server_name = f"{self.tag}-{name}"
        behaviour = self.market.buyers.add(server_name, BuyerBehaviour(bid=bid))
        self._create(name, self.market.buyers.ping_url(server_name), self.market.buyers.post_url(server_name),
                     "wholesale", partner, settings)
        return behaviour

    def autobid(self, name: str, profiles: list[dict], partner: bool = True, **settings) -> None:
        self._create(name, "", "", "autobid", partner, settings)
        with self.market.sql() as session:
            buyer_profiles.replace_profiles(session, self.ids[name], profiles)

    def _create(self, name: str, ping_url: str, post_url: str, kind: str, partner: bool, settings: dict) -> None:
        with self.market.sql() as session:
            created = accounts.create_buyer(session, f"{self.tag} {name}", ping_url, post_url, kind=kind)
            self.ids[name], self.keys[name] = created.id, created.api_key
            if settings:
                buyer_profiles.update_buyer(session, created.id, **settings)
            if partner:
                partnerships.add_partnership(session, self.seller_id, created.id)

    def seen(self) -> None:
        time.sleep(REFRESH_S * 3)  # every service has re-read the accounts

    def post(self, lead: dict) -> str:
        response = self.market.post(lead, api_key=self.seller_key)
        assert response.status_code == 200, response.text
        return response.json()["lead_id"]

    def buyer_name(self, buyer_id: str) -> str:
        return {v: k for k, v in self.ids.items()}.get(buyer_id, "")


def sale_of(market: Exchange, lead_id: str) -> ev.SaleClosed:
    # 60 s: a loaded CI machine once took over 30 s for a sale here.
    return poll_until(lambda: market.sale_for(lead_id), timeout_s=60, message=f"sale.closed for {lead_id}")


def closed_auction(market: Exchange, lead_id: str) -> ev.AuctionClosed:
    def find():
        events = read_topic(market.stack.kafka_bootstrap, topics.name(market.prefix, topics.AUCTION_CLOSED),
                            ev.AuctionClosed)
        return next((closed for _, closed in events if closed.auction_id == lead_id), None)
    return poll_until(find, timeout_s=30, message=f"auction.closed for {lead_id}")


def pinged(behaviour: BuyerBehaviour, lead_id: str) -> bool:
    return any(p["lead_id"] == lead_id for p in behaviour.pings)


def test_only_partnered_buyers_that_the_seller_sells_to_are_offered_the_lead(market: Exchange):
    # Three cases: a seller selling to all but a blocked buyer, one selling only to named
    # buyers, and buyers that never partnered with the seller.
    to_all = Accounts(market, "all")
    kept = to_all.wholesale("kept", bid=1500)
    blocked = to_all.wholesale("blocked", bid=3000)
    stranger = to_all.wholesale("stranger", bid=5000, partner=False)
    named = Accounts(market, "named")
    chosen = named.wholesale("chosen", bid=1200)
    unnamed = named.wholesale("unnamed", bid=4000)
    with market.sql() as session:
        partnerships.set_choice(session, to_all.seller_id, to_all.ids["blocked"], "block")
        partnerships.set_sells_to(session, named.seller_id, "named")
        partnerships.set_choice(session, named.seller_id, named.ids["chosen"], "allow")
        partnerships.set_choice(session, named.seller_id, to_all.ids["kept"], "allow")  # named, not partnered
    lonely = Accounts(market, "lonely")
    to_all.seen()

    # Side by side: each POST is answered once its auction closes, and the three are independent.
    with concurrent.futures.ThreadPoolExecutor(3) as pool:
        first, second, third = pool.map(Accounts.post, (to_all, named, lonely),
                                        [make_consumer(market.rng) | {"min_price": 1000} for _ in range(3)])

    sale = sale_of(market, first)
    assert sale.buyer_id == to_all.ids["kept"] and sale.price_cents == 1500
    assert pinged(kept, first) and not pinged(blocked, first) and not pinged(stranger, first)
    sale = sale_of(market, second)
    assert sale.buyer_id == named.ids["chosen"] and sale.price_cents == 1200
    assert pinged(chosen, second) and not pinged(unnamed, second) and not pinged(kept, second)
    assert sale_of(market, third).outcome == ev.SALE_OUTCOME_UNSOLD
    assert not any(pinged(b, third) for b in market.buyers.buyers.values())


def test_an_autobid_buyer_is_bid_for_by_its_best_active_profile_and_accepted_on_its_behalf(market: Exchange):
    party = Accounts(market, "auto")
    lead = make_consumer(market.rng) | {"min_price": 1000}
    party.autobid("dealer", [
        {"name": "its state", "price": 2100,
         "criteria": [{"states": [lead["state"]]}, {"states": ["ZZ"], "price": 9000}]},
        {"name": "never now", "windows": [closed_window()], "price": 9900},
        {"name": "by probability", "criteria": [{"price": {"per_probability": 1000}}]},
    ])
    bidder = party.wholesale("bidder", bid=2000)
    party.seen()

    lead_id = party.post(lead)
    sale = sale_of(market, lead_id)
    assert sale.outcome == ev.SALE_OUTCOME_SOLD and sale.buyer_id == party.ids["dealer"]
    assert sale.price_cents == 2100 and sale.attempts == 1
    assert pinged(bidder, lead_id) and bidder.posts == []  # the wholesale buyer lost
    closed = closed_auction(market, lead_id)
    winner = closed.ranked_bids[0]
    assert winner.buyer_id == party.ids["dealer"] and winner.bid_cents == 2100 and winner.profile_id.startswith("p_")
    with market.sql() as session:
        settings = buyer_profiles.buyer_settings(session, party.ids["dealer"])
    assert winner.profile_id == next(p["id"] for p in settings["profiles"] if p["name"] == "its state")
    # Accepted on its behalf, it reads the lead with its own key; no other buyer can.
    read = poll_until(lambda: read_lead(market, lead_id, party.keys["dealer"]), message="the bought lead")
    assert read["lead"]["email"] == lead["email"] and read["price_cents"] == 2100 and read["status"] == "sold"
    other = http.get(f"{market.intake_url()}/v1/leads/{lead_id}", timeout=10,
                     headers={"Authorization": f"Bearer {party.keys['bidder']}"})
    assert other.status_code == 404 and other.json()["errors"][0]["code"] == "LEAD_NOT_FOUND"


def read_lead(market: Exchange, lead_id: str, key: str) -> dict | None:
    response = http.get(f"{market.intake_url()}/v1/leads/{lead_id}", timeout=10,
                        headers={"Authorization": f"Bearer {key}"})
    return response.json() if response.status_code == 200 else None


def test_an_autobid_buyer_whose_profiles_do_not_match_is_not_offered_the_lead(market: Exchange):
    party = Accounts(market, "nomatch")
    party.autobid("picky", [{"name": "elsewhere", "price": 5000, "criteria": [{"states": ["ZZ"]}]}])
    bidder = party.wholesale("bidder", bid=1300)
    party.seen()
    lead_id = party.post(make_consumer(market.rng) | {"min_price": 1000})
    assert sale_of(market, lead_id).buyer_id == party.ids["bidder"]
    assert pinged(bidder, lead_id)
    assert [b.buyer_id for b in closed_auction(market, lead_id).ranked_bids] == [party.ids["bidder"]]


def test_a_weighted_bid_beats_a_higher_plain_bid(market: Exchange):
    # Weight 2.0 on a $4 bid beats any bid or weighted bid up to $8.
    party = Accounts(market, "weights")
    party.wholesale("favoured", bid=400, weight=2.0)
    party.wholesale("richer", bid=799)
    party.seen()
    lead_id = party.post(make_consumer(market.rng) | {"min_price": 300})
    sale = sale_of(market, lead_id)
    assert sale.buyer_id == party.ids["favoured"] and sale.price_cents == 400
    ranked = closed_auction(market, lead_id).ranked_bids
    assert [(b.buyer_id, b.weight) for b in ranked] == [(party.ids["favoured"], 2.0), (party.ids["richer"], 1.0)]


def test_auto_insurance_is_a_shared_second_price_sale_to_up_to_three_buyers(market: Exchange):
    # Ranked 1500, 1200, 1100, 1050 over a reserve of 1000: second price makes them pay 1201, 1101,
    # 1051 and 1000. The second rejects the lead, so it goes to the first, third and fourth.
    party = Accounts(market, "shared")
    for name, amount in (("first", 1500), ("second", 1200), ("third", 1100), ("fourth", 1050)):
        party.wholesale(name, bid=amount)
    market.buyers.buyers["shared-second"].accept = False
    party.seen()
    lead_id = party.post(make_consumer(market.rng, "auto_insurance") | {"min_price": 1000})

    sales = poll_until(lambda: len(s := sales_of(market, lead_id)) == 3 and s, message="three sales")
    assert [(party.buyer_name(s.buyer_id), s.price_cents) for s in sales] == [
        ("first", 1201), ("third", 1051), ("fourth", 1000)]
    assert all(s.outcome == ev.SALE_OUTCOME_SOLD for s in sales)
    closed = closed_auction(market, lead_id)
    assert (closed.pricing, closed.shares) == ("second", 3)
    assert [(b.bid_cents, b.amount_cents) for b in closed.ranked_bids] == [
        (1500, 1201), (1200, 1101), (1100, 1051), (1050, 1000)]
    assert market.buyers.buyers["shared-first"].posts[0]["price"] == 1201
    assert len(market.buyers.buyers["shared-second"].posts) == 1  # posted, rejected

    # The ledger has a sale per buyer, and one buyer's return reverses only its own.
    rows = poll_until(lambda: len(r := [x for x in market.sale_rows() if x.lead_id == lead_id]) == 3 and r,
                      message="three sale rows")
    assert sorted(r.price_cents for r in rows) == [1000, 1051, 1201]
    returned = http.post(f"{market.intake_url()}/v1/leads/{lead_id}/return", json={"reason": "wrong number"},
                         headers={"Authorization": f"Bearer {party.keys['third']}"}, timeout=10)
    assert returned.status_code == 200, returned.text
    poll_until(lambda: {r.buyer_id: r.returned for r in market.sale_rows() if r.lead_id == lead_id} == {
        party.ids["first"]: False, party.ids["third"]: True, party.ids["fourth"]: False}, message="one returned")
    again = http.post(f"{market.intake_url()}/v1/leads/{lead_id}/return", json={"reason": "no"},
                      headers={"Authorization": f"Bearer {party.keys['second']}"}, timeout=10)
    assert again.status_code == 404  # it rejected the lead: it bought nothing to return


def sales_of(market: Exchange, lead_id: str) -> list[ev.SaleClosed]:
    return [sale for _, sale in market.sales_events() if sale.lead_id == lead_id]


def bid(market: Exchange, auction_id: str, key: str, amount: int) -> httpx.Response:
    return http.post(f"{market.intake_url()}/v1/auctions/{auction_id}/bids", json={"bid": amount},
                     headers={"Authorization": f"Bearer {key}"}, timeout=10)


def test_bids_through_the_bid_api_count_and_late_low_and_foreign_bids_are_refused(market: Exchange):
    party = Accounts(market, "api")
    quiet = party.wholesale("quiet", bid=None)  # answers pings without a bid, bids through the API
    party.wholesale("loud", bid=1400)
    outsider = Accounts(market, "outsider")
    outsider.wholesale("foreign", bid=None)
    party.seen()
    # Three bids must land inside one window. A machine loaded enough to let the window close
    # first answers AUCTION_CLOSED (which the end of the test checks on purpose); then the
    # scenario starts again with a fresh lead, three leads at most.
    for _ in range(3):
        lead_id = party.post(make_consumer(market.rng) | {"min_price": 1000})
        poll_until(lambda lead_id=lead_id: pinged(quiet, lead_id), message="the ping")
        with concurrent.futures.ThreadPoolExecutor(3) as pool:  # side by side: the window is short
            first, lower, low = pool.map(bid, [market] * 3, [lead_id] * 3, [party.keys["quiet"]] * 3,
                                         (1700, 1600, 999))
        if 409 not in (first.status_code, lower.status_code, low.status_code):
            break
        sale_of(market, lead_id)
    else:
        pytest.fail("three bids placed after the ping never fitted in one window")

    assert first.status_code == 202, first.text
    assert first.json()["status"] == "accepted" and first.json()["bid"] == 1700
    assert lower.status_code == 202  # the higher bid stays
    assert low.status_code == 422 and low.json()["errors"][0]["code"] == "BID_TOO_LOW"
    assert "1000 cents" in low.json()["errors"][0]["message"]
    foreign = bid(market, lead_id, outsider.keys["foreign"], 5000)
    assert foreign.status_code == 404 and foreign.json()["errors"][0]["code"] == "AUCTION_NOT_FOUND"
    unknown = bid(market, "nosuchlead", party.keys["quiet"], 5000)
    assert unknown.status_code == 404 and unknown.json()["errors"][0]["code"] == "AUCTION_NOT_FOUND"
    anonymous = http.post(f"{market.intake_url()}/v1/auctions/{lead_id}/bids", json={"bid": 1}, timeout=10)
    assert anonymous.status_code == 401
    missing = bid_body(market, lead_id, party.keys["quiet"], {})
    assert missing.status_code == 422 and missing.json()["errors"][0]["code"] == "FIELD_MISSING"

    sale = sale_of(market, lead_id)
    assert sale.buyer_id == party.ids["quiet"] and sale.price_cents == 1700
    late = bid(market, lead_id, party.keys["quiet"], 9000)
    assert late.status_code == 409 and late.json()["errors"][0]["code"] == "AUCTION_CLOSED"
    assert [b.bid_cents for b in closed_auction(market, lead_id).ranked_bids] == [1700, 1400]


def bid_body(market: Exchange, auction_id: str, key: str, body: dict) -> httpx.Response:
    return http.post(f"{market.intake_url()}/v1/auctions/{auction_id}/bids", json=body,
                     headers={"Authorization": f"Bearer {key}"}, timeout=10)


def test_caps_hold_exactly_when_many_leads_close_at_once(market: Exchange):
    # Eight leads at once: every auction opens before any sale is counted, so all offer the lead to
    # the capped buyer; delivery's atomic count lets exactly three through.
    party = Accounts(market, "caps")
    party.autobid("capped", [{"name": "all", "price": 2000}], caps={"leads_per_day": 3})
    party.autobid("backup", [{"name": "all", "price": 1500}])
    party.seen()
    leads = [make_consumer(random.Random(n)) | {"min_price": 1000} for n in range(500, 508)]
    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        lead_ids = list(pool.map(party.post, leads))
    sales = [sale_of(market, lead_id) for lead_id in lead_ids]
    winners = [party.buyer_name(s.buyer_id) for s in sales]
    assert winners.count("capped") == 3 and winners.count("backup") == 5, winners

    # Now capped, it is no longer offered leads at all.
    lead_id = party.post(make_consumer(market.rng) | {"min_price": 1000})
    assert sale_of(market, lead_id).buyer_id == party.ids["backup"]
    assert [b.buyer_id for b in closed_auction(market, lead_id).ranked_bids] == [party.ids["backup"]]


def test_a_capped_profile_stops_bidding_while_the_buyers_other_profiles_go_on(market: Exchange):
    party = Accounts(market, "pcaps")
    party.autobid("dealer", [{"name": "premium", "price": 3000, "caps": {"spend_per_day_cents": 3000}},
                             {"name": "standard", "price": 1200}])
    party.seen()
    first = sale_of(market, party.post(make_consumer(market.rng) | {"min_price": 1000}))
    second = sale_of(market, party.post(make_consumer(market.rng) | {"min_price": 1000}))
    assert (first.buyer_id, first.price_cents) == (party.ids["dealer"], 3000)
    assert (second.buyer_id, second.price_cents) == (party.ids["dealer"], 1200)


def closed_window() -> dict:
    """A one-hour weekly window twelve hours from now (UTC): never active during a test."""
    later = datetime.now(UTC) + timedelta(hours=12)
    end = later + timedelta(hours=1)
    return {"from": f"{DAYS[later.weekday()]} {later:%H}:00", "to": f"{DAYS[end.weekday()]} {end:%H}:00"}
