"""Who gets each customer of a list auction (docs/list-auctions.md#7-who-wins-leadxlistsawardpy).

Dealers bid a price per customer on:
- one customer (`customer`, its prospect id);
- a cluster group (`cluster`, e.g. "c2");
- a probability band (`band`): a range such as "0.10-0.20", or one probability such as "0.15",
  which takes the customers whose probability rounds to it at two decimals.

A group bid may carry a count limit (at most that many customers) or a budget (at most that much
in all).

The rule: each customer goes to the highest applicable bid at or above the reserve, and is sold
once per list auction, at the price bid (first price). A bid does not apply to a customer its
buyer already bought or already has (a duplicate for that buyer). When a bid's limit is reached,
its customers go to the next-highest bid that applies.

Pairs of (bid, customer) are settled from the highest price down. At one price:
- better customers are settled first, so a limited bid gets the best customers it can;
- between bids for the same customer at the same price, a seeded random draw decides, recorded
  with the auction for audit, as in lead auctions.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from leadx.lists.building import Band, Customer

SCOPES = ("customer", "cluster", "band")


class BidError(ValueError):
    pass


@dataclass(frozen=True)
class ListBid:
    bid_id: int
    buyer_id: str
    scope: str
    target: str
    price_cents: int
    max_count: int | None = None
    max_budget_cents: int | None = None

    def applies_to(self, customer: Customer) -> bool:
        if self.scope == "customer":
            return customer.prospect_id == self.target
        if self.scope == "cluster":
            return customer.cluster == self.target
        if "-" in self.target:
            return Band.parse(self.target).holds(customer.probability)
        return round(customer.probability, 2) == round(float(self.target), 2)


def check_bid(scope: object, target: object, price_cents: object, max_count: object = None,
              max_budget_cents: object = None) -> list[tuple[str, str]]:
    """What is wrong with a bid, as (field, message) pairs; empty when it is sound."""
    problems: list[tuple[str, str]] = []
    if scope not in SCOPES:
        problems.append(("scope", f"scope must be one of {', '.join(SCOPES)}"))
    if not isinstance(target, str) or not target.strip():
        problems.append(("target", "target names the customer, cluster or band bid on"))
    elif scope == "band":
        try:
            if "-" in target:
                Band.parse(target)
            elif not 0.0 <= float(target) <= 1.0:
                raise ValueError
        except ValueError:
            problems.append(("target", "a band is a range such as 0.10-0.20, or one probability such as 0.15"))
    if isinstance(price_cents, bool) or not isinstance(price_cents, int) or price_cents <= 0:
        problems.append(("price", "price is a whole number of cents per customer, above 0"))
    for name, value in (("max_count", max_count), ("max_budget", max_budget_cents)):
        if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value <= 0):
            problems.append((name, f"{name} is a whole number above 0, or absent"))
    if scope == "customer" and (max_count is not None or max_budget_cents is not None):
        problems.append(("scope", "a bid on one customer has no count or budget limit"))
    return problems


@dataclass(frozen=True)
class Award:
    prospect_id: str
    buyer_id: str
    bid_id: int
    price_cents: int


def _draw(seed: int, bid_id: int, prospect_id: str) -> bytes:
    return hashlib.blake2b(f"{seed}:{bid_id}:{prospect_id}".encode(), digest_size=8).digest()


class _BidIndex:
    """Bids by what they name, so a customer meets only the bids that may apply to it."""

    def __init__(self, bids: Iterable[ListBid], reserve_cents: int) -> None:
        self.by_target: dict[tuple[str, str], list[ListBid]] = {}
        self.bands: list[ListBid] = []
        for bid in bids:
            if bid.price_cents < reserve_cents:
                continue
            if bid.scope == "band":
                self.bands.append(bid)
            else:
                self.by_target.setdefault((bid.scope, bid.target), []).append(bid)

    def applicable(self, customer: Customer) -> list[ListBid]:
        return (self.by_target.get(("customer", customer.prospect_id), [])
                + self.by_target.get(("cluster", customer.cluster), [])
                + [bid for bid in self.bands if bid.applies_to(customer)])


def award(customers: Sequence[Customer], bids: Iterable[ListBid], reserve_cents: int,
          excluded: Mapping[str, frozenset[str]], seed: int) -> list[Award]:
    """The customers sold and to whom. `excluded` maps a prospect id to the buyers it may not go to
    (already bought, or a duplicate for them)."""
    index = _BidIndex(bids, reserve_cents)
    pairs = [(bid, customer) for customer in customers for bid in index.applicable(customer)
             if bid.buyer_id not in excluded.get(customer.prospect_id, frozenset())]
    pairs.sort(key=lambda pair: (-pair[0].price_cents, -pair[1].probability, pair[1].prospect_id,
                                 _draw(seed, pair[0].bid_id, pair[1].prospect_id)))
    sold: set[str] = set()
    counts: dict[int, int] = {}
    spent: dict[int, int] = {}
    awards = []
    for bid, customer in pairs:
        if customer.prospect_id in sold:
            continue
        if bid.max_count is not None and counts.get(bid.bid_id, 0) >= bid.max_count:
            continue
        if bid.max_budget_cents is not None and spent.get(bid.bid_id, 0) + bid.price_cents > bid.max_budget_cents:
            continue
        sold.add(customer.prospect_id)
        counts[bid.bid_id] = counts.get(bid.bid_id, 0) + 1
        spent[bid.bid_id] = spent.get(bid.bid_id, 0) + bid.price_cents
        awards.append(Award(customer.prospect_id, bid.buyer_id, bid.bid_id, bid.price_cents))
    return awards
