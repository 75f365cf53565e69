"""Seller and buyer accounts. API keys are shown once and stored only as a SHA-256 hash: they
are 256-bit random tokens, so a fast unsalted hash is safe and allows an indexed lookup."""

from __future__ import annotations

import hashlib
import secrets
import time
from dataclasses import dataclass
from typing import cast

from sqlalchemy import Update, select, update
from sqlalchemy.engine import CursorResult
from sqlalchemy.orm import Session

from leadx.accounts.buyer_settings import check_buyer_settings
from leadx.accounts.buyer_urls import BuyerUrlRules
from leadx.accounts.ids import UnknownAccount, new_account_id
from leadx.auction.caps.limits import Caps
from leadx.platform.db.models import Buyer, Contract, Seller

def new_api_key() -> str:
    return "lx_" + secrets.token_urlsafe(32)


def hash_api_key(api_key: str) -> str:
    return hashlib.sha256(api_key.encode()).hexdigest()


@dataclass(frozen=True)
class Created:
    id: str
    api_key: str


def create_seller(session: Session, name: str) -> Created:
    api_key = new_api_key()
    seller = Seller(id=new_account_id("s_"), name=name, api_key_hash=hash_api_key(api_key),
                    active=True, created_at_ms=int(time.time() * 1000))
    session.add(seller)
    session.commit()
    return Created(seller.id, api_key)


def create_buyer(session: Session, name: str, ping_url: str, post_url: str, kind: str = "wholesale",
                 weight: float = 1.0, time_zone: str = "UTC", caps: dict | None = None,
                 urls: BuyerUrlRules | None = None) -> Created:
    """A wholesale buyer is pinged at ping_url and bids itself; an AutoBid buyer is bid for by the
    platform from its profiles (docs/auction.md#buyers), and needs no ping URL. A buyer without a
    post URL has its leads accepted on its behalf; it reads them with its API key. The URLs must
    pass `urls` (leadx.accounts.buyer_urls; by default as BUYER_URLS_ALLOW_PRIVATE says), or
    BuyerUrlRefused is raised and nothing is stored."""
    check_buyer_settings(kind=kind, weight=weight, time_zone=time_zone, caps=caps, ping_url=ping_url)
    rules = urls if urls is not None else BuyerUrlRules.from_env()
    for field, url in (("ping_url", ping_url), ("post_url", post_url)):
        if url:
            rules.check(url, field)
    api_key = new_api_key()
    buyer = Buyer(id=new_account_id("b_"), name=name, api_key_hash=hash_api_key(api_key),
                  ping_url=ping_url, post_url=post_url, active=True,
                  created_at_ms=int(time.time() * 1000), kind=kind, weight=weight, time_zone=time_zone,
                  caps=Caps.parse(caps).as_dict() or None)
    session.add(buyer)
    session.commit()
    return Created(buyer.id, api_key)


def rotate_seller_key(session: Session, seller_id: str) -> Created:
    """A new API key for the seller; the old one stops working at once (within the gateways' key
    cache, API_KEY_CACHE_SECONDS). The new key is shown once, like the first."""
    return _rotate_key(session, Seller, seller_id)


def revoke_seller_key(session: Session, seller_id: str) -> None:
    """The seller's key stops working; the seller has none until it is rotated."""
    _set_key_hash(session, Seller, seller_id, _revoked_hash())


def rotate_buyer_key(session: Session, buyer_id: str) -> Created:
    """A new API key for the buyer; the old one stops working within the readers' key cache
    (API_KEY_CACHE_SECONDS; the intake's buyer routes, the dashboard). An inactive buyer's new key works only once it is
    reactivated."""
    return _rotate_key(session, Buyer, buyer_id)


def revoke_buyer_key(session: Session, buyer_id: str) -> None:
    """The buyer's key stops working (a leaked key reads every lead the buyer bought) and it has
    none until it is rotated. It still buys: revoking a key does not take it out of the market."""
    _set_key_hash(session, Buyer, buyer_id, _revoked_hash())


def set_buyer_active(session: Session, buyer_id: str, active: bool) -> None:
    """An inactive buyer is offered no lead (the market, direct-sale contracts and list auctions read
    only active buyers) and its key does not authenticate; reactivating restores both, with the
    same key."""
    changed = _updated(session, update(Buyer).where(Buyer.id == buyer_id).values(active=active))
    if not changed:
        raise UnknownAccount(f"no buyer {buyer_id}")
    session.commit()


def _rotate_key(session: Session, model: type[Seller] | type[Buyer], account_id: str) -> Created:
    api_key = new_api_key()
    _set_key_hash(session, model, account_id, hash_api_key(api_key))
    return Created(account_id, api_key)


