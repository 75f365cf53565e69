"""Failed authentication, against a real Redis and real SQL: an address that keeps sending unknown
keys is refused before any look-up once over its allowance, without holding up callers whose keys
are known or other addresses; a repeated unknown key costs no SQL, a flood of them never pushes
the known keys out of the cache, and a key is looked up again once its cached time is up."""

from __future__ import annotations

import asyncio
import uuid

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from leadx.accounts import accounts
from leadx.accounts.api_keys import TTL_VARIABLE, KeyCache, cache_ttl_from_env
from leadx.platform.config import ConfigError
from leadx.platform.redis.client import connect
from services.intake.admin import Admin
from services.intake.auth_throttle import WINDOW_S, AuthThrottled, FailedAuthThrottle
from services.intake.guards import RateLimiter
from services.intake.requests import ApiError, Callers

PER_MINUTE = 3


def app_of(callers: Callers) -> Starlette:
    async def whoami(request: Request) -> JSONResponse:
        try:
            return JSONResponse({"seller": await callers.limited(request, callers.seller_keys)})
        except ApiError as error:
            return JSONResponse({"code": error.code, "message": error.message}, error.http_status, error.headers)
    async def either(request: Request) -> JSONResponse:
        try:
            seller_id, buyer_id = await callers.seller_or_buyer(request)
            return JSONResponse({"seller": seller_id, "buyer": buyer_id})
        except ApiError as error:
            return JSONResponse({"code": error.code}, error.http_status)
    return Starlette(routes=[Route("/whoami", whoami), Route("/either", either)])


def test_an_address_guessing_keys_is_throttled_before_any_look_up_and_no_one_else_is(sessions, redis_url):
    with sessions() as session:
        known, unknown_yet = (accounts.create_seller(session, name) for name in ("Known", "Not Yet Known"))
        session.commit()

    async def scenario() -> dict:
        redis = connect(redis_url)
        namespace = f"t{uuid.uuid4().hex[:8]}."
        callers = Callers(sessions, RateLimiter(redis, namespace, 0), FailedAuthThrottle(redis, namespace, PER_MINUTE))
        app = app_of(callers)

        def client(address: str) -> httpx.AsyncClient:
            transport = httpx.ASGITransport(app=app, client=(address, 40000))
            return httpx.AsyncClient(transport=transport, base_url="http://intake")

        async def ask(http: httpx.AsyncClient, key: str) -> httpx.Response:
            return await http.get("/whoami", headers={"Authorization": f"Bearer {key}"})

        try:
            async with client("203.0.113.7") as guesser, client("198.51.100.2") as other:
                seen = {"known first": await ask(guesser, known.api_key)}
                seen["guesses"] = [await ask(guesser, f"lx_guess{n}") for n in range(PER_MINUTE)]
                lookups = callers.seller_keys.keys.lookups
                seen["throttled"] = await ask(guesser, "lx_guess-more")
                seen["throttled lookups"] = callers.seller_keys.keys.lookups - lookups
                seen["known again"] = await ask(guesser, known.api_key)
                seen["not yet known"] = await ask(guesser, unknown_yet.api_key)
                seen["other address"] = await ask(other, unknown_yet.api_key)
                seen["other's bad key"] = await ask(other, "lx_guess0")
            return seen
        finally:
            await redis.aclose()

    seen = asyncio.run(scenario())
    assert seen["known first"].json() == {"seller": known.id}
    assert [r.status_code for r in seen["guesses"]] == [401] * PER_MINUTE
    throttled = seen["throttled"]
    assert throttled.status_code == 429 and throttled.json()["code"] == "AUTH_THROTTLED"
    assert "203.0.113.7" in throttled.json()["message"]
    assert 1 <= int(throttled.headers["retry-after"]) <= WINDOW_S
    assert seen["throttled lookups"] == 0  # refused before SQL
    assert seen["known again"].json() == {"seller": known.id}  # a key known from before still works
    assert seen["not yet known"].status_code == 429  # a key not known yet waits out the minute, as documented
    assert seen["other address"].json() == {"seller": unknown_yet.id}
    assert seen["other's bad key"].status_code == 401


def test_a_buyer_on_a_route_for_sellers_or_buyers_is_not_a_failed_authentication(sessions, redis_url):
    with sessions() as session:
        buyer = accounts.create_buyer(session, "Reader", "https://r.example/ping", "https://r.example/post")
        session.commit()

    async def scenario() -> list[int]:
        redis = connect(redis_url)
        namespace = f"t{uuid.uuid4().hex[:8]}."
        callers = Callers(sessions, RateLimiter(redis, namespace, 0), FailedAuthThrottle(redis, namespace, PER_MINUTE))
        transport = httpx.ASGITransport(app=app_of(callers), client=("203.0.113.8", 40000))
        try:
            async with httpx.AsyncClient(transport=transport, base_url="http://intake") as http:
                answers = []
                for key in [buyer.api_key] * (PER_MINUTE + 2) + ["lx_bad"] * PER_MINUTE + ["lx_bad-again"]:
                    callers.buyer_keys.keys._found.clear()  # every read asks SQL, as for a key not yet known
                    answers.append((await http.get("/either", headers={"Authorization": f"Bearer {key}"})).status_code)
                return answers
        finally:
            await redis.aclose()

    # The buyer's key, seller's first, is found as a buyer's each time; only the bad keys count.
    assert asyncio.run(scenario()) == [200] * (PER_MINUTE + 2) + [401] * PER_MINUTE + [429]


