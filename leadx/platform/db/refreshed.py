"""Small account tables the hot path reads on every lead, kept in memory and re-read from SQL in
the background: a query per lead would cost more than the lead's whole handling."""

from __future__ import annotations

import asyncio
import logging

from sqlalchemy.orm import Session, sessionmaker

log = logging.getLogger(__name__)


class RefreshedFromSql:
    def __init__(self, sessions: sessionmaker[Session], refresh_s: float = 5.0) -> None:
        self.sessions = sessions
        self.refresh_s = refresh_s
        self.loaded = False

    def read(self, session: Session) -> None:
        """Replace the in-memory copy with what `session` reads now."""
        raise NotImplementedError

    def load(self) -> None:
        with self.sessions() as session:
            self.read(session)
        self.loaded = True

    async def refresh_forever(self) -> None:
        while True:
            await asyncio.sleep(self.refresh_s)
            try:
                await asyncio.to_thread(self.load)
            except Exception:  # keep serving the last known copy while SQL is unavailable
                log.warning("%s refresh failed", type(self).__name__, exc_info=True)
