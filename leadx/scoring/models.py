"""The scoring models, trained together and served together as one versioned bundle: propensity,
timing and direct response models, and clusters (docs/scoring.md#the-models).

- **Propensity**: the probability that a consumer responds when a dealer contacts them at once, at
  the best hour and day (`leadx.scoring.propensity`).
- **Timing**: the factor, at most 1, by which that probability shrinks at another age, hour or day
  (`leadx.scoring.timing`). Both are fitted together from buyers' contacts (`leadx.scoring.contact`).
- **Direct response**: the probability of answering a direct offer (list sales): a gradient-boosted
  classifier on the consumer's features, calibrated by isotonic regression on a fifth of its
  training rows that it was not fitted on. Only trained when the data records direct offers;
  otherwise the previous bundle's is kept.

The models are fitted on four fifths of the data; their metrics (`meta`) are measured on the last
fifth, which none of them saw.
- **Clusters**: `leadx.scoring.clusters`, ids kept stable across retrains.

A bundle records the range and size of its training data and its held-out metrics (`meta`).
"""

from __future__ import annotations

import hashlib
import io
import json
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import joblib
import numpy as np
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.isotonic import IsotonicRegression

from leadx.scoring import clusters as clustering
from leadx.scoring import contact
from leadx.scoring.features import CONSUMER_FEATURES, TIMING_FEATURES, consumer_row, timing_row, zone_of
from leadx.scoring.metrics import summary
from leadx.scoring.propensity import PropensityModel
from leadx.scoring.timing import TimingModel

CLUSTER_COUNT = 6
HELD_OUT_SHARE = 0.2
# The key of a bundle's meta.json that holds the SHA-256 of its model.joblib.
MODEL_SHA256 = "model_sha256"


@dataclass(frozen=True)
class TrainingData:
    consumers: np.ndarray          # one row of CONSUMER_FEATURES per lead sold
    timing: np.ndarray             # TIMING_FEATURES of the contact (or the attempt) of each
    responded: np.ndarray          # bool: the buyer reached the consumer
    answered_direct: np.ndarray | None  # bool: answered a direct offer; None when not recorded
    first_ms: int                  # when the earliest and latest of these leads were created
    last_ms: int
    source: str

    def __post_init__(self) -> None:
        if len(self.responded) < 200 or self.responded.sum() < 20 or (~self.responded).sum() < 20:
            raise ValueError(f"too few outcomes to train on: {len(self.responded)} leads, "
                             f"{int(self.responded.sum())} responded (at least 200 and 20 of each)")

    def fingerprint(self) -> str:
        digest = hashlib.sha256()
        for part in (self.consumers, self.timing, self.responded):
            digest.update(np.ascontiguousarray(part).tobytes())
        return digest.hexdigest()[:8]


@dataclass(frozen=True)
class Score:
    probability: float      # propensity: responds if contacted at once at the best moment
    timing_factor: float    # the share of it left if contacted at the moment scored
    cluster: str
    direct_response: float  # answers a direct offer (list sales)


@dataclass
class ModelBundle:
    version: str
    propensity: PropensityModel
    timing: TimingModel
    direct: HistGradientBoostingClassifier | None
    direct_calibrator: IsotonicRegression | None
    clusters: clustering.ClusterModel
    meta: dict = field(default_factory=dict)

    def propensity_of(self, consumers: np.ndarray) -> np.ndarray:
        return self.propensity.probability(consumers)

    def direct_response_of(self, consumers: np.ndarray) -> np.ndarray:
        if self.direct is None or self.direct_calibrator is None:
            return np.full(len(consumers), np.nan)
        return _predict(self.direct, self.direct_calibrator, consumers)

    def score(self, leads: Sequence[Mapping[str, object]], created_ms: Sequence[int],
              scored_ms: Sequence[int], direct: bool = True) -> list[Score]:
        """Scores of a batch of leads from their fields: one model call per model for the batch.
        Without `direct` the direct-response model is not run (NaN): a live lead is called, not
        mailed, and that model is a third of the cost of a call."""
        if not leads:
            return []
        days = [datetime.fromtimestamp(ms / 1000, UTC).date() for ms in scored_ms]
        consumers = np.array([consumer_row(fields, day) for fields, day in zip(leads, days, strict=True)], dtype=float)
        timings = np.array([timing_row(zone_of(fields.get("zip", "")), created, scored)
                            for fields, created, scored in zip(leads, created_ms, scored_ms, strict=True)], dtype=float)
        probability = self.propensity_of(consumers)
        factor = self.timing.factor(timings)
        answers = self.direct_response_of(consumers) if direct else np.full(len(leads), np.nan)
        groups = self.clusters.assign(consumers)
        return [Score(round(float(p), 6), round(float(f), 6), g, round(float(d), 6))
                for p, f, g, d in zip(probability, factor, groups, answers, strict=True)]

    def save(self, registry: Path) -> Path:
        """Writes the bundle to `registry/<version>/` and makes it the registry's current one."""
        where = self.save_to(registry / self.version)
        # Renamed into place: a scoring service reading `current` meanwhile sees the old or the new.
        pending = registry / f".current.{os.getpid()}"
        pending.write_text(self.version + "\n")
        os.replace(pending, registry / "current")
        return where

    def save_to(self, folder: Path) -> Path:
        """`model.joblib` and its manifest `meta.json`, which carries the SHA-256 of the pickled
        bytes: a bundle is loaded only when they match (leadx.scoring.registry.load)."""
        folder.mkdir(parents=True, exist_ok=True)
        pickled = io.BytesIO()
        joblib.dump(self, pickled, compress=3)
        (folder / "model.joblib").write_bytes(pickled.getvalue())
        manifest = {**self.meta, MODEL_SHA256: hashlib.sha256(pickled.getvalue()).hexdigest()}
        (folder / "meta.json").write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n")
        return folder


