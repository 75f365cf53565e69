"""Post attempts are numbered and written before the POST goes out: `attempt` counts the POSTs of
one auction's lead to one buyer (1, then 2 for a repeat after delivery restarted mid-POST), and an
attempt that never finished keeps the outcome `sending`. Rows already there were each the only
record of their POST: attempt 1."""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("post_attempts") as batch_op:
        batch_op.add_column(sa.Column("attempt", sa.Integer(), server_default="1", nullable=False))


def downgrade() -> None:
    with op.batch_alter_table("post_attempts") as batch_op:
        batch_op.drop_column("attempt")
