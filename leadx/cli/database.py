"""The SQL sessions of every `leadx` command: one engine on DATABASE_URL, its schema made sure of."""

from __future__ import annotations

from typing import TYPE_CHECKING

from leadx.platform.config import env_str

if TYPE_CHECKING:  # imported where used: `leadx --help` should not wait for SQLAlchemy
    from sqlalchemy.engine import Engine
    from sqlalchemy.orm import Session, sessionmaker

# The engines this command made, closed by `close` when it ends.
_engines: list[Engine] = []


def sessions() -> sessionmaker[Session]:
    """A session factory on DATABASE_URL (a ConfigError when it is not set), after creating any
    missing table."""
    from leadx.platform.db.engine import create_schema, make_engine, session_factory

    engine = make_engine(env_str("DATABASE_URL"))
    create_schema(engine)
    _engines.append(engine)
    return session_factory(engine)


def close() -> None:
    """Closes the connections of every engine the command made. A process's exit would close them;
    `main` does it itself so that a command run inside a longer-lived process (a test's) does not
    leave them to the garbage collector, whose full collection of a large heap costs ~0.5 s."""
    while _engines:
        _engines.pop().dispose()
