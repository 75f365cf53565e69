"""The propensity model (docs/scoring.md#the-models): the probability that a consumer responds when
a dealer contacts them at once, at the best hour and day.

An additive logistic model (a GAM): one cubic spline per numeric feature, the yes/no features as
they are, and a missing-value flag for each numeric one (a missing value is placed at the training
median and the flag carries what missing itself says). Additive, so that each feature's effect can
be read off and is smooth; it is fitted jointly with the timing model (`leadx.scoring.contact`),
which is what lets the two be told apart.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from sklearn.preprocessing import SplineTransformer

from leadx.scoring.features import CONSUMER_FEATURES
from leadx.scoring.splines import spline_basis

_BINARY = {"owns_home", "rents", "has_work_phone"}
_NUMERIC = [i for i, name in enumerate(CONSUMER_FEATURES) if name not in _BINARY]
_FLAGS = [i for i, name in enumerate(CONSUMER_FEATURES) if name in _BINARY]


@dataclass(frozen=True)
class ConsumerBasis:
    medians: np.ndarray
    # One transformer for every numeric feature (knots per feature, at its own quantiles): evaluated
    # through leadx.scoring.splines, whose call costs a tenth of the transformer's own.
    splines: SplineTransformer

    @classmethod
    def fit(cls, consumers: np.ndarray) -> ConsumerBasis:
        medians = np.nanmedian(consumers, axis=0)
        medians = np.where(np.isnan(medians), 0.0, medians)
        filled = np.where(np.isnan(consumers), medians, consumers)
        splines = SplineTransformer(n_knots=6, degree=3, knots="quantile", extrapolation="linear")
        return cls(medians, splines.fit(filled[:, _NUMERIC]))

    def transform(self, consumers: np.ndarray) -> np.ndarray:
        missing = np.isnan(consumers)
        filled = np.where(missing, self.medians, consumers)
        return np.hstack([spline_basis(self.splines, filled[:, _NUMERIC]), filled[:, _FLAGS],
                          missing[:, _NUMERIC].astype(float)])


@dataclass(frozen=True)
class PropensityModel:
    basis: ConsumerBasis
    theta: np.ndarray
    intercept: float
    scale: float = 1.0  # m(best)/m(fit reference): states the probability at the best moment

    def logit(self, consumers: np.ndarray) -> np.ndarray:
        return self.basis.transform(consumers) @ self.theta + self.intercept

    def probability(self, consumers: np.ndarray) -> np.ndarray:
        return np.minimum(self.scale / (1.0 + np.exp(-self.logit(consumers))), 1.0)
