"""An auction's state (`Auction`), and its JSON form, which the auction worker keeps in its table's
changelog topic.

The JSON object has these keys (the layout every worker has written so far, so a worker upgraded
while older records sit in the changelog reads them, and one rolled back reads the newer ones):

    status            "open" | "closed"
    opened_at_ms      when it opened (absent in the closed records of earlier workers)
    closes_at_ms      its deadline
    closed_at_ms      when it closed (closed records only)
    min_price_cents   the seller's reserve
    offered           buyer ids offered the lead, sorted (empty once closed)
    bids              {buyer id: cents} (empty once closed)
    weights           {buyer id: weight}, those other than 1.0 (absent before weights existed)
    profiles          {buyer id: AutoBid profile id} (absent before profiles were recorded)
    pricing           "first" | "second" (absent: "first")
    shares            how many ranked bidders may buy the lead (absent: 1)
    scored            the lead.scored record that opened it, base64 (open records only)
    trace             the W3C traceparent of its opening, so that its close at the deadline
                      continues the lead's trace (open records only; absent before it was kept)
"""

from __future__ import annotations

import base64
import json
from collections.abc import Mapping
from dataclasses import dataclass, field

OPEN, CLOSED = "open", "closed"
FIRST_PRICE, SECOND_PRICE = "first", "second"


@dataclass(frozen=True, slots=True)
class Auction:
    """One auction, as the worker's table holds it. Never changed in place: a bid makes a new one
    (leadx.auction.rules.with_bid), so a state read stays what it was. Its maps are not to be
    mutated either."""

    status: str
    opened_at_ms: int
    closes_at_ms: int
    min_price_cents: int
    offered: tuple[str, ...] = ()
    bids: Mapping[str, int] = field(default_factory=dict)
    weights: Mapping[str, float] = field(default_factory=dict)
    profiles: Mapping[str, str] = field(default_factory=dict)
    pricing: str = FIRST_PRICE
    shares: int = 1
    # The lead.scored record that opened it: its close publishes the lead from it.
    scored: bytes = b""
    closed_at_ms: int = 0
    trace: str = ""  # the opening's W3C traceparent ("" when none)

    @property
    def is_open(self) -> bool:
        return self.status == OPEN

    def with_bids(self, bids: Mapping[str, int], profiles: Mapping[str, str]) -> Auction:
        """This auction with other bids and profiles: what dataclasses.replace makes, at a third of its
        cost, on the path of every bid (bench/auction.py)."""
        return Auction(self.status, self.opened_at_ms, self.closes_at_ms, self.min_price_cents, self.offered, bids,
                       self.weights, profiles, self.pricing, self.shares, self.scored, self.closed_at_ms, self.trace)

    def to_json(self) -> bytes:
        record = {"status": self.status, "opened_at_ms": self.opened_at_ms, "closes_at_ms": self.closes_at_ms,
                  "min_price_cents": self.min_price_cents, "offered": list(self.offered), "bids": dict(self.bids),
                  "weights": dict(self.weights), "profiles": dict(self.profiles), "pricing": self.pricing,
                  "shares": self.shares}
        if self.scored:
            record["scored"] = base64.b64encode(self.scored).decode()
        if self.trace:
            record["trace"] = self.trace
        if self.status == CLOSED:
            record["closed_at_ms"] = self.closed_at_ms
        return json.dumps(record, separators=(",", ":")).encode()

    @classmethod
    def from_json(cls, data: bytes | str) -> Auction:
        """An auction from its JSON form, including every layout earlier workers wrote: keys added
        since are optional, with the value an auction had before they existed."""
        record = json.loads(data)
        scored = record.get("scored")
        return cls(
            status=record["status"],
            opened_at_ms=record.get("opened_at_ms", 0),
            closes_at_ms=record["closes_at_ms"],
            min_price_cents=record["min_price_cents"],
            offered=tuple(record.get("offered", ())),
            bids=record.get("bids", {}),
            weights=record.get("weights") or {},
            profiles=record.get("profiles") or {},
            pricing=record.get("pricing") or FIRST_PRICE,
            shares=record.get("shares") or 1,
            scored=base64.b64decode(scored) if scored else b"",
            closed_at_ms=record.get("closed_at_ms", 0),
            trace=record.get("trace", ""),
        )
