"""Training data from what buyers reported (`POST /v1/leads/{id}/outcome`, `leadx.ledger.outcomes`).

A lead counts when its buyer said whether it reached the consumer, and when: a contact (or a
conversion) or a failed attempt. A lead with only a return reported says nothing about either and
is left out. Its age is counted from the sale. Direct offers are not recorded yet (list sales), so
a bundle trained from here keeps the previous bundle's direct-response model.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime

import numpy as np

from leadx.ledger.outcomes import OutcomeRow
from leadx.scoring.features import CONSUMER_FEATURES, consumer_row, timing_row, zone_of
from leadx.scoring.models import TrainingData


def training_data_from_rows(rows: Sequence[OutcomeRow], source: str) -> TrainingData:
    usable = [row for row in rows if row.attempt_at_ms is not None]
    consumers = [consumer_row(row.fields, datetime.fromtimestamp(row.sold_at_ms / 1000, UTC).date())
                 for row in usable]
    timings = [timing_row(zone_of(row.fields.get("zip", "")), row.sold_at_ms, row.attempt_at_ms or row.sold_at_ms)
               for row in usable]
    sold = [row.sold_at_ms for row in usable]
    return TrainingData(np.array(consumers, dtype=float).reshape(-1, len(CONSUMER_FEATURES)),
                        np.array(timings, dtype=float).reshape(-1, 3),
                        np.array([row.contacted for row in usable], dtype=bool), None,
                        min(sold, default=0), max(sold, default=0), source)


def training_data_from_db(since_ms: int | None, until_ms: int | None) -> TrainingData:
    from leadx.ledger.outcomes import training_rows
    from leadx.platform.config import env_str
    from leadx.platform.db.engine import make_engine, session_factory

    engine = make_engine(env_str("DATABASE_URL"))
    try:
        with session_factory(engine)() as session:
            rows = training_rows(session, since_ms, until_ms)
    finally:
        engine.dispose()
    return training_data_from_rows(rows, f"outcomes reported by buyers ({len(rows)} sales)")
