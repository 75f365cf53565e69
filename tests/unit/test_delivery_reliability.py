"""Delivery's reliability parts on their own: the circuit breaker, buyer authentication, and the
rule that a post is resent only when it provably never reached the buyer (real local servers)."""

from __future__ import annotations

import asyncio
import base64
import time

import pytest

from leadx.auction.selection.market import BuyerAccount
from leadx.contracts.events.v1 import events_pb2 as ev
from leadx.delivery.buyer_auth import auth_headers, sign, verify
from leadx.delivery.post_adaptation import prepare_post
from leadx.delivery.post_adaptation.syntax import Auth, parse_rules
from leadx.dev.stack import free_port
from services.delivery.breaker import CircuitBreaker, not_the_buyers_fault
from services.delivery.buyer_http import BuyerClient
from tests.buyer_server import BuyerServer


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_the_breaker_opens_after_failures_in_a_row_and_lets_one_trial_through_after_the_cooldown():
    clock = Clock()
    breaker = CircuitBreaker(failures=3, cooldown_s=30, clock=clock)
    for ok in (False, False, True, False, False):  # a success in between resets the count
        assert breaker.allow("b1")
        breaker.record("b1", ok)
    assert breaker.allow("b1")
    breaker.record("b1", False)  # the third in a row
    assert breaker.is_open("b1") and not breaker.allow("b1")
    assert breaker.allow("b2")  # per buyer
    clock.now += 29.9
    assert not breaker.allow("b1")
    clock.now += 0.2
    assert breaker.allow("b1")  # the trial
    assert not breaker.allow("b1")  # only one at a time
    breaker.record("b1", False)  # failed: open again for a full cool-down
    assert not breaker.allow("b1")
    clock.now += 30.1
    assert breaker.allow("b1")
    breaker.release("b1")  # not made after all: the next call may be the trial
    assert breaker.allow("b1")
    breaker.record("b1", True)
    assert not breaker.is_open("b1") and breaker.allow("b1") and breaker.allow("b1")


def test_auth_headers():
    assert auth_headers(Auth(), b"x") == {}
    assert auth_headers(Auth("bearer", secret="tok"), b"x") == {"Authorization": "Bearer tok"}
    basic = auth_headers(Auth("basic", user="acme", secret="pw:1"), b"x")["Authorization"]
    assert base64.b64decode(basic.removeprefix("Basic ")) == b"acme:pw:1"
    signed = auth_headers(Auth("hmac", secret="s3cret", header="X-Sig"), b'{"a":1}', now_s=1_800_000_000)
    assert signed == {"X-Sig": sign("s3cret", b'{"a":1}', 1_800_000_000)}
    assert verify("s3cret", b'{"a":1}', signed["X-Sig"], now_s=1_800_000_100)
    assert not verify("s3cret", b'{"a":2}', signed["X-Sig"], now_s=1_800_000_100)  # another body
    assert not verify("other", b'{"a":1}', signed["X-Sig"], now_s=1_800_000_100)  # another key
    assert not verify("s3cret", b'{"a":1}', signed["X-Sig"], now_s=1_800_000_400)  # stale: a replay
    assert not verify("s3cret", b'{"a":1}', "garbage", now_s=1_800_000_100)


def test_auth_timeout_and_ping_fields_in_rule_sections():
    env = {"ACME_TOKEN": "tok-1", "ACME_PW": "pw", "ACME_KEY": "k"}
    text = """
[buyer a]
auth bearer env:ACME_TOKEN
timeout 2.5s
ping fields residence_type months_employed
[buyer b]
auth basic acme env:ACME_PW
[buyer c]
auth hmac env:ACME_KEY header=X-Sig
[buyer d]
auth bearer tok-written-in-the-file
[buyer e]
auth bearer env:NOT_SET
[buyer f]
ping fields ssn
[buyer g]
timeout 90
[buyer h]
format json
"""
    book = parse_rules(text, "x.rules", frozenset({"residence_type", "months_employed", "ssn", "zip"}), env=env)
    a = book.sections["a"]
    assert (a.auth.kind, a.auth.secret, a.timeout_s, a.ping_fields) == (
        "bearer", "tok-1", 2.5, ("residence_type", "months_employed"))
    assert "tok-1" not in repr(a.auth)  # secrets stay out of logs
    assert (book.sections["b"].auth.user, book.sections["b"].auth.secret) == ("acme", "pw")
    assert book.sections["c"].auth.header == "X-Sig"
    problems = {p.line: p.message for p in book.problems}
    assert problems == {
        11: "a secret is named, never written: env:VARIABLE_NAME",
        13: "environment variable NOT_SET is not set",
        15: "ssn identifies the consumer and is never sent in a ping",
        17: "expected `timeout SECONDS` (more than 0, at most 60), e.g. timeout 3s",
        19: "a format needs rules to fill it (without rules the buyer gets the exchange's JSON)",
    }
    # A section with settings but no rules sends the exchange's JSON.
    assert prepare_post(ev.Lead(lead_id="L1", fields={"zip": "10001"}), 5, a).content_type == "application/json"


