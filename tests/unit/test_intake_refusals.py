"""Requests the OpenAPI document calls invalid are refused with the field at fault, never a 500,
through the real app (SQLite, a real Redis), before anything is published: the sale's own fields
of a lead have their types and bounds, stars are ASCII digits, and the admin API takes I-JSON."""

from __future__ import annotations

import asyncio
import random

import httpx

from leadx.accounts import accounts
from leadx.dev.demo.consumers import make_consumer
from tests.unit.intake_app import ADMIN_KEY, intake


def refused(response: httpx.Response, status: int, code: str, field: str | None) -> str:
    assert response.status_code == status, response.text
    error = response.json()["errors"][0]
    assert (error["code"], error["field"]) == (code, field), response.text
    return error["message"]


def test_a_lead_s_sale_fields_have_their_types_and_bounds(sqlite_url, redis_url):
    lead = make_consumer(random.Random(3))

    async def scenario() -> dict:
        async with intake(sqlite_url, redis_url) as exchange:
            with exchange.sessions() as session:
                seller = accounts.create_seller(session, "Typed seller")
                session.commit()
            seller_key = {"Authorization": f"Bearer {seller.api_key}"}
            async with exchange.client() as http:
                async def post(path: str, body: dict) -> httpx.Response:
                    return await http.post(path, json=body, headers=seller_key)
                return {
                    "long reference": await post("/v1/post", lead | {"reference": "r" * 101}),
                    "listed reference": await post("/v1/post", lead | {"reference": ["r1"]}),
                    "numbered buyer": await post("/v1/post", lead | {"buyer": 5}),
                    "true token": await post("/v1/post", lead | {"ping_token": True}),
                    "huge reserve": await post("/v1/post", lead | {"min_price": 10**13}),
                    "numbered hash": await post("/v1/ping", {"vertical": lead["vertical"], "email_sha256": 7}),
                    "superscript stars": await http.put("/v1/buyers/b_nobody/rating", json={"stars": "²"},
                                                        headers=seller_key),
                    "empty stars": await http.put("/v1/buyers/b_nobody/rating", json={"stars": ""},
                                                  headers=seller_key),
                    # JSON has one kind of number: 5.0 is the integer 5 (then no such buyer).
                    "whole float stars": await http.put("/v1/buyers/b_nobody/rating", content=b'{"stars": 5.0}',
                                                        headers={**seller_key, "Content-Type": "application/json"}),
                }

    seen = asyncio.run(scenario())
    assert "at most 100" in refused(seen["long reference"], 422, "FIELD_INVALID", "reference")
    refused(seen["listed reference"], 422, "FIELD_INVALID", "reference")
    assert "text" in refused(seen["numbered buyer"], 422, "FIELD_INVALID", "buyer")
    refused(seen["true token"], 422, "FIELD_INVALID", "ping_token")
    assert "10000000" in refused(seen["huge reserve"], 422, "FIELD_INVALID", "min_price")
    refused(seen["numbered hash"], 422, "FIELD_INVALID", "email_sha256")
    refused(seen["superscript stars"], 422, "FIELD_INVALID", "stars")
    refused(seen["empty stars"], 422, "FIELD_MISSING", "stars")
    refused(seen["whole float stars"], 404, "ACCOUNT_NOT_FOUND", "buyer")


def test_the_admin_api_takes_i_json_and_an_import_document_as_documented(sqlite_url, redis_url):
    async def scenario() -> dict:
        async with intake(sqlite_url, redis_url) as exchange:
            with exchange.sessions() as session:
                dealer = accounts.create_buyer(session, "Dealer", "http://127.0.0.1:9/ping", "")
                session.commit()
            admin = {"Authorization": f"Bearer {ADMIN_KEY}"}
            async with exchange.client() as http:
                async def send(method: str, path: str, body: object = None, content: bytes | None = None):
                    headers = {**admin, "Content-Type": "application/json"}
                    return await http.request(method, path, json=body, content=content, headers=headers)
                return {
                    "big number": await send("PATCH", f"/v1/admin/buyers/{dealer.id}",
                                             {"caps": {"leads_per_day": 2**60}}),
                    "surrogate": await send("POST", "/v1/admin/sellers", content=b'{"name": "A \\ud800"}'),
                    "unknown member": await send("POST", "/v1/admin/profiles/import", {"buyers": [], "sellers": []}),
                    "null kind": await send("POST", "/v1/admin/profiles/import",
                                            {"buyers": [{"id": dealer.id, "kind": None}]}),
                    "object url": await send("POST", "/v1/admin/buyers", {"name": "B", "kind": "autobid",
                                                                          "post_url": {}}),
                    "long profile name": await send("PUT", f"/v1/admin/buyers/{dealer.id}/profiles",
                                                    [{"name": "n" * 201, "price": 100}]),
                    "listed vertical": await http.post("/v1/lists/preview", json={"vertical": ["auto_loan"]},
                                                       headers={"Authorization": f"Bearer {dealer.api_key}"}),
                }

    seen = asyncio.run(scenario())
    assert "I-JSON" in refused(seen["big number"], 422, "FIELD_INVALID", "caps")
    assert "surrogate" in refused(seen["surrogate"], 400, "PAYLOAD_MALFORMED", None)
    refused(seen["unknown member"], 422, "FIELD_INVALID", "sellers")
    assert "null" in refused(seen["null kind"], 422, "FIELD_INVALID", "kind")
    refused(seen["listed vertical"], 422, "FIELD_INVALID", "vertical")
    refused(seen["object url"], 422, "FIELD_INVALID", "post_url")  # {} is no URL, nor an absent one
    assert "200" in refused(seen["long profile name"], 422, "FIELD_INVALID", "profiles")
