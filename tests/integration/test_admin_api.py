"""The operators' admin API (/v1/admin/...) over real HTTP against a running intake, with what it
changes read back from SQL. Every test that changes accounts makes its own: the exchange's seller
and buyers are shared with the module's other tests."""

from __future__ import annotations

import asyncio
import uuid
from types import SimpleNamespace

import httpx
import pytest
from sqlalchemy import func, select

from leadx.accounts.accounts import hash_api_key
from leadx.platform.db.models import Buyer, BuyerProfile, Partnership, Seller, SellerBuyerChoice
from tests import http_calls as http
from tests.conftest import poll_until
from tests.integration.conftest import ADMIN_KEY, KEY_CACHE_S
from tests.integration.harness import Exchange

pytestmark = pytest.mark.integration

PROFILE = {"name": "texas weekends", "windows": [{"from": "fri 08:00", "to": "sun 21:00"}],
           "criteria": [{"states": ["TX"], "price": 3000}, {"probability": {"min": 0.2}, "price": 2500}]}


def admin(exchange: Exchange, method: str, path: str, body: object = None, key: str | None = ADMIN_KEY,
          **kwargs) -> httpx.Response:
    headers = {"Authorization": f"Bearer {key}"} if key is not None else {}
    return http.request(method, f"{exchange.intake_url()}/v1/admin{path}", json=body, headers=headers,
                        timeout=10, **kwargs)


def refused(response: httpx.Response, status: int, code: str) -> str:
    """The message of a refusal, after checking its status and code."""
    assert response.status_code == status, response.text
    errors = response.json()["errors"]
    assert [e["code"] for e in errors] == [code], response.text
    return errors[0]["message"]


def new_seller(exchange: Exchange) -> str:
    created = admin(exchange, "POST", "/sellers", {"name": f"seller {uuid.uuid4().hex[:6]}"})
    assert created.status_code == 201, created.text
    return created.json()["id"]


def new_buyer(exchange: Exchange, **settings) -> str:
    body = {"name": f"buyer {uuid.uuid4().hex[:6]}", **settings}
    if body.get("kind") != "autobid":
        body.setdefault("ping_url", "https://buyer.example/ping")
    created = admin(exchange, "POST", "/buyers", body)
    assert created.status_code == 201, created.text
    return created.json()["id"]


def test_every_admin_request_needs_the_admin_key(exchange: Exchange):
    path = f"/sellers/{exchange.seller_id}/relations"
    assert "Bearer" in refused(admin(exchange, "GET", path, key=None), 401, "AUTH_INVALID")
    refused(admin(exchange, "GET", path, key="not-the-admin-key"), 401, "AUTH_INVALID")
    refused(admin(exchange, "GET", path, key=exchange.seller_key), 401, "AUTH_INVALID")  # a seller is no admin
    refused(admin(exchange, "POST", "/sellers", {"name": "intruder"}, key="wrong"), 401, "AUTH_INVALID")
    with exchange.sql() as session:
        assert session.scalar(select(func.count()).select_from(Seller).where(Seller.name == "intruder")) == 0
    assert admin(exchange, "GET", path).status_code == 200


def test_without_an_admin_key_the_admin_api_is_off():
    from leadx.platform.health import Readiness
    from services.intake.admin import Admin
    from services.intake.app import build_app
    from services.intake.buyers import Buyers
    from services.intake.lists import Lists
    from services.intake.sellers import Sellers

    # The real app, wired with no ADMIN_API_KEY (and nothing else it could reach): refused before
    # anything is read.
    deps = SimpleNamespace(sessions=None, secret=b"k" * 32, dedup=None, redis=None, producer=None, namespace="",
                           max_body_bytes=1024, admin_api_key="")

    async def ask(key: str) -> httpx.Response:
        app = build_app(Sellers(deps), Buyers(deps), Admin(deps.sessions, deps.admin_api_key),
                        Lists(deps.sessions, None, deps.admin_api_key, deps.max_body_bytes), Readiness())
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://intake") as client:
            return await client.post("/v1/admin/sellers", json={"name": "x"},
                                     headers={"Authorization": f"Bearer {key}"})

    for key in ("", "anything"):
        response = asyncio.run(ask(key))
        assert response.status_code == 401
        assert response.json()["errors"][0] == {
            "code": "AUTH_INVALID", "field": None, "message": "the admin API is off: set ADMIN_API_KEY"}


