"""List auctions at their edges: the views (pure), the intake's admin and buyer routes through the
real app (SQLite and PostgreSQL, a real Redis for the rate limits), and `leadx lists` as an
operator runs it. Dealers read lists without PII, bid per customer, cluster or band, are refused
with the field at fault, and after the close read or download what they won, with its fields."""

from __future__ import annotations

import asyncio
import contextlib
import csv
import functools
import io
import json
import time
import uuid
from types import SimpleNamespace

import httpx
import pytest
from sqlalchemy import select

from leadx.accounts import accounts
from leadx.cli.main import main
from leadx.dev.simulation.market import simulate
from leadx.leads import pii
from leadx.lists import store, views
from leadx.lists.award import award
from leadx.lists.building import Customer, ListProfile, build_list
from leadx.platform.db.models import ListAuction, ListAward, ListBid, Prospect
from leadx.platform.redis.client import connect
from leadx.scoring.registry import configured, load_prior
from services.intake.guards import RateLimiter

START_MS = 1_767_225_600_000
ADMIN_KEY = "unit-admin-key"  # a test value, not a secret
SECRET = b"list-api-test-secret"
PII_FIELDS = ("ssn", "email", "home_phone", "address", "date_of_birth")


# ---------------------------------------------------------------------- the views (pure)

def person(pid: str, probability: float, cluster: str, **fields: str) -> Customer:
    return Customer(pid, probability, cluster, fields)


CUSTOMERS = [person("P1", 0.31, "c1", state="TX", zip="75001", ssn="123-45-6789", email="a@example.com"),
             person("P2", 0.12, "c2", state="OK", zip="73301"),
             person("P3", 0.27, "c2", state="TX", zip="75002"),
             person("P4", 0.05, "c1", state="CA", zip="90210")]


def test_groups_summarise_each_cluster_and_band_with_its_probabilities():
    found = views.groups(CUSTOMERS, 0.1, {"c1": "renters", "c2": "owners"})
    assert found["clusters"] == [
        {"cluster": "c1", "description": "renters", "count": 2, "probability_min": 0.05, "probability_max": 0.31,
         "probability_mean": 0.18, "expected_responses": 0.36},
        {"cluster": "c2", "description": "owners", "count": 2, "probability_min": 0.12, "probability_max": 0.27,
         "probability_mean": 0.195, "expected_responses": 0.39}]
    assert [(b["band"], b["count"]) for b in found["bands"]] == [
        ("0.30-0.40", 1), ("0.20-0.30", 1), ("0.10-0.20", 1), ("0.00-0.10", 1)]
    assert views.groups(CUSTOMERS, 0.5, {})["clusters"][0]["description"] == ""  # a cluster the bundle lacks


def test_a_customer_row_shows_no_pii_whatever_its_fields():
    assert views.customer(CUSTOMERS[0]) == {"prospect_id": "P1", "state": "TX", "zip3": "750", "probability": 0.31,
                                            "cluster": "c1"}
    assert views.customer(person("P9", 0.123456, "c3")) == {"prospect_id": "P9", "state": "", "zip3": "",
                                                          "probability": 0.1235, "cluster": "c3"}


def auction(status: str = "open", closes_at_ms: int = 2_000) -> ListAuction:
    return ListAuction(id="LIST000001", vertical="auto_loan", profile={"criteria": []}, band_width=0.1,
                       reserve_cents=100, status=status, opened_at_ms=1_000, closes_at_ms=closes_at_ms,
                       closed_at_ms=3_000 if status == "closed" else None, tie_break_seed=7)


def test_a_list_is_open_then_closing_when_its_window_ends_then_closed():
    assert views.status(auction(), 1_999) == "open"
    assert views.status(auction(), 2_000) == "closing"
    assert views.status(auction("closed"), 1_500) == "closed"


@pytest.mark.parametrize(("width", "ok"), [(0.05, True), (0.01, True), (1, True), (0.1, True), (0.3, True),
                                           (0.025, False), (0, False), (1.5, False), (0.001, False),
                                           (True, False), ("0.05", False)])
def test_band_widths_are_whole_hundredths_so_every_band_has_a_label(width, ok):
    assert (views.band_width_problem(width) is None) == ok


