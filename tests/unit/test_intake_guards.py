"""Rate limits and idempotency keys against a real Redis and a real Redis Cluster, shared as every
intake replica shares them."""

from __future__ import annotations

import asyncio
import json
import urllib.parse
import uuid

import pytest
from redis.cluster import key_slot

from leadx.platform.config import RedisSettings
from services.intake.formats import Answer
from services.intake.guards import FirstAttempt, IdempotencyStore, LeadFingerprints, RateLimiter
from tests.unit.redis_layouts import LAYOUTS, connected, layout


@pytest.fixture(params=LAYOUTS)
def redis_target(request) -> RedisSettings:
    return layout(request)


def run(target: RedisSettings, scenario):
    async def main():
        redis = await connected(target)
        try:
            return await scenario(redis, f"u{uuid.uuid4().hex[:8]}:")
        finally:
            await redis.aclose()

    return asyncio.run(main())


def test_a_seller_gets_its_rate_and_then_429_with_retry_after(redis_target):
    async def scenario(redis, namespace):
        limiter = RateLimiter(redis, namespace, per_second=5)
        start = 1_800_000_000_000
        first = [await limiter.take("s_a", start + i) for i in range(5)]
        sixth = await limiter.take("s_a", start + 10)
        other_seller = await limiter.take("s_b", start + 10)
        # Half a window later, half the previous window's requests still count: 5 * 0.5 + 0 + 1 <= 5.
        next_window = [await limiter.take("s_a", start + 1500 + i) for i in range(3)]
        return first, sixth, other_seller, next_window

    first, sixth, other_seller, next_window = run(redis_target, scenario)
    assert first == [None] * 5
    assert sixth is not None and sixth.retry_after_s == 1
    assert other_seller is None
    assert next_window[:2] == [None, None] and next_window[2] is not None


def test_two_replicas_share_one_limit(redis_target):
    async def scenario(redis, namespace):
        one, two = RateLimiter(redis, namespace, 10), RateLimiter(redis, namespace, 10)
        now = 1_800_000_000_000
        results = await asyncio.gather(*(limiter.take("s_a", now) for limiter in [one, two] * 10))
        return sum(result is None for result in results)

    assert run(redis_target, scenario) == 10


def test_a_bucket_s_windows_keep_their_names_on_one_redis_and_share_a_slot_on_a_cluster(redis_target):
    """One Redis keeps the names earlier replicas use (a rolling upgrade shares the live windows); on
    a cluster the script reads both windows, so they need one hash slot."""
    async def scenario(redis, namespace):
        limiter = RateLimiter(redis, namespace, per_second=5, scope="address")
        now = 1_800_000_000_250
        keys = limiter.keys("203.0.113.7", now)
        await limiter.take("203.0.113.7", now)
        return keys, await redis.get(keys[0]), namespace

    keys, counted, namespace = run(redis_target, scenario)
    base = f"rl:address:{namespace}" + ("{203.0.113.7}" if redis_target.cluster else "203.0.113.7")
    assert keys == [f"{base}:1800000000", f"{base}:1799999999"]
    assert counted == b"1"
    if redis_target.cluster:
        assert key_slot(keys[0].encode()) == key_slot(keys[1].encode())


def test_zero_switches_the_limit_off(redis_target):
    async def scenario(redis, namespace):
        limiter = RateLimiter(redis, namespace, 0)
        return [await limiter.take("s_a", 1) for _ in range(50)]

    assert run(redis_target, scenario) == [None] * 50


