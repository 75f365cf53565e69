"""Read-side queries over the ledger: balances and return rates (for the CLI, intake's return cap
and the dashboards)."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from leadx.platform.db.models import AccountBalance, Lead, LeadReturn, Sale


def average(total: int, count: int) -> int:
    """total / count rounded half up to a whole cent; 0 for no items (every average price the
    dashboards and the portal show)."""
    return (2 * total + count) // (2 * count) if count else 0


def balances(session: Session) -> dict[str, int]:
    """Every account's balance in cents (leadx.ledger.billing explains the signs)."""
    return dict(session.execute(select(AccountBalance.account, AccountBalance.balance_cents)
                                .order_by(AccountBalance.account)).all())


@dataclass(frozen=True)
class ReturnRate:
    sold: int
    returned: int

    @property
    def percent(self) -> float:
        return round(100 * self.returned / self.sold, 2) if self.sold else 0.0


def buyer_return_counts(session: Session, buyer_id: str, since_ms: int) -> ReturnRate:
    """The buyer's purchases and returns since `since_ms` (what the return cap is checked on)."""
    bought = session.scalar(select(func.count()).select_from(Sale).where(
        Sale.buyer_id == buyer_id, Sale.sold.is_(True), Sale.closed_at_ms >= since_ms))
    returned = session.scalar(select(func.count()).select_from(LeadReturn).where(
        LeadReturn.buyer_id == buyer_id, LeadReturn.returned_at_ms >= since_ms))
    return ReturnRate(bought or 0, returned or 0)


def return_rates(session: Session, since_ms: int) -> dict[str, dict[str, ReturnRate]]:
    """Per buyer and per seller: leads sold since `since_ms`, and how many of those were returned."""
    out: dict[str, dict[str, ReturnRate]] = {}
    for party, column in (("buyers", Sale.buyer_id), ("sellers", Sale.seller_id)):
        rows = session.execute(
            select(column, func.count(Sale.lead_id), func.count(LeadReturn.lead_id))
            .outerjoin(LeadReturn, (LeadReturn.lead_id == Sale.lead_id) & (LeadReturn.buyer_id == Sale.buyer_id))
            .where(Sale.sold.is_(True), Sale.closed_at_ms >= since_ms)
            .group_by(column).order_by(column))
        out[party] = {account: ReturnRate(sold, returned) for account, sold, returned in rows}
    return out


@dataclass(frozen=True)
class PlatformTotals:
    """The exchange's totals since a moment (the operators' page and GetPlatformTotals)."""

    leads: int  # submitted
    sold: int  # sales closed (a lead shared by two buyers: two)
    unsold: int  # leads that ended unsold
    revenue_cents: int  # what buyers paid for those sales
    fees_cents: int  # the platform's fees on them
    returns: int
    returned_cents: int  # credited back


def platform_totals(session: Session, since_ms: int) -> PlatformTotals:
    """Three indexed range reads: leads by submission time, sales by close, returns by time."""
    leads = session.scalar(select(func.count()).select_from(Lead).where(Lead.submitted_at_ms >= since_ms))
    sold, unsold, revenue, fees = session.execute(
        select(func.count().filter(Sale.sold.is_(True)), func.count().filter(Sale.sold.is_(False)),
               func.coalesce(func.sum(Sale.price_cents).filter(Sale.sold.is_(True)), 0),
               func.coalesce(func.sum(Sale.seller_fee_cents).filter(Sale.sold.is_(True)), 0))
        .where(Sale.closed_at_ms >= since_ms)).one()
    returns, returned = session.execute(
        select(func.count(), func.coalesce(func.sum(LeadReturn.price_cents), 0))
        .where(LeadReturn.returned_at_ms >= since_ms)).one()
    return PlatformTotals(int(leads or 0), int(sold), int(unsold), int(revenue), int(fees), int(returns),
                          int(returned))
