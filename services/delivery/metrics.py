"""The delivery worker's Prometheus metrics (docs/operations.md): each ping and post to a buyer by
its outcome and round trip, and each buyer's circuit breakers. `buyer` is a buyer account id:
bounded by the accounts the exchange has."""

from __future__ import annotations

import weakref
from collections.abc import Iterator

from prometheus_client import REGISTRY, Counter, Gauge, Histogram
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from leadx.platform.metrics import SLOW_BUCKETS
from services.delivery.breaker import CircuitBreaker

PINGS = Counter("leadx_buyer_pings", "Pings to buyers, by outcome: bid, no_bid, error, no_answer, breaker_open.",
                ["buyer", "outcome"])
PING_SECONDS = Histogram("leadx_buyer_ping_duration_seconds", "A buyer's ping round trip.", ["buyer"],
                         buckets=SLOW_BUCKETS)
POSTS = Counter("leadx_buyer_posts",
                "Posts of sold leads to buyers, by outcome: accepted, rejected, error, no_answer, not_reached, "
                "breaker_open.", ["buyer", "outcome"])
POST_SECONDS = Histogram("leadx_buyer_post_duration_seconds", "A buyer's post round trip.", ["buyer"],
                         buckets=SLOW_BUCKETS)


def pinged(buyer_id: str, outcome: str, seconds: float | None = None) -> None:
    PINGS.labels(buyer_id, outcome).inc()
    if seconds is not None:
        PING_SECONDS.labels(buyer_id).observe(seconds)


def posted(buyer_id: str, outcome: str, seconds: float | None = None) -> None:
    POSTS.labels(buyer_id, outcome).inc()
    if seconds is not None:
        POST_SECONDS.labels(buyer_id).observe(seconds)


class BreakerStates(Collector):
    """`leadx_buyer_breaker_open{buyer, call}`: 1 while a buyer's ping or post circuit is open, 0
    once it has closed again; read from the breakers when Prometheus scrapes."""

    def __init__(self) -> None:
        self._breakers: weakref.WeakKeyDictionary[CircuitBreaker, str] = weakref.WeakKeyDictionary()

    def watch(self, breaker: CircuitBreaker, call: str) -> CircuitBreaker:
        self._breakers[breaker] = call
        return breaker

    def collect(self) -> Iterator[GaugeMetricFamily]:
        family = GaugeMetricFamily("leadx_buyer_breaker_open", "1 while the buyer's circuit breaker is open.",
                                   labels=["buyer", "call"])
        for breaker, call in list(self._breakers.items()):
            for buyer_id in breaker.buyer_ids():
                family.add_metric([buyer_id, call], 1.0 if breaker.is_open(buyer_id) else 0.0)
        yield family


BREAKERS = BreakerStates()
REGISTRY.register(BREAKERS)
PROGRESS_RESTORED = Counter(
    "leadx_delivery_progress_restored",
    "Auctions whose delivery progress Redis no longer held while SQL had posts of them (Redis lost "
    "its data): the progress was rebuilt from post_attempts.")
AWARDS_HELD = Gauge(
    "leadx_delivery_awards_held",
    "Awards waiting because the dedup records are not known to be complete (no epoch: Redis lost its "
    "data); they go on once the dedup service has rebuilt them.")
