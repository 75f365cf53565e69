import json

from leadx.contracts.events.v1 import events_pb2 as ev
from leadx.ledger.billing import seller_fee
from services.delivery.buyer_http import parse_bid, parse_post_reply, ping_body
from services.delivery.sale import sale_event


def test_seller_fee_rounds_half_up_to_whole_cents():
    assert seller_fee(1500, 10) == 150
    assert seller_fee(1005, 10) == 101  # 100.5 -> 101
    assert seller_fee(1004, 10) == 100
    assert seller_fee(0, 10) == 0


def test_bids_are_positive_whole_cents_in_a_200_json_reply():
    assert parse_bid(200, b'{"bid": 1234}') == 1234
    for status, body in ((200, b'{"bid": true}'), (200, b'{"bid": 12.5}'), (200, b'{"bid": -5}'),
                         (200, b'{"bid": 0}'), (200, b'{}'), (200, b'{"bid": null}'), (200, b"nope"),
                         (200, b"[1]"), (500, b'{"bid": 1234}'), (200, b"\xff")):
        assert parse_bid(status, body) is None, (status, body)


def test_post_replies():
    assert parse_post_reply(200, b'{"accepted": true}') == (True, "accepted")
    assert parse_post_reply(200, b'{"accepted": "yes"}') == (False, "rejected by buyer")
    assert parse_post_reply(503, b'{"accepted": true}') == (False, "HTTP 503")
    assert parse_post_reply(200, b"OK") == (False, "reply is not a JSON object")


def closed_auction() -> ev.AuctionClosed:
    lead = ev.Lead(lead_id="ABCDEFGHIJ", seller_id="s_1", vertical="auto_loan", submitted_at_ms=5,
                   fields={"state": "NY", "zip": "10001", "ssn": "123456789", "email": "a@b.com"})
    return ev.AuctionClosed(auction_id="ABCDEFGHIJ", lead=lead, probability=0.4, cluster="renter-new")


def test_sale_events_carry_analytics_but_no_pii():
    sold = sale_event(closed_auction(), "b_1", 1500, 150, 2, now_ms=99)
    assert (sold.outcome, sold.buyer_id, sold.price_cents, sold.seller_fee_cents) == (ev.SALE_OUTCOME_SOLD, "b_1",
                                                                                      1500, 150)
    assert (sold.state, sold.zip3, sold.cluster, sold.attempts) == ("NY", "100", "renter-new", 2)
    serialized = sold.SerializeToString()
    assert b"123456789" not in serialized and b"a@b.com" not in serialized and b"10001" not in serialized
    unsold = sale_event(closed_auction(), "", 0, 0, 0, now_ms=99)
    assert unsold.outcome == ev.SALE_OUTCOME_UNSOLD and unsold.buyer_id == "" and unsold.price_cents == 0


def test_pings_carry_only_the_minimal_subset():
    opened = ev.AuctionOpened(auction_id="A", lead_id="A", min_price_cents=500,
                              ping=ev.PingSubset(vertical="auto_loan", zip="10001", state="NY",
                                                 gross_monthly_income_cents=500000))
    body = ping_body(opened)
    assert set(body) == {"auction_id", "lead_id", "vertical", "zip", "state", "gross_monthly_income",
                         "probability", "cluster", "min_price", "closes_at_ms"}
    json.dumps(body)