def test_dealers_see_their_own_bids_and_operators_the_winner_of_each_customer_once_closed():
    bid = ListBid(id=4, auction_id="LIST000001", buyer_id="b_1", scope="cluster", target="c2", price_cents=300,
                  max_count=None, max_budget_cents=500, placed_at_ms=1_500)
    sold = [ListAward(auction_id="LIST000001", prospect_id="P3", buyer_id="b_1", bid_id=4, price_cents=300,
                      awarded_at_ms=3_000, published=True),
            ListAward(auction_id="LIST000001", prospect_id="P2", buyer_id="b_1", bid_id=4, price_cents=300,
                      awarded_at_ms=3_000, published=False)]
    ranked = sorted(CUSTOMERS, key=lambda c: -c.probability)
    open_view = views.dealer_view(auction(), ranked, ranked[:2], 0, [bid], [], {}, 1_500)
    assert (open_view["status"], open_view["count"], open_view["seconds_left"], open_view["won"]) == (
        "open", 4, 0.5, None)
    assert open_view["your_bids"] == [{"id": 4, "buyer_id": "b_1", "scope": "cluster", "target": "c2",
                                       "price_cents": 300, "max_count": None, "max_budget_cents": 500,
                                       "placed_at_ms": 1_500}]
    assert [c["prospect_id"] for c in open_view["customers"]] == ["P1", "P3"]
    closed = auction("closed")
    assert views.dealer_view(closed, ranked, ranked, 0, [bid], sold, {}, 5_000)["won"] == {
        "count": 2, "total_cents": 600}
    operator = views.operator_view(closed, ranked, ranked, 0, [bid], sold, {}, 5_000)
    assert [(c["prospect_id"], c["buyer_id"], c["price_cents"]) for c in operator["customers"]] == [
        ("P1", None, None), ("P3", "b_1", 300), ("P2", "b_1", 300), ("P4", None, None)]
    assert operator["awards"] == {"count": 2, "total_cents": 600, "unsold": 2, "published": 1,
                                  "by_buyer": [{"buyer_id": "b_1", "count": 2, "total_cents": 600}]}
    assert operator["profile"] == {"criteria": []} and operator["tie_break_seed"] == 7
    assert views.operator_view(auction(), ranked, ranked, 0, [bid], [], {}, 1_500)["awards"] is None


def test_what_a_dealer_won_exports_as_csv_with_a_header_and_one_line_per_customer():
    won = [(ListAward(prospect_id="P1", price_cents=250), Prospect(id="P1", probability=0.31, cluster="c1", fields={
               "first_name": "Ann", "zip": "75001", "email": "a@example.com", "source_ref": "x,1"})),
           (ListAward(prospect_id="P3", price_cents=200), Prospect(id="P3", probability=0.27, cluster="c2", fields={
               "first_name": "Bo", "zip": "75002"}))]
    customers = views.won(won)
    assert customers[0] == {"prospect_id": "P1", "price_cents": 250, "probability": 0.31, "cluster": "c1",
                            "fields": {"first_name": "Ann", "zip": "75001", "email": "a@example.com",
                                       "source_ref": "x,1"}}
    assert views.won_document("L", "b_1", customers)["total_cents"] == 450
    rows = list(csv.reader(io.StringIO(views.won_csv(customers, ["first_name", "email", "zip", "state"]))))
    assert rows == [["prospect_id", "price_cents", "probability", "cluster", "first_name", "email", "zip",
                     "source_ref"],
                    ["P1", "250", "0.31", "c1", "Ann", "a@example.com", "75001", "x,1"],
                    ["P3", "200", "0.27", "c2", "Bo", "", "75002", ""]]
    # Nothing won: the header alone, with every field of the vertical.
    assert views.won_csv([], ["first_name", "zip"]) == "prospect_id,price_cents,probability,cluster,first_name,zip\r\n"


def test_a_preview_shows_the_groups_and_the_best_customers_without_pii():
    built = build_list(CUSTOMERS, ListProfile.parse({"criteria": [{"states": ["TX"]}]}), 0.05)
    shown = views.preview("auto_loan", built, {}, top=1)
    assert (shown["count"], [c["prospect_id"] for c in shown["customers"]]) == (2, ["P1"])
    assert "123-45-6789" not in json.dumps(shown) and "a@example.com" not in json.dumps(shown)


# ---------------------------------------------------------------------- the pool and the routes

@functools.cache
def scored(count: int, seed: int) -> tuple:
    leads = [{k: str(v) for k, v in lead.fields.items()} for lead in simulate(count, seed, START_MS)]
    return tuple(zip(leads, load_prior().score(leads, [START_MS] * count, [START_MS] * count), strict=True))


def add_prospects(session, seller_id: str, count: int = 40, seed: int = 1, vertical: str = "auto_loan") -> list:
    added = []
    for i, (fields, score) in enumerate(scored(count, seed)):
        keys = pii.identity_keys(SECRET, fields)
        added.append(Prospect(
            id=f"PR{seed:02d}{i:06d}", vertical=vertical, seller_id=seller_id, source="import",
            source_name="test.csv", fields=fields, ssn_key=keys.get("ssn"), email_key=keys.get("email"),
            home_phone_key=keys.get("home_phone"), state=fields["state"], probability=score.direct_response,
            propensity=score.probability, cluster=score.cluster, model_version="test",
            consumer_since_ms=START_MS, added_at_ms=START_MS))
    session.add_all(added)
    return added


@pytest.fixture
def pool(sessions):
    """A seller's 40 scored customers in the pool and two dealers, with their keys."""
    with sessions() as session:  # the account functions commit their own changes
        seller = accounts.create_seller(session, "List Seller")
        dealers = [accounts.create_buyer(session, f"Dealer {n}", "http://127.0.0.1:9/ping", "") for n in range(2)]
        prospects = add_prospects(session, seller.id)
        session.commit()
    return SimpleNamespace(sessions=sessions, seller=seller, dealers=dealers, prospects=prospects)