def test_sellers_and_buyers_are_created_with_keys_shown_once(exchange: Exchange):
    seller = admin(exchange, "POST", "/sellers", {"name": "Admin Leads"})
    assert seller.status_code == 201, seller.text
    created = seller.json()
    assert created["status"] == "created" and created["api_key"].startswith("lx_")
    buyer = admin(exchange, "POST", "/buyers", {
        "name": "Full Dealer", "kind": "autobid", "post_url": "https://dealer.example/leads", "weight": 1.5,
        "time_zone": "America/Chicago", "caps": {"leads_per_day": 40, "spend_per_month_cents": 500000}})
    assert buyer.status_code == 201, buyer.text
    buyer_id = buyer.json()["id"]
    with exchange.sql() as session:
        stored = session.get(Seller, created["id"])
        assert stored.name == "Admin Leads" and stored.api_key_hash == hash_api_key(created["api_key"])
        row = session.get(Buyer, buyer_id)
        assert (row.kind, row.weight, row.time_zone, row.ping_url) == ("autobid", 1.5, "America/Chicago", "")
        assert row.caps == {"leads_per_day": 40, "spend_per_month_cents": 500000}
        assert row.api_key_hash == hash_api_key(buyer.json()["api_key"])
    # The new seller's key works at once on the sellers' API.
    status = http.get(f"{exchange.intake_url()}/v1/leads/ABCDEFGHIJ", timeout=10,
                      headers={"Authorization": f"Bearer {created['api_key']}"})
    assert refused(status, 404, "LEAD_NOT_FOUND")

    shown = admin(exchange, "GET", f"/buyers/{buyer_id}")
    assert shown.status_code == 200, shown.text
    settings = shown.json()
    assert {k: settings[k] for k in ("id", "name", "kind", "weight", "time_zone", "caps", "post_url", "profiles")} \
        == {"id": buyer_id, "name": "Full Dealer", "kind": "autobid", "weight": 1.5, "time_zone": "America/Chicago",
            "caps": {"leads_per_day": 40, "spend_per_month_cents": 500000},
            "post_url": "https://dealer.example/leads", "profiles": []}
    assert "api_key" not in settings


@pytest.mark.parametrize(("body", "code", "field"), [
    ({"ping_url": "https://b.example/p", "post_url": ""}, "FIELD_MISSING", "name"),
    ({"name": "x", "post_url": ""}, "FIELD_MISSING", "ping_url"),  # a wholesale buyer is pinged
    ({"name": "x", "ping_url": "https://b.example/p", "post_url": "b.example/post"}, "FIELD_INVALID", "post_url"),
    ({"name": "x", "ping_url": "", "post_url": ""}, "FIELD_INVALID", None),
    ({"name": "x", "ping_url": "ftp://b.example/p", "post_url": ""}, "FIELD_INVALID", "ping_url"),
    ({"name": "x", "kind": "retail", "post_url": ""}, "FIELD_INVALID", "kind"),
    ({"name": "x", "kind": "autobid", "post_url": "", "weight": 0}, "FIELD_INVALID", None),
    ({"name": "x", "kind": "autobid", "post_url": "", "weight": "heavy"}, "FIELD_INVALID", None),
    ({"name": "x", "kind": "autobid", "post_url": "", "time_zone": "Mars/Olympus"}, "FIELD_INVALID", None),
    ({"name": "x", "kind": "autobid", "post_url": "", "time_zone": "America"}, "FIELD_INVALID", None),
    ({"name": "x", "kind": "autobid", "post_url": "", "time_zone": 5}, "FIELD_INVALID", None),
    ({"name": "x", "kind": "autobid", "post_url": "", "caps": {"leads_per_week": 5}}, "FIELD_INVALID", None),
    ({"name": "x", "kind": "autobid", "post_url": "", "caps": {"leads_per_day": -1}}, "FIELD_INVALID", None),
    ({"name": "x", "kind": "autobid", "post_url": "", "timezone": "UTC"}, "FIELD_INVALID", "timezone"),
])
def test_a_buyer_with_bad_settings_is_refused_and_not_created(exchange: Exchange, body, code, field):
    name = f"refused {uuid.uuid4().hex[:6]}"
    if "name" in body:
        body = {**body, "name": name}
    response = admin(exchange, "POST", "/buyers", body)
    refused(response, 422, code)
    assert response.json()["errors"][0]["field"] == field
    with exchange.sql() as session:
        assert session.scalar(select(func.count()).select_from(Buyer).where(Buyer.name == name)) == 0


