"""An auction's close as the ledger records it from auction.closed: when it closed, how many bids
it received, and its ranked bids (auction_bids), which the lead page shows its parties."""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("auctions") as batch_op:
        batch_op.add_column(sa.Column("closed_at_ms", sa.BigInteger(), nullable=True))
        batch_op.add_column(sa.Column("bids_received", sa.Integer(), nullable=True))
    op.create_table(
        "auction_bids",
        sa.Column("auction_id", sa.String(16), nullable=False),
        sa.Column("rank", sa.Integer(), nullable=False),
        sa.Column("buyer_id", sa.String(16), nullable=False),
        sa.Column("bid_cents", sa.BigInteger(), nullable=False),
        sa.Column("amount_cents", sa.BigInteger(), nullable=False),
        sa.Column("weight", sa.Float(), nullable=False),
        sa.Column("profile_id", sa.String(16), nullable=False),
        sa.PrimaryKeyConstraint("auction_id", "rank"),
    )


def downgrade() -> None:
    op.drop_table("auction_bids")
    with op.batch_alter_table("auctions") as batch_op:
        batch_op.drop_column("bids_received")
        batch_op.drop_column("closed_at_ms")
