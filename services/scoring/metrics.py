"""The scoring worker's Prometheus metrics (docs/operations.md)."""

from __future__ import annotations

from prometheus_client import Counter

LEADS_SCORED = Counter("leadx_leads_scored", "Leads scored.")
