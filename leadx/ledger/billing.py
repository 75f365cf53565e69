"""The exchange's money as double-entry bookkeeping.

Every transaction is a set of entries, one per account it touches, that sum to zero: money only
moves between accounts, so the sum of all entries is zero at every moment. An account's balance
is the sum of its entries; positive means the exchange owes the account, negative that the
account owes the exchange.

    sale at price P with platform fee F        return of that sale
      buyer:<id>     -P  (charged the price)     buyer:<id>     +P  (credited the full price)
      seller:<id>    +P-F (paid, less the fee)   seller:<id>    -P+F (debited the sale amount,
      platform:fees  +F  (the platform's fee)                         credited the fee)
                                                 platform:fees  -F  (the fee is given back)
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal

PLATFORM_FEES = "platform:fees"
SALE = "sale"
RETURN = "return"


def buyer_account(buyer_id: str) -> str:
    return f"buyer:{buyer_id}"


def seller_account(seller_id: str) -> str:
    return f"seller:{seller_id}"


def seller_fee(price_cents: int, percent: float) -> int:
    """The platform's fee billed to the seller: `percent` of the price, rounded half up to a whole
    cent (in decimal, so 10% of 5 cents is 1 cent, not whatever 0.5 happens to be in binary)."""
    if not 0 <= percent <= 100:
        raise ValueError("a seller fee is between 0 and 100 percent")
    fee = Decimal(price_cents) * Decimal(str(percent)) / 100
    return int(fee.quantize(Decimal(1), rounding=ROUND_HALF_UP))


@dataclass(frozen=True)
class Entry:
    account: str
    amount_cents: int


def transaction_id(kind: str, lead_id: str, buyer_id: str) -> str:
    """One sale and at most one return per lead and buyer (a shared lead is sold to several): the
    id makes recording either idempotent."""
    return f"{kind}:{lead_id}:{buyer_id}"


def sale_entries(buyer_id: str, seller_id: str, price_cents: int, fee_cents: int) -> tuple[Entry, ...]:
    _check_amounts(price_cents, fee_cents)
    return (Entry(buyer_account(buyer_id), -price_cents),
            Entry(seller_account(seller_id), price_cents - fee_cents),
            Entry(PLATFORM_FEES, fee_cents))


def return_entries(buyer_id: str, seller_id: str, price_cents: int, fee_cents: int) -> tuple[Entry, ...]:
    """The exact reverse of the sale's entries."""
    return tuple(Entry(e.account, -e.amount_cents) for e in sale_entries(buyer_id, seller_id, price_cents, fee_cents))


def _check_amounts(price_cents: int, fee_cents: int) -> None:
    if price_cents < 0 or not 0 <= fee_cents <= price_cents:
        raise ValueError(f"a sale needs 0 <= fee <= price, not fee {fee_cents} on price {price_cents}")