@contextlib.asynccontextmanager
async def intake(sessions, redis_url: str, per_second: int = 0, admin_key: str = ADMIN_KEY):
    """The real intake app (only what its routes read here), served in-process."""
    from leadx.platform.health import Readiness
    from services.intake.admin import Admin
    from services.intake.app import build_app
    from services.intake.auth_throttle import FailedAuthThrottle
    from services.intake.buyers import Buyers
    from services.intake.lists import Lists
    from services.intake.requests import Callers
    from services.intake.sellers import Sellers

    redis = connect(redis_url)
    namespace = f"t{uuid.uuid4().hex[:8]}."
    callers = Callers(sessions, RateLimiter(redis, namespace, per_second), FailedAuthThrottle(redis, namespace, 60))
    deps = SimpleNamespace(sessions=sessions, secret=b"k" * 32, dedup=None, redis=redis, producer=None,
                           namespace=namespace, max_body_bytes=64 * 1024, admin_api_key=admin_key, callers=callers)
    app = build_app(Sellers(deps), Buyers(deps), Admin(sessions, admin_key),
                    Lists(sessions, callers, admin_key, deps.max_body_bytes), Readiness())
    transport = httpx.ASGITransport(app=app)
    try:
        async with httpx.AsyncClient(transport=transport, base_url="http://intake") as client:
            yield client
    finally:
        await redis.aclose()


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def refused(response: httpx.Response, status: int, code: str, field: str | None = None) -> str:
    assert response.status_code == status, response.text
    error = response.json()["errors"][0]
    assert (error["code"], error["field"]) == (code, field), response.text
    return error["message"]


async def open_list(client: httpx.AsyncClient, **body) -> httpx.Response:
    return await client.post("/v1/admin/lists", json={"vertical": "auto_loan", "profile": {"criteria": []}, **body},
                             headers=bearer(ADMIN_KEY))


def close_now(sessions, list_id: str) -> list:
    """Close the auction as the ledger's closer would (nobody excluded here)."""
    with sessions.begin() as session:
        found = session.get(ListAuction, list_id)
        awards = award(store.members(session, list_id), store.bids_of(session, list_id), found.reserve_cents, {},
                       found.tie_break_seed)
        assert store.record_close(session, list_id, awards, int(time.time() * 1000))
    return awards


def test_an_operator_opens_a_list_and_a_dealer_reads_it_without_pii(pool, redis_url):
    dealer = pool.dealers[0]

    async def scenario():
        async with intake(pool.sessions, redis_url) as client:
            opened = await open_list(client, reserve=150, window_seconds=300, band_width=0.1)
            assert opened.status_code == 201, opened.text
            view = opened.json()
            list_id = view["list_id"]
            assert opened.headers["location"] == f"/v1/admin/lists/{list_id}"
            read = await client.get(f"/v1/lists/{list_id}", headers=bearer(dealer.api_key))
            page = await client.get(f"/v1/lists/{list_id}?offset=5&limit=3", headers=bearer(dealer.api_key))
            too_many = await client.get(f"/v1/lists/{list_id}?limit=1001", headers=bearer(dealer.api_key))
            negative = await client.get(f"/v1/lists/{list_id}?offset=-1", headers=bearer(dealer.api_key))
            shown = await client.get(f"/v1/admin/lists/{list_id}", headers=bearer(ADMIN_KEY))
            return view, read, page, too_many, negative, shown

    view, read, page, too_many, negative, shown = asyncio.run(scenario())
    assert (view["status"], view["vertical"], view["count"], view["reserve_cents"], view["band_width"]) == (
        "open", "auto_loan", 40, 150, 0.1)
    assert view["closes_at_ms"] - view["opened_at_ms"] == 300_000 and 0 < view["seconds_left"] <= 300
    assert view["profile"] == {"criteria": []} and view["bids"] == [] and view["awards"] is None

    assert read.status_code == 200, read.text
    dealer_view = read.json()
    assert (dealer_view["status"], dealer_view["count"], dealer_view["your_bids"], dealer_view["won"]) == (
        "open", 40, [], None)
    assert "bids" not in dealer_view and "profile" not in dealer_view and "tie_break_seed" not in dealer_view
    by_id = {p.id: p for p in pool.prospects}
    ranked = sorted(pool.prospects, key=lambda p: (-p.probability, p.id))
    assert [c["prospect_id"] for c in dealer_view["customers"]] == [p.id for p in ranked]
    first = dealer_view["customers"][0]
    assert set(first) == {"prospect_id", "state", "zip3", "probability", "cluster"}
    assert (first["state"], first["zip3"]) == (by_id[first["prospect_id"]].state,
                                               by_id[first["prospect_id"]].fields["zip"][:3])
    text = read.text
    for prospect in pool.prospects:
        assert not any(prospect.fields[name] in text for name in PII_FIELDS if prospect.fields.get(name))
    descriptions = configured().clusters.descriptions
    clusters = dealer_view["clusters"]
    assert sum(c["count"] for c in clusters) == sum(b["count"] for b in dealer_view["bands"]) == 40
    assert all(c["description"] == descriptions[c["cluster"]] for c in clusters)
    assert all(b["probability_min"] <= b["probability_max"] for b in dealer_view["bands"])

    assert [c["prospect_id"] for c in page.json()["customers"]] == [p.id for p in ranked[5:8]]
    assert page.json()["offset"] == 5
    refused(too_many, 422, "FIELD_INVALID", "limit")
    refused(negative, 422, "FIELD_INVALID", "offset")
    assert shown.status_code == 200 and shown.json()["count"] == 40