@pytest.mark.parametrize(("body", "field"), [
    ({"ping_url": "http://169.254.169.254/latest/meta-data/"}, "ping_url"),
    ({"ping_url": "http://127.0.0.1:9/ping", "post_url": "http://[::ffff:169.254.169.254]/"}, "post_url"),
    ({"ping_url": "http://0.0.0.0:6379/"}, "ping_url"),
])
def test_a_buyer_url_into_the_exchange_s_own_network_is_refused_even_on_the_local_stack(exchange: Exchange, body,
                                                                                       field):
    # The local stack allows loopback buyers (BUYER_URLS_ALLOW_PRIVATE), never the metadata service.
    name = f"refused {uuid.uuid4().hex[:6]}"
    response = admin(exchange, "POST", "/buyers", {"name": name, **body})
    assert "buyer calls go to public addresses only" in refused(response, 422, "URL_ADDRESS_FORBIDDEN")
    assert response.json()["errors"][0]["field"] == field
    with exchange.sql() as session:
        assert session.scalar(select(func.count()).select_from(Buyer).where(Buyer.name == name)) == 0


def test_a_buyer_s_settings_are_changed_and_checked(exchange: Exchange):
    buyer_id = new_buyer(exchange, kind="autobid")
    changed = admin(exchange, "PATCH", f"/buyers/{buyer_id}",
                    {"weight": 2.5, "time_zone": "Europe/London", "caps": {"leads_per_hour": 3}})
    assert changed.status_code == 200, changed.text
    assert (changed.json()["weight"], changed.json()["time_zone"], changed.json()["caps"]) == (
        2.5, "Europe/London", {"leads_per_hour": 3})
    with exchange.sql() as session:
        row = session.get(Buyer, buyer_id)
        assert (row.weight, row.time_zone, row.caps) == (2.5, "Europe/London", {"leads_per_hour": 3})

    # An AutoBid buyer has no ping URL, so it cannot become a wholesale one.
    assert "ping URL" in refused(admin(exchange, "PATCH", f"/buyers/{buyer_id}", {"kind": "wholesale"}),
                                 422, "FIELD_INVALID")
    for bad in ({"weight": 0}, {"weight": 101}, {"time_zone": "Nowhere/Town"}, {"caps": {"leads": 1}},
                {"kind": None}, {"name": "renamed"}):
        refused(admin(exchange, "PATCH", f"/buyers/{buyer_id}", bad), 422, "FIELD_INVALID")
    refused(admin(exchange, "PATCH", f"/buyers/{buyer_id}", {}), 422, "FIELD_MISSING")
    with exchange.sql() as session:
        row = session.get(Buyer, buyer_id)
        assert (row.kind, row.weight, row.time_zone) == ("autobid", 2.5, "Europe/London")

    cleared = admin(exchange, "PATCH", f"/buyers/{buyer_id}", {"caps": None})
    assert cleared.status_code == 200 and cleared.json()["caps"] == {}
    refused(admin(exchange, "PATCH", "/buyers/b_nosuchbuyer", {"weight": 1}), 404, "ACCOUNT_NOT_FOUND")
    refused(admin(exchange, "GET", "/buyers/b_nosuchbuyer"), 404, "ACCOUNT_NOT_FOUND")