def _revoked_hash() -> str:
    """A stored value that cannot equal any key's hash (a SHA-256 hex digest has no colon), unique
    as the column requires, and as long as a digest (the column's width)."""
    return "revoked:" + secrets.token_hex(28)


def _set_key_hash(session: Session, model: type[Seller] | type[Buyer], account_id: str, key_hash: str) -> None:
    changed = _updated(session, update(model).where(model.id == account_id).values(api_key_hash=key_hash))
    if not changed:
        raise UnknownAccount(f"no {model.__tablename__[:-1]} {account_id}")
    session.commit()


def _updated(session: Session, statement: Update) -> int:
    """How many rows the UPDATE changed. Session.execute is typed as returning Result; for an UPDATE
    it is a CursorResult, which counts rows."""
    return cast(CursorResult, session.execute(statement)).rowcount


def seller_for_key(session: Session, api_key: str) -> str | None:
    """The active seller's id for this key, or None."""
    row = session.execute(
        select(Seller.id).where(Seller.api_key_hash == hash_api_key(api_key), Seller.active.is_(True))
    ).first()
    return row[0] if row else None


def set_seller_fee(session: Session, seller_id: str, percent: float | None) -> None:
    """The seller's own platform fee in percent of the sale price; None returns it to the default."""
    if percent is not None and not 0 <= percent <= 100:
        raise ValueError("a seller fee is between 0 and 100 percent")
    changed = _updated(session, update(Seller).where(Seller.id == seller_id).values(fee_percent=percent))
    if not changed:
        raise UnknownAccount(f"no seller {seller_id}")
    session.commit()


def seller_fee_overrides(session: Session) -> dict[str, float]:
    rows = session.execute(select(Seller.id, Seller.fee_percent).where(Seller.fee_percent.is_not(None)))
    return {seller_id: percent for seller_id, percent in rows if percent is not None}


def buyer_for_key(session: Session, api_key: str) -> str | None:
    """The active buyer's id for this key, or None."""
    row = session.execute(
        select(Buyer.id).where(Buyer.api_key_hash == hash_api_key(api_key), Buyer.active.is_(True))
    ).first()
    return row[0] if row else None



def add_contract(session: Session, seller_id: str, buyer_id: str, price_cents: int) -> None:
    """Create or update the direct-sale contract between a seller and a buyer."""
    if price_cents < 0:
        raise ValueError("a contract price is a non-negative number of cents")
    for model, account_id in ((Seller, seller_id), (Buyer, buyer_id)):
        if session.get(model, account_id) is None:
            raise UnknownAccount(f"no {model.__tablename__[:-1]} {account_id}")
    contract = session.get(Contract, (seller_id, buyer_id))
    if contract is None:
        session.add(Contract(seller_id=seller_id, buyer_id=buyer_id, price_cents=price_cents, active=True,
                             created_at_ms=int(time.time() * 1000)))
    else:
        contract.price_cents, contract.active = price_cents, True
    session.commit()


def end_contract(session: Session, seller_id: str, buyer_id: str) -> None:
    changed = _updated(session, update(Contract).where(Contract.seller_id == seller_id, Contract.buyer_id == buyer_id)
                       .values(active=False))
    if not changed:
        raise UnknownAccount(f"no contract between seller {seller_id} and buyer {buyer_id}")
    session.commit()


def contract_price(session: Session, seller_id: str, buyer_id: str) -> int | None:
    """The price of the active contract between the seller and an active buyer, or None."""
    row = session.execute(
        select(Contract.price_cents).join(Buyer, Buyer.id == Contract.buyer_id)
        .where(Contract.seller_id == seller_id, Contract.buyer_id == buyer_id, Contract.active.is_(True),
               Buyer.active.is_(True))
    ).first()
    return row[0] if row else None


@dataclass(frozen=True)
class AccountRow:
    id: str
    name: str
    kind: str  # seller or buyer
    buyer_kind: str  # a buyer's: wholesale or autobid
    active: bool
    fee_percent: float | None  # a seller's own fee (None: the default)


def list_accounts(session: Session) -> list[AccountRow]:
    """Every seller, then every buyer, by name (the operators' administration)."""
    sellers = [AccountRow(s.id, s.name, "seller", "", s.active, s.fee_percent)
               for s in session.scalars(select(Seller).order_by(Seller.name, Seller.id))]
    buyers = [AccountRow(b.id, b.name, "buyer", b.kind or "wholesale", b.active, None)
              for b in session.scalars(select(Buyer).order_by(Buyer.name, Buyer.id))]
    return sellers + buyers


def contracts_of(session: Session, seller_id: str) -> list[Contract]:
    """The seller's active direct-sale contracts, by buyer."""
    return list(session.scalars(select(Contract).where(Contract.seller_id == seller_id, Contract.active.is_(True))
                                .order_by(Contract.buyer_id)))