def test_only_one_of_many_simultaneous_attempts_owns_an_idempotency_key(redis_target):
    async def scenario(redis, namespace):
        store = IdempotencyStore(redis, namespace, ttl_s=60)
        claims = await asyncio.gather(*(store.claim("s_a", "order-17", f"LEAD{i:06d}", "fp-a") for i in range(20)))
        owners = [i for i, claim in enumerate(claims) if claim is None]
        first_lead = f"LEAD{owners[0]:06d}"
        answer = Answer("accepted", 200, first_lead, extra={"warnings": []})
        await store.record("s_a", "order-17", answer, "fp-a")
        retry = await store.claim("s_a", "order-17", "LEAD999999", "fp-a")
        other_seller = await store.claim("s_b", "order-17", "LEAD888888", "fp-b")
        return owners, claims, first_lead, retry, other_seller

    owners, claims, first_lead, retry, other_seller = run(redis_target, scenario)
    assert len(owners) == 1
    assert {claim.lead_id for claim in claims if claim is not None} == {first_lead}
    assert all(claim.answer is None for claim in claims if claim is not None)  # the first was still in flight
    assert all(claim.same_lead for claim in claims if claim is not None)
    assert retry.lead_id == first_lead and retry.answer.status == "accepted" and retry.answer.http_status == 200
    assert retry.same_lead
    assert other_seller is None  # keys are per seller


def test_a_released_key_can_be_claimed_again(redis_target):
    async def scenario(redis, namespace):
        store = IdempotencyStore(redis, namespace, ttl_s=60)
        await store.claim("s_a", "k", "LEAD000001", "fp-a")
        await store.release("s_a", "k")
        return await store.claim("s_a", "k", "LEAD000002", "fp-b")

    assert run(redis_target, scenario) is None


def test_a_key_used_again_for_a_different_lead_is_refused_in_flight_and_once_answered(redis_target):
    async def scenario(redis, namespace):
        store = IdempotencyStore(redis, namespace, ttl_s=60)
        await store.claim("s_a", "R1", "LEAD000001", "fp-first")
        in_flight = await store.claim("s_a", "R1", "LEAD000002", "fp-second")
        await store.record("s_a", "R1", Answer("accepted", 200, "LEAD000001"), "fp-first")
        answered = await store.claim("s_a", "R1", "LEAD000003", "fp-second")
        same = await store.claim("s_a", "R1", "LEAD000004", "fp-first")
        return in_flight, answered, same

    in_flight, answered, same = run(redis_target, scenario)
    # Both refusals name the first lead, so the seller can tell which of its leads holds the key.
    assert in_flight.lead_id == "LEAD000001" and not in_flight.same_lead and in_flight.answer is None
    assert answered.lead_id == "LEAD000001" and not answered.same_lead
    assert same.same_lead and same.answer == Answer("accepted", 200, "LEAD000001")


def test_a_record_written_before_fingerprints_is_answered_as_before(redis_target):
    """Intakes are upgraded with keys live: a claim or an answer stored by the previous version has
    no fingerprint, and whatever lead comes with its key gets its answer, as that version gave it."""
    async def scenario(redis, namespace):
        store = IdempotencyStore(redis, namespace, ttl_s=60)
        # The previous version's two shapes, exactly as it wrote them.
        await redis.set(store._key("s_a", "claimed"), json.dumps({"lead_id": "LEAD000001"}))
        old_answer = {"status": "accepted", "http_status": 200, "lead_id": "LEAD000002", "errors": [],
                      "extra": {}, "headers": {}}
        await redis.set(store._key("s_a", "answered"), json.dumps({"lead_id": "LEAD000002", "answer": old_answer}))
        return (await store.claim("s_a", "claimed", "LEAD000009", "fp-any"),
                await store.claim("s_a", "answered", "LEAD000009", "fp-any"))

    claimed, answered = run(redis_target, scenario)
    assert claimed == FirstAttempt("LEAD000001", None, same_lead=True)
    assert answered == FirstAttempt("LEAD000002", Answer("accepted", 200, "LEAD000002"), same_lead=True)