def test_the_throttle_counts_per_minute_and_zero_switches_it_off(redis_url):
    async def scenario() -> tuple[bool, bool, bool]:
        redis = connect(redis_url)
        namespace = f"t{uuid.uuid4().hex[:8]}."
        try:
            throttle, off = FailedAuthThrottle(redis, namespace, 2), FailedAuthThrottle(redis, namespace, 0)
            minute = 1_800_000_000 - 1_800_000_000 % WINDOW_S
            for _ in range(2):
                await throttle.failed("192.0.2.1", minute + 5)
                await off.failed("192.0.2.1", minute + 5)

            async def refused(guard: FailedAuthThrottle, at: float) -> bool:
                try:
                    await guard.check("192.0.2.1", at)
                except AuthThrottled:
                    return True
                return False
            return await refused(throttle, minute + 50), await refused(throttle, minute + WINDOW_S + 1), \
                await refused(off, minute + 50)
        finally:
            await redis.aclose()

    assert asyncio.run(scenario()) == (True, False, False)


def test_an_unknown_key_costs_one_look_up_and_a_flood_of_them_keeps_the_known_keys(sessions):
    with sessions() as session:
        seller = accounts.create_seller(session, "Cached")
        session.commit()
    cache = KeyCache(sessions, accounts.seller_for_key)
    cache.MAX_CACHED = 5

    async def scenario() -> list:
        found = await cache.resolve(seller.api_key)
        repeats = [await cache.resolve("lx_nope") for _ in range(3)]
        flood = [await cache.resolve(f"lx_flood{n}") for n in range(12)]
        return [found, repeats, flood, cache.known(seller.api_key)]

    found, repeats, flood, known = asyncio.run(scenario())
    assert found == seller.id and repeats == [None] * 3 and flood == [None] * 12
    assert cache.lookups == 1 + 1 + 12  # the repeated bad key was looked up once
    assert known == seller.id  # the flood filled only the misses


def test_a_key_is_trusted_for_the_cache_s_time_then_looked_up_again(sessions):
    with sessions() as session:
        seller = accounts.create_seller(session, "Briefly cached")
        session.commit()
    now = [1000.0]
    cache = KeyCache(sessions, accounts.seller_for_key, ttl_s=2.0, clock=lambda: now[0])

    async def resolve_at(t: float) -> str | None:
        now[0] = t
        return await cache.resolve(seller.api_key)

    found = [asyncio.run(resolve_at(t)) for t in (1000.0, 1001.9, 1002.1)]
    with sessions() as session:  # revoked: the next look-up, once the time is up, finds no seller
        accounts.revoke_seller_key(session, seller.id)
        session.commit()
    found += [asyncio.run(resolve_at(1003.0)), asyncio.run(resolve_at(1004.2))]
    assert found == [seller.id, seller.id, seller.id, seller.id, None]
    assert cache.lookups == 3  # at 1000, at 1002.1 (2 s on) and at 1004.2


@pytest.mark.parametrize("value", ["0", "-1", "3601", "nan", "soon"])
def test_a_key_cache_time_out_of_range_stops_the_service_at_start(monkeypatch, value):
    monkeypatch.setenv(TTL_VARIABLE, value)
    with pytest.raises(ConfigError, match=TTL_VARIABLE):
        cache_ttl_from_env()


def test_the_key_cache_time_is_30_s_unless_set(monkeypatch):
    monkeypatch.delenv(TTL_VARIABLE, raising=False)
    assert cache_ttl_from_env() == 30.0
    monkeypatch.setenv(TTL_VARIABLE, "2.5")
    assert cache_ttl_from_env() == 2.5


def test_an_address_guessing_the_admin_key_is_refused_even_the_right_key_and_no_one_else_is(sessions, redis_url):
    admin_key = "operators-test-key"  # a test value, not a secret

    async def scenario() -> dict:
        redis = connect(redis_url)
        namespace = f"t{uuid.uuid4().hex[:8]}."
        callers = Callers(sessions, RateLimiter(redis, namespace, 0), FailedAuthThrottle(redis, namespace, PER_MINUTE))
        app = Starlette(routes=Admin(sessions, admin_key, callers=callers).routes())

        async def ask(address: str, key: str) -> httpx.Response:
            transport = httpx.ASGITransport(app=app, client=(address, 40000))
            async with httpx.AsyncClient(transport=transport, base_url="http://intake") as http:
                return await http.get("/v1/admin/buyers/b_nobody", headers={"Authorization": f"Bearer {key}"})
        try:
            return {"guesses": [await ask("203.0.113.9", f"guess-{n}") for n in range(PER_MINUTE)],
                    "right key, same address": await ask("203.0.113.9", admin_key),
                    "right key, other address": await ask("198.51.100.3", admin_key)}
        finally:
            await redis.aclose()

    seen = asyncio.run(scenario())
    assert [r.status_code for r in seen["guesses"]] == [401] * PER_MINUTE
    refused = seen["right key, same address"]
    assert refused.status_code == 429 and refused.json()["errors"][0]["code"] == "AUTH_THROTTLED"
    # Past the key check: the buyer is unknown.
    assert seen["right key, other address"].status_code == 404
