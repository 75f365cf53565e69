from __future__ import annotations

from dataclasses import dataclass

from leadx.config import CommonSettings, env_float, env_str


@dataclass(frozen=True)
class AuctionSettings:
    common: CommonSettings
    window_ms: int
    data_dir: str
    # Closed auctions are kept this long so that late bids and redelivered leads are recognised.
    closed_retention_ms: int
    recovery_grace_ms: int

    @classmethod
    def from_env(cls) -> AuctionSettings:
        return cls(
            common=CommonSettings.from_env("auction"),
            window_ms=int(env_float("AUCTION_WINDOW_SECONDS", 3.0) * 1000),
            data_dir=env_str("AUCTION_DATA_DIR", "/tmp/leadx-auction"),
            closed_retention_ms=int(env_float("AUCTION_CLOSED_RETENTION_SECONDS", 3600) * 1000),
            recovery_grace_ms=int(env_float("AUCTION_RECOVERY_GRACE_SECONDS", 2.0) * 1000),
        )