CLOSED = ev.AuctionClosed(auction_id="A1", lead=ev.Lead(lead_id="L1", vertical="auto_loan", fields={"zip": "10001"}))


async def post_to(port: int, post_timeout_s: float = 5.0):
    client = BuyerClient(10, 1.0, post_timeout_s)
    await client.start()
    try:
        buyer = BuyerAccount("b1", "one", f"http://127.0.0.1:{port}/ping", f"http://127.0.0.1:{port}/post")
        return await client.post(buyer, CLOSED, prepare_post(CLOSED.lead, 100, None))
    finally:
        await client.close()


def test_a_post_that_never_connected_is_retried_and_then_fails():
    result = asyncio.run(post_to(free_port()))  # nothing listens there
    assert not result.accepted and result.failed and result.connects == 3
    assert result.detail.startswith("not reached") and result.status is None


def test_a_post_that_may_have_reached_the_buyer_is_never_resent():
    async def scenario():
        async with BuyerServer(delay_s=1.5) as buyer:
            result = await post_to(buyer.port, post_timeout_s=0.5)
            await asyncio.sleep(1.2)  # had it been resent, the buyer would have seen it by now
            return result, buyer.received

    result, received = asyncio.run(scenario())
    assert received == 1
    assert not result.accepted and result.failed and result.connects == 1
    assert result.detail.startswith("no answer (may have reached the buyer)")


@pytest.mark.parametrize(("status", "accepted", "failed"), [(200, True, False), (503, False, True)])
def test_an_answer_is_read_and_a_5xx_counts_as_a_failure(status, accepted, failed):
    async def scenario():
        async with BuyerServer(status=status) as buyer:
            return await post_to(buyer.port), buyer.received

    result, received = asyncio.run(scenario())
    assert received == 1 and result.status == status
    assert (result.accepted, result.failed) == (accepted, failed)


def test_a_ping_counts_against_its_buyer_only_if_the_buyer_had_a_fair_share_of_its_time():
    assert not_the_buyers_fault(given_s=1.0, full_s=1.0, waited_s=1.0) is None
    assert not_the_buyers_fault(given_s=0.5, full_s=1.0, waited_s=0.5) is None
    assert not_the_buyers_fault(given_s=0.49, full_s=1.0, waited_s=0.49).startswith("pinged late")
    assert not_the_buyers_fault(given_s=2.5, full_s=5.0, waited_s=2.6) is None  # its own timeout is the full time
    assert not_the_buyers_fault(given_s=1.0, full_s=1.0, waited_s=2.1).startswith("delivery stalled")


@pytest.mark.parametrize(("left_s", "held_against_buyer"), [(1.0, True), (0.2, False)])
def test_an_unanswered_ping_sent_late_in_its_window_is_not_held_against_the_buyer(left_s, held_against_buyer):
    opened = ev.AuctionOpened(auction_id="A1", lead_id="A1", opened_at_ms=1_000, closes_at_ms=2_000)  # 1 s window

    async def scenario():
        async with BuyerServer(delay_s=1.5) as buyer:  # never answers within the window
            client = BuyerClient(10, 5.0, 5.0)
            await client.start()
            try:
                account = BuyerAccount("b1", "one", f"http://127.0.0.1:{buyer.port}/post",
                                       f"http://127.0.0.1:{buyer.port}/post")
                return await client.ping(account, opened, left_s)
            finally:
                await client.close()

    result = asyncio.run(scenario())
    assert not result.answered and result.bid_cents is None
    assert result.held_against_buyer is held_against_buyer
    if not held_against_buyer:
        assert "pinged late" in result.detail and "not held against the buyer" in result.detail


