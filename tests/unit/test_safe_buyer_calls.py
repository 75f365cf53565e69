"""Delivery's calls to buyers go only where the buyer URL rules allow, against real local HTTP
servers: a redirect is an answer and is not followed, a reply over the limit is cut and recorded as
such, and a host that resolves (or is written) to a refused address is not called at all."""

from __future__ import annotations

import asyncio

from aiohttp import web
from sqlalchemy import select

from leadx.accounts.buyer_urls import BuyerUrlRules
from leadx.auction.selection.market import BuyerAccount
from leadx.contracts.events.v1 import events_pb2 as ev
from leadx.delivery.post_adaptation import prepare_post
from leadx.dev.stack import free_port
from leadx.platform.db.engine import create_schema, make_engine, session_factory
from leadx.platform.db.models import PostAttempt
from services.delivery.attempts import AttemptLog
from services.delivery.breaker import CircuitBreaker
from services.delivery.buyer_http import BuyerClient, PingResult, PostResult
from tests.buyer_server import BuyerServer

PRODUCTION = BuyerUrlRules()
DEVELOPMENT = BuyerUrlRules(allow_private=True)
CLOSED = ev.AuctionClosed(auction_id="A1", lead=ev.Lead(lead_id="L1", vertical="auto_loan", fields={"zip": "10001"}))
OPENED = ev.AuctionOpened(auction_id="A1", lead_id="L1", min_price_cents=500,
                          ping=ev.PingSubset(vertical="auto_loan", zip="10001", state="NY"))


class Buyer:
    """A buyer's server that misbehaves as told: `/redirect` answers 307 to `location`, `/big`
    answers `size` bytes of a JSON reply (streamed, with no length announced, when `chunked`).
    Every request is counted."""

    def __init__(self, location: str = "", size: int = 0, chunked: bool = False) -> None:
        self.location, self.size, self.chunked = location, size, chunked
        self.port = free_port()
        self.requests = 0

    async def redirect(self, request: web.Request) -> web.StreamResponse:
        self.requests += 1
        await request.read()
        return web.Response(status=307, headers={"Location": self.location})

    async def big(self, request: web.Request) -> web.StreamResponse:
        self.requests += 1
        await request.read()
        body = b'{"accepted": true, "bid": 900, "padding": "' + b"x" * self.size + b'"}'
        if not self.chunked:
            return web.Response(body=body, content_type="application/json")
        response = web.StreamResponse(headers={"Content-Type": "application/json"})
        response.enable_chunked_encoding()
        await response.prepare(request)
        for start in range(0, len(body), 4096):
            await response.write(body[start:start + 4096])
        await response.write_eof()
        return response

    async def __aenter__(self) -> Buyer:
        app = web.Application()
        for path, handler in (("/redirect", self.redirect), ("/big", self.big)):
            app.router.add_post(path, handler)
        self.runner = web.AppRunner(app)
        await self.runner.setup()
        await web.TCPSite(self.runner, "127.0.0.1", self.port).start()
        return self

    async def __aexit__(self, *exc) -> None:
        await self.runner.cleanup()


async def call(rules: BuyerUrlRules, ping_url: str, post_url: str,
               reply_max_bytes: int = 64 * 1024) -> tuple[PingResult, PostResult]:
    client = BuyerClient(10, 2.0, 2.0, rules, reply_max_bytes)
    await client.start()
    try:
        buyer = BuyerAccount("b1", "one", ping_url, post_url)
        ping = await client.ping(buyer, OPENED, 2.0)
        return ping, await client.post(buyer, CLOSED, prepare_post(CLOSED.lead, 100, None))
    finally:
        await client.close()