def test_profiles_are_replaced_whole_and_only_when_every_one_is_valid(exchange: Exchange):
    buyer_id = new_buyer(exchange, kind="autobid", time_zone="America/Chicago")
    first = admin(exchange, "PUT", f"/buyers/{buyer_id}/profiles", [PROFILE, {"name": "anything", "price": 900}])
    assert first.status_code == 200, first.text
    first_ids = first.json()["profile_ids"]
    assert len(first_ids) == 2 and first.json()["buyer_id"] == buyer_id

    second = admin(exchange, "PUT", f"/buyers/{buyer_id}/profiles", {"profiles": [{**PROFILE, "caps": {
        "leads_per_day": 10}}]})
    assert second.status_code == 200, second.text
    (second_id,) = second.json()["profile_ids"]
    with exchange.sql() as session:
        rows = {p.id: p for p in session.scalars(select(BuyerProfile).where(BuyerProfile.buyer_id == buyer_id))}
        assert {i for i, p in rows.items() if p.active} == {second_id}
        assert rows[second_id].spec["caps"] == {"leads_per_day": 10} and rows[second_id].name == "texas weekends"
    shown = admin(exchange, "GET", f"/buyers/{buyer_id}").json()["profiles"]
    assert [p["id"] for p in shown] == [second_id] and shown[0]["criteria"] == PROFILE["criteria"]

    unknown_key = {**PROFILE, "criteria": [{"states": ["TX"], "county": "Dallas", "price": 100}]}
    assert "county" in refused(admin(exchange, "PUT", f"/buyers/{buyer_id}/profiles", [PROFILE, unknown_key]),
                               422, "FIELD_INVALID")
    no_price = {"name": "free", "criteria": [{"states": ["TX"]}]}
    assert "price" in refused(admin(exchange, "PUT", f"/buyers/{buyer_id}/profiles", [no_price]),
                              422, "FIELD_INVALID")
    for bad in ([{"price": 100}], [{"name": "x", "price": 100, "windows": [{"from": "funday 08:00", "to": "sun"}]}],
                [{"name": "x", "price": 100, "criteria": [{"fields": [{"name": "a", "op": ["eq"], "value": 1}]}]}],
                {"profiles": "all of them"}, "profiles", {"profiles": [PROFILE], "buyer": buyer_id}):
        refused(admin(exchange, "PUT", f"/buyers/{buyer_id}/profiles", bad), 422, "FIELD_INVALID")
    with exchange.sql() as session:  # no refusal touched the stored profiles
        active = session.scalars(select(BuyerProfile.id).where(BuyerProfile.buyer_id == buyer_id,
                                                               BuyerProfile.active.is_(True))).all()
        assert active == [second_id]
    refused(admin(exchange, "PUT", "/buyers/b_nosuchbuyer/profiles", [PROFILE]), 404, "ACCOUNT_NOT_FOUND")


