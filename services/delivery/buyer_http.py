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

from leadx.accounts import BuyerEndpoint
from leadx.events.v1 import events_pb2 as ev
from leadx.post_adaptation import PreparedPost
from leadx.post_adaptation.replies import read_reply

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class PostResult:
    accepted: bool
    detail: str
    latency_ms: int


def ping_body(opened: ev.AuctionOpened) -> dict:
    ping = opened.ping
    return {"auction_id": opened.auction_id, "lead_id": opened.lead_id, "vertical": ping.vertical,
            "zip": ping.zip, "state": ping.state, "gross_monthly_income": ping.gross_monthly_income_cents,
            "probability": ping.probability, "cluster": ping.cluster,
            "min_price": opened.min_price_cents, "closes_at_ms": opened.closes_at_ms}


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

    async def ping(self, buyer: BuyerEndpoint, opened: ev.AuctionOpened, timeout_s: float) -> int | None:
        timeout = aiohttp.ClientTimeout(total=min(timeout_s, self.ping_timeout_s))
        try:
            async with self._http.post(buyer.ping_url, json=ping_body(opened), timeout=timeout) as response:
                return parse_bid(response.status, await response.read())
        except (aiohttp.ClientError, asyncio.TimeoutError) as exc:  # noqa: UP041 (aiohttp raises both)
            log.info("ping failed", extra={"fields": {"buyer_id": buyer.id, "error": type(exc).__name__}})
            return None

    async def post(self, buyer: BuyerEndpoint, closed: ev.AuctionClosed, prepared: PreparedPost) -> PostResult:
        started = time.monotonic()
        try:
            # The auction id is the idempotency key: a repeat after a crash is recognisable.
            headers = {"Idempotency-Key": closed.auction_id, "Content-Type": prepared.content_type}
            async with self._http.post(buyer.post_url, data=prepared.body, headers=headers,
                                       timeout=aiohttp.ClientTimeout(total=self.post_timeout_s)) as response:
                status, body = response.status, await response.read()
        except (aiohttp.ClientError, asyncio.TimeoutError) as exc:  # noqa: UP041
            return PostResult(False, f"transport error: {type(exc).__name__}", _ms_since(started))
        if prepared.reply is None:
            accepted, detail = parse_post_reply(status, body)
        else:
            reply = read_reply(prepared.reply, status, body)
            accepted = reply.accepted
            detail = (f"accepted, confirmation {reply.confirmation or '(none)'}" if accepted
                      else f"rejected by buyer: {reply.error}")
        return PostResult(accepted, detail, _ms_since(started))


def _ms_since(started: float) -> int:
    return int((time.monotonic() - started) * 1000)
