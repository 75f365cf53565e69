"""Auction rules, pure: opening, accepting bids, closing, ranking at the close.

An auction's state is an `Auction` record (leadx.auction.state):
    status        "open" | "closed"
    opened_at_ms, closes_at_ms, min_price_cents
    offered       buyer ids offered this lead (wholesale buyers pinged, AutoBid buyers bid for)
    bids          {buyer id: amount in cents}, a buyer's higher bid replaces its lower one
    weights       {buyer id: weight}, as they were when the auction opened
    profiles      {buyer id: profile id}, for bids the platform placed from an AutoBid profile
    pricing       "first" (pay your bid) or "second" (pay what beats the next bid)
    shares        how many of the ranked bidders may buy the lead (1: an exclusive sale)

Ranking (the Sale Completion Process, docs/auction.md): a weighted bid is bid x weight (weight 2.0 on a $4
bid beats any bid or weighted bid up to $8); bids under the seller's minimum are dropped; ties
after weighting are ordered at random from a seed recorded for audit.
"""

from __future__ import annotations

import hashlib
import hmac
import math
import random
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import cast

from leadx.auction.state import CLOSED, FIRST_PRICE, OPEN, SECOND_PRICE, Auction



@dataclass(frozen=True)
class Ranked:
    buyer_id: str
    amount_cents: int  # what the buyer pays if it takes the lead
    bid_cents: int = 0  # what it bid
    weight: float = 1.0


def new_auction(offered: list[str], min_price_cents: int, now_ms: int, window_ms: int,
                weights: Mapping[str, float] | None = None, pricing: str = FIRST_PRICE, shares: int = 1,
                scored: bytes = b"") -> Auction:
    # Nobody to offer it to: close at once instead of waiting out an empty window.
    closes_at = now_ms + window_ms if offered else now_ms
    weights = weights or {}
    offered = sorted(offered)
    return Auction(OPEN, now_ms, closes_at, min_price_cents, tuple(offered), {},
                   {b: weights[b] for b in offered if weights.get(b, 1.0) != 1.0}, {}, pricing, shares, scored)


def bid_refusal(state: Auction | None, buyer_id: str, amount_cents: int, placed_at_ms: int) -> str | None:
    """Why a bid is refused, or None if it counts.

    A bid is judged by when it was placed, not when the auction worker got to it: a bid placed
    in time still counts if the worker was catching up, as long as the auction has not closed.
    """
    if state is None:
        return "no such auction"
    if state.status != OPEN:
        return "the auction is closed"
    if placed_at_ms > state.closes_at_ms:
        return "the bid was placed after the auction closed"
    if buyer_id not in state.offered:
        return "this buyer was not offered the lead"
    if amount_cents < state.min_price_cents:
        return f"the bid is below the seller's minimum of {state.min_price_cents} cents"
    return None


def with_bid(state: Auction, buyer_id: str, amount_cents: int, profile_id: str = "") -> Auction:
    if amount_cents <= state.bids.get(buyer_id, -1):
        return state
    bids = dict(state.bids)
    bids[buyer_id] = amount_cents
    profiles = state.profiles
    if profile_id or buyer_id in profiles:  # else the profiles stay as they are, shared with the old state
        profiles = {k: v for k, v in profiles.items() if k != buyer_id}
        if profile_id:
            profiles[buyer_id] = profile_id
    return state.with_bids(bids, profiles)


def closed(state: Auction, closed_at_ms: int) -> Auction:
    """What the table keeps of an auction once closed, until it is purged: enough to refuse a late bid
    and to recognise a redelivered lead, without its buyers, bids or lead."""
    return Auction(CLOSED, state.opened_at_ms, state.closes_at_ms, state.min_price_cents,
                   closed_at_ms=closed_at_ms)


def apply_bids(bids: Iterable[tuple[str, str, int, int]], current: Callable[[str], Auction | None]
               ) -> tuple[dict[str, Auction], list[tuple[int, str]]]:
    """A batch of bids (auction id, buyer id, cents, placed at ms), in order, on the auctions as
    `current` returns them: the new state of each auction the batch changed (a bid no higher than
    its buyer's earlier one changes nothing), and the refused bids by their index in the batch, with
    the reason. An auction's later bids in the batch see its earlier ones."""
    changed: dict[str, Auction] = {}
    refused: list[tuple[int, str]] = []
    for index, (auction_id, buyer_id, amount_cents, placed_at_ms) in enumerate(bids):
        state = changed[auction_id] if auction_id in changed else current(auction_id)
        refusal = bid_refusal(state, buyer_id, amount_cents, placed_at_ms)
        if refusal:
            refused.append((index, refusal))
            continue
        updated = with_bid(cast(Auction, state), buyer_id, amount_cents)  # a missing one was refused
        if updated is not state:
            changed[auction_id] = updated
    return changed, refused


def tie_break_seed(secret: bytes, auction_id: str) -> int:
    """The seed for an auction's random tie-break: unpredictable without the platform secret,
    yet the same every time the auction is closed, so a close repeated after a crash ranks tied
    bidders exactly as the first one did."""
    digest = hmac.new(secret, f"tie-break:{auction_id}".encode(), hashlib.sha256).digest()
    return int.from_bytes(digest[:8], "big") >> 1


def _weighted(amount_cents: int, weight: float) -> Decimal:
    # Decimal, not float: 3 x 1.1 must tie with 3.3, not lose to it by a rounding error.
    return Decimal(amount_cents) * Decimal(repr(weight))


def rank_bids(bids: Mapping[str, int], min_price_cents: int, seed: int,
              weights: Mapping[str, float] | None = None, pricing: str = FIRST_PRICE) -> list[Ranked]:
    """Highest weighted bid first; bids below the reserve are dropped; equal weighted bids are
    ordered at random with a recorded seed, so any tie-break can be replayed for an audit.

    First price: each bidder pays its bid. Second price: each pays the least whole-cent price whose
    weighted value exceeds the weighted bid ranked after it (with no weights: the next bid plus one
    cent), never more than its bid and never below the reserve; the last pays the reserve. Prices
    are computed down the whole list because a rejected winner's lead goes to the next bidder at
    that bidder's price.
    """
    weights = weights or {}
    rng = random.Random(seed)
    eligible = [(_weighted(amount, weights.get(buyer, 1.0)), rng.random(), buyer, amount)
                for buyer, amount in sorted(bids.items()) if amount >= min_price_cents]
    eligible.sort(key=lambda item: (-item[0], item[1]))
    ranked = []
    for i, (_, _, buyer, amount) in enumerate(eligible):
        weight = weights.get(buyer, 1.0)
        price = amount
        if pricing == SECOND_PRICE:
            if i + 1 < len(eligible):
                beats_next = math.floor(eligible[i + 1][0] / Decimal(repr(weight))) + 1
                price = max(min_price_cents, min(amount, beats_next))
            else:
                price = min_price_cents
        ranked.append(Ranked(buyer, price, amount, weight))
    return ranked
