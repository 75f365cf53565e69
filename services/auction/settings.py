from __future__ import annotations

from dataclasses import dataclass

from leadx.platform.config import CommonSettings, ConfigError, env_float, env_int, env_str


@dataclass(frozen=True)
class AuctionSettings:
    common: CommonSettings
    window_ms: int
    data_dir: str
    # Closed auctions are kept this long so that late bids and redelivered leads are recognised.
    closed_retention_ms: int
    recovery_grace_ms: int
    # Leads and bids are taken in batches of at most these many, each within this wait, and at most
    # close_batch_max due auctions are closed side by side (see services.auction.worker).
    open_batch_max: int
    bid_batch_max: int
    close_batch_max: int
    batch_wait_s: float
    # How often the bids read since the last flush are written to the table's changelog (one record
    # per auction changed) and their offsets committed (see services.auction.bid_feed).
    bid_flush_s: float

    def __post_init__(self) -> None:
        for name, size in (("AUCTION_OPEN_BATCH", self.open_batch_max), ("AUCTION_BID_BATCH", self.bid_batch_max),
                           ("AUCTION_CLOSE_BATCH", self.close_batch_max)):
            if size < 1:
                raise ConfigError(f"{name} must be at least 1, not {size}")
        if self.batch_wait_s <= 0:
            raise ConfigError("AUCTION_BATCH_WAIT_MS must be above 0")
        if self.bid_flush_s <= 0:
            raise ConfigError("AUCTION_BID_FLUSH_MS must be above 0")

    @classmethod
    def from_env(cls) -> AuctionSettings:
        return cls(
            common=CommonSettings.from_env("auction"),
            window_ms=int(env_float("AUCTION_WINDOW_SECONDS", 3.0) * 1000),
            data_dir=env_str("AUCTION_DATA_DIR", "/tmp/leadx-auction"),
            closed_retention_ms=int(env_float("AUCTION_CLOSED_RETENTION_SECONDS", 3600) * 1000),
            recovery_grace_ms=int(env_float("AUCTION_RECOVERY_GRACE_SECONDS", 2.0) * 1000),
            open_batch_max=env_int("AUCTION_OPEN_BATCH", 100),
            bid_batch_max=env_int("AUCTION_BID_BATCH", 500),
            close_batch_max=env_int("AUCTION_CLOSE_BATCH", 200),
            batch_wait_s=env_float("AUCTION_BATCH_WAIT_MS", 5.0) / 1000,
            bid_flush_s=env_float("AUCTION_BID_FLUSH_MS", 250.0) / 1000,
        )