def test_a_redirect_is_an_answer_and_is_not_followed():
    async def scenario():
        target = BuyerServer()
        async with target, Buyer(location=f"http://127.0.0.1:{target.port}/post") as bouncer:
            url = f"http://127.0.0.1:{bouncer.port}/redirect"
            ping, post = await call(DEVELOPMENT, url, url)
            return ping, post, bouncer.requests, target.received

    ping, post, asked, forwarded = asyncio.run(scenario())
    assert asked == 2 and forwarded == 0  # the lead went no further than the buyer's own server
    assert ping == PingResult(None, True, ping.detail) and "HTTP 307: a redirect to http://127.0.0.1:" in ping.detail
    assert not post.accepted and not post.failed and post.reached and post.status == 307
    assert post.detail.startswith("HTTP 307: a redirect to http://127.0.0.1:") and post.detail.endswith("not followed")


def test_a_reply_over_the_limit_is_cut_and_recorded_as_such(sqlite_url):
    engine = make_engine(sqlite_url)
    create_schema(engine)
    attempts = AttemptLog(engine)

    async def scenario(chunked: bool):
        async with Buyer(size=5000, chunked=chunked) as buyer:
            url = f"http://127.0.0.1:{buyer.port}/big"
            ping, post = await call(DEVELOPMENT, url, url, reply_max_bytes=1000)
            buyer_account = BuyerAccount("b1", "one", url, url)
            attempt = await attempts.begin(CLOSED, buyer_account, prepare_post(CLOSED.lead, 100, None))
            await attempts.finish(attempt, post)
            return ping, post

    for chunked in (False, True):
        ping, post = asyncio.run(scenario(chunked))
        head = b'{"accepted": true, "bid": 900, "padding": "'
        assert post.response == head + b"x" * (1000 - len(head))
        assert not post.accepted and not post.failed  # what was kept is no complete reply: not taken
        assert post.detail == "reply is not a JSON object; reply cut at 1000 bytes (the rest was not read)"
        assert ping.bid_cents is None and ping.answered
        assert ping.detail.endswith("reply cut at 1000 bytes (the rest was not read)")
    with session_factory(engine)() as session:
        recorded = session.scalars(select(PostAttempt)).all()
    assert [len(r.response_body) for r in recorded] == [1000, 1000]
    assert all("reply cut at 1000 bytes" in r.detail and r.outcome == "rejected" for r in recorded)
    engine.dispose()

    async def within():
        async with Buyer(size=10) as buyer:
            url = f"http://127.0.0.1:{buyer.port}/big"
            return await call(DEVELOPMENT, url, url, reply_max_bytes=1000)

    ping, post = asyncio.run(within())  # a reply within the limit is read whole
    assert (ping.bid_cents, post.accepted, post.detail) == (900, True, "accepted")


def test_a_name_that_resolves_to_a_refused_address_is_not_called():
    async def scenario():
        async with BuyerServer() as buyer:
            by_name = f"http://localhost:{buyer.port}/post"  # resolved when called, as a rebound name is
            refused = await call(PRODUCTION, by_name, by_name)
            as_written = f"http://127.0.0.1:{buyer.port}/post"
            literal = await call(PRODUCTION, as_written, as_written)
            allowed = await call(DEVELOPMENT, by_name, by_name)
            return refused, literal, allowed, buyer.received

    (ping, post), (literal_ping, literal_post), (_, allowed), received = asyncio.run(scenario())
    assert received == 2 and allowed.accepted  # only the ping and the post the development setting allows
    assert ping.bid_cents is None and not ping.answered
    assert ping.detail.startswith("not reached: localhost resolves to ") and "a loopback address" in ping.detail
    assert (post.accepted, post.failed, post.reached, post.connects, post.status) == (False, True, False, 0, None)
    assert post.detail == ping.detail  # no retry: the same refusal, at once
    assert literal_ping.detail.startswith("not called: 127.0.0.1 is a loopback address")
    assert (literal_post.failed, literal_post.reached, literal_post.connects) == (True, False, 0)

    breaker = CircuitBreaker(failures=2)  # counted as the connection failures they are
    for result in (post, literal_post):
        breaker.record("b1", ok=not result.failed)
    assert breaker.is_open("b1")
