"""The parts of a bounded publish that need no broker (services.intake.publishing): the in-flight
limit, which broker errors prove a lead unwritten, the settings; and, through the real app with a
real Redis, a POST refused at once beyond the limit (its idempotency key left free), and a lead
answered 202 whose publish then certainly failed: its status says not_queued and its key is free
again. The publish itself against a broker that stops: tests/integration/test_bounded_publish.py."""

from __future__ import annotations

import asyncio
import random

import pytest
from aiokafka import errors as kafka_errors
from redis.cluster import key_slot

from leadx.accounts import accounts
from leadx.contracts.events.v1 import events_pb2 as ev
from leadx.dev.demo.consumers import make_consumer
from leadx.platform.config import ConfigError, RedisSettings
from services.intake.formats import Answer
from services.intake.publishing import InFlight, Slot, certainly_refused
from services.intake.settings import IntakeSettings
from tests.unit.intake_app import intake
from tests.unit.redis_layouts import LAYOUTS, layout


def test_the_in_flight_limit_admits_up_to_its_limit_and_a_slot_is_released_once():
    in_flight = InFlight(2)
    assert in_flight.try_enter() and in_flight.try_enter() and not in_flight.try_enter()
    first, _second = Slot(in_flight), Slot(in_flight)
    first.release()
    first.release()  # twice: still one place given back
    assert in_flight.count == 1 and in_flight.try_enter() and not in_flight.try_enter()
    unlimited = InFlight(0)
    assert all(unlimited.try_enter() for _ in range(10_000))


@pytest.mark.parametrize("error", [
    kafka_errors.MessageSizeTooLargeError(), kafka_errors.TopicAuthorizationFailedError(),
    kafka_errors.InvalidTopicError(), kafka_errors.CorruptRecordException()])
def test_a_broker_s_refusal_of_the_batch_itself_proves_the_lead_unwritten(error):
    assert certainly_refused(error)


@pytest.mark.parametrize("error", [
    kafka_errors.KafkaTimeoutError(), kafka_errors.RequestTimedOutError(), kafka_errors.KafkaConnectionError(),
    kafka_errors.NotEnoughReplicasAfterAppendError(), kafka_errors.NotLeaderForPartitionError(),
    kafka_errors.ProducerClosed(), kafka_errors.OutOfOrderSequenceNumber(), RuntimeError("anything else")])
def test_a_timeout_a_lost_connection_or_anything_else_leaves_the_outcome_unknown(error):
    assert not certainly_refused(error)


@pytest.mark.parametrize(("variable", "value", "message"), [
    ("INTAKE_PUBLISH_TIMEOUT_SECONDS", "0", "must be more than 0"),
    ("INTAKE_PUBLISH_TIMEOUT_SECONDS", "nan", "must be more than 0"),
    ("INTAKE_PUBLISH_TIMEOUT_SECONDS", "soon", "must be a number"),
    ("INTAKE_MAX_IN_FLIGHT", "-1", r"0 \(no limit\) or more"),
])
def test_the_publish_settings_are_refused_at_start_when_they_cannot_be(env, variable, value, message):
    env.setenv(variable, value)
    with pytest.raises(ConfigError, match=message) as refused:
        IntakeSettings.from_env()
    assert variable in str(refused.value)


def test_the_publish_settings_default_to_a_few_seconds_and_a_limit(env):
    env.delenv("INTAKE_PUBLISH_TIMEOUT_SECONDS", raising=False)
    env.delenv("INTAKE_MAX_IN_FLIGHT", raising=False)
    settings = IntakeSettings.from_env()
    assert (settings.publish_timeout_s, settings.max_in_flight) == (5.0, 1000)


def test_beyond_the_in_flight_limit_a_post_is_refused_at_once_and_its_key_stays_free(sqlite_url, redis_url):
    lead = make_consumer(random.Random(5))

    async def scenario():
        async with intake(sqlite_url, redis_url, max_in_flight=2) as exchange:
            with exchange.sessions() as session:
                seller = accounts.create_seller(session, "Busy seller")
                session.commit()
            held = [exchange.deps.publisher.admit() for _ in range(2)]  # two leads being published
            async with exchange.client() as http:
                answer = await asyncio.wait_for(http.post("/v1/post", json=lead, headers={
                    "Authorization": f"Bearer {seller.api_key}", "Idempotency-Key": "busy-1"}), 5)
            free = await exchange.deps.idempotency.claim(seller.id, "busy-1", "LEADAAAAA1", "fingerprint")
            for slot in held:
                slot.release()
            return answer, free, exchange.deps.publisher.in_flight.count

    answer, free, in_flight = asyncio.run(scenario())
    assert answer.status_code == 503, answer.text
    body = answer.json()
    assert body["errors"][0]["code"] == "OVERLOADED" and body["lead_id"] is None
    assert int(answer.headers["Retry-After"]) >= 1
    assert free is None  # the refused attempt claimed the key, then gave it back: a retry submits
    assert in_flight == 0


