"""HTTP conversations with buyers: pings (minimal subset, a bid back) and posts (the full lead,
accepted or rejected). Posts are adapted to each buyer's format by its POST rules, when it has a
section (docs/post-rules.md); pings are JSON.

Calls go only where the buyer URL rules allow (leadx.accounts.buyer_urls), judged at every call on
the addresses aiohttp is about to connect to; redirects are not followed (a buyer's server could
send the lead on to an internal address), and a reply is read no further than `reply_max_bytes`.

aiohttp rather than httpx: measured here, httpx's async pool topped out near 260 requests/s at
32 concurrent connections, and delivery makes several requests per lead.
"""

from __future__ import annotations

import asyncio
import json
import logging
import socket
import time
from dataclasses import dataclass

import aiohttp
from aiohttp.abc import AbstractResolver, ResolveResult
from aiohttp.resolver import DefaultResolver
from yarl import URL

from leadx.accounts.buyer_urls import BuyerUrlRules
from leadx.auction.selection.market import BuyerAccount
from leadx.contracts.events.v1 import events_pb2 as ev
from leadx.delivery.buyer_auth import auth_headers
from leadx.delivery.post_adaptation import PreparedPost
from leadx.delivery.post_adaptation.replies import read_reply
from leadx.delivery.post_adaptation.syntax import Auth, BuyerRules
from services.delivery import metrics
from services.delivery.breaker import not_the_buyers_fault

NO_AUTH = Auth()
DEFAULT_REPLY_MAX_BYTES = 64 * 1024
MAX_LOCATION_CHARS = 200  # of a redirect's target, in the recorded detail

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class PostResult:
    accepted: bool
    detail: str
    latency_ms: int
    status: int | None = None  # the HTTP status, when the buyer answered
    response: bytes = b""
    failed: bool = False  # no usable answer (for the circuit breaker); a rejection is an answer
    connects: int = 1  # connection attempts (more than one only when earlier ones never connected)
    reached: bool = True  # False only when no connection was ever made: the buyer has not seen the lead


@dataclass(frozen=True)
class PingResult:
    bid_cents: int | None
    answered: bool
    detail: str = ""  # what came of it, for the log: a failure's cause, a redirect, a reply cut
    # False for a ping that ran out of time through delivery's own trouble, sent late in its window
    # or delivery stalled (services.delivery.breaker.not_the_buyers_fault): its breaker ignores it.
    held_against_buyer: bool = True


@dataclass(frozen=True)
class Answer:
    """A buyer's HTTP answer as delivery keeps it."""

    status: int
    body: bytes  # at most the reply limit
    cut: bool  # the reply went on past the limit; the rest was not read
    location: str  # where a redirect pointed

    @property
    def redirected(self) -> bool:
        return 300 <= self.status < 400

    def redirect_detail(self) -> str:
        target = f" to {self.location[:MAX_LOCATION_CHARS]}" if self.location else ""
        return f"HTTP {self.status}: a redirect{target}, not followed"


async def read_answer(response: aiohttp.ClientResponse, limit: int) -> Answer:
    """The status and at most `limit` bytes of the reply, reading one more to know whether it went
    on: a buyer cannot make a worker hold more. A reply left unread closes its connection."""
    body = bytearray()
    while len(body) <= limit:
        chunk = await response.content.read(limit + 1 - len(body))
        if not chunk:
            break
        body += chunk
    return Answer(response.status, bytes(body[:limit]), len(body) > limit,
                  response.headers.get(aiohttp.hdrs.LOCATION, ""))


class AddressRefused(OSError):
    """The buyer's host resolved to an address buyer calls may not reach: nothing was sent.
    An OSError, so that aiohttp reports it as the connection failure it is."""


class CheckedResolver(AbstractResolver):
    """The system resolver, with every address it gives checked against the buyer URL rules before
    aiohttp connects to any: a name that passed when its URL was set may resolve elsewhere by the
    time of a call (DNS rebinding). A name with any refused address is not called at all."""

    def __init__(self, rules: BuyerUrlRules) -> None:
        self.rules = rules
        self._resolver = DefaultResolver()

    async def resolve(self, host: str, port: int = 0,
                      family: socket.AddressFamily = socket.AF_INET) -> list[ResolveResult]:
        resolved = await self._resolver.resolve(host, port, family)
        for result in resolved:
            refusal = self.rules.address_refusal(result["host"], host)
            if refusal is not None:
                raise AddressRefused(self.rules.explain(refusal))
        return resolved

    async def close(self) -> None:
        await self._resolver.close()


