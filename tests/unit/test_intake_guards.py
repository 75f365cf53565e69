"""Rate limits and idempotency keys against a real Redis, shared as every intake replica shares them."""

from __future__ import annotations

import asyncio
import uuid

import pytest

from leadx.platform.redis.client import connect
from services.intake.formats import Answer
from services.intake.guards import IdempotencyStore, RateLimiter


def run(redis_url: str, scenario):
    async def main():
        redis = connect(redis_url)
        try:
            return await scenario(redis, f"u{uuid.uuid4().hex[:8]}:")
        finally:
            await redis.aclose()

    return asyncio.run(main())


def test_a_seller_gets_its_rate_and_then_429_with_retry_after(redis_url):
    async def scenario(redis, namespace):
        limiter = RateLimiter(redis, namespace, per_second=5)
        start = 1_800_000_000_000
        first = [await limiter.take("s_a", start + i) for i in range(5)]
        sixth = await limiter.take("s_a", start + 10)
        other_seller = await limiter.take("s_b", start + 10)
        # Half a window later, half the previous window's requests still count: 5 * 0.5 + 0 + 1 <= 5.
        next_window = [await limiter.take("s_a", start + 1500 + i) for i in range(3)]
        return first, sixth, other_seller, next_window

    first, sixth, other_seller, next_window = run(redis_url, scenario)
    assert first == [None] * 5
    assert sixth is not None and sixth.retry_after_s == 1
    assert other_seller is None
    assert next_window[:2] == [None, None] and next_window[2] is not None


def test_two_replicas_share_one_limit(redis_url):
    async def scenario(redis, namespace):
        one, two = RateLimiter(redis, namespace, 10), RateLimiter(redis, namespace, 10)
        now = 1_800_000_000_000
        results = await asyncio.gather(*(limiter.take("s_a", now) for limiter in [one, two] * 10))
        return sum(result is None for result in results)

    assert run(redis_url, scenario) == 10


def test_zero_switches_the_limit_off(redis_url):
    async def scenario(redis, namespace):
        limiter = RateLimiter(redis, namespace, 0)
        return [await limiter.take("s_a", 1) for _ in range(50)]

    assert run(redis_url, scenario) == [None] * 50


def test_only_one_of_many_simultaneous_attempts_owns_an_idempotency_key(redis_url):
    async def scenario(redis, namespace):
        store = IdempotencyStore(redis, namespace, ttl_s=60)
        claims = await asyncio.gather(*(store.claim("s_a", "order-17", f"LEAD{i:06d}") for i in range(20)))
        owners = [i for i, claim in enumerate(claims) if claim is None]
        first_lead = f"LEAD{owners[0]:06d}"
        answer = Answer("accepted", 200, first_lead, extra={"warnings": []})
        await store.record("s_a", "order-17", answer)
        retry = await store.claim("s_a", "order-17", "LEAD999999")
        other_seller = await store.claim("s_b", "order-17", "LEAD888888")
        return owners, claims, first_lead, retry, other_seller

    owners, claims, first_lead, retry, other_seller = run(redis_url, scenario)
    assert len(owners) == 1
    assert {claim.lead_id for claim in claims if claim is not None} == {first_lead}
    assert all(claim.answer is None for claim in claims if claim is not None)  # the first was still in flight
    assert retry.lead_id == first_lead and retry.answer.status == "accepted" and retry.answer.http_status == 200
    assert other_seller is None  # keys are per seller


def test_a_released_key_can_be_claimed_again(redis_url):
    async def scenario(redis, namespace):
        store = IdempotencyStore(redis, namespace, ttl_s=60)
        await store.claim("s_a", "k", "LEAD000001")
        await store.release("s_a", "k")
        return await store.claim("s_a", "k", "LEAD000002")

    assert run(redis_url, scenario) is None


@pytest.mark.parametrize("text", ["²", "١٢", "12.5", "-3", "ten"])
def test_a_money_field_of_digits_other_than_ascii_is_a_clear_error(text):
    from services.intake.requests import ApiError, cents_field

    with pytest.raises(ApiError) as refused:
        cents_field({"min_price": text}, "min_price")
    assert refused.value.http_status == 422 and refused.value.code == "FIELD_INVALID"


def test_a_money_field_of_ascii_digits_is_read():
    from services.intake.requests import cents_field

    assert cents_field({"bid": " 1250 "}, "bid") == 1250 and cents_field({"bid": ""}, "bid") is None
