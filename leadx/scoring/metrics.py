"""How good a probability is: ranking (AUC), accuracy (Brier score) and calibration (expected
calibration error), computed the same way for a model and for the simulator's oracle."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from sklearn.metrics import brier_score_loss, roc_auc_score

ECE_BINS = 10


@dataclass(frozen=True)
class Reliability:
    """Per bin of predicted probability: how many, the mean prediction, the share that happened."""
    counts: np.ndarray
    predicted: np.ndarray
    observed: np.ndarray


def reliability(probability: np.ndarray, happened: np.ndarray, bins: int = ECE_BINS) -> Reliability:
    edges = np.linspace(0.0, 1.0, bins + 1)
    which = np.clip(np.digitize(probability, edges[1:-1]), 0, bins - 1)
    counts = np.bincount(which, minlength=bins)
    with np.errstate(invalid="ignore"):
        predicted = np.bincount(which, weights=probability, minlength=bins) / counts
        observed = np.bincount(which, weights=happened.astype(float), minlength=bins) / counts
    return Reliability(counts, predicted, observed)


def expected_calibration_error(probability: np.ndarray, happened: np.ndarray, bins: int = ECE_BINS) -> float:
    """Σ over equal-width bins of (share of rows in the bin) × |mean prediction − observed rate|."""
    r = reliability(probability, happened, bins)
    filled = r.counts > 0
    gaps = np.abs(r.predicted[filled] - r.observed[filled])
    return float((r.counts[filled] * gaps).sum() / r.counts.sum())


def summary(probability: np.ndarray, happened: np.ndarray) -> dict[str, float]:
    return {
        "auc": round(float(roc_auc_score(happened, probability)), 4),
        "brier": round(float(brier_score_loss(happened, probability)), 5),
        "ece": round(expected_calibration_error(probability, happened), 4),
        "rows": int(len(happened)),
        "rate": round(float(np.mean(happened)), 4),
    }