def ping_body(opened: ev.AuctionOpened, extra_fields: tuple[str, ...] = ()) -> dict:
    """The minimal subset of a lead (docs/integration-spec.md), plus the non-identifying fields this
    buyer asked for in its rules (`ping fields ...`); the auction only carries non-identifying fields
    in a ping."""
    ping = opened.ping
    body = {"auction_id": opened.auction_id, "lead_id": opened.lead_id, "vertical": ping.vertical,
            "zip": ping.zip, "state": ping.state, "gross_monthly_income": ping.gross_monthly_income_cents,
            "probability": ping.probability, "cluster": ping.cluster,
            "min_price": opened.min_price_cents, "closes_at_ms": opened.closes_at_ms}
    for name in extra_fields:
        if name in ping.fields:
            body.setdefault(name, ping.fields[name])
    return body


def _json_object(body: bytes) -> dict | None:
    try:
        value = json.loads(body)
    except (UnicodeDecodeError, ValueError):
        return None
    return value if isinstance(value, dict) else None


def parse_bid(status: int, body: bytes) -> int | None:
    """A bid in cents from a ping reply `{"bid": 1234}`, or None for no bid."""
    reply = _json_object(body) if status == 200 else None
    bid = reply.get("bid") if reply else None
    if isinstance(bid, bool) or not isinstance(bid, int) or bid <= 0:
        return None
    return bid


def parse_post_reply(status: int, body: bytes) -> tuple[bool, str]:
    """Whether the buyer accepted a posted lead (`{"accepted": true}` with a 2xx), and why not."""
    if status // 100 != 2:
        return False, f"HTTP {status}"
    reply = _json_object(body)
    if reply is None:
        return False, "reply is not a JSON object"
    accepted = reply.get("accepted") is True
    return accepted, "accepted" if accepted else "rejected by buyer"


CONNECT_RETRY_DELAYS_S = (0.2, 0.5)  # retries of a post whose connection was never made
# A pooled connection idle this long is not used again. Common buyer servers close an idle
# connection after 5 s (uvicorn, Node.js; nginx after 75 s), and a call sent on a connection its
# server is closing fails unanswered: with auctions 5 s apart, a buyer's pings and posts kept
# landing on such connections (CI: a lead unsold, its winner's post "no answer" in 2 ms).
KEEPALIVE_S = 4.0


class _Reuse:
    """Whether a call went out on a pooled connection (aiohttp's trace of the connection)."""

    def __init__(self) -> None:
        self.reused = False


async def _on_reuse(_session, context, _params) -> None:
    if isinstance(context.trace_request_ctx, _Reuse):
        context.trace_request_ctx.reused = True


def _reuse_trace() -> aiohttp.TraceConfig:
    trace = aiohttp.TraceConfig()
    trace.on_connection_reuseconn.append(_on_reuse)
    return trace


def _stale(error: BaseException, reuse: _Reuse) -> bool:
    """A call that failed on a pooled connection the buyer's server had closed: dropped or reset
    before any answer. The server was closing the idle connection, so its application never had
    the request; a call is sent again once, on a new connection (as HTTP clients do; a post carries
    its Idempotency-Key, docs/post-rules.md). A timeout, or a failure on a new connection, is not."""
    connection_lost = isinstance(error, (aiohttp.ServerDisconnectedError, aiohttp.ClientOSError))
    return reuse.reused and connection_lost and not isinstance(error, aiohttp.ClientConnectorError)


