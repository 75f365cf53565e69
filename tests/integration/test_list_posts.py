"""Delivery of list-auction customers: each customer a dealer won is POSTed to the dealer's real
HTTP server once, adapted by its POST rules; an export-only dealer is not posted to; a dealer that
could not be reached is tried again; a rejection is recorded and not passed on."""

from __future__ import annotations

import asyncio
import json

import pytest
from sqlalchemy import select

from leadx.accounts import accounts
from leadx.accounts.directory import BuyerDirectory
from leadx.contracts.events.v1 import events_pb2 as ev
from leadx.delivery.post_adaptation import known_fields
from leadx.delivery.post_adaptation.syntax import parse_rules
from leadx.dev.stack import free_port
from leadx.platform.db.models import PostAttempt
from leadx.platform.kafka.envelope import Envelope
from leadx.platform.redis.client import connect
from services.delivery.attempts import AttemptLog
from services.delivery.buyer_http import BuyerClient
from services.delivery.list_posts import ListPoster
from tests.buyer_server import BuyerServer
from tests.conftest import TEST_KEYRING

pytestmark = pytest.mark.integration


def awarded(buyer_id: str, prospect_id: str = "PROSPECT01") -> Envelope:
    lead = ev.Lead(lead_id=prospect_id, seller_id="s_1", vertical="auto_loan",
                   fields={"first_name": "Ana", "zip": "10001", "state": "NY", "email": "ana@example.com"})
    message = ev.ListAwarded(auction_id="LISTAUCT01", buyer_id=buyer_id, price_cents=450, lead=lead,
                             probability=0.2, cluster="c2")
    return Envelope(topic="list.awarded", key=prospect_id, event_id="e1", message=message, partition=0, offset=0)


def test_each_won_customer_is_posted_once_adapted_and_a_refusal_is_only_recorded(sessions, redis_url, unique_prefix):
    async def scenario():
        async with BuyerServer() as taker, BuyerServer(accept=False) as refuser:
            with sessions() as session:
                taker_id = accounts.create_buyer(session, "Taker", f"http://127.0.0.1:{taker.port}/ping",
                                                 f"http://127.0.0.1:{taker.port}/post").id
                refuser_id = accounts.create_buyer(session, "Refuser", f"http://127.0.0.1:{refuser.port}/ping",
                                                   f"http://127.0.0.1:{refuser.port}/post").id
                exporter_id = accounts.create_buyer(session, "Exporter", "", "", kind="autobid").id
            directory = BuyerDirectory(sessions)
            directory.load()
            rules = parse_rules(f"[buyer {taker_id}]\nformat json\nFirstName <- first_name\n"
                                "PostalCode <- zip\n", "taker.rules", known_fields())
            client = BuyerClient(10, 2.0, 5.0)
            await client.start()
            redis = connect(redis_url)
            poster = ListPoster(redis, directory, client, unique_prefix, TEST_KEYRING, rules,
                                attempts=AttemptLog(sessions.kw["bind"]))
            try:
                await poster.handle(awarded(taker_id))
                await poster.handle(awarded(taker_id))  # a redelivery: not posted again
                await poster.handle(awarded(refuser_id, "PROSPECT02"))
                await poster.handle(awarded(exporter_id, "PROSPECT03"))
            finally:
                await client.close()
                await redis.aclose()
            return taker.posts, refuser.posts

    taker_posts, refuser_posts = asyncio.run(scenario())
    assert len(taker_posts) == 1 and len(refuser_posts) == 1
    headers, body = taker_posts[0]
    assert headers["Idempotency-Key"] == "LISTAUCT01-PROSPECT01"
    assert json.loads(body) == {"FirstName": "Ana", "PostalCode": "10001"}  # adapted by its rules
    assert json.loads(refuser_posts[0][1])["price"] == 450  # the exchange's JSON, with the price
    with sessions() as session:
        logged = session.scalars(select(PostAttempt).where(PostAttempt.auction_id == "LISTAUCT01")).all()
    assert sorted(a.outcome for a in logged) == ["accepted", "rejected"]  # each post on record


def test_a_dealer_that_cannot_be_reached_is_tried_again(sessions, redis_url, unique_prefix):
    nowhere = free_port()

    async def scenario():
        with sessions() as session:
            buyer_id = accounts.create_buyer(session, "Down", f"http://127.0.0.1:{nowhere}/ping",
                                             f"http://127.0.0.1:{nowhere}/post").id
        directory = BuyerDirectory(sessions)
        directory.load()
        client = BuyerClient(10, 1.0, 2.0)
        await client.start()
        redis = connect(redis_url)
        poster = ListPoster(redis, directory, client, unique_prefix, TEST_KEYRING)
        try:
            with pytest.raises(ConnectionError):
                await poster.handle(awarded(buyer_id))
            async with BuyerServer(port=nowhere) as back_up:
                # The same port comes back to life: the retried delivery goes through.
                await poster.handle(awarded(buyer_id))
                return back_up.posts
        finally:
            await client.close()
            await redis.aclose()

    assert len(asyncio.run(scenario())) == 1
