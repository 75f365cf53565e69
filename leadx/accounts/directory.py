"""The market as the auction and delivery see it: active buyers (URLs, kind, weight, zone, caps,
AutoBid profiles), partnerships and the sellers' choices, read from SQL and refreshed in the
background. Neither service can afford a query per lead; a change reaches them within refresh_s."""

from __future__ import annotations

import logging
from collections import defaultdict

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from leadx.auction.caps.limits import Caps
from leadx.auction.selection.market import ALLOW, BLOCK, BuyerAccount, Market, SellerPolicy
from leadx.auction.selection.profiles import Profile, ProfileError
from leadx.auction.selection.windows import WindowError, zone
from leadx.platform.db.models import Buyer, BuyerProfile, Partnership, Seller, SellerBuyerChoice
from leadx.platform.db.refreshed import RefreshedFromSql
from leadx.platform.logs import log_event

log = logging.getLogger(__name__)


def load_market(session: Session) -> Market:
    profiles: dict[str, list[Profile]] = defaultdict(list)
    for row in session.scalars(select(BuyerProfile).where(BuyerProfile.active.is_(True))):
        try:
            profiles[row.buyer_id].append(Profile.parse(row.id, row.buyer_id, row.spec))
        except ProfileError as error:  # stored profiles were checked; one that no longer parses is skipped
            log_event(log, "profile skipped: it does not parse", profile_id=row.id, error=str(error))
    buyers = {}
    for b in session.scalars(select(Buyer).where(Buyer.active.is_(True)).order_by(Buyer.id)):
        try:
            tz = zone(b.time_zone or "UTC")
        except WindowError:
            tz = zone("UTC")
        buyers[b.id] = BuyerAccount(b.id, b.name, b.ping_url, b.post_url, b.kind or "wholesale",
                                    b.weight if b.weight is not None else 1.0, tz,
                                    Caps.parse(b.caps or {}), tuple(profiles.get(b.id, ())))
    partners: dict[str, set[str]] = defaultdict(set)
    for buyer_id, seller_id in session.execute(select(Partnership.buyer_id, Partnership.seller_id)):
        partners[seller_id].add(buyer_id)
    choices: dict[str, dict[str, set[str]]] = defaultdict(lambda: {ALLOW: set(), BLOCK: set()})
    for seller_id, buyer_id, choice in session.execute(
            select(SellerBuyerChoice.seller_id, SellerBuyerChoice.buyer_id, SellerBuyerChoice.choice)):
        choices[seller_id][choice].add(buyer_id)
    policies = {}
    for seller_id, sells_to in session.execute(select(Seller.id, Seller.sells_to).where(Seller.active.is_(True))):
        chosen = choices.get(seller_id, {ALLOW: set(), BLOCK: set()})
        policies[seller_id] = SellerPolicy(sells_to or "all", frozenset(chosen[ALLOW]), frozenset(chosen[BLOCK]))
    return Market(buyers, {s: frozenset(b) for s, b in partners.items()}, policies)


class BuyerDirectory(RefreshedFromSql):
    def __init__(self, sessions: sessionmaker[Session], refresh_s: float = 5.0) -> None:
        super().__init__(sessions, refresh_s)
        self.market = Market()

    def read(self, session: Session) -> None:
        self.market = load_market(session)

    def get(self, buyer_id: str) -> BuyerAccount | None:
        return self.market.buyers.get(buyer_id)
