"""A list auction through the running exchange: an operator opens it over the admin API, two
dealers read it and bid (per cluster and per band) over the buyer API, the ledger closes it when its
window ends, each customer sold goes out as one sale.closed and is booked like any sale, and each
dealer downloads what it won, with the customers' fields, over HTTP and from the command line."""

from __future__ import annotations

import csv
import io
import json

import httpx
import pytest
from sqlalchemy import select

from leadx.cli.main import main
from leadx.contracts import topics
from leadx.contracts.events.v1 import events_pb2 as ev
from leadx.dev.simulation.market import simulate
from leadx.leads import pii
from leadx.ledger import billing
from leadx.lists import store
from leadx.lists.award import award
from leadx.lists.building import Band
from leadx.platform.db.models import ListAuction, ListAward, Prospect, Sale
from leadx.platform.ids import derived_event_id
from leadx.scoring.registry import load_prior
from tests import http_calls as http
from tests.conftest import poll_until
from tests.integration.harness import Exchange, read_topic, start_exchange

pytestmark = pytest.mark.integration
ADMIN_KEY = "test-list-admin-key"  # a test value, not a secret
START_MS = 1_767_225_600_000
PII_FIELDS = ("ssn", "email", "home_phone", "address", "date_of_birth", "last_name")
FEE_PERCENT = 10.0  # SELLER_FEE_PERCENT's default


@pytest.fixture(scope="module")
def exchange(tmp_path_factory, kafka_bootstrap, redis_url) -> Exchange:
    """Only what a list auction needs: intake (the APIs), the ledger (closing, publishing, books;
    it looks for due auctions five times a second) and dedup, which vouches for the dedup records
    (their epoch) that the ledger reserves each customer in for its dealer."""
    prefix = f"{tmp_path_factory.mktemp('l').name[-6:]}."
    exchange = start_exchange(tmp_path_factory.mktemp("lists"), kafka_bootstrap, redis_url, prefix,
                              ["alpha", "beta"], ["intake", "dedup", "ledger"], ADMIN_API_KEY=ADMIN_KEY,
                              LISTS_CLOSE_INTERVAL_SECONDS="0.2")
    yield exchange
    exchange.stop()


def add_prospects(exchange: Exchange, count: int, seed: int) -> list[Prospect]:
    leads = [{k: str(v) for k, v in lead.fields.items()} for lead in simulate(count, seed, START_MS)]
    scores = load_prior().score(leads, [START_MS] * count, [START_MS] * count)
    added = []
    for i, (fields, score) in enumerate(zip(leads, scores, strict=True)):
        keys = pii.identity_keys(b"list-api-integration", fields)
        added.append(Prospect(
            id=f"LI{seed:02d}{i:06d}", vertical="auto_loan", seller_id=exchange.seller_id, source="import",
            source_name="dealers.csv", fields=fields, ssn_key=keys.get("ssn"), email_key=keys.get("email"),
            home_phone_key=keys.get("home_phone"), state=fields["state"], probability=score.direct_response,
            propensity=score.probability, cluster=score.cluster, model_version="test",
            consumer_since_ms=START_MS, added_at_ms=START_MS))
    with exchange.sql() as session:
        session.add_all(added)
        session.commit()
    return added


def call(exchange: Exchange, method: str, path: str, key: str, body: object = None) -> httpx.Response:
    return http.request(method, f"{exchange.intake_url()}{path}", json=body, timeout=15,
                        headers={"Authorization": f"Bearer {key}"})


