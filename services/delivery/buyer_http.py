"""HTTP conversations with buyers: pings (minimal subset, a bid back) and posts (the full lead,
accepted or rejected). Posts are adapted to each buyer's format by its POST rules, when it has a
section (docs/post-rules.md); pings are JSON.

Calls go only where the buyer URL rules allow (leadx.accounts.buyer_urls), judged on every
address a new connection is about to be made to; redirects are not followed (a buyer's server could
send the lead on to an internal address), and a reply is read no further than `reply_max_bytes`.
The calls go out on services.delivery.http_client (which says why it is our own).
"""

from __future__ import annotations

import asyncio
import json
import logging
import ssl
import time
from dataclasses import dataclass

from yarl import URL

from leadx.accounts.buyer_urls import BuyerUrlRules, looks_like_address, resolve_host
from leadx.auction.selection.market import BuyerAccount
from leadx.contracts.events.v1 import events_pb2 as ev
from leadx.delivery.buyer_auth import auth_headers
from leadx.delivery.post_adaptation import PreparedPost
from leadx.delivery.post_adaptation.replies import read_reply
from leadx.delivery.post_adaptation.syntax import Auth, BuyerRules
from services.delivery import metrics
from services.delivery.breaker import not_the_buyers_fault
from services.delivery.http_client import Answer, CallError, ConnectionLost, ConnectionPool, NotConnected

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


def redirect_detail(answer: Answer) -> str:
    target = f" to {answer.location[:MAX_LOCATION_CHARS]}" if answer.location else ""
    return f"HTTP {answer.status}: a redirect{target}, not followed"


class AddressRefused(OSError):
    """The buyer's host resolved to an address buyer calls may not reach: nothing was sent."""


class CheckedResolver:
    """The system resolver, with every address it gives checked against the buyer URL rules before
    any is connected to: a name that passed when its URL was set may resolve elsewhere by the time
    of a call (DNS rebinding). A name with any refused address is not called at all."""

    def __init__(self, rules: BuyerUrlRules) -> None:
        self.rules = rules

    async def resolve(self, host: str, port: int) -> list[str]:
        """The addresses to connect to, in the resolver's order; a host written as an address is
        itself (BuyerClient._target has judged it). Raises NotConnected for a refused address
        (AddressRefused, not retryable), OSError when the name does not resolve."""
        if looks_like_address(host):
            return [host]
        # The resolver that judges a URL when it is set, off the loop (getaddrinfo blocks).
        addresses = list(dict.fromkeys(await asyncio.to_thread(resolve_host, host, port)))
        for address in addresses:
            refusal = self.rules.address_refusal(address, host)
            if refusal is not None:  # no retry resolves the rules away
                raise NotConnected(AddressRefused(self.rules.explain(refusal)), retryable=False)
        return addresses


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


def _stale(error: CallError) -> bool:
    """A call that failed on a pooled connection the buyer's server was closing: dropped or reset
    before any answer. The server was closing the idle connection, so its application never had
    the request; a call is sent again once, on a new connection (as HTTP clients do; a post carries
    its Idempotency-Key, docs/post-rules.md). A timeout, or a failure on a new connection, is not."""
    return isinstance(error, ConnectionLost) and error.reused and error.answered_nothing


class BuyerClient:
    def __init__(self, max_concurrent: int, ping_timeout_s: float, post_timeout_s: float,
                 urls: BuyerUrlRules | None = None, reply_max_bytes: int = DEFAULT_REPLY_MAX_BYTES,
                 tls: ssl.SSLContext | None = None) -> None:
        """`urls`: where calls may go (by default as BUYER_URLS_ALLOW_PRIVATE says); `tls`: the
        certificates trusted (by default the system's)."""
        self.max_concurrent = max_concurrent
        self.ping_timeout_s = ping_timeout_s
        self.post_timeout_s = post_timeout_s
        self.urls = urls if urls is not None else BuyerUrlRules.from_env()
        self.reply_max_bytes = reply_max_bytes
        self._tls = tls
        self._pool: ConnectionPool | None = None

    async def start(self) -> None:
        self._pool = ConnectionPool(self.max_concurrent, KEEPALIVE_S, CheckedResolver(self.urls).resolve, self._tls)

    async def close(self) -> None:
        if self._pool is not None:
            await self._pool.close()

    async def _call(self, target: URL, body: bytes, headers: dict[str, str], timeout_s: float) -> tuple[Answer, int]:
        """POST `body` and read the answer, within `timeout_s` in all: the answer and the
        connections it took (2 when a stale pooled connection was dropped, see _stale)."""
        assert self._pool is not None, "buyer calls are made only after start()"
        started = time.monotonic()
        try:
            return await self._pool.post(target, body, headers, timeout_s, self.reply_max_bytes), 1
        except ConnectionLost as error:
            if not _stale(error):
                raise
        left_s = timeout_s - (time.monotonic() - started)
        if left_s <= 0:
            raise TimeoutError  # the time given was spent on the stale connection
        return await self._pool.post(target, body, headers, left_s, self.reply_max_bytes, new_connection=True), 2

    def _target(self, url: str) -> tuple[URL | None, str]:
        """The URL to call, or None and why it may not be called. A host written as an address is
        connected to without resolving it, so such a host is judged here; a name is
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
        except (CallError, TimeoutError) as exc:
            if isinstance(exc, NotConnected) and not exc.retryable:
                return _ping_failed(buyer, f"not reached: {exc}", None)
            waited_s = time.monotonic() - started
            excuse = not_the_buyers_fault(given_s, min((opened.closes_at_ms - opened.opened_at_ms) / 1000, limit),
                                          waited_s) if isinstance(exc, TimeoutError) else None
            if excuse is not None:
                return _ping_failed(buyer, f"no answer ({excuse}; not held against the buyer)", waited_s,
                                    held_against_buyer=False)
            return _ping_failed(buyer, f"no answer: {failure_name(exc)}", waited_s)
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
            except NotConnected as exc:  # refused, unresolvable: nothing was sent
                if not exc.retryable:  # no retry resolves the rules away
                    return PostResult(False, f"not reached: {exc}", _ms_since(started), failed=True,
                                      connects=attempt - 1, reached=False)
                if delay is None:
                    return PostResult(False, f"not reached: {failure_name(exc)}", _ms_since(started),
                                      failed=True, connects=attempt, reached=False)
                await asyncio.sleep(delay)
            except (CallError, TimeoutError) as exc:
                return PostResult(False, f"no answer (may have reached the buyer): {failure_name(exc)}",
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
        return False, redirect_detail(answer)
    if prepared.reply is None:
        return parse_post_reply(answer.status, answer.body)
    reply = read_reply(prepared.reply, answer.status, answer.body)
    if reply.accepted:
        return True, f"accepted, confirmation {reply.confirmation or '(none)'}"
    return False, f"rejected by buyer: {reply.error}"


def ping_result(answer: Answer, reply_max_bytes: int) -> PingResult:
    if answer.redirected:
        result = PingResult(None, True, redirect_detail(answer))
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


def failure_name(error: BaseException) -> str:
    """A failed call's cause as the detail names it: the system's error for a connection never made
    (ConnectionRefusedError, gaierror, SSLCertVerificationError), else the failure's kind."""
    return type(error.cause if isinstance(error, NotConnected) else error).__name__


def _ms_since(started: float) -> int:
    return int((time.monotonic() - started) * 1000)
