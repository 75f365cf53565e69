"""The dedup worker's Prometheus metrics (docs/operations.md). Counted per event handled, so an
event read twice (at-least-once delivery, after a crash) is counted twice."""

from __future__ import annotations

from prometheus_client import Counter

CHECKS = Counter("leadx_dedup_checks", "Leads checked for duplicates.")
DUPLICATES = Counter(
    "leadx_dedup_duplicates",
    "Leads found to be duplicates: platform (refused), direct_buyer (its contracted buyer has the "
    "consumer: refused), buyer (some buyers have the consumer: not offered to them).",
    ["scope"])
