"""Buyer selection (docs/auction.md#buyer-selection): which buyers are offered a lead, and what AutoBid buyers bid.

For each buyer, in this order:
1. the buyer must have partnered with the seller (its explicit opt-in to that seller's leads);
2. the seller must not have blocked it, and a seller that sells only to named buyers must have
   named it (three cases: blocked, named, or selling to all);
3. the lead must not be a duplicate for it, and none of its caps may be reached;
4. a wholesale buyer is pinged (if it has profiles, only when one of its active profiles'
   criteria matches: they are its filters); an AutoBid buyer is offered the lead only when its
   profiles produce a bid at or above the seller's minimum (a lower one could never win), which
   the platform places for it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from zoneinfo import ZoneInfo

from leadx.auction.caps.limits import Caps, Usage, reached
from leadx.auction.selection.criteria import LeadView
from leadx.auction.selection.profiles import AutoBid, Profile, autobid

WHOLESALE, AUTOBID = "wholesale", "autobid"
BUYER_KINDS = (WHOLESALE, AUTOBID)
SELLS_TO_ALL, SELLS_TO_NAMED = "all", "named"
ALLOW, BLOCK = "allow", "block"


@dataclass(frozen=True)
class BuyerAccount:
    id: str
    name: str
    ping_url: str
    post_url: str
    kind: str = WHOLESALE
    weight: float = 1.0
    tz: ZoneInfo = ZoneInfo("UTC")
    caps: Caps = Caps()
    profiles: tuple[Profile, ...] = ()


@dataclass(frozen=True)
class SellerPolicy:
    sells_to: str = SELLS_TO_ALL
    allowed: frozenset[str] = frozenset()
    blocked: frozenset[str] = frozenset()

    def sells_to_buyer(self, buyer_id: str) -> bool:
        if buyer_id in self.blocked:
            return False
        return self.sells_to == SELLS_TO_ALL or buyer_id in self.allowed


@dataclass(frozen=True)
class Market:
    buyers: Mapping[str, BuyerAccount] = field(default_factory=dict)
    partners: Mapping[str, frozenset[str]] = field(default_factory=dict)  # seller → buyers opted in
    policies: Mapping[str, SellerPolicy] = field(default_factory=dict)

    def eligible(self, seller_id: str) -> list[BuyerAccount]:
        """Active buyers partnered with the seller whom the seller sells to, by id."""
        policy = self.policies.get(seller_id, SellerPolicy())
        return [self.buyers[b] for b in sorted(self.partners.get(seller_id, ()))
                if b in self.buyers and policy.sells_to_buyer(b)]

    def capped_owners(self, buyers: list[BuyerAccount]) -> list[tuple[str, ZoneInfo, str]]:
        """The buyers and profiles among these whose caps must be read: those that have caps, each
        as (its id, the buyer's zone, the buyer's id: a profile's counters are kept with its buyer's)."""
        owners = []
        for buyer in buyers:
            if buyer.caps.any:
                owners.append((buyer.id, buyer.tz, buyer.id))
            owners.extend((p.id, buyer.tz, buyer.id) for p in buyer.profiles if p.caps.any and not p.paused)
        return owners


@dataclass(frozen=True)
class Selection:
    pinged: tuple[str, ...] = ()  # wholesale buyers offered the lead: delivery pings them
    autobids: Mapping[str, AutoBid] = field(default_factory=dict)  # AutoBid buyers and their bids
    passed: Mapping[str, str] = field(default_factory=dict)  # eligible buyers left out, and why

    @property
    def offered(self) -> list[str]:
        return sorted({*self.pinged, *self.autobids})


def select_buyers(market: Market, seller_id: str, lead: LeadView, now_ms: int,
                  excluded: frozenset[str] = frozenset(), usage: Mapping[str, Usage] | None = None,
                  reserve_cents: int = 0) -> Selection:
    usage = usage or {}
    pinged: list[str] = []
    bids: dict[str, AutoBid] = {}
    passed: dict[str, str] = {}
    for buyer in market.eligible(seller_id):
        if buyer.id in excluded:
            passed[buyer.id] = "already has this consumer"
            continue
        cap = reached(buyer.caps, usage.get(buyer.id, Usage()))
        if cap:
            passed[buyer.id] = f"cap reached: {cap}"
            continue
        capped_profiles = frozenset(p.id for p in buyer.profiles if reached(p.caps, usage.get(p.id, Usage())))
        if buyer.kind == AUTOBID:
            bid = autobid(buyer.profiles, buyer.tz, lead, now_ms, capped_profiles)
            if bid is None:
                passed[buyer.id] = "no active profile matches"
            elif bid.amount_cents < reserve_cents:
                passed[buyer.id] = "its AutoBid is below the seller's minimum"
            else:
                bids[buyer.id] = bid
        elif buyer.profiles and autobid(buyer.profiles, buyer.tz, lead, now_ms, capped_profiles) is None:
            passed[buyer.id] = "no active profile matches"
        else:
            pinged.append(buyer.id)
    return Selection(tuple(pinged), bids, passed)