def test_an_import_document_applies_several_buyers_or_none(exchange: Exchange):
    autobid, wholesale = new_buyer(exchange, kind="autobid"), new_buyer(exchange)
    document = {"buyers": [
        {"id": autobid, "weight": 1.25, "time_zone": "America/Denver", "profiles": [PROFILE]},
        {"id": wholesale, "caps": {"leads_per_day": 7}, "profiles": [{"name": "filter", "price": 0,
                                                                      "criteria": [{"states": ["CO"]}]}]},
    ]}
    imported = admin(exchange, "POST", "/profiles/import", document)
    assert imported.status_code == 200, imported.text
    ids = imported.json()["profile_ids"]
    assert set(ids) == {autobid, wholesale} and all(len(v) == 1 for v in ids.values())
    with exchange.sql() as session:
        assert (session.get(Buyer, autobid).weight, session.get(Buyer, autobid).time_zone) == (1.25, "America/Denver")
        assert session.get(Buyer, wholesale).caps == {"leads_per_day": 7}
        assert session.get(BuyerProfile, ids[autobid][0]).active

    # One bad entry: nothing of the document is applied.
    unknown = {"buyers": [{"id": autobid, "weight": 3}, {"id": "b_nosuchbuyer", "weight": 2}]}
    refused(admin(exchange, "POST", "/profiles/import", unknown), 404, "ACCOUNT_NOT_FOUND")
    bad_profile = {"buyers": [{"id": autobid, "weight": 3}, {"id": wholesale, "profiles": [{"name": "nothing"}]}]}
    assert wholesale in refused(admin(exchange, "POST", "/profiles/import", bad_profile), 422, "FIELD_INVALID")
    for bad in ({"buyers": [{"id": autobid, "profiles": 5}]}, {"buyers": [{"id": autobid, "time_zone": "America"}]},
                {"buyers": [{"id": autobid, "colour": "red"}]}, {"sellers": []}, [document]):
        refused(admin(exchange, "POST", "/profiles/import", bad), 422, "FIELD_INVALID")
    with exchange.sql() as session:
        assert session.get(Buyer, autobid).weight == 1.25


def test_partnerships_are_added_once_and_removed(exchange: Exchange):
    seller_id, buyer_id = new_seller(exchange), new_buyer(exchange)
    pair = {"seller": seller_id, "buyer": buyer_id}
    added = admin(exchange, "PUT", "/partnerships", pair)
    assert added.status_code == 201 and added.json()["status"] == "created", added.text
    again = admin(exchange, "PUT", "/partnerships", pair)
    assert again.status_code == 200 and again.json()["status"] == "ok"
    with exchange.sql() as session:
        assert session.get(Partnership, (buyer_id, seller_id)) is not None
    assert admin(exchange, "GET", f"/sellers/{seller_id}/relations").json()["partners"] == [buyer_id]

    removed = admin(exchange, "DELETE", "/partnerships", pair)
    assert removed.status_code == 200, removed.text
    refused(admin(exchange, "DELETE", "/partnerships", pair), 404, "PARTNERSHIP_NOT_FOUND")
    assert admin(exchange, "PUT", "/partnerships", pair).status_code == 201
    assert admin(exchange, "DELETE", "/partnerships", params=pair).status_code == 200  # or as query parameters
    with exchange.sql() as session:
        assert session.get(Partnership, (buyer_id, seller_id)) is None

    refused(admin(exchange, "PUT", "/partnerships", {**pair, "seller": "s_nosuchseller"}), 404, "ACCOUNT_NOT_FOUND")
    refused(admin(exchange, "PUT", "/partnerships", {**pair, "buyer": "b_nosuchbuyer"}), 404, "ACCOUNT_NOT_FOUND")
    refused(admin(exchange, "DELETE", "/partnerships", {**pair, "buyer": "b_nosuchbuyer"}), 404, "ACCOUNT_NOT_FOUND")
    refused(admin(exchange, "PUT", "/partnerships", {"seller": seller_id}), 422, "FIELD_MISSING")
    refused(admin(exchange, "DELETE", "/partnerships"), 422, "FIELD_MISSING")


