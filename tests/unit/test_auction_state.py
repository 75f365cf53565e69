"""An auction's state (leadx.auction.state) and its JSON form in the auction worker's table changelog
(services.auction.table): a worker upgraded while older records sit in the changelog reads them, and
what it writes keeps the keys and values an earlier worker reads."""

import base64
import json
from dataclasses import replace

import faust
from faust.serializers import codecs

from leadx.auction import rules
from leadx.auction.state import Auction
from leadx.contracts.events.v1 import events_pb2 as ev
from services.auction.table import AuctionCodec, auctions_table

SCORED = ev.LeadScored(probability=0.4, cluster="renter-new",
                       verified=ev.LeadVerified(lead=ev.Lead(lead_id="L1", vertical="auto_loan"))).SerializeToString()

# The records as the worker wrote them before its state was typed: an open auction (with its lead,
# base64), and what it kept of one once closed.
OPEN_RECORD = {"status": "open", "opened_at_ms": 1_000, "closes_at_ms": 4_000, "min_price_cents": 500,
               "offered": ["b1", "b2", "b3"], "bids": {"b1": 900, "b2": 700}, "weights": {"b1": 2.0},
               "profiles": {"b1": "p_1"}, "pricing": "second", "shares": 3,
               "scored": base64.b64encode(SCORED).decode()}
CLOSED_RECORD = {"status": "closed", "closed_at_ms": 4_050, "closes_at_ms": 4_000, "offered": [],
                 "min_price_cents": 500, "bids": {}}
# Opened by a worker from before weights, AutoBid profiles, pricing and shared sales.
OLDEST_OPEN_RECORD = {"status": "open", "opened_at_ms": 1_000, "closes_at_ms": 4_000, "min_price_cents": 500,
                      "offered": ["b1", "b2"], "bids": {"b2": 800}, "scored": base64.b64encode(SCORED).decode()}


def faust_json(record: dict) -> bytes:
    """A changelog value as faust's JSON codec wrote the untyped state."""
    return codecs.dumps("json", record)


def test_an_open_auction_in_the_earlier_layout_is_read_whole():
    auction = AuctionCodec().loads(faust_json(OPEN_RECORD))
    assert auction == Auction("open", 1_000, 4_000, 500, ("b1", "b2", "b3"), {"b1": 900, "b2": 700}, {"b1": 2.0},
                              {"b1": "p_1"}, "second", 3, SCORED)
    assert auction.is_open and ev.LeadScored.FromString(auction.scored).verified.lead.lead_id == "L1"
    assert rules.bid_refusal(auction, "b3", 600, 3_000) is None
    assert rules.with_bid(auction, "b3", 600).bids == {"b1": 900, "b2": 700, "b3": 600}


def test_a_closed_auction_in_the_earlier_layout_is_read_and_refuses_bids():
    auction = AuctionCodec().loads(faust_json(CLOSED_RECORD))
    assert (auction.status, auction.closed_at_ms, auction.closes_at_ms, auction.min_price_cents) == (
        "closed", 4_050, 4_000, 500)
    assert auction.offered == () and auction.bids == {} and auction.opened_at_ms == 0 and auction.scored == b""
    assert not auction.is_open and rules.bid_refusal(auction, "b1", 900, 3_000) == "the auction is closed"


def test_an_auction_from_before_weights_profiles_pricing_and_shares_gets_their_defaults():
    auction = Auction.from_json(json.dumps(OLDEST_OPEN_RECORD))
    assert (auction.weights, auction.profiles, auction.pricing, auction.shares) == ({}, {}, rules.FIRST_PRICE, 1)
    ranked = rules.rank_bids(auction.bids, auction.min_price_cents, 1, auction.weights, auction.pricing)
    assert ranked == [rules.Ranked("b2", 800, 800, 1.0)]