class BuyerClient:
    def __init__(self, max_concurrent: int, ping_timeout_s: float, post_timeout_s: float,
                 urls: BuyerUrlRules | None = None, reply_max_bytes: int = DEFAULT_REPLY_MAX_BYTES) -> None:
        """`urls`: where calls may go (by default as BUYER_URLS_ALLOW_PRIVATE says)."""
        self.max_concurrent = max_concurrent
        self.ping_timeout_s = ping_timeout_s
        self.post_timeout_s = post_timeout_s
        self.urls = urls if urls is not None else BuyerUrlRules.from_env()
        self.reply_max_bytes = reply_max_bytes
        self._http: aiohttp.ClientSession | None = None
        self._fresh: aiohttp.ClientSession | None = None  # a new connection per call: the resend of a stale one
        self._resolver: CheckedResolver | None = None

    async def start(self) -> None:
        self._resolver = CheckedResolver(self.urls)
        self._http = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(limit=self.max_concurrent, resolver=self._resolver,
                                           keepalive_timeout=KEEPALIVE_S),
            trace_configs=[_reuse_trace()])
        self._fresh = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(limit=self.max_concurrent, resolver=self._resolver, force_close=True))

    async def close(self) -> None:
        for session in (self._http, self._fresh):
            if session is not None:
                await session.close()
        if self._resolver is not None:  # a resolver handed to the connector is not closed with it
            await self._resolver.close()

    async def _call(self, target: URL, body: bytes, headers: dict[str, str], timeout_s: float) -> tuple[Answer, int]:
        """POST `body` and read the answer, within `timeout_s` in all: the answer and the
        connections it took (2 when a stale pooled connection was dropped, see _stale)."""
        assert self._http is not None and self._fresh is not None, "buyer calls are made only after start()"
        started, reuse = time.monotonic(), _Reuse()
        try:
            return await self._send(self._http, target, body, headers, timeout_s, reuse), 1
        except (aiohttp.ServerDisconnectedError, aiohttp.ClientOSError) as error:
            if not _stale(error, reuse):
                raise
        left_s = timeout_s - (time.monotonic() - started)
        if left_s <= 0:
            raise TimeoutError  # the time given was spent on the stale connection
        return await self._send(self._fresh, target, body, headers, left_s, None), 2

    async def _send(self, session: aiohttp.ClientSession, target: URL, body: bytes, headers: dict[str, str],
                    timeout_s: float, reuse: _Reuse | None) -> Answer:
        async with session.post(target, data=body, headers=headers, allow_redirects=False, trace_request_ctx=reuse,
                                timeout=aiohttp.ClientTimeout(total=timeout_s)) as response:
            return await read_answer(response, self.reply_max_bytes)

    def _target(self, url: str) -> tuple[URL | None, str]:
        """The URL to call, or None and why it may not be called. aiohttp connects to a host
        written as an address without resolving it, so such a host is judged here; a name is
        judged by CheckedResolver on the addresses it resolves to. The URL object judged is the
        one called, so both read the same host."""
        try:
            target = URL(url)
        except (TypeError, ValueError) as error:
            return None, f"not called: the URL is not valid ({error})"
        refusal = self.urls.host_refusal(target.raw_host or "")
        return (target, "") if refusal is None else (None, f"not called: {self.urls.explain(refusal)}")

    async def ping(self, buyer: BuyerAccount, opened: ev.AuctionOpened, timeout_s: float,
                   section: BuyerRules | None = None) -> PingResult:
        """The bid in the buyer's reply, if any; `answered` is False when the buyer failed (not
        reached, no answer in time, or an HTTP 5xx), which its circuit breaker counts. A redirect
        is an answer without a bid."""
        limit = section.timeout_s if section and section.timeout_s else self.ping_timeout_s
        body = json.dumps(ping_body(opened, section.ping_fields if section else ())).encode()
        headers = {"Content-Type": "application/json", **auth_headers(section.auth if section else NO_AUTH, body)}
        target, refused = self._target(buyer.ping_url)
        if target is None:
            return _ping_failed(buyer, refused, None)
        started = time.monotonic()
        given_s = min(timeout_s, limit)
        try:
            answer, _ = await self._call(target, body, headers, given_s)
        except (aiohttp.ClientError, asyncio.TimeoutError) as exc:  # noqa: UP041 (aiohttp raises both)
            if isinstance(exc, aiohttp.ClientConnectorError) and isinstance(exc.os_error, AddressRefused):
                return _ping_failed(buyer, f"not reached: {exc.os_error}", None)
            waited_s = time.monotonic() - started
            excuse = not_the_buyers_fault(given_s, min((opened.closes_at_ms - opened.opened_at_ms) / 1000, limit),
                                          waited_s) if isinstance(exc, asyncio.TimeoutError) else None  # noqa: UP041
            if excuse is not None:
                return _ping_failed(buyer, f"no answer ({excuse}; not held against the buyer)", waited_s,
                                    held_against_buyer=False)
            return _ping_failed(buyer, f"no answer: {type(exc).__name__}", waited_s)
        result = ping_result(answer, self.reply_max_bytes)
        if answer.redirected or answer.cut:
            log.info("ping reply redirected or cut", extra={"fields": {"buyer_id": buyer.id, "detail": result.detail}})
        outcome = "error" if not result.answered else "no_bid" if result.bid_cents is None else "bid"
        metrics.pinged(buyer.id, outcome, time.monotonic() - started)
        return result

    async def post(self, buyer: BuyerAccount, closed: ev.AuctionClosed, prepared: PreparedPost,
                   section: BuyerRules | None = None) -> PostResult:
        result = await self._post(buyer, closed, prepared, section)
        metrics.posted(buyer.id, post_outcome(result), result.latency_ms / 1000 if result.reached else None)
        return result

    async def _post(self, buyer: BuyerAccount, closed: ev.AuctionClosed, prepared: PreparedPost,
                    section: BuyerRules | None) -> PostResult:
        """One POST of the lead. Sent again only when its connection was never made (nothing was
        sent), or when it went on a pooled connection the buyer's server was closing (_stale: a
        server drops an idle connection without reading what arrives on it). A post that may have
        reached the buyer (a timeout, a new connection dropped) is never sent again: it counts as
        not accepted and the lead moves on."""
        limit = section.timeout_s if section and section.timeout_s else self.post_timeout_s
        # The auction id is the idempotency key: a repeat after a crash is recognisable.
        headers = {"Idempotency-Key": closed.auction_id, "Content-Type": prepared.content_type,
                   **auth_headers(section.auth if section else NO_AUTH, prepared.body)}
        started = time.monotonic()
        target, refused = self._target(buyer.post_url)
        if target is None:
            return PostResult(False, refused, 0, failed=True, connects=0, reached=False)
        for attempt, delay in enumerate((*CONNECT_RETRY_DELAYS_S, None), start=1):
            try:
                answer, connections = await self._call(target, prepared.body, headers, limit)
                break
            except aiohttp.ClientConnectorError as exc:  # refused, unresolvable: nothing was sent
                if isinstance(exc.os_error, AddressRefused):  # no retry resolves the rules away
                    return PostResult(False, f"not reached: {exc.os_error}", _ms_since(started), failed=True,
                                      connects=attempt - 1, reached=False)
                if delay is None:
                    return PostResult(False, f"not reached: {type(exc).__name__}", _ms_since(started),
                                      failed=True, connects=attempt, reached=False)
                await asyncio.sleep(delay)
            except (aiohttp.ClientError, asyncio.TimeoutError) as exc:  # noqa: UP041
                return PostResult(False, f"no answer (may have reached the buyer): {type(exc).__name__}",
                                  _ms_since(started), failed=True, connects=attempt)
        accepted, detail = post_verdict(answer, prepared)
        if answer.cut:
            detail += cut_note(self.reply_max_bytes)
        return PostResult(accepted, detail, _ms_since(started), status=answer.status, response=answer.body,
                          failed=answer.status >= 500, connects=attempt - 1 + connections)