def _predict(model: HistGradientBoostingClassifier, calibrator: IsotonicRegression, x: np.ndarray) -> np.ndarray:
    return np.asarray(calibrator.predict(model.predict_proba(x)[:, 1]), dtype=float)


def _split(rows: np.ndarray, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Four fifths and one fifth of `rows`, at random."""
    order = np.random.default_rng(seed).permutation(rows)
    cut = int(len(order) * (1 - HELD_OUT_SHARE))
    return order[:cut], order[cut:]


def _classifier(seed: int) -> HistGradientBoostingClassifier:
    return HistGradientBoostingClassifier(learning_rate=0.06, max_iter=400, max_leaf_nodes=15,
                                          min_samples_leaf=80, l2_regularization=1.0,
                                          early_stopping=True, validation_fraction=0.15,
                                          n_iter_no_change=20, random_state=seed)


def _calibrated(x: np.ndarray, y: np.ndarray, rows: np.ndarray,
                seed: int) -> tuple[HistGradientBoostingClassifier, IsotonicRegression]:
    """A classifier fitted on four fifths of `rows` and an isotonic map fitted on the last fifth."""
    fit_rows, calibration_rows = _split(rows, seed)
    model = _classifier(seed).fit(x[fit_rows], y[fit_rows])
    raw = model.predict_proba(x[calibration_rows])[:, 1]
    calibrator = IsotonicRegression(y_min=0.0, y_max=1.0, out_of_bounds="clip").fit(raw, y[calibration_rows])
    return model, calibrator


def train(data: TrainingData, seed: int = 1, previous: ModelBundle | None = None) -> ModelBundle:
    fit_rows, held_out = _split(np.arange(len(data.responded)), seed)
    propensity, timing = contact.fit(data.consumers[fit_rows], data.timing[fit_rows], data.responded[fit_rows])
    contact_held_out = (propensity.probability(data.consumers[held_out]) * timing.factor(data.timing[held_out]))

    direct = direct_calibrator = None
    direct_metrics = None
    if data.answered_direct is not None:
        direct, direct_calibrator = _calibrated(data.consumers, data.answered_direct, fit_rows, seed)
        predicted = _predict(direct, direct_calibrator, data.consumers[held_out])
        direct_metrics = summary(predicted, data.answered_direct[held_out])
    elif previous is not None:
        direct, direct_calibrator = previous.direct, previous.direct_calibrator

    groups = clustering.fit(data.consumers, CLUSTER_COUNT, seed, previous.clusters if previous else None)
    trained_at = datetime.now(UTC)
    version = f"{trained_at:%Y%m%dT%H%M%SZ}-{data.fingerprint()}"
    meta = {
        "version": version,
        "trained_at": trained_at.isoformat(timespec="seconds"),
        "seed": seed,
        "data": {"source": data.source, "leads": int(len(data.responded)),
                 "responded": int(data.responded.sum()),
                 "from": _iso(data.first_ms), "to": _iso(data.last_ms)},
        "features": {"consumer": list(CONSUMER_FEATURES), "timing": list(TIMING_FEATURES)},
        "reference_moment": {"age_hours": 0, "local_hour": float(timing.reference[1]),
                             "weekend": bool(timing.reference[2])},
        "held_out_metrics": {"contact": summary(contact_held_out, data.responded[held_out]),
                             "direct_response": direct_metrics},
        "direct_response_from": ("this data" if direct_metrics else
                                 (previous.version if previous is not None and direct is not None else None)),
        "previous_version": previous.version if previous is not None else None,
        "clusters": groups.descriptions,
    }
    return ModelBundle(version, propensity, timing, direct, direct_calibrator, groups, meta)


def _iso(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, UTC).isoformat(timespec="seconds")