def test_of_simultaneous_attempts_with_different_leads_one_claims_and_only_its_lead_is_answered(redis_target):
    async def scenario(redis, namespace):
        store = IdempotencyStore(redis, namespace, ttl_s=60)
        # The same key, two different leads, ten attempts of each, all at once (as replicas would claim).
        attempts = [(f"LEAD{i:06d}", "fp-even" if i % 2 == 0 else "fp-odd") for i in range(20)]
        claims = await asyncio.gather(*(store.claim("s_a", "R1", lead_id, fp) for lead_id, fp in attempts))
        return attempts, claims

    attempts, claims = run(redis_target, scenario)
    owners = [attempt for attempt, claim in zip(attempts, claims, strict=True) if claim is None]
    assert len(owners) == 1  # exactly one lead may be submitted
    owner_lead, owner_fp = owners[0]
    for (_, fp), claim in zip(attempts, claims, strict=True):
        if claim is not None:
            # The owner's retries wait for its answer; the other lead is refused, never answered with it.
            assert claim.lead_id == owner_lead and claim.same_lead == (fp == owner_fp)
    assert sum(claim is not None and not claim.same_lead for claim in claims) == 10  # every attempt of the other lead


def test_the_fingerprint_is_of_the_lead_as_verified_not_of_the_bytes_it_came_in():
    from leadx.leads.verticals import load_verticals, verify
    from services.intake.formats import FORM, JSON, XML, parse_body

    vertical = load_verticals()["auto_loan"]
    lead = {"vertical": "auto_loan", "first_name": "Ana", "last_name": "Lopez", "email": "ana.lopez@example.com",
            "home_phone": "212-234-5678", "ssn": "123-45-6789", "address": "12 Oak St", "city": "New York",
            "state": "NY", "zip": "10001", "date_of_birth": "1985-04-12", "gross_monthly_income": 450000,
            "employer": "Acme Logistics", "months_employed": 30, "residence_type": "rent",
            "requested_amount": 2000000}
    fingerprints = LeadFingerprints(b"platform secret")

    def fingerprint(payload: dict, min_price: int = 1500, buyer: str = "", reference: str = "R1") -> str:
        result = verify(vertical, payload)
        assert result.ok, result.errors
        return fingerprints.of("auto_loan", result.fields, min_price, buyer, reference)

    as_json = parse_body(JSON, json.dumps(lead).encode())
    as_xml = parse_body(XML, ("<lead>" + "".join(f"<{k}>{v}</{k}>" for k, v in reversed(lead.items()))
                              + "</lead>").encode())
    as_form = parse_body(FORM, urllib.parse.urlencode(lead | {"home_phone": "(212) 234 5678"}).encode())
    first = fingerprint(as_json)
    # Another format, another order of keys, a phone written another way: the same lead.
    assert fingerprint(as_xml) == fingerprint(as_form) == first
    # Anything the exchange would submit differently is another lead.
    assert fingerprint(as_json | {"first_name": "Bea"}) != first
    assert fingerprint(as_json, min_price=1600) != first
    assert fingerprint(as_json, min_price=0, buyer="b_1") != fingerprint(as_json, min_price=0)
    assert fingerprint(as_json, reference="R2") != first
    # Keyed with the platform's secret: what Redis holds cannot be matched against guessed SSNs.
    fields = verify(vertical, as_json).fields
    assert LeadFingerprints(b"another secret").of("auto_loan", fields, 1500, "", "R1") != first


@pytest.mark.parametrize("text", ["²", "١٢", "12.5", "-3", "ten"])
def test_a_money_field_of_digits_other_than_ascii_is_a_clear_error(text):
    from services.intake.requests import ApiError, cents_field

    with pytest.raises(ApiError) as refused:
        cents_field({"min_price": text}, "min_price")
    assert refused.value.http_status == 422 and refused.value.code == "FIELD_INVALID"


def test_a_money_field_of_ascii_digits_is_read():
    from services.intake.requests import cents_field

    assert cents_field({"bid": " 1250 "}, "bid") == 1250 and cents_field({"bid": ""}, "bid") is None
