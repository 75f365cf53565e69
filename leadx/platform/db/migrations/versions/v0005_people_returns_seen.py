"""A seller's person has seen the returns of its account's leads up to `returns_seen_at_ms` (the
portal's notifications: those after it are unread). Everyone starts having seen none."""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("people") as batch_op:
        batch_op.add_column(sa.Column("returns_seen_at_ms", sa.BigInteger(), server_default="0", nullable=False))


def downgrade() -> None:
    with op.batch_alter_table("people") as batch_op:
        batch_op.drop_column("returns_seen_at_ms")
