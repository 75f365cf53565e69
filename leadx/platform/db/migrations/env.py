"""Alembic's entry point, configured from code (leadx.platform.db.schema) instead of an alembic.ini:
the caller passes an open connection in `config.attributes["connection"]`, already inside the
transaction that holds the migration lock, so the revisions run in that transaction."""

from __future__ import annotations

from alembic import context

from leadx.platform.db.models import Base

connection = context.config.attributes["connection"]
context.configure(
    connection=connection,
    target_metadata=Base.metadata,
    # SQLite alters a table only by copying it: revisions written with op.batch_alter_table
    # work on both databases.
    render_as_batch=connection.dialect.name == "sqlite",
    compare_type=True,
)
with context.begin_transaction():
    context.run_migrations()
