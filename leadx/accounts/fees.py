"""The platform's fee per seller: SELLER_FEE_PERCENT, unless the seller has its own
(`leadx seller set-fee`). Read by delivery, which bills the fee on each sale.closed."""

from __future__ import annotations

from sqlalchemy.orm import Session, sessionmaker

from leadx.accounts.accounts import seller_fee_overrides
from leadx.platform.db.refreshed import RefreshedFromSql


class SellerFees(RefreshedFromSql):
    def __init__(self, sessions: sessionmaker[Session], default_percent: float, refresh_s: float = 5.0) -> None:
        super().__init__(sessions, refresh_s)
        self.default_percent = default_percent
        self._overrides: dict[str, float] = {}

    def read(self, session: Session) -> None:
        self._overrides = seller_fee_overrides(session)

    def percent_for(self, seller_id: str) -> float:
        return self._overrides.get(seller_id, self.default_percent)