def test_a_seller_sells_to_all_or_named_buyers_and_allows_or_blocks_them(exchange: Exchange):
    seller_id, buyer_id = new_seller(exchange), new_buyer(exchange)
    assert admin(exchange, "PUT", "/partnerships", {"seller": seller_id, "buyer": buyer_id}).status_code == 201
    named = admin(exchange, "PUT", f"/sellers/{seller_id}/sells-to", {"sells_to": "named"})
    assert named.status_code == 200, named.text
    assert named.json()["sells_to"] == "named"
    allowed = admin(exchange, "PUT", f"/sellers/{seller_id}/buyers/{buyer_id}", {"choice": "allow"})
    assert allowed.status_code == 200 and allowed.json()["allowed"] == [buyer_id], allowed.text
    with exchange.sql() as session:
        assert session.get(Seller, seller_id).sells_to == "named"
        assert session.get(SellerBuyerChoice, (seller_id, buyer_id)).choice == "allow"
    blocked = admin(exchange, "PUT", f"/sellers/{seller_id}/buyers/{buyer_id}", {"choice": "block"})
    assert (blocked.json()["allowed"], blocked.json()["blocked"]) == ([], [buyer_id])

    relations = admin(exchange, "GET", f"/sellers/{seller_id}/relations")
    assert relations.status_code == 200
    assert {k: v for k, v in relations.json().items() if k not in ("status", "lead_id", "errors")} == {
        "seller_id": seller_id, "sells_to": "named", "partners": [buyer_id], "allowed": [], "blocked": [buyer_id]}
    forgotten = admin(exchange, "DELETE", f"/sellers/{seller_id}/buyers/{buyer_id}")
    assert forgotten.status_code == 200 and forgotten.json()["blocked"] == []
    with exchange.sql() as session:
        assert session.get(SellerBuyerChoice, (seller_id, buyer_id)) is None
    assert admin(exchange, "PUT", f"/sellers/{seller_id}/sells-to", {"sells_to": "all"}).json()["sells_to"] == "all"

    refused(admin(exchange, "PUT", f"/sellers/{seller_id}/sells-to", {"sells_to": "some"}), 422, "FIELD_INVALID")
    refused(admin(exchange, "PUT", f"/sellers/{seller_id}/sells-to", {}), 422, "FIELD_MISSING")
    refused(admin(exchange, "PUT", f"/sellers/{seller_id}/buyers/{buyer_id}", {"choice": "maybe"}),
            422, "FIELD_INVALID")
    refused(admin(exchange, "PUT", f"/sellers/{seller_id}/buyers/{buyer_id}", {}), 422, "FIELD_MISSING")
    refused(admin(exchange, "PUT", f"/sellers/{seller_id}/buyers/b_nosuchbuyer", {"choice": "block"}),
            404, "ACCOUNT_NOT_FOUND")
    refused(admin(exchange, "PUT", "/sellers/s_nosuchseller/sells-to", {"sells_to": "all"}), 404, "ACCOUNT_NOT_FOUND")
    refused(admin(exchange, "GET", "/sellers/s_nosuchseller/relations"), 404, "ACCOUNT_NOT_FOUND")
    refused(admin(exchange, "DELETE", f"/sellers/s_nosuchseller/buyers/{buyer_id}"), 404, "ACCOUNT_NOT_FOUND")


