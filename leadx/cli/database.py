"""The SQL sessions of every `leadx` command: one engine on DATABASE_URL, its schema made sure of."""

from __future__ import annotations

from typing import TYPE_CHECKING

from leadx.platform.config import env_str

if TYPE_CHECKING:  # imported where used: `leadx --help` should not wait for SQLAlchemy
    from sqlalchemy.orm import Session, sessionmaker


def sessions() -> sessionmaker[Session]:
    """A session factory on DATABASE_URL (a ConfigError when it is not set), after creating any
    missing table."""
    from leadx.platform.db.engine import create_schema, make_engine, session_factory

    engine = make_engine(env_str("DATABASE_URL"))
    create_schema(engine)
    return session_factory(engine)
