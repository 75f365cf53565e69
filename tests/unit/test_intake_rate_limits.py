"""Every intake route is rate limited, against a real Redis through the real app: the operators'
admin key has an allowance of its own, a request that carries no key (the OpenAPI document, health,
readiness, a request without its key) is held to its source address's, and a lead's status to its
account's, as every other account route is. Over an allowance: 429 RATE_LIMITED with Retry-After.
And a method a path does not serve is answered 405 with every method it does in `Allow`."""

from __future__ import annotations

import asyncio
import time

import httpx

from leadx.accounts import accounts
from tests.unit.intake_app import ADMIN_KEY, intake

ALLOWANCE = 2  # per second, for every limit under test
BURST = 6


async def burst(http: httpx.AsyncClient, method: str, path: str, **kwargs) -> list[httpx.Response]:
    """BURST requests at once, so that they land in one window of the limit however slow the machine."""
    return list(await asyncio.gather(*(http.request(method, path, **kwargs) for _ in range(BURST))))


def limited(answers: list[httpx.Response], allowed: int) -> list[httpx.Response]:
    """The answers over the allowance, after checking that the allowance went through (a few more
    only when the burst straddled two windows) and the rest were refused as rate limited."""
    refused = [a for a in answers if a.status_code == 429]
    assert ALLOWANCE <= len(answers) - len(refused) <= 2 * ALLOWANCE, [a.status_code for a in answers]
    assert all(a.status_code == allowed for a in answers if a.status_code != 429), [a.text for a in answers]
    assert refused
    for answer in refused:
        assert answer.json()["errors"][0]["code"] == "RATE_LIMITED", answer.text
        assert int(answer.headers["Retry-After"]) >= 1
    return refused


def test_the_admin_key_has_an_allowance_of_its_own(sqlite_url, redis_url):
    async def scenario() -> dict:
        async with intake(sqlite_url, redis_url, admin_per_second=ALLOWANCE) as exchange, exchange.client() as http:
            admin = {"Authorization": f"Bearer {ADMIN_KEY}"}
            return {"admin": await burst(http, "GET", "/v1/admin/buyers/b_nobody", headers=admin),
                    "lists": await burst(http, "GET", "/v1/admin/lists/NOSUCHLIST", headers=admin)}

    seen = asyncio.run(scenario())
    assert "with the admin key" in limited(seen["admin"], 404)[0].json()["errors"][0]["message"]
    # The operators' list routes draw on the same allowance, still spent within the second.
    assert any(a.status_code == 429 for a in seen["lists"])


def test_requests_without_a_key_are_held_to_their_address_s_allowance(sqlite_url, redis_url):
    async def scenario() -> dict:
        async with intake(sqlite_url, redis_url, address_per_second=ALLOWANCE) as exchange, \
                exchange.client("203.0.113.7") as http, exchange.client("198.51.100.3") as other, \
                exchange.client("192.0.2.5") as third:
            began = time.monotonic()
            seen = {"document": await burst(http, "GET", "/openapi.json"),
                    "health elsewhere": await other.get("/healthz"),
                    "keyless lead": await burst(third, "POST", "/v1/post", json={}),
                    "keyless admin": await burst(http, "GET", "/v1/admin/buyers/b_nobody")}
            return seen | {"took_s": time.monotonic() - began}

    seen = asyncio.run(scenario())
    message = limited(seen["document"], 200)[0].json()["errors"][0]["message"]
    assert "from 203.0.113.7 without an API key" in message
    assert seen["health elsewhere"].status_code == 200  # per address
    limited(seen["keyless lead"], 401)
    # This address spent its allowance on the document: the admin route without a key is held to
    # it too. Within half a second of the document's burst the sliding window still counts it whole
    # enough to refuse them all; later (a loaded machine) part of it has slid out, and up to
    # ALLOWANCE more (twice that across a window's edge) are let through, each refused 401 for want
    # of a key.
    admin = [a.status_code for a in seen["keyless admin"]]
    if seen["took_s"] < 0.5:
        assert set(admin) == {429}, admin
    else:
        assert set(admin) <= {401, 429} and admin.count(429) >= BURST - 2 * ALLOWANCE, admin


def test_a_lead_s_status_is_held_to_the_account_s_allowance(sqlite_url, redis_url):
    async def scenario() -> list[httpx.Response]:
        async with intake(sqlite_url, redis_url, accounts_per_second=ALLOWANCE) as exchange:
            with exchange.sessions() as session:
                seller = accounts.create_seller(session, "Status asker")
                session.commit()
            async with exchange.client() as http:
                return await burst(http, "GET", "/v1/leads/ABCDEFGHIJ",
                                   headers={"Authorization": f"Bearer {seller.api_key}"})

    limited(asyncio.run(scenario()), 404)


def test_a_method_a_path_does_not_serve_is_answered_405_with_every_method_it_does(sqlite_url, redis_url):
    async def scenario() -> dict:
        async with intake(sqlite_url, redis_url) as exchange, exchange.client() as http:
            return {path: await http.request(method, path) for method, path in (
                ("DELETE", "/v1/admin/buyers/b_1"), ("TRACE", "/v1/admin/partnerships"), ("GET", "/v1/post"),
                ("OPTIONS", "/v1/sellers/s_1/rating"), ("POST", "/healthz"))}

    seen = asyncio.run(scenario())
    allowed = {path: answer.headers.get("Allow") for path, answer in seen.items()}
    assert allowed == {"/v1/admin/buyers/b_1": "GET, HEAD, PATCH", "/v1/admin/partnerships": "DELETE, PUT",
                       "/v1/post": "POST", "/v1/sellers/s_1/rating": "GET, HEAD, PUT", "/healthz": "GET, HEAD"}
    for answer in seen.values():
        assert answer.status_code == 405 and answer.json()["errors"][0]["code"] == "METHOD_NOT_ALLOWED"