def post_verdict(answer: Answer, prepared: PreparedPost) -> tuple[bool, str]:
    """Whether the buyer took the lead, and its words. A redirect is a refusal: the lead is not
    sent on, wherever the buyer points."""
    if answer.redirected:
        return False, answer.redirect_detail()
    if prepared.reply is None:
        return parse_post_reply(answer.status, answer.body)
    reply = read_reply(prepared.reply, answer.status, answer.body)
    if reply.accepted:
        return True, f"accepted, confirmation {reply.confirmation or '(none)'}"
    return False, f"rejected by buyer: {reply.error}"


def ping_result(answer: Answer, reply_max_bytes: int) -> PingResult:
    if answer.redirected:
        result = PingResult(None, True, answer.redirect_detail())
    else:
        bid = parse_bid(answer.status, answer.body)
        detail = f"bid {bid}" if bid is not None else "no bid" if answer.status == 200 else f"HTTP {answer.status}"
        result = PingResult(bid, answer.status < 500, detail)
    if answer.cut:
        result = PingResult(result.bid_cents, result.answered, result.detail + cut_note(reply_max_bytes))
    return result


def cut_note(reply_max_bytes: int) -> str:
    return f"; reply cut at {reply_max_bytes} bytes (the rest was not read)"


def _ping_failed(buyer: BuyerAccount, detail: str, seconds: float | None,
                 held_against_buyer: bool = True) -> PingResult:
    """A ping without an answer, which the buyer's breaker counts unless `held_against_buyer` is
    False; `seconds` None when no connection was made (a refused address is no round trip)."""
    log.info("ping failed", extra={"fields": {"buyer_id": buyer.id, "detail": detail}})
    metrics.pinged(buyer.id, "no_answer", seconds)
    return PingResult(None, False, detail, held_against_buyer)


def post_outcome(result: PostResult) -> str:
    """How a post went, as the metrics and the logs name it (services.delivery.attempts stores the
    coarser accepted / rejected / failed derived from it)."""
    if not result.reached:
        return "not_reached"
    if result.accepted:  # an AutoBid buyer's lead is accepted on its behalf, with no HTTP answer
        return "accepted"
    if result.status is None:
        return "no_answer"  # a timeout or a dropped connection: it may have reached the buyer
    if result.status >= 500:
        return "error"
    return "rejected"


def _ms_since(started: float) -> int:
    return int((time.monotonic() - started) * 1000)
