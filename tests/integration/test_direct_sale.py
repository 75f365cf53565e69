"""Direct sale (a seller's contract with one buyer): a contracted buyer named on the POST gets the lead
at the contract price, with no pings and no auction, and never twice."""

from __future__ import annotations

from collections import Counter

import pytest

from leadx.accounts import accounts
from leadx.contracts import topics
from leadx.contracts.events.v1 import events_pb2 as ev
from leadx.platform.db.engine import make_engine, session_factory
from tests.conftest import poll_until
from tests.integration.harness import Exchange, read_topic

pytestmark = pytest.mark.integration


@pytest.fixture
def contracted(market: Exchange) -> Exchange:
    engine = make_engine(market.stack.database_url)
    with session_factory(engine)() as session:
        accounts.add_contract(session, market.seller_id, market.buyer_ids["beta"], 2000)
    engine.dispose()
    return market


def test_a_direct_lead_goes_to_the_contracted_buyer_at_the_contract_price(contracted: Exchange):
    market = contracted
    market.buyers.buyers["alpha"].bid = 5000  # would win an auction; a direct sale has none
    lead = market.new_consumer()
    response = market.post(lead | {"buyer": market.buyer_ids["beta"]})
    assert response.status_code == 200, response.text
    lead_id = response.json()["lead_id"]
    sale = poll_until(lambda: market.sale_for(lead_id), message="the direct sale")
    assert sale.outcome == ev.SALE_OUTCOME_SOLD
    assert sale.buyer_id == market.buyer_ids["beta"] and sale.price_cents == 2000 and sale.attempts == 1
    assert [p["lead_id"] for p in market.buyers.buyers["beta"].posts] == [lead_id]
    assert all(not b.pings for b in market.buyers.buyers.values())  # nobody was pinged
    opened = [o for _, o in read_topic(market.stack.kafka_bootstrap,
                                       topics.name(market.prefix, topics.AUCTION_OPENED), ev.AuctionOpened)
              if o.lead_id == lead_id]
    assert len(opened) == 1 and opened[0].direct
    assert list(opened[0].offered_buyer_ids) == [market.buyer_ids["beta"]]

    # The same consumer again, direct to the same buyer: a duplicate for it.
    again = market.post(lead | {"buyer": market.buyer_ids["beta"]})
    assert again.status_code == 409 and again.json()["errors"][0]["code"] == "DUPLICATE"
    assert len(market.buyers.buyers["beta"].posts) == 1


def test_a_rejected_direct_lead_is_unsold_and_not_offered_to_anyone_else(contracted: Exchange):
    market = contracted
    market.buyers.buyers["alpha"].bid = 5000
    market.buyers.buyers["beta"].accept = False
    lead_id = market.post(market.new_consumer() | {"buyer": market.buyer_ids["beta"]}).json()["lead_id"]
    sale = poll_until(lambda: market.sale_for(lead_id), message="the direct sale's outcome")
    assert sale.outcome == ev.SALE_OUTCOME_UNSOLD
    assert market.buyers.buyers["alpha"].posts == [] and len(market.buyers.buyers["beta"].posts) == 1


def test_direct_leads_in_a_row_are_each_closed_once_and_posted_once(contracted: Exchange):
    """A direct auction closes at its opening while its deadline is already due: only one of the
    two may close it (a second auction.closed once made delivery post the lead twice)."""
    market = contracted
    lead_ids = [market.post(market.new_consumer() | {"buyer": market.buyer_ids["beta"]}).json()["lead_id"]
                for _ in range(20)]
    poll_until(lambda: all(market.sale_for(lead_id) for lead_id in lead_ids), message="every direct sale")
    closed = Counter(c.auction_id for _, c in read_topic(
        market.stack.kafka_bootstrap, topics.name(market.prefix, topics.AUCTION_CLOSED), ev.AuctionClosed))
    assert {lead_id: closed[lead_id] for lead_id in lead_ids} == dict.fromkeys(lead_ids, 1)
    assert sorted(p["lead_id"] for p in market.buyers.buyers["beta"].posts) == sorted(lead_ids)


def test_a_direct_sale_needs_a_contract_and_no_reserve(contracted: Exchange):
    market = contracted
    no_contract = market.post(market.new_consumer() | {"buyer": market.buyer_ids["gamma"]})
    assert no_contract.status_code == 422
    error = no_contract.json()["errors"][0]
    assert (error["code"], error["field"]) == ("FIELD_INVALID", "buyer")
    assert "no direct-sale contract" in error["message"]
    both = market.post(market.new_consumer() | {"buyer": market.buyer_ids["beta"], "min_price": 100})
    assert both.status_code == 422 and both.json()["errors"][0]["field"] == "min_price"
    other_seller = market.post(market.new_consumer() | {"buyer": market.buyer_ids["beta"]},
                               api_key=market.other_seller_key)
    assert other_seller.status_code == 422  # the contract is this seller's, not everyone's
