"""The active buyers, read from SQL and refreshed in the background: the auction needs their
ids on every lead and delivery their URLs, neither can afford a query per lead."""

from __future__ import annotations

import asyncio
import logging

from sqlalchemy.orm import Session, sessionmaker

from leadx.accounts import BuyerEndpoint, active_buyers

log = logging.getLogger(__name__)


class BuyerDirectory:
    def __init__(self, sessions: sessionmaker[Session], refresh_s: float = 5.0) -> None:
        self.sessions = sessions
        self.refresh_s = refresh_s
        self._buyers: dict[str, BuyerEndpoint] = {}
        self.loaded = False

    def load(self) -> None:
        with self.sessions() as session:
            self._buyers = {b.id: b for b in active_buyers(session)}
        self.loaded = True

    async def refresh_forever(self) -> None:
        while True:
            await asyncio.sleep(self.refresh_s)
            try:
                await asyncio.to_thread(self.load)
            except Exception:  # keep serving the last known list while SQL is unavailable
                log.warning("buyer directory refresh failed", exc_info=True)

    def ids(self) -> list[str]:
        return list(self._buyers)

    def get(self, buyer_id: str) -> BuyerEndpoint | None:
        return self._buyers.get(buyer_id)
