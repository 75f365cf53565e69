"""Leads indexed by their submission time: the operators' totals count the exchange's leads since
the start of the day (GetPlatformTotals) without reading every lead."""

from __future__ import annotations

from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_leads_submitted", "leads", ["submitted_at_ms"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_leads_submitted", table_name="leads")
