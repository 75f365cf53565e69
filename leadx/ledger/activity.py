"""The exchange's recent activity as the ledger recorded it: leads received and sales closed in
trailing windows (`leadx status`)."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import ColumnElement, and_, case, func, select
from sqlalchemy.orm import InstrumentedAttribute, Session

from leadx.platform.db.models import Lead, Sale

MINUTE_MS = 60_000
HOUR_MS = 60 * MINUTE_MS
WINDOWS_MS = {"last_minute": MINUTE_MS, "last_hour": HOUR_MS}


@dataclass(frozen=True)
class Activity:
    leads: int  # leads submitted in the window (duplicates and rejected ones too)
    sales: int  # purchases closed in the window: a shared sale counts once per buyer
    sales_cents: int  # what those purchases cost their buyers
    unsold: int  # leads whose auction closed in the window with no buyer


def _sum_where(condition: ColumnElement[bool], value: InstrumentedAttribute[int] | int = 1) -> ColumnElement[int]:
    return func.coalesce(func.sum(case((condition, value), else_=0)), 0)


def recent_activity(session: Session, now_ms: int, windows_ms: dict[str, int] | None = None) -> dict[str, Activity]:
    """Each window's activity (by default the last minute and the last hour): one query per table,
    over the widest window. A lead counts from its submission, a sale from its close."""
    since = {name: now_ms - length for name, length in (windows_ms or WINDOWS_MS).items()}
    widest = min(since.values())
    leads = session.execute(select(*(_sum_where(Lead.submitted_at_ms >= start) for start in since.values()))
                            .where(Lead.submitted_at_ms >= widest)).one()
    sold, unsold = Sale.sold.is_(True), Sale.sold.is_(False)
    sales = session.execute(select(*(column for start in since.values() for column in (
        _sum_where(and_(sold, Sale.closed_at_ms >= start)),
        _sum_where(and_(sold, Sale.closed_at_ms >= start), Sale.price_cents),
        _sum_where(and_(unsold, Sale.closed_at_ms >= start)),
    ))).where(Sale.closed_at_ms >= widest)).one()
    return {name: Activity(leads=int(leads[index]), sales=int(sales[3 * index]),
                           sales_cents=int(sales[3 * index + 1]), unsold=int(sales[3 * index + 2]))
            for index, name in enumerate(since)}
