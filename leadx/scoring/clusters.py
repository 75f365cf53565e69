"""Behavioural clusters: k-means on standardised consumer features, with ids that survive retraining
and a plain description of each group's needs (docs/scoring.md#the-models).

Buyers name clusters in their criteria (`clusters: [c2]`), so a retrain must not renumber them: the
new centroids are matched to the previous model's (Hungarian assignment on the distance between
them) and keep those ids; a group with no counterpart gets a new, never used, id.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy.optimize import linear_sum_assignment
from sklearn.cluster import KMeans

from leadx.scoring.features import CONSUMER_FEATURES

_I = {name: index for index, name in enumerate(CONSUMER_FEATURES)}
# What tells one group's needs from another's; a work phone does not.
CLUSTER_FEATURES = ("log_income", "months_employed", "loan_to_income", "age_years", "owns_home", "rents")
_COLUMNS = [_I[name] for name in CLUSTER_FEATURES]


@dataclass(frozen=True)
class ClusterModel:
    ids: tuple[str, ...]
    centroids: np.ndarray     # CLUSTER_FEATURES in their own units, one row per id
    mean: np.ndarray          # standardisation, and the fill for a missing value
    scale: np.ndarray
    descriptions: dict[str, str]

    def assign(self, x: np.ndarray) -> list[str]:
        """The cluster id of each row of consumer features (a missing one counts as the training mean)."""
        z = self._standardise(x[:, _COLUMNS])
        centres = self._standardise(self.centroids)
        nearest = ((z[:, None, :] - centres[None, :, :]) ** 2).sum(axis=2).argmin(axis=1)
        return [self.ids[i] for i in nearest]

    def _standardise(self, x: np.ndarray) -> np.ndarray:
        filled = np.where(np.isnan(x), self.mean, x)
        return (filled - self.mean) / self.scale


def fit(consumers: np.ndarray, k: int, seed: int, previous: ClusterModel | None = None) -> ClusterModel:
    x = consumers[:, _COLUMNS]
    mean = np.nanmean(x, axis=0)
    scale = np.nanstd(x, axis=0)
    scale[scale == 0] = 1.0
    z = (np.where(np.isnan(x), mean, x) - mean) / scale
    kmeans = KMeans(n_clusters=k, n_init=10, random_state=seed).fit(z)
    centroids = kmeans.cluster_centers_ * scale + mean
    ids = _stable_ids(centroids, mean, scale, previous)
    order = sorted(range(k), key=lambda i: _id_number(ids[i]))
    centroids = centroids[order]
    ids = [ids[i] for i in order]
    descriptions = {cid: describe(c) for cid, c in zip(ids, centroids, strict=True)}
    return ClusterModel(tuple(ids), centroids, mean, scale, descriptions)


def _id_number(cluster_id: str) -> int:
    return int(cluster_id[1:])


def _stable_ids(centroids: np.ndarray, mean: np.ndarray, scale: np.ndarray,
                previous: ClusterModel | None) -> list[str]:
    k = len(centroids)
    if previous is None:
        return [f"c{i + 1}" for i in range(k)]
    # Both sets of centres in the new model's standard units.
    new = (centroids - mean) / scale
    old = (previous.centroids - mean) / scale
    cost = ((new[:, None, :] - old[None, :, :]) ** 2).sum(axis=2)
    rows, cols = linear_sum_assignment(cost)
    ids: list[str | None] = [None] * k
    for row, col in zip(rows, cols, strict=True):
        ids[row] = previous.ids[col]
    next_number = max(_id_number(i) for i in previous.ids) + 1
    for row in range(k):
        if ids[row] is None:
            ids[row] = f"c{next_number}"
            next_number += 1
    return [i for i in ids if i is not None]


def describe(centroid: np.ndarray) -> str:
    """A group's needs in words, e.g. "renter, under 1 year employed, earns $2,400 a month, asks for $21k"."""
    c = {name: float(value) for name, value in zip(CLUSTER_FEATURES, centroid, strict=True)}
    if c["owns_home"] >= 0.5:
        residence = "home owner"
    elif c["rents"] >= 0.5:
        residence = "renter"
    elif c["owns_home"] + c["rents"] < 0.5:
        residence = "lives with family or other"
    else:
        residence = "owners and renters"
    months = c["months_employed"]
    tenure = ("under 1 year employed" if months < 12 else
              "1 to 5 years employed" if months < 60 else "over 5 years employed")
    monthly = math.exp(c["log_income"])
    asks = c["loan_to_income"] * 12 * monthly
    return (f"{residence}, {tenure}, aged about {round(c['age_years'])}, earns about ${round(monthly, -2):,.0f}"
            f" a month, asks for about ${asks / 1000:,.0f}k ({c['loan_to_income']:.0%} of a year's income)")
