"""HTTP conversations with buyers: pings (minimal subset, a bid back) and posts (the full lead,
accepted or rejected). Posts are adapted to each buyer's format by its POST rules, when it has a
section (docs/post-rules.md); pings are JSON.

aiohttp rather than httpx: measured here, httpx's async pool topped out near 260 requests/s at
32 concurrent connections, and delivery makes several requests per lead.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from dataclasses import dataclass

import aiohttp

from leadx.auction.selection.market import BuyerAccount
from leadx.contracts.events.v1 import events_pb2 as ev
from leadx.delivery.buyer_auth import auth_headers
from leadx.delivery.post_adaptation import PreparedPost
from leadx.delivery.post_adaptation.replies import read_reply
from leadx.delivery.post_adaptation.syntax import Auth, BuyerRules
from services.delivery import metrics

NO_AUTH = Auth()

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


class BuyerClient:
    def __init__(self, max_concurrent: int, ping_timeout_s: float, post_timeout_s: float) -> None:
        self.max_concurrent = max_concurrent
        self.ping_timeout_s = ping_timeout_s
        self.post_timeout_s = post_timeout_s
        self._http: aiohttp.ClientSession | None = None

    async def start(self) -> None:
        self._http = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=self.max_concurrent))

    async def close(self) -> None:
        if self._http is not None:
            await self._http.close()

    @property
    def _client(self) -> aiohttp.ClientSession:
        assert self._http is not None, "buyer calls are made only after start()"
        return self._http

    async def ping(self, buyer: BuyerAccount, opened: ev.AuctionOpened, timeout_s: float,
                   section: BuyerRules | None = None) -> PingResult:
        """The bid in the buyer's reply, if any; `answered` is False when the buyer failed (no
        answer in time, or an HTTP 5xx), which its circuit breaker counts."""
        limit = section.timeout_s if section and section.timeout_s else self.ping_timeout_s
        body = json.dumps(ping_body(opened, section.ping_fields if section else ())).encode()
        headers = {"Content-Type": "application/json", **auth_headers(section.auth if section else NO_AUTH, body)}
        started = time.monotonic()
        try:
            async with self._client.post(buyer.ping_url, data=body, headers=headers,
                                       timeout=aiohttp.ClientTimeout(total=min(timeout_s, limit))) as response:
                result = PingResult(parse_bid(response.status, await response.read()), response.status < 500)
        except (aiohttp.ClientError, asyncio.TimeoutError) as exc:  # noqa: UP041 (aiohttp raises both)
            log.info("ping failed", extra={"fields": {"buyer_id": buyer.id, "error": type(exc).__name__}})
            metrics.pinged(buyer.id, "no_answer", time.monotonic() - started)
            return PingResult(None, False)
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
        """One POST of the lead. Retried only when the connection was never made, so nothing was
        sent; a post that may have reached the buyer (a timeout, a dropped connection) is never
        sent again: it counts as not accepted and the lead moves on."""
        limit = section.timeout_s if section and section.timeout_s else self.post_timeout_s
        # The auction id is the idempotency key: a repeat after a crash is recognisable.
        headers = {"Idempotency-Key": closed.auction_id, "Content-Type": prepared.content_type,
                   **auth_headers(section.auth if section else NO_AUTH, prepared.body)}
        started = time.monotonic()
        for attempt, delay in enumerate((*CONNECT_RETRY_DELAYS_S, None), start=1):
            try:
                async with self._client.post(buyer.post_url, data=prepared.body, headers=headers,
                                           timeout=aiohttp.ClientTimeout(total=limit)) as response:
                    status, body = response.status, await response.read()
                break
            except aiohttp.ClientConnectorError as exc:  # refused, unresolvable: nothing was sent
                if delay is None:
                    return PostResult(False, f"not reached: {type(exc).__name__}", _ms_since(started),
                                      failed=True, connects=attempt, reached=False)
                await asyncio.sleep(delay)
            except (aiohttp.ClientError, asyncio.TimeoutError) as exc:  # noqa: UP041
                return PostResult(False, f"no answer (may have reached the buyer): {type(exc).__name__}",
                                  _ms_since(started), failed=True, connects=attempt)
        if prepared.reply is None:
            accepted, detail = parse_post_reply(status, body)
        else:
            reply = read_reply(prepared.reply, status, body)
            accepted = reply.accepted
            detail = (f"accepted, confirmation {reply.confirmation or '(none)'}" if accepted
                      else f"rejected by buyer: {reply.error}")
        return PostResult(accepted, detail, _ms_since(started), status=status, response=body,
                          failed=status >= 500, connects=attempt)


def post_outcome(result: PostResult) -> str:
    if not result.reached:
        return "not_reached"
    if result.status is None:
        return "no_answer"  # a timeout or a dropped connection: it may have reached the buyer
    if result.status >= 500:
        return "error"
    return "accepted" if result.accepted else "rejected"


def _ms_since(started: float) -> int:
    return int((time.monotonic() - started) * 1000)