def test_bad_lists_are_refused_naming_the_place_and_the_admin_key_is_required(pool, redis_url):
    async def scenario():
        async with intake(pool.sessions, redis_url) as client:
            answers = {
                "bad criterion": await open_list(client, profile={"criteria": [{"states": ["TX"]}, {"colour": 1}]}),
                "priced": await open_list(client, profile={"criteria": [{"price": 100}]}),
                "nobody": await open_list(client, profile={"criteria": [{"states": ["AK"], "income": {"min": 10**9}}]}),
                "vertical": await open_list(client, vertical="boats"),
                "no profile": await client.post("/v1/admin/lists", json={"vertical": "auto_loan"},
                                                headers=bearer(ADMIN_KEY)),
                "huge": await client.post("/v1/admin/lists", headers={**bearer(ADMIN_KEY), "Content-Type":
                                          "application/json"}, content=b'{"vertical": "auto_loan", "profile": '
                                          b'{"criteria": [{"income": {"min": 1' + b"0" * 400 + b'}}]}}'),
                "infinite": await client.post("/v1/admin/lists", headers={**bearer(ADMIN_KEY), "Content-Type":
                                              "application/json"}, content=b'{"vertical": "auto_loan", "profile": '
                                              b'{"criteria": [{"income": {"min": 1e400}}]}}'),
                "band": await open_list(client, band_width=0.025),
                "window": await open_list(client, window_seconds=0),
                "reserve": await open_list(client, reserve=-1),
                "unknown": await open_list(client, windows=3),
                "not json": await client.post("/v1/admin/lists", content=b"{", headers={
                    **bearer(ADMIN_KEY), "Content-Type": "application/json"}),
                "wrong key": await open_list_with_key(client, "not-the-key"),
                "dealer key": await open_list_with_key(client, pool.dealers[0].api_key),
                "unknown list": await client.get("/v1/admin/lists/NOSUCHLIST", headers=bearer(ADMIN_KEY)),
            }
        async with intake(pool.sessions, redis_url, admin_key="") as client:
            answers["admin off"] = await open_list(client)
        return answers

    answers = asyncio.run(scenario())
    assert "criteria[1]" in refused(answers["bad criterion"], 422, "FIELD_INVALID", "profile")
    assert "criteria[0]" in refused(answers["priced"], 422, "FIELD_INVALID", "profile")
    assert "no customer" in refused(answers["nobody"], 422, "LIST_EMPTY", "profile")
    refused(answers["vertical"], 422, "FIELD_INVALID", "vertical")
    refused(answers["no profile"], 422, "FIELD_MISSING", "profile")
    refused(answers["huge"], 422, "FIELD_INVALID", "profile")
    refused(answers["infinite"], 422, "FIELD_INVALID", "profile")
    refused(answers["band"], 422, "FIELD_INVALID", "band_width")
    refused(answers["window"], 422, "FIELD_INVALID", "window_seconds")
    refused(answers["reserve"], 422, "FIELD_INVALID", "reserve")
    refused(answers["unknown"], 422, "FIELD_INVALID", "windows")
    refused(answers["not json"], 400, "PAYLOAD_MALFORMED")
    for name in ("wrong key", "dealer key", "admin off"):
        refused(answers[name], 401, "AUTH_INVALID")
    refused(answers["unknown list"], 404, "LIST_NOT_FOUND")
    with pool.sessions() as session:
        assert session.query(ListAuction).count() == 0


async def open_list_with_key(client: httpx.AsyncClient, key: str) -> httpx.Response:
    return await client.post("/v1/admin/lists", json={"vertical": "auto_loan", "profile": {"criteria": []}},
                             headers=bearer(key))