@pytest.fixture(params=LAYOUTS)
def redis_target(request) -> RedisSettings:
    return layout(request)


def test_a_lead_answered_202_that_was_never_queued_says_so_and_frees_its_key(sqlite_url, redis_target):
    """On one Redis and on a cluster, where the status read of a lead's two marks (one MGET) needs
    them in one hash slot."""
    async def scenario():
        async with intake(sqlite_url, redis_target) as exchange:
            with exchange.sessions() as session:
                seller = accounts.create_seller(session, "Unlucky seller")
                other = accounts.create_seller(session, "Other seller")
                session.commit()
            sellers, store = exchange.sellers, exchange.deps.idempotency
            lead = ev.Lead(lead_id="LEADBBBBB2", seller_id=seller.id)
            await exchange.redis.set(sellers._owner_key(lead.lead_id), seller.id)
            assert await store.claim(seller.id, "key-1", lead.lead_id, "fp") is None
            await store.record(seller.id, "key-1", Answer("pending", 202, lead.lead_id), "fp")
            # Another lead's record under another key is left alone.
            await store.claim(seller.id, "key-2", "LEADCCCCC3", "fp")
            async with exchange.client() as http:
                async def status(api_key: str):
                    return await http.get(f"/v1/leads/{lead.lead_id}", headers={"Authorization": f"Bearer {api_key}"})
                before = await status(seller.api_key)
                await sellers.mark_never_queued(lead, "key-1")
                after, stranger = await status(seller.api_key), await status(other.api_key)
            return (before, after, stranger, await store.claim(seller.id, "key-1", "LEADDDDDD4", "fp"),
                    await store.claim(seller.id, "key-2", "LEADEEEEE5", "fp"))

    before, after, stranger, key_1, key_2 = asyncio.run(scenario())
    assert (before.status_code, before.json()["status"]) == (200, "pending")
    assert (after.status_code, after.json()["status"]) == (200, "not_queued"), after.text
    assert after.json()["errors"][0]["code"] == "NOT_QUEUED"
    assert stranger.status_code == 404  # still only its seller's
    assert key_1 is None  # released: a retry with the same key submits the lead again
    assert key_2 is not None and key_2.lead_id == "LEADCCCCC3"


def test_a_lead_s_marks_keep_their_names_on_one_redis_and_share_a_slot_on_a_cluster(sqlite_url, redis_target):
    """Marks live for days: one Redis keeps the names earlier intakes wrote, across an upgrade."""
    async def scenario():
        async with intake(sqlite_url, redis_target) as exchange:
            sellers = exchange.sellers
            return exchange.deps.namespace, sellers._owner_key("LEADAAAAA1"), sellers._never_queued_key("LEADAAAAA1")

    namespace, owner, never_queued = asyncio.run(scenario())
    lead = "{LEADAAAAA1}" if redis_target.cluster else "LEADAAAAA1"
    assert (owner, never_queued) == (f"lead-owner:{namespace}{lead}", f"lead-not-queued:{namespace}{lead}")
    assert key_slot(owner.encode()) == key_slot(never_queued.encode()) or not redis_target.cluster


def test_a_retry_whose_first_lead_was_never_queued_submits_again_even_if_the_key_outlived_the_mark(
        sqlite_url, redis_url):
    """The 202 may be recorded under the key after the failed publish released it: the retry reads
    the mark and submits anew (here it reaches the in-flight limit, held full, and is refused 503
    rather than answered the first lead's 202)."""
    lead = make_consumer(random.Random(9))

    async def scenario():
        async with intake(sqlite_url, redis_url, max_in_flight=1) as exchange:
            with exchange.sessions() as session:
                seller = accounts.create_seller(session, "Retrying seller")
                session.commit()
            sellers, store = exchange.sellers, exchange.deps.idempotency
            await store.claim(seller.id, "again-1", "LEADFFFFF6", "fp")
            await store.record(seller.id, "again-1", Answer("pending", 202, "LEADFFFFF6"), "fp")
            await exchange.redis.set(sellers._never_queued_key("LEADFFFFF6"), seller.id)
            held = exchange.deps.publisher.admit()
            async with exchange.client() as http:
                answer = await http.post("/v1/post", json=lead, headers={
                    "Authorization": f"Bearer {seller.api_key}", "Idempotency-Key": "again-1"})
            held.release()
            return answer

    answer = asyncio.run(scenario())
    assert answer.status_code == 503 and answer.json()["errors"][0]["code"] == "OVERLOADED", answer.text
