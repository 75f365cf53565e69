"""HTTP conversations with buyers: pings (minimal subset, a bid back) and posts (the full lead,
accepted or rejected). JSON both ways for now; per-buyer formats and rules are POST Adaptation."""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass

import httpx

from leadx.accounts import BuyerEndpoint
from leadx.events.v1 import events_pb2 as ev

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


def parse_bid(response: httpx.Response) -> int | None:
    """A bid in cents from a ping reply `{"bid": 1234}`, or None for no bid."""
    if response.status_code != 200:
        return None
    try:
        bid = response.json().get("bid")
    except (ValueError, AttributeError):
        return None
    if isinstance(bid, bool) or not isinstance(bid, int) or bid <= 0:
        return None
    return bid


class BuyerClient:
    def __init__(self, max_concurrent: int, ping_timeout_s: float, post_timeout_s: float) -> None:
        self._http = httpx.AsyncClient(limits=httpx.Limits(max_connections=max_concurrent))
        self._slots = asyncio.Semaphore(max_concurrent)
        self.ping_timeout_s = ping_timeout_s
        self.post_timeout_s = post_timeout_s

    async def close(self) -> None:
        await self._http.aclose()

    async def ping(self, buyer: BuyerEndpoint, opened: ev.AuctionOpened, timeout_s: float) -> int | None:
        async with self._slots:
            try:
                response = await self._http.post(buyer.ping_url, json=ping_body(opened),
                                                 timeout=min(timeout_s, self.ping_timeout_s))
            except httpx.HTTPError as exc:
                log.info("ping failed", extra={"fields": {"buyer_id": buyer.id, "error": type(exc).__name__}})
                return None
        return parse_bid(response)

    async def post(self, buyer: BuyerEndpoint, closed: ev.AuctionClosed, price_cents: int) -> PostResult:
        lead = closed.lead
        body = {"lead_id": lead.lead_id, "vertical": lead.vertical, "price": price_cents, **lead.fields}
        started = time.monotonic()
        async with self._slots:
            try:
                # The auction id is the idempotency key: a repeat after a crash is recognisable.
                response = await self._http.post(buyer.post_url, json=body, timeout=self.post_timeout_s,
                                                  headers={"Idempotency-Key": closed.auction_id})
            except httpx.HTTPError as exc:
                return PostResult(False, f"transport error: {type(exc).__name__}", _ms_since(started))
        latency = _ms_since(started)
        if response.status_code // 100 != 2:
            return PostResult(False, f"HTTP {response.status_code}", latency)
        try:
            accepted = response.json().get("accepted") is True
        except (ValueError, AttributeError):
            return PostResult(False, "reply is not a JSON object", latency)
        return PostResult(accepted, "accepted" if accepted else "rejected by buyer", latency)


def _ms_since(started: float) -> int:
    return int((time.monotonic() - started) * 1000)
