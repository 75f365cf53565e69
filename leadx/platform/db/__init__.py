"""SQL storage (SQLAlchemy): SQLite file by default, PostgreSQL via DATABASE_URL."""
