"""Auction rules, pure: opening, accepting bids, ranking at the close.

An auction's state is a plain dict (it lives in a faust table, serialised as JSON):
    status        "open" | "closed"
    opened_at_ms, closes_at_ms, min_price_cents
    offered       buyer ids pinged for this lead
    bids          {buyer id: amount in cents}, a buyer's higher bid replaces its lower one
"""

from __future__ import annotations

import hashlib
import hmac
import random
from dataclasses import dataclass

OPEN, CLOSED = "open", "closed"


@dataclass(frozen=True)
class Ranked:
    buyer_id: str
    amount_cents: int


def new_auction(offered: list[str], min_price_cents: int, now_ms: int, window_ms: int) -> dict:
    # Nobody to offer it to: close at once instead of waiting out an empty window.
    closes_at = now_ms + window_ms if offered else now_ms
    return {"status": OPEN, "opened_at_ms": now_ms, "closes_at_ms": closes_at,
            "min_price_cents": min_price_cents, "offered": sorted(offered), "bids": {}}


def bid_refusal(state: dict | None, buyer_id: str, amount_cents: int, placed_at_ms: int) -> str | None:
    """Why a bid is refused, or None if it counts.

    A bid is judged by when it was placed, not when the auction worker got to it: a bid placed
    in time still counts if the worker was catching up, as long as the auction has not closed.
    """
    if state is None:
        return "no such auction"
    if state["status"] != OPEN:
        return "the auction is closed"
    if placed_at_ms > state["closes_at_ms"]:
        return "the bid was placed after the auction closed"
    if buyer_id not in state["offered"]:
        return "this buyer was not offered the lead"
    if amount_cents < state["min_price_cents"]:
        return f"the bid is below the seller's minimum of {state['min_price_cents']} cents"
    return None


def with_bid(state: dict, buyer_id: str, amount_cents: int) -> dict:
    bids = dict(state["bids"])
    bids[buyer_id] = max(amount_cents, bids.get(buyer_id, 0))
    return {**state, "bids": bids}


def tie_break_seed(secret: bytes, auction_id: str) -> int:
    """The seed for an auction's random tie-break: unpredictable without the platform secret,
    yet the same every time the auction is closed, so a close repeated after a crash ranks tied
    bidders exactly as the first one did."""
    digest = hmac.new(secret, f"tie-break:{auction_id}".encode(), hashlib.sha256).digest()
    return int.from_bytes(digest[:8], "big") >> 1


def rank_bids(bids: dict[str, int], min_price_cents: int, seed: int) -> list[Ranked]:
    """Highest bid first; bids below the reserve are dropped; equal bids are ordered at random
    with a recorded seed, so any tie-break can be replayed for an audit."""
    rng = random.Random(seed)
    eligible = [(amount, rng.random(), buyer) for buyer, amount in sorted(bids.items())
                if amount >= min_price_cents]
    eligible.sort(key=lambda item: (-item[0], item[1]))
    return [Ranked(buyer, amount) for amount, _, buyer in eligible]
