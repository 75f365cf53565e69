"""A retried POST that straddles a rotation of the HMAC key, against a real Redis: the first attempt's
fingerprint was made under one key, the retry's under another; the same lead is still the same lead
(its first answer, not IDEMPOTENCY_KEY_REUSED), a different lead is still refused."""

from __future__ import annotations

import asyncio
import json
import uuid

from leadx.platform.config import HmacKeyring
from leadx.platform.redis.client import connect
from services.intake.formats import Answer
from services.intake.guards import IdempotencyStore, LeadFingerprints

OLD, NEW = "old-secret-0123456789abcdef", "new-secret-fedcba9876543210"
K0 = LeadFingerprints(HmacKeyring.single(OLD.encode()))  # LEADX_HMAC_KEY=<old>, before key ids
STAGED = LeadFingerprints(HmacKeyring.parse(f"k0:{OLD},k1:{NEW}"))
ROTATING = LeadFingerprints(HmacKeyring.parse(f"k1:{NEW},k0:{OLD}"))
DONE = LeadFingerprints(HmacKeyring.parse(f"k1:{NEW}"))
FIELDS = {"ssn": "123456789", "email": "ana@example.com", "zip": "10001"}


def lead(fingerprints: LeadFingerprints, fields: dict | None = None):
    return fingerprints.of("auto_loan", fields or FIELDS, 1500, "", "R1")


def run(redis_url: str, scenario):
    async def main():
        redis = connect(redis_url)
        try:
            return await scenario(IdempotencyStore(redis, f"u{uuid.uuid4().hex[:8]}:", 3600), redis)
        finally:
            await redis.aclose()

    return asyncio.run(main())


def test_a_fingerprint_is_made_under_the_current_key_and_knows_the_others():
    assert lead(K0) == lead(STAGED) == LeadFingerprints(OLD.encode()).of("auto_loan", FIELDS, 1500, "", "R1")
    assert lead(ROTATING) == lead(DONE) != lead(K0)
    assert lead(ROTATING).under_every_key == lead(STAGED).under_every_key == {lead(K0), lead(DONE)}


def test_a_retry_straddling_the_rotation_gets_the_first_answer(redis_url):
    async def scenario(store, redis):
        assert await store.claim("s_a", "order-1", "LEAD000001", lead(K0)) is None
        await store.record("s_a", "order-1", Answer("accepted", 200, "LEAD000001"), lead(K0))
        retried = await store.claim("s_a", "order-1", "LEAD000002", lead(ROTATING))
        # The other way round, while the rollout reaches the replicas one by one.
        assert await store.claim("s_a", "order-2", "LEAD000003", lead(ROTATING)) is None
        in_flight = await store.claim("s_a", "order-2", "LEAD000004", lead(STAGED))
        other_lead = await store.claim("s_a", "order-1", "LEAD000005", lead(ROTATING, FIELDS | {"zip": "10002"}))
        stored = json.loads(await redis.get(store._key("s_a", "order-2")))
        return retried, in_flight, other_lead, stored

    retried, in_flight, other_lead, stored = run(redis_url, scenario)
    assert retried.same_lead and retried.answer == Answer("accepted", 200, "LEAD000001")
    assert in_flight.same_lead and in_flight.lead_id == "LEAD000003" and in_flight.answer is None
    assert not other_lead.same_lead  # IDEMPOTENCY_KEY_REUSED, as without a rotation
    assert stored["fingerprint"] == lead(ROTATING)  # stored under the current key only


def test_once_the_old_key_is_dropped_its_fingerprints_no_longer_match(redis_url):
    """Documented: the old key goes 30 days after the switch, long after the idempotency records
    made under it expired (INTAKE_IDEMPOTENCY_TTL_SECONDS, a day by default)."""
    async def scenario(store, _redis):
        await store.claim("s_a", "order-1", "LEAD000001", lead(K0))
        return await store.claim("s_a", "order-1", "LEAD000002", lead(DONE))

    assert not run(redis_url, scenario).same_lead