def test_dealers_bid_per_customer_cluster_and_band_and_bad_bids_are_refused_with_their_field(pool, redis_url):
    one, other = pool.dealers
    ranked = sorted(pool.prospects, key=lambda p: (-p.probability, p.id))
    best = ranked[0]

    async def scenario():
        async with intake(pool.sessions, redis_url) as client:
            list_id = (await open_list(client, reserve=100, band_width=0.05)).json()["list_id"]
            bands = (await client.get(f"/v1/lists/{list_id}", headers=bearer(one.api_key))).json()["bands"]

            async def bid(body, key=one.api_key, **kw):
                return await client.post(f"/v1/lists/{list_id}/bids", json=body, headers=bearer(key), **kw)

            good = [await bid({"scope": "customer", "target": best.id, "price": 900}),
                    await bid({"scope": "cluster", "target": best.cluster, "price": 400, "max_count": 3}),
                    await bid({"scope": "band", "target": bands[0]["band"], "price": 300, "max_budget": 1200},
                              key=other.api_key),
                    await bid({"scope": "band", "target": f"{round(best.probability, 2):.2f}", "price": "250"}),
                    await client.post(f"/v1/lists/{list_id}/bids", headers={
                        **bearer(other.api_key), "Content-Type": "application/x-www-form-urlencoded",
                        "Accept": "application/json"},
                        content=f"scope=cluster&target={best.cluster}&price=350&max_count=2".encode()),
                    await client.post(f"/v1/lists/{list_id}/bids", headers={
                        **bearer(other.api_key), "Content-Type": "application/xml"},
                        content=f"<bid><scope>customer</scope><target>{ranked[1].id}</target>"
                                f"<price>500</price></bid>".encode())]
            bad = {
                "scope": await bid({"scope": "everyone", "target": "x", "price": 300}),
                "no customer": await bid({"scope": "customer", "target": "NOBODY0001", "price": 300}),
                "no cluster": await bid({"scope": "cluster", "target": "c99", "price": 300}),
                "band": await bid({"scope": "band", "target": "0.3-0.2", "price": 300}),
                "zero": await bid({"scope": "cluster", "target": best.cluster, "price": 0}),
                "fraction": await bid({"scope": "cluster", "target": best.cluster, "price": 2.5}),
                "reserve": await bid({"scope": "cluster", "target": best.cluster, "price": 99}),
                "limit on one": await bid({"scope": "customer", "target": best.id, "price": 300, "max_count": 2}),
                "count": await bid({"scope": "cluster", "target": best.cluster, "price": 300, "max_count": 0}),
                "typo": await bid({"scope": "cluster", "target": best.cluster, "price": 300, "max_budjet": 500}),
                "no price": await bid({"scope": "cluster", "target": best.cluster}),
                "no target": await bid({"scope": "cluster", "price": 300}),
                "huge": await bid({"scope": "cluster", "target": best.cluster, "price": 10**20}),
                "superscript": await bid({"scope": "cluster", "target": best.cluster, "price": "\u00b2"}),
                "long": await bid({"scope": "band", "target": "0." + "1" * 70 + "-0.9", "price": 300}),
                "not json": await client.post(f"/v1/lists/{list_id}/bids", content=b"[1", headers={
                    **bearer(one.api_key), "Content-Type": "application/json"}),
                "no type": await client.post(f"/v1/lists/{list_id}/bids", content=b"price=3",
                                             headers=bearer(one.api_key)),
            }
            mine = (await client.get(f"/v1/lists/{list_id}", headers=bearer(one.api_key))).json()
            theirs = (await client.get(f"/v1/lists/{list_id}", headers=bearer(other.api_key))).json()
            everything = (await client.get(f"/v1/admin/lists/{list_id}", headers=bearer(ADMIN_KEY))).json()
            return list_id, good, bad, mine, theirs, everything

    list_id, good, bad, mine, theirs, everything = asyncio.run(scenario())
    for response in good:
        assert response.status_code == 201, response.text
    first = good[0].json()
    assert (first["status"], first["list_id"]) == ("accepted", list_id)
    assert first["bid"] | {"id": 0, "placed_at_ms": 0} == {
        "id": 0, "buyer_id": one.id, "scope": "customer", "target": best.id, "price_cents": 900, "max_count": None,
        "max_budget_cents": None, "placed_at_ms": 0}
    assert good[2].json()["bid"]["max_budget_cents"] == 1200 and good[1].json()["bid"]["max_count"] == 3
    assert good[3].json()["bid"]["price_cents"] == 250  # digits as text are cents too
    assert good[4].json()["bid"]["max_count"] == 2
    # An XML bid is answered in XML, as sellers' XML is.
    assert "<status>accepted</status>" in good[5].text and f"<target>{ranked[1].id}</target>" in good[5].text

    refused(bad["scope"], 422, "FIELD_INVALID", "scope")
    for name in ("no customer", "no cluster", "band", "long"):
        refused(bad[name], 422, "FIELD_INVALID", "target")
    for name in ("zero", "fraction", "huge", "superscript"):
        refused(bad[name], 422, "FIELD_INVALID", "price")
    assert "100 cents" in refused(bad["reserve"], 422, "BELOW_RESERVE", "price")
    refused(bad["limit on one"], 422, "FIELD_INVALID", "scope")
    refused(bad["count"], 422, "FIELD_INVALID", "max_count")
    refused(bad["typo"], 422, "FIELD_INVALID", "max_budjet")
    refused(bad["no price"], 422, "FIELD_MISSING", "price")
    refused(bad["no target"], 422, "FIELD_MISSING", "target")
    refused(bad["not json"], 400, "PAYLOAD_MALFORMED")
    refused(bad["no type"], 415, "UNSUPPORTED_MEDIA_TYPE")

    # Each dealer sees its own bids only; the operator sees them all.
    assert [b["scope"] for b in mine["your_bids"]] == ["customer", "cluster", "band"]
    assert [b["buyer_id"] for b in theirs["your_bids"]] == [other.id] * 3
    assert len(everything["bids"]) == 6
    with pool.sessions() as session:
        assert session.query(ListBid).count() == 6


