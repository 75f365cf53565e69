"""The timing model (docs/scoring.md#the-models): how a consumer's chance of responding changes with
the lead's age and with the hour and day of the contact.

It is a multiplier of the propensity, which is stated at a reference moment (contacted at once, at
the best hour and day): a contact at timing t succeeds with probability p(x) · m(t), where

    m(t) = exp((B(t) - B(ref)) · β)

and B(t) is a spline basis of ln(1 + age in hours), a periodic spline basis of the local hour and a
weekend flag. β is fitted together with the propensity (`leadx.scoring.contact`); m(ref) = 1 by
construction, and a served factor is capped at 1.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from sklearn.preprocessing import SplineTransformer

from leadx.scoring.splines import spline_basis


@dataclass(frozen=True)
class TimingBasis:
    age: SplineTransformer
    hour: SplineTransformer

    @classmethod
    def fit(cls, timing: np.ndarray) -> TimingBasis:
        # Knots even in ln(1 + hours) up to the oldest contact: quantile knots crowd into the first
        # minutes, where most calls are made, and let the curve wiggle there.
        oldest = float(np.quantile(_log_age(timing), 0.995)) if len(timing) else np.log1p(168.0)
        age = SplineTransformer(knots=np.linspace(0.0, max(oldest, 1.0), 7).reshape(-1, 1), degree=3,
                                extrapolation="linear")
        hour = SplineTransformer(knots=np.linspace(0, 24, 9).reshape(-1, 1), degree=3, extrapolation="periodic")
        return cls(age.fit(_log_age(timing)), hour.fit(np.array([[0.0], [24.0]])))

    def transform(self, timing: np.ndarray) -> np.ndarray:
        hour = np.mod(timing[:, 1:2], 24.0)
        return np.hstack([spline_basis(self.age, _log_age(timing)), spline_basis(self.hour, hour), timing[:, 2:3]])


def _log_age(timing: np.ndarray) -> np.ndarray:
    return np.log1p(np.maximum(timing[:, 0:1], 0.0))


@dataclass(frozen=True)
class TimingModel:
    basis: TimingBasis
    beta: np.ndarray
    reference: np.ndarray  # the timing row (age hours, local hour, weekend) of the reference moment

    def factor(self, timing: np.ndarray) -> np.ndarray:
        """m(t) for each timing row, capped at 1."""
        return np.minimum(self.uncapped(timing), 1.0)

    def uncapped(self, timing: np.ndarray) -> np.ndarray:
        eta = self.basis.transform(timing) @ self.beta - self._reference_eta()
        return np.exp(eta)

    def _reference_eta(self) -> float:
        # B(ref)·β, once: it is the same at every call.
        cached = self.__dict__.get("_cached_reference_eta")
        if cached is None:
            cached = float((self.basis.transform(self.reference[None, :]) @ self.beta)[0])
            object.__setattr__(self, "_cached_reference_eta", cached)
        return cached

    def at(self, reference: np.ndarray) -> TimingModel:
        """The same model stated relative to another reference moment."""
        return TimingModel(self.basis, self.beta, reference.astype(float))
