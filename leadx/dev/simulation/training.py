"""Training data from the simulator, and the oracle's view of the same leads for evaluation."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime

import numpy as np

from leadx.dev.simulation.market import SimulatedLead
from leadx.scoring.features import CONSUMER_FEATURES, consumer_row, timing_row, zone_of
from leadx.scoring.models import TrainingData


def training_data(leads: Sequence[SimulatedLead], source: str) -> TrainingData:
    return TrainingData(
        consumers=np.array([lead.features for lead in leads], dtype=float),
        timing=np.array([lead.timing for lead in leads], dtype=float),
        responded=np.array([lead.outcome.contacted for lead in leads]),
        answered_direct=np.array([lead.answered_direct_offer for lead in leads]),
        first_ms=min(lead.created_ms for lead in leads),
        last_ms=max(lead.created_ms for lead in leads),
        source=source,
    )


def training_data_from_records(records: Sequence[dict], source: str) -> TrainingData:
    """The same from `leadx simulate`'s output lines."""
    consumers, timings, responded, direct, created = [], [], [], [], []
    for record in records:
        fields, created_ms, outcome = record["lead"], int(record["created_ms"]), record["outcome"]
        day = datetime.fromtimestamp(created_ms / 1000, UTC).date()
        consumers.append(consumer_row(fields, day))
        timings.append(timing_row(zone_of(fields.get("zip", "")), created_ms, int(outcome["contact_ms"])))
        responded.append(bool(outcome["contacted"]))
        direct.append(bool(outcome["answered_direct_offer"]))
        created.append(created_ms)
    return TrainingData(np.array(consumers, dtype=float).reshape(-1, len(CONSUMER_FEATURES)),
                        np.array(timings, dtype=float).reshape(-1, 3), np.array(responded, dtype=bool),
                        np.array(direct, dtype=bool), min(created, default=0), max(created, default=0), source)
