"""Which buyers each lead was offered to (auction_offers, from auction.opened), and a lead's timing
factor as scored: the portal replays a buyer's latest offered leads against a buy profile before it
is saved (docs/portal.md#buy-profiles). Leads offered before this revision have no offers recorded."""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "auction_offers",
        sa.Column("buyer_id", sa.String(16), nullable=False),
        sa.Column("lead_id", sa.String(10), nullable=False),
        sa.Column("offered_at_ms", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("buyer_id", "lead_id"),
    )
    op.create_index("ix_auction_offers_buyer_offered", "auction_offers", ["buyer_id", "offered_at_ms"], unique=False)
    with op.batch_alter_table("leads") as batch_op:
        batch_op.add_column(sa.Column("timing_factor", sa.Float(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("leads") as batch_op:
        batch_op.drop_column("timing_factor")
    op.drop_index("ix_auction_offers_buyer_offered", table_name="auction_offers")
    op.drop_table("auction_offers")