def test_keys_are_rotated_and_revoked_and_buyers_deactivated(exchange: Exchange):
    def buyer_with_key() -> tuple[str, str]:
        created = admin(exchange, "POST", "/buyers", {"name": f"buyer {uuid.uuid4().hex[:6]}",
                                                      "ping_url": "https://buyer.example/ping"})
        assert created.status_code == 201, created.text
        return created.json()["id"], created.json()["api_key"]

    def as_buyer(key: str) -> httpx.Response:
        """A route only buyers' keys open: its view of the exchange's seller."""
        return http.get(f"{exchange.intake_url()}/v1/sellers/{exchange.seller_id}/rating", timeout=10,
                        headers={"Authorization": f"Bearer {key}"})

    buyer_id, old_key = buyer_with_key()
    assert as_buyer(old_key).status_code == 200  # now in the intake's key cache
    rotated = admin(exchange, "POST", f"/buyers/{buyer_id}/rotate-key")
    assert rotated.status_code == 200, rotated.text
    new_key = rotated.json()["api_key"]
    assert rotated.json()["id"] == buyer_id and new_key.startswith("lx_") and new_key != old_key
    with exchange.sql() as session:
        assert session.get(Buyer, buyer_id).api_key_hash == hash_api_key(new_key)
    assert as_buyer(new_key).status_code == 200

    # Keys never used (not cached) are refused at once: revoked, or the buyer's deactivated.
    revoked_id, revoked_key = buyer_with_key()
    revoked = admin(exchange, "POST", f"/buyers/{revoked_id}/revoke-key")
    assert revoked.status_code == 200 and revoked.json()["id"] == revoked_id, revoked.text
    refused(as_buyer(revoked_key), 401, "AUTH_INVALID")
    inactive_id, inactive_key = buyer_with_key()
    deactivated = admin(exchange, "POST", f"/buyers/{inactive_id}/deactivate")
    assert deactivated.status_code == 200 and deactivated.json()["active"] is False, deactivated.text
    refused(as_buyer(inactive_key), 401, "AUTH_INVALID")
    reactivated = admin(exchange, "POST", f"/buyers/{inactive_id}/reactivate")
    assert reactivated.status_code == 200 and reactivated.json()["active"] is True, reactivated.text
    with exchange.sql() as session:  # the same key again; the intake cached its refusal for up to KEY_CACHE_S
        assert session.get(Buyer, inactive_id).active is True

    seller_id = new_seller(exchange)
    seller_rotated = admin(exchange, "POST", f"/sellers/{seller_id}/rotate-key")
    assert seller_rotated.status_code == 200, seller_rotated.text
    with exchange.sql() as session:
        assert session.get(Seller, seller_id).api_key_hash == hash_api_key(seller_rotated.json()["api_key"])
    assert admin(exchange, "POST", f"/sellers/{seller_id}/revoke-key").status_code == 200
    with exchange.sql() as session:
        assert session.get(Seller, seller_id).api_key_hash.startswith("revoked:")

    for path in ("/buyers/b_nosuchbuyer/rotate-key", "/buyers/b_nosuchbuyer/revoke-key",
                 "/buyers/b_nosuchbuyer/deactivate", "/buyers/b_nosuchbuyer/reactivate",
                 "/sellers/s_nosuchseller/rotate-key", "/sellers/s_nosuchseller/revoke-key"):
        assert "no " in refused(admin(exchange, "POST", path), 404, "ACCOUNT_NOT_FOUND")
    refused(admin(exchange, "POST", f"/buyers/{buyer_id}/rotate-key", key=old_key), 401, "AUTH_INVALID")

    # The rotated-out key was cached before the rotation: it stops working within the cache's time
    # (API_KEY_CACHE_SECONDS, which the shared exchange sets to KEY_CACHE_S).
    poll_until(lambda: as_buyer(old_key).status_code == 401, timeout_s=KEY_CACHE_S + 10, interval_s=0.5,
               message="the rotated-out buyer key to be refused")
    refused(as_buyer(old_key), 401, "AUTH_INVALID")
    assert as_buyer(new_key).status_code == 200


def test_bodies_that_are_not_json_objects_are_refused_clearly(exchange: Exchange):
    url = f"{exchange.intake_url()}/v1/admin/sellers"
    auth = {"Authorization": f"Bearer {ADMIN_KEY}"}

    def send(content: bytes, content_type: str = "application/json") -> httpx.Response:
        return http.post(url, content=content, headers={**auth, "Content-Type": content_type}, timeout=10)

    assert "not valid JSON" in refused(send(b'{"name": "unterminated'), 400, "PAYLOAD_MALFORMED")
    refused(send(b'{"name": NaN}'), 400, "PAYLOAD_MALFORMED")
    refused(send(b'["a list"]'), 400, "PAYLOAD_MALFORMED")
    refused(send(b"\xff\xfe"), 400, "PAYLOAD_MALFORMED")
    refused(send(b"[" * 50_000 + b"]" * 10), 400, "PAYLOAD_MALFORMED")
    refused(send(b"name=x", "text/plain"), 415, "UNSUPPORTED_MEDIA_TYPE")
    refused(send(b'{"name": "' + b"x" * 70_000 + b'"}'), 413, "PAYLOAD_TOO_LARGE")
    refused(send(b'{"name": "' + b"x" * 300 + b'"}'), 422, "FIELD_INVALID")
    refused(send(b'{"name": 7}'), 422, "FIELD_INVALID")
    refused(admin(exchange, "GET", "/sellers"), 405, "METHOD_NOT_ALLOWED")
    refused(admin(exchange, "GET", "/nothing-here"), 404, "NOT_FOUND")