def test_an_unanswered_ping_is_not_held_against_the_buyer_when_delivery_itself_stalled():
    opened = ev.AuctionOpened(auction_id="A1", lead_id="A1", opened_at_ms=1_000, closes_at_ms=2_000)

    async def scenario():
        async with BuyerServer(delay_s=3.0) as buyer:
            client = BuyerClient(10, 5.0, 5.0)
            await client.start()
            try:
                account = BuyerAccount("b1", "one", f"http://127.0.0.1:{buyer.port}/post",
                                       f"http://127.0.0.1:{buyer.port}/post")
                ping = asyncio.create_task(client.ping(account, opened, 0.5))
                await asyncio.sleep(0.1)
                time.sleep(2.0)  # delivery's event loop stops (frozen, starved) past the ping's deadline
                return await ping
            finally:
                await client.close()

    result = asyncio.run(scenario())
    assert not result.answered and not result.held_against_buyer
    assert "delivery stalled" in result.detail


class ClosingKeptAliveServer:
    """A buyer's server at the moment it closes idle connections: it answers the first request on a
    connection (keeping it alive, as HTTP/1.1 does) and closes the connection, without reading,
    when another request arrives on it: the race every pooled client meets when a server's idle
    timeout (uvicorn's and Node's 5 s) ends a connection the client is reusing. With
    `drop_first`, it closes new connections too, after reading the request: a post that reached
    the buyer and got no answer."""

    def __init__(self, drop_first: bool = False) -> None:
        self.drop_first = drop_first
        self.handled: list[bytes] = []  # the requests its application read
        self.dropped = 0  # connections closed as a further request arrived

    async def serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = await reader.readuntil(b"\r\n\r\n")
        length = next(int(line.split(b":")[1]) for line in head.split(b"\r\n")
                      if line.lower().startswith(b"content-length"))
        self.handled.append(await reader.readexactly(length))
        if self.drop_first:
            writer.close()
            return
        body = b'{"accepted": true, "bid": 1500}'
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s"
                     % (len(body), body))
        await writer.drain()
        if await reader.read(1):  # another request on this connection: not read, the connection closed
            self.dropped += 1
        writer.close()

    async def __aenter__(self) -> ClosingKeptAliveServer:
        self.server = await asyncio.start_server(self.serve, "127.0.0.1", 0)
        self.port = self.server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(self, *exc) -> None:
        self.server.close()


@pytest.mark.parametrize("call", ["post", "ping"])
def test_a_call_on_a_connection_the_buyer_closed_idle_is_sent_again_on_a_new_one(call):
    opened = ev.AuctionOpened(auction_id="A1", lead_id="A1", opened_at_ms=1_000, closes_at_ms=6_000)

    async def scenario():
        async with ClosingKeptAliveServer() as buyer:
            client = BuyerClient(10, 5.0, 5.0)
            await client.start()
            account = BuyerAccount("b1", "one", f"http://127.0.0.1:{buyer.port}/ping",
                                   f"http://127.0.0.1:{buyer.port}/post")
            try:
                results = []
                for _ in range(2):  # the second goes out on the first's pooled connection
                    if call == "post":
                        results.append(await client.post(account, CLOSED, prepare_post(CLOSED.lead, 100, None)))
                    else:
                        results.append(await client.ping(account, opened, 5.0))
                return results, buyer
            finally:
                await client.close()

    results, buyer = asyncio.run(scenario())
    assert buyer.dropped == 1 and len(buyer.handled) == 2  # the application read each call once
    if call == "post":
        assert [(r.accepted, r.connects) for r in results] == [(True, 1), (True, 2)]
    else:
        assert [(r.answered, r.bid_cents) for r in results] == [(True, 1500), (True, 1500)]


def test_a_post_dropped_on_a_new_connection_is_never_sent_again():
    async def scenario():
        async with ClosingKeptAliveServer(drop_first=True) as buyer:
            return await post_to(buyer.port), buyer

    result, buyer = asyncio.run(scenario())
    assert len(buyer.handled) == 1  # it reached the buyer: no second copy
    assert not result.accepted and result.failed and result.connects == 1
    assert result.detail.startswith("no answer (may have reached the buyer)")
