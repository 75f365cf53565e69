"""The active buyers, read from SQL and refreshed in the background: the auction needs their
ids on every lead and delivery their URLs, neither can afford a query per lead."""

from __future__ import annotations

from sqlalchemy.orm import Session, sessionmaker

from leadx.accounts import BuyerEndpoint, active_buyers
from leadx.refreshed import RefreshedFromSql


class BuyerDirectory(RefreshedFromSql):
    def __init__(self, sessions: sessionmaker[Session], refresh_s: float = 5.0) -> None:
        super().__init__(sessions, refresh_s)
        self._buyers: dict[str, BuyerEndpoint] = {}

    def read(self, session: Session) -> None:
        self._buyers = {b.id: b for b in active_buyers(session)}

    def ids(self) -> list[str]:
        return list(self._buyers)

    def get(self, buyer_id: str) -> BuyerEndpoint | None:
        return self._buyers.get(buyer_id)
