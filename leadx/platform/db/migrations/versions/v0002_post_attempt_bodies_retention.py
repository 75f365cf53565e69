"""Post attempts keep their bodies for a retention period only: `bodies_dropped_at_ms` marks an
attempt whose request and response bodies `leadx delivery prune-attempts` emptied, and a partial
index on `sent_at_ms` holds the attempts whose bodies are still kept, which the prune reads oldest
first.

At the upgrade no attempt has been pruned yet, so the index is built over the whole table; on a
large one, delivery's inserts wait for that build (PostgreSQL builds it in the upgrade's
transaction)."""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

BODIES_KEPT = sa.text("bodies_dropped_at_ms IS NULL")


def upgrade() -> None:
    with op.batch_alter_table("post_attempts") as batch_op:
        batch_op.add_column(sa.Column("bodies_dropped_at_ms", sa.BigInteger(), nullable=True))
        batch_op.create_index("ix_post_attempts_bodies_kept", ["sent_at_ms"], unique=False,
                              postgresql_where=BODIES_KEPT, sqlite_where=BODIES_KEPT)


def downgrade() -> None:
    with op.batch_alter_table("post_attempts") as batch_op:
        batch_op.drop_index("ix_post_attempts_bodies_kept")
        batch_op.drop_column("bodies_dropped_at_ms")
