"""Each sale keeps its lead's submission time, indexed with its buyer: a buyer's lead search reads
its newest purchases a page at a time (bench/portal.py) instead of joining every purchase to its
lead and sorting them. Existing sales take the time from their lead rows."""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("sales") as batch_op:
        batch_op.add_column(sa.Column("submitted_at_ms", sa.BigInteger(), server_default="0", nullable=False))
    op.execute("UPDATE sales SET submitted_at_ms ="
               " (SELECT leads.submitted_at_ms FROM leads WHERE leads.id = sales.lead_id)"
               " WHERE EXISTS (SELECT 1 FROM leads WHERE leads.id = sales.lead_id)")
    op.create_index("ix_sales_buyer_submitted", "sales", ["buyer_id", "submitted_at_ms", "lead_id"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_sales_buyer_submitted", table_name="sales")
    with op.batch_alter_table("sales") as batch_op:
        batch_op.drop_column("submitted_at_ms")
