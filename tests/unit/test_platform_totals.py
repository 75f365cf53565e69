"""The exchange's totals since a moment (leadx.ledger.reports.platform_totals, GetPlatformTotals'
query) on SQLite and PostgreSQL: leads by submission, sales and unsold leads by close, returns by
their time, each counted once and only from the moment on."""

from __future__ import annotations

from leadx.ledger.reports import PlatformTotals, platform_totals
from leadx.platform.db.models import Lead, LeadReturn, Sale

SINCE = 1_800_000_000_000


def lead(lead_id: str, submitted_at_ms: int) -> Lead:
    return Lead(id=lead_id, seller_id="s_1", vertical="auto_loan", state="TX", status="sold", status_rank=9,
                fields={}, submitted_at_ms=submitted_at_ms, updated_at_ms=submitted_at_ms)


def sale(lead_id: str, buyer_id: str, sold: bool, price: int, fee: int, closed_at_ms: int) -> Sale:
    return Sale(lead_id=lead_id, buyer_id=buyer_id, auction_id=lead_id, sold=sold, seller_id="s_1", price_cents=price,
                seller_fee_cents=fee, vertical="auto_loan", state="TX", attempts=1, closed_at_ms=closed_at_ms)


def test_totals_count_what_happened_since_the_moment_once_each(sessions):
    with sessions() as session:
        assert platform_totals(session, SINCE) == PlatformTotals(0, 0, 0, 0, 0, 0, 0)
        session.add_all([lead("LEAD00000A", SINCE - 1), lead("LEAD00000B", SINCE), lead("LEAD00000C", SINCE + 5),
                         lead("LEAD00000D", SINCE + 9)])
        session.add_all([
            sale("LEAD00000A", "b_1", True, 2000, 200, SINCE - 1),  # closed before: not counted
            sale("LEAD00000B", "b_1", True, 3000, 300, SINCE + 10),  # shared by two buyers: two sales
            sale("LEAD00000B", "b_2", True, 2500, 250, SINCE + 10),
            sale("LEAD00000C", "", False, 0, 0, SINCE + 20),  # unsold
        ])
        session.add_all([
            LeadReturn(lead_id="LEAD00000A", buyer_id="b_1", seller_id="s_1", reason="r", price_cents=2000,
                       seller_fee_cents=200, sold_at_ms=SINCE - 1, returned_at_ms=SINCE + 30),
            LeadReturn(lead_id="LEAD00000Z", buyer_id="b_1", seller_id="s_1", reason="r", price_cents=900,
                       seller_fee_cents=90, sold_at_ms=SINCE - 9, returned_at_ms=SINCE - 5),
        ])
        session.commit()
        assert platform_totals(session, SINCE) == PlatformTotals(
            leads=3, sold=2, unsold=1, revenue_cents=5500, fees_cents=550, returns=1, returned_cents=2000)
        assert platform_totals(session, SINCE + 11).leads == 0
