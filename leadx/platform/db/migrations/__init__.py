"""The schema's history as Alembic revisions: `env.py` runs them on the connection that
leadx.platform.db.schema hands it, `versions/` holds one module per change, oldest first."""