def test_two_dealers_bid_on_a_list_the_ledger_closes_it_and_books_each_customer_sold(exchange, monkeypatch,
                                                                                     capsys, tmp_path):
    prospects = add_prospects(exchange, 30, seed=4)
    by_id = {p.id: p for p in prospects}
    alpha, beta = exchange.buyer_keys["alpha"], exchange.buyer_keys["beta"]
    alpha_id, beta_id = exchange.buyer_ids["alpha"], exchange.buyer_ids["beta"]

    opened = call(exchange, "POST", "/v1/admin/lists", ADMIN_KEY, {
        "vertical": "auto_loan", "profile": {"criteria": []}, "window_seconds": 6, "reserve": 100,
        "band_width": 0.05})
    assert opened.status_code == 201, opened.text
    list_id = opened.json()["list_id"]
    assert opened.json()["count"] == 30

    shown = call(exchange, "GET", f"/v1/lists/{list_id}?limit=1000", alpha)
    assert shown.status_code == 200, shown.text
    listing = shown.json()
    assert not any(p.fields[name] in shown.text for p in prospects for name in PII_FIELDS)
    biggest = max(listing["clusters"], key=lambda c: c["count"])["cluster"]
    top_band = listing["bands"][0]["band"]

    # Alpha wants five of the biggest cluster; beta the top band at more, and up to $15 of anyone at $1.50.
    bids = [(alpha, {"scope": "cluster", "target": biggest, "price": 400, "max_count": 5}),
            (beta, {"scope": "band", "target": top_band, "price": 500}),
            (beta, {"scope": "band", "target": "0.00-1.00", "price": 150, "max_budget": 1500})]
    for key, body in bids:
        placed = call(exchange, "POST", f"/v1/lists/{list_id}/bids", key, body)
        assert placed.status_code == 201, placed.text
    early = call(exchange, "GET", f"/v1/lists/{list_id}/won", alpha)
    assert early.status_code == 409 and early.json()["errors"][0]["code"] == "LIST_OPEN"

    def closed() -> dict | None:
        view = call(exchange, "GET", f"/v1/lists/{list_id}", beta).json()
        return view if view["status"] == "closed" else None
    poll_until(closed, timeout_s=40, interval_s=0.2, message=f"the ledger to close list auction {list_id}")
    late = call(exchange, "POST", f"/v1/lists/{list_id}/bids", alpha, {"scope": "band", "target": "0.00-1.00",
                                                                       "price": 900})
    assert late.status_code == 409 and late.json()["errors"][0]["code"] == "LIST_CLOSED"

    # The winners are those of the award rules (nobody had any of these customers before).
    with exchange.sql() as session:
        auction = session.get(ListAuction, list_id)
        expected = award(store.members(session, list_id), store.bids_of(session, list_id), auction.reserve_cents,
                         {}, auction.tie_break_seed)
        awarded = {a.prospect_id: (a.buyer_id, a.price_cents) for a in session.scalars(
            select(ListAward).where(ListAward.auction_id == list_id))}
    assert awarded == {a.prospect_id: (a.buyer_id, a.price_cents) for a in expected}
    in_top_band = [p for p in prospects if Band.parse(top_band).holds(p.probability)]
    assert in_top_band and all(awarded[p.id] == (beta_id, 500) for p in in_top_band)
    alpha_won = {pid for pid, (buyer, _) in awarded.items() if buyer == alpha_id}
    assert len(alpha_won) == 5 and all(by_id[pid].cluster == biggest for pid in alpha_won)
    cheap = [pid for pid, sale in awarded.items() if sale == (beta_id, 150)]
    assert len(cheap) == 10  # $15.00 of budget at $1.50

    # Each dealer downloads what it won, with the fields; the counts agree with the list's view.
    for key, buyer_id in ((alpha, alpha_id), (beta, beta_id)):
        mine = {pid: price for pid, (buyer, price) in awarded.items() if buyer == buyer_id}
        won = call(exchange, "GET", f"/v1/lists/{list_id}/won", key).json()
        assert {c["prospect_id"]: c["price_cents"] for c in won["customers"]} == mine
        assert all(c["fields"] == by_id[c["prospect_id"]].fields for c in won["customers"])
        assert won["total_cents"] == sum(mine.values())
        view = call(exchange, "GET", f"/v1/lists/{list_id}", key).json()
        assert view["won"] == {"count": len(mine), "total_cents": sum(mine.values())}
        exported = call(exchange, "GET", f"/v1/lists/{list_id}/won?format=csv", key)
        rows = list(csv.DictReader(io.StringIO(exported.text)))
        assert {r["prospect_id"] for r in rows} == set(mine) and all(r["ssn"] for r in rows)

    # One sale.closed per customer sold, under the derived event id, with no PII.
    def sales() -> list | None:
        found = [(event_id, s) for event_id, s in read_topic(
            exchange.stack.kafka_bootstrap, topics.name(exchange.prefix, topics.SALE_CLOSED), ev.SaleClosed)
            if s.auction_id == list_id]
        return found if len({s.lead_id for _, s in found}) >= len(awarded) else None
    published = poll_until(sales, timeout_s=30, message="a sale.closed per customer sold")
    by_customer = {s.lead_id: (event_id, s) for event_id, s in published}
    assert set(by_customer) == set(awarded)
    for pid, (event_id, sale) in by_customer.items():
        buyer, price = awarded[pid]
        assert event_id == derived_event_id(pid, "list-sale", buyer)
        assert (sale.outcome, sale.buyer_id, sale.price_cents, sale.seller_id, sale.attempts) == (
            ev.SALE_OUTCOME_SOLD, buyer, price, exchange.seller_id, 0)
        assert sale.seller_fee_cents == billing.seller_fee(price, FEE_PERCENT)
        assert sale.zip3 == by_id[pid].fields["zip"][:3]
    assert not any(p.fields[name] in str(published) for p in prospects for name in PII_FIELDS)

    # The ledger books them like any sale: a sale row each, and double-entry balances.
    def booked() -> list[Sale] | None:
        with exchange.sql() as session:
            rows = list(session.scalars(select(Sale).where(Sale.auction_id == list_id)))
        return rows if len(rows) == len(awarded) else None
    rows = poll_until(booked, timeout_s=30, message="the ledger's books of the list sales")
    assert {r.lead_id: (r.buyer_id, r.price_cents) for r in rows} == awarded and all(r.sold for r in rows)
    # A dealer reads a customer it bought like any lead it bought, fields included.
    pid, (buyer, _) = next(iter(awarded.items()))
    bought = call(exchange, "GET", f"/v1/leads/{pid}", alpha if buyer == alpha_id else beta)
    assert bought.status_code == 200 and bought.json()["lead"]["ssn"] == by_id[pid].fields["ssn"]
    monkeypatch.setenv("DATABASE_URL", exchange.stack.database_url)
    capsys.readouterr()
    assert main(["ledger", "balances"]) == 0
    books = json.loads(capsys.readouterr().out)
    spent = {buyer: sum(price for b, price in awarded.values() if b == buyer) for buyer in (alpha_id, beta_id)}
    fees = sum(billing.seller_fee(price, FEE_PERCENT) for _, price in awarded.values())
    assert books["sum_cents"] == 0
    assert books["balances_cents"][billing.buyer_account(alpha_id)] == -spent[alpha_id]
    assert books["balances_cents"][billing.buyer_account(beta_id)] == -spent[beta_id]
    assert books["balances_cents"][billing.seller_account(exchange.seller_id)] == sum(spent.values()) - fees
    assert books["balances_cents"][billing.PLATFORM_FEES] == fees

    # The operator's view and export from the command line agree.
    assert main(["lists", "show", list_id, "--json", "--limit", "1000"]) == 0
    operator = json.loads(capsys.readouterr().out)
    assert operator["awards"]["count"] == len(awarded) and operator["awards"]["published"] == len(awarded)
    out = tmp_path / "beta.csv"
    assert main(["lists", "export", list_id, "--buyer", beta_id, "--format", "csv", "--out", str(out)]) == 0
    assert {r["prospect_id"] for r in csv.DictReader(io.StringIO(out.read_text()))} == {
        pid for pid, (buyer, _) in awarded.items() if buyer == beta_id}
