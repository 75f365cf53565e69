"""The dedup worker's Prometheus metrics (docs/operations.md). Counted per event handled, so an
event read twice (at-least-once delivery, after a crash) is counted twice."""

from __future__ import annotations

from prometheus_client import Counter, Gauge

CHECKS = Counter("leadx_dedup_checks", "Leads checked for duplicates.")
DUPLICATES = Counter(
    "leadx_dedup_duplicates",
    "Leads found to be duplicates: platform (refused), direct_buyer (its contracted buyer has the "
    "consumer: refused), buyer (some buyers have the consumer: not offered to them).",
    ["scope"])
STATE_LOST = Counter(
    "leadx_dedup_state_lost",
    "Times this replica found Redis without the dedup epoch while SQL holds leads or postings inside "
    "the window: Redis lost its data (docs/dedup.md#when-redis-loses-its-data).")
STATE_HELD = Gauge(
    "leadx_dedup_state_held",
    "1 while this replica holds leads because the dedup records are not known to be complete (no "
    "epoch): its checks are refused until a rebuild writes the epoch.")
REBUILD_RUNNING = Gauge(
    "leadx_dedup_rebuild_running", "1 while this replica rebuilds the dedup records from SQL.")