def test_what_a_worker_writes_keeps_the_keys_and_values_of_the_earlier_layout():
    assert json.loads(Auction.from_json(json.dumps(OPEN_RECORD)).to_json()) == OPEN_RECORD
    written = json.loads(rules.closed(Auction.from_json(json.dumps(OPEN_RECORD)), 4_050).to_json())
    assert {key: written[key] for key in CLOSED_RECORD} == CLOSED_RECORD
    assert "scored" not in written


def test_an_auction_comes_back_from_its_json_as_it_was():
    opened = rules.new_auction(["b2", "b1"], 500, 1_000, 3_000, {"b1": 1.5}, rules.SECOND_PRICE, 2, SCORED)
    bid = rules.with_bid(rules.with_bid(opened, "b1", 700, "p_9"), "b2", 650)
    for auction in (opened, bid, rules.closed(bid, 4_020)):
        assert AuctionCodec().loads(AuctionCodec().dumps(auction)) == auction


def test_an_open_auction_keeps_its_openings_trace_through_bids_and_its_json_and_drops_it_once_closed():
    parent = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
    opened = replace(rules.new_auction(["b1"], 500, 1_000, 3_000, scored=SCORED), trace=parent)
    bid = rules.with_bid(opened, "b1", 700)
    assert bid.trace == parent and json.loads(bid.to_json())["trace"] == parent
    assert Auction.from_json(bid.to_json()) == bid
    assert "trace" not in json.loads(rules.closed(bid, 4_020).to_json())


def test_a_closed_auction_keeps_only_what_refuses_late_bids_and_redelivered_leads():
    bid = rules.with_bid(rules.new_auction(["b1"], 500, 1_000, 3_000, scored=SCORED), "b1", 700, "p_1")
    closed = rules.closed(bid, 4_020)
    assert closed == Auction("closed", 1_000, 4_000, 500, closed_at_ms=4_020)
    assert bid.is_open and bid.bids == {"b1": 700}  # the open state read is unchanged


def test_with_bids_is_replace_of_the_bids_and_profiles_alone():
    auction = Auction.from_json(json.dumps(OPEN_RECORD))
    assert auction.with_bids({"b3": 1}, {"b3": "p"}) == replace(auction, bids={"b3": 1}, profiles={"b3": "p"})


def test_the_table_writes_and_reads_its_changelog_with_the_auction_codec():
    app = faust.App("leadx-test-auction-table", broker="kafka://localhost:1", store="memory://")
    table = auctions_table(app, partitions=2)
    auction = Auction.from_json(json.dumps(OPEN_RECORD))
    for codec in (table.value_serializer, table.changelog_topic.value_serializer):
        assert isinstance(codec, AuctionCodec)
        assert app.serializers.loads_value(None, faust_json(OPEN_RECORD), serializer=codec) == auction
        assert app.serializers.dumps_value(None, auction, serializer=codec) == auction.to_json()
    assert table.key_serializer == "json"  # the auction ids, as before


def test_the_changelog_topic_made_before_faust_starts_is_the_one_faust_uses(tmp_path):
    from types import SimpleNamespace

    from leadx.platform.config import KafkaSettings
    from services.auction.worker import changelog_topic, make_app

    kafka = KafkaSettings(bootstrap_servers="127.0.0.1:1", topic_prefix="p.", partitions=3, replication_factor=1,
                          idempotence=False)
    app = make_app(SimpleNamespace(common=SimpleNamespace(kafka=kafka), data_dir=str(tmp_path)))
    assert auctions_table(app, 3).changelog_topic.get_topic_name() == changelog_topic(kafka) == \
        "p.leadx-auction-auctions-changelog"


def test_the_worker_s_producer_lingers_as_the_services_producers_do(tmp_path):
    from types import SimpleNamespace

    from leadx.platform.config import KafkaSettings
    from services.auction.worker import make_app

    kafka = KafkaSettings(bootstrap_servers="127.0.0.1:1", topic_prefix="p.", partitions=3, replication_factor=1,
                          idempotence=False, producer_linger_ms=10)
    app = make_app(SimpleNamespace(common=SimpleNamespace(kafka=kafka), data_dir=str(tmp_path)))
    assert app.conf.producer_linger == 0.01