def test_unknown_lists_are_404_and_a_wrong_key_401(pool, redis_url):
    async def scenario():
        async with intake(pool.sessions, redis_url) as client:
            list_id = (await open_list(client)).json()["list_id"]
            dealer = bearer(pool.dealers[0].api_key)
            body = {"scope": "cluster", "target": "c1", "price": 300}
            return {
                "read": await client.get("/v1/lists/NOSUCHLIST", headers=dealer),
                "bid": await client.post("/v1/lists/NOSUCHLIST/bids", json=body, headers=dealer),
                "won": await client.get("/v1/lists/NOSUCHLIST/won", headers=dealer),
                "not an id": await client.get("/v1/lists/not-a-list", headers=dealer),
                "no key": await client.get(f"/v1/lists/{list_id}"),
                "wrong key": await client.get(f"/v1/lists/{list_id}", headers=bearer("nope")),
                "seller key": await client.post(f"/v1/lists/{list_id}/bids", json=body,
                                                headers=bearer(pool.seller.api_key)),
                "won wrong key": await client.get(f"/v1/lists/{list_id}/won", headers=bearer("nope")),
            }

    answers = asyncio.run(scenario())
    for name in ("read", "bid", "won"):
        refused(answers[name], 404, "LIST_NOT_FOUND")
    refused(answers["not an id"], 404, "NOT_FOUND")  # no list's path: ids are 10 capitals and digits
    for name in ("no key", "wrong key", "seller key", "won wrong key"):
        refused(answers[name], 401, "AUTH_INVALID")


def test_what_a_dealer_won_is_409_before_the_close_and_after_it_comes_with_the_fields(pool, redis_url):
    one, other = pool.dealers
    ranked = sorted(pool.prospects, key=lambda p: (-p.probability, p.id))
    by_id = {p.id: p for p in pool.prospects}

    async def scenario():
        async with intake(pool.sessions, redis_url) as client:
            list_id = (await open_list(client, reserve=100)).json()["list_id"]
            before = await client.get(f"/v1/lists/{list_id}/won", headers=bearer(one.api_key))
            for body in ({"scope": "customer", "target": ranked[0].id, "price": 900},
                         {"scope": "band", "target": "0.00-1.00", "price": 200, "max_count": 4}):
                assert (await client.post(f"/v1/lists/{list_id}/bids", json=body,
                                          headers=bearer(one.api_key))).status_code == 201
            awards = await asyncio.to_thread(close_now, pool.sessions, list_id)
            late = await client.post(f"/v1/lists/{list_id}/bids", headers=bearer(one.api_key),
                                     json={"scope": "band", "target": "0.00-1.00", "price": 500})
            as_json = await client.get(f"/v1/lists/{list_id}/won", headers=bearer(one.api_key))
            as_csv = await client.get(f"/v1/lists/{list_id}/won?format=csv", headers=bearer(one.api_key))
            nothing = await client.get(f"/v1/lists/{list_id}/won", headers=bearer(other.api_key))
            nothing_csv = await client.get(f"/v1/lists/{list_id}/won?format=CSV", headers=bearer(other.api_key))
            bad_format = await client.get(f"/v1/lists/{list_id}/won?format=xlsx", headers=bearer(one.api_key))
            view = await client.get(f"/v1/lists/{list_id}", headers=bearer(one.api_key))
            operator = await client.get(f"/v1/admin/lists/{list_id}?limit=1000", headers=bearer(ADMIN_KEY))
            return list_id, before, awards, late, as_json, as_csv, nothing, nothing_csv, bad_format, view, operator

    (list_id, before, awards, late, as_json, as_csv, nothing, nothing_csv, bad_format, view,
     operator) = asyncio.run(scenario())
    assert "not closed yet" in refused(before, 409, "LIST_OPEN")
    refused(late, 409, "LIST_CLOSED")
    refused(bad_format, 422, "FIELD_INVALID", "format")
    assert len(awards) == 5  # the best customer at 900, then the next four of the band bid

    assert as_json.status_code == 200, as_json.text
    won = as_json.json()
    assert (won["list_id"], won["buyer_id"], won["count"], won["total_cents"]) == (list_id, one.id, 5, 900 + 4 * 200)
    assert [c["prospect_id"] for c in won["customers"]] == [p.id for p in ranked[:5]]
    first = won["customers"][0]
    assert first["price_cents"] == 900 and first["fields"] == by_id[first["prospect_id"]].fields  # PII: bought

    assert as_csv.status_code == 200 and as_csv.headers["content-type"].startswith("text/csv")
    assert f"list-{list_id}-won.csv" in as_csv.headers["content-disposition"]
    rows = list(csv.DictReader(io.StringIO(as_csv.text)))
    assert [r["prospect_id"] for r in rows] == [p.id for p in ranked[:5]]
    assert rows[0]["ssn"] == ranked[0].fields["ssn"] and rows[1]["price_cents"] == "200"
    assert as_csv.text.splitlines()[0].startswith("prospect_id,price_cents,probability,cluster,first_name,")

    assert nothing.json()["customers"] == [] and nothing.json()["count"] == 0
    assert nothing_csv.status_code == 200 and len(nothing_csv.text.splitlines()) == 1  # the header alone

    assert view.json()["status"] == "closed" and view.json()["won"] == {"count": 5, "total_cents": 1700}
    awarded = operator.json()["awards"]
    assert (awarded["count"], awarded["unsold"], awarded["published"]) == (5, 35, 0)
    sold_to = {c["prospect_id"]: c["buyer_id"] for c in operator.json()["customers"]}
    assert [pid for pid, buyer in sold_to.items() if buyer] == [p.id for p in ranked[:5]]


