"""The auction worker's Prometheus metrics (docs/operations.md)."""

from __future__ import annotations

from prometheus_client import Counter, Histogram

from leadx.platform.metrics import FAST_BUCKETS

AUCTIONS_OPENED = Counter("leadx_auctions_opened", "Auctions opened (direct sales included).")
AUCTIONS_CLOSED = Counter("leadx_auctions_closed", "Auctions closed, with a winning bid or without.",
                          ["outcome"])
CLOSE_LATENESS = Histogram("leadx_auction_close_lateness_seconds",
                           "How long after its deadline an auction closed.", buckets=(*FAST_BUCKETS, 10.0))
BIDS = Counter("leadx_bids", "Bids that reached an auction, by where they came from and whether they counted.",
               ["source", "outcome"])

AUTOBID = "autobid"  # placed by the worker itself for AutoBid buyers; bid.placed names the other sources


def closed(had_winner: bool, lateness_ms: int) -> None:
    AUCTIONS_CLOSED.labels("winner" if had_winner else "no_winner").inc()
    CLOSE_LATENESS.observe(max(0, lateness_ms) / 1000)


def bids(source: str, accepted: int, refused: int = 0) -> None:
    if accepted:
        BIDS.labels(source or "unknown", "accepted").inc(accepted)
    if refused:
        BIDS.labels(source or "unknown", "refused").inc(refused)