def test_a_list_whose_window_has_ended_takes_no_bids_and_has_no_winners_until_the_ledger_closes_it(pool, redis_url):
    dealer = bearer(pool.dealers[0].api_key)

    async def scenario():
        async with intake(pool.sessions, redis_url) as client:
            list_id = (await open_list(client, window_seconds=0.001)).json()["list_id"]
            await asyncio.sleep(0.01)
            return (await client.get(f"/v1/lists/{list_id}", headers=dealer),
                    await client.post(f"/v1/lists/{list_id}/bids", headers=dealer,
                                      json={"scope": "band", "target": "0.00-1.00", "price": 300}),
                    await client.get(f"/v1/lists/{list_id}/won", headers=dealer))

    shown, bid, won = asyncio.run(scenario())
    assert shown.json()["status"] == "closing" and shown.json()["seconds_left"] == 0
    refused(bid, 409, "LIST_CLOSED")
    refused(won, 409, "LIST_OPEN")


def test_the_dealers_list_routes_are_rate_limited_like_every_buyer_route(pool, redis_url):
    async def scenario():
        async with intake(pool.sessions, redis_url, per_second=3) as client:
            list_id = (await open_list(client)).json()["list_id"]  # the admin API is not limited
            return [await client.get(f"/v1/lists/{list_id}?limit=1", headers=bearer(pool.dealers[0].api_key))
                    for _ in range(6)]

    answers = asyncio.run(scenario())
    limited = [a for a in answers if a.status_code == 429]
    assert limited and all(a.status_code in (200, 429) for a in answers)
    assert limited[0].json()["errors"][0]["code"] == "RATE_LIMITED" and limited[0].headers["retry-after"]


# ---------------------------------------------------------------------- `leadx lists`

@pytest.fixture
def cli_pool(pool, database_url, monkeypatch):
    monkeypatch.setenv("DATABASE_URL", database_url)
    monkeypatch.delenv("SCORING_MODELS", raising=False)
    return pool


def test_an_operator_previews_opens_shows_and_exports_a_list_from_the_command_line(cli_pool, tmp_path, capsys):
    profile = tmp_path / "texas.yaml"
    profile.write_text("criteria:\n  - states: [TX]\n")
    texas = [p for p in cli_pool.prospects if p.state == "TX"]
    assert texas  # the simulated pool (seed 1) has three

    assert main(["lists", "preview", "--vertical", "auto_loan", "--profile", str(profile), "--json",
                 "--top", "3"]) == 0
    preview = json.loads(capsys.readouterr().out)
    assert preview["count"] == len(texas) and len(preview["customers"]) == min(3, len(texas))
    assert set(preview["customers"][0]) == {"prospect_id", "state", "zip3", "probability", "cluster"}
    assert main(["lists", "preview", "--vertical", "auto_loan", "--profile", str(profile)]) == 0
    assert "clusters:" in capsys.readouterr().out

    as_json = tmp_path / "all.json"
    as_json.write_text('{"criteria": []}')
    assert main(["lists", "open", "--vertical", "auto_loan", "--profile", str(as_json), "--window", "600",
                 "--reserve", "100", "--band-width", "0.1", "--json"]) == 0
    opened = json.loads(capsys.readouterr().out)
    list_id = opened["list_id"]
    assert (opened["status"], opened["count"], opened["reserve_cents"], opened["band_width"]) == (
        "open", 40, 100, 0.1)
    assert opened["closes_at_ms"] - opened["opened_at_ms"] == 600_000

    dealer = cli_pool.dealers[0].id
    assert main(["lists", "export", list_id, "--buyer", dealer, "--format", "csv"]) == 2
    assert "has not closed yet" in capsys.readouterr().err

    with cli_pool.sessions.begin() as session:
        assert not isinstance(store.place_bid(session, list_id, dealer, {"scope": "band", "target": "0.00-1.00",
                                                                         "price": 150, "max_count": 3},
                                              int(time.time() * 1000)), store.Refusal)
    close_now(cli_pool.sessions, list_id)

    assert main(["lists", "show", list_id]) == 0
    text = capsys.readouterr().out
    assert f"list auction {list_id} closed" in text and "sold 3 for $4.50, 37 unsold" in text
    assert main(["lists", "show", list_id, "--json", "--limit", "2"]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert len(shown["customers"]) == 2 and shown["awards"]["count"] == 3 and len(shown["bids"]) == 1

    out = tmp_path / "won.csv"
    assert main(["lists", "export", list_id, "--buyer", dealer, "--format", "csv", "--out", str(out)]) == 0
    assert "3 customers" in capsys.readouterr().err
    rows = list(csv.DictReader(io.StringIO(out.read_text())))
    ranked = sorted(cli_pool.prospects, key=lambda p: (-p.probability, p.id))
    assert [r["prospect_id"] for r in rows] == [p.id for p in ranked[:3]]
    assert rows[0]["email"] == ranked[0].fields["email"] and rows[0]["price_cents"] == "150"
    assert main(["lists", "export", list_id, "--buyer", dealer, "--format", "json"]) == 0
    exported = json.loads(capsys.readouterr().out)
    assert exported["count"] == 3 and exported["total_cents"] == 450


@pytest.mark.parametrize(("argv", "content", "message"), [
    (["preview", "--vertical", "auto_loan", "--profile", "{missing}"], None, "cannot read the profile"),
    (["preview", "--vertical", "auto_loan", "--profile", "{file}"], "criteria: [\n", "is not valid YAML"),
    (["open", "--vertical", "auto_loan", "--profile", "{file}"], "criteria:\n  - colour: red\n", "criteria[0]"),
    (["open", "--vertical", "auto_loan", "--profile", "{file}"], "", "is empty"),
    (["open", "--vertical", "auto_loan", "--profile", "{file}"], "criteria:\n  - income: {min: .inf}\n",
     "is not a number a profile can hold"),
    (["open", "--vertical", "auto_loan", "--profile", "{file}"], "criteria:\n  - fields: [{name: since, op: eq, "
     "value: 2024-01-01}]\n", "is not text, a number"),
    (["open", "--vertical", "boats", "--profile", "{file}"], "criteria: []\n", "unknown vertical 'boats'"),
    (["open", "--vertical", "auto_loan", "--profile", "{file}", "--band-width", "0.025"], "criteria: []\n",
     "--band-width must be whole hundredths"),
    (["open", "--vertical", "auto_loan", "--profile", "{file}", "--window", "0"], "criteria: []\n", "--window"),
    (["open", "--vertical", "auto_loan", "--profile", "{file}"], "criteria:\n  - states: [AK]\n    income: "
     "{min: 1000000000}\n", "no customer in the auto_loan pool matches"),
    (["show", "NOSUCHLIST"], None, "there is no list auction NOSUCHLIST"),
    (["export", "NOSUCHLIST", "--buyer", "b_1"], None, "there is no list auction NOSUCHLIST"),
])
def test_command_line_mistakes_are_one_line_and_exit_2(cli_pool, tmp_path, capsys, argv, content, message):
    profile = tmp_path / "profile.yaml"
    if content is not None:
        profile.write_text(content)
    argv = [a.format(file=profile, missing=tmp_path / "missing.yaml") for a in argv]
    assert main(["lists", *argv]) == 2
    err = capsys.readouterr().err
    assert message in err and err.startswith("leadx: ") and len(err.strip().splitlines()) == 1
    assert "Traceback" not in err
    with cli_pool.sessions() as session:
        assert session.query(ListAuction).count() == 0


def test_a_dealer_previews_a_list_by_profile_without_an_auction_and_without_pii(pool, redis_url):
    dealer = pool.dealers[0]
    owners = {"criteria": [{"residence_types": ["own"]}]}

    async def scenario():
        async with intake(pool.sessions, redis_url) as client:
            built = await client.post("/v1/lists/preview", headers=bearer(dealer.api_key),
                                      json={"vertical": "auto_loan", "profile": owners, "band_width": 0.1, "top": 3})
            everyone = await client.post("/v1/lists/preview", headers=bearer(dealer.api_key),
                                         json={"vertical": "auto_loan", "profile": {"criteria": []}})
            bad = await client.post("/v1/lists/preview", headers=bearer(dealer.api_key),
                                    json={"vertical": "auto_loan", "profile": {"criteria": [{"colour": "red"}]}})
            unknown = await client.post("/v1/lists/preview", headers=bearer(dealer.api_key),
                                        json={"vertical": "auto_loan", "profile": owners, "window_seconds": 5})
            no_key = await client.post("/v1/lists/preview", json={"vertical": "auto_loan", "profile": owners})
            return built, everyone, bad, unknown, no_key

    built, everyone, bad, unknown, no_key = asyncio.run(scenario())
    assert built.status_code == 200, built.text
    view = built.json()
    mine = sorted((p for p in pool.prospects if p.fields.get("residence_type") == "own"),
                  key=lambda p: (-p.probability, p.id))
    assert view["count"] == len(mine) and view["band_width"] == 0.1
    assert [c["prospect_id"] for c in view["customers"]] == [p.id for p in mine[:3]]  # best first
    assert sum(c["count"] for c in view["clusters"]) == sum(b["count"] for b in view["bands"]) == len(mine)
    assert not any(p.fields[name] in built.text for p in pool.prospects for name in PII_FIELDS if p.fields.get(name))
    assert everyone.json()["count"] == len(pool.prospects)
    assert (bad.status_code, bad.json()["errors"][0]["field"]) == (422, "profile")
    assert (unknown.status_code, unknown.json()["errors"][0]["field"]) == (422, "window_seconds")
    assert no_key.status_code == 401
    with pool.sessions() as session:  # a preview opens nothing
        assert session.scalars(select(ListAuction)).first() is None
