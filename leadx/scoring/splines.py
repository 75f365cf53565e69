"""A fitted SplineTransformer's basis, evaluated without scikit-learn's per-call machinery.

`SplineTransformer.transform` costs about two thirds of a millisecond a call however few rows it
has (the scoring service calls it three times a batch of two or three leads): it validates its
input and the estimator, runs a missing-value mask per feature, and evaluates every feature's
spline and its derivative at both ends of the knots again at each call. Here the ends are
evaluated once, and a call is one scipy `BSpline` evaluation per feature. The result is the
transformer's, bit for bit (tests/unit/test_scoring_splines.py): the same spline evaluations and
the same arithmetic for the linear continuation beyond the knots and for the periodic wrap.

Only the configurations the served models use are taken over (`linear` extrapolation of degree 2
or more and `periodic`, the bias kept, dense C-ordered output, missing values refused), on float64
input of at least one row; anything else is left to the transformer's own `transform`. The models
keep the fitted transformers themselves, so bundles saved before this load and score as they did.
"""

from __future__ import annotations

import weakref
from dataclasses import dataclass

import numpy as np
from scipy.interpolate import BSpline
from sklearn.preprocessing import SplineTransformer

_TAKEN_OVER = ("linear", "periodic")


@dataclass(frozen=True)
class _Ends:
    """A feature's spline at both ends of its knots, for the linear continuation beyond them."""

    low: float
    high: float
    value_low: np.ndarray
    value_high: np.ndarray
    slope_low: np.ndarray
    slope_high: np.ndarray


class SplineBasis:
    """`transform` of one fitted SplineTransformer, for the configurations taken over (`own`). It
    keeps the transformer's splines, not the transformer: kept beside it in a weak mapping, it
    must not keep it alive."""

    def __init__(self, fitted: SplineTransformer) -> None:
        self.fitted_splines = fitted.bsplines_  # the fit this was made from: a refit makes a new list
        self.splines: list[BSpline] = list(fitted.bsplines_)
        self.degree: int = fitted.degree
        self.width: int = self.splines[0].c.shape[1]  # basis functions per feature
        # Linear below degree 2 is left too: there scikit-learn raises its local degree inside the
        # feature loop, so the features after the first are bounded by other knots.
        self.own = (fitted.extrapolation in _TAKEN_OVER and fitted.include_bias and not fitted.sparse_output
                    and fitted.handle_missing == "error" and fitted.order == "C"
                    and (fitted.extrapolation == "periodic" or self.degree > 1))
        linear = self.own and fitted.extrapolation == "linear"
        self.ends = [self._ends(spline) for spline in self.splines] if linear else []

    def _ends(self, spline: BSpline) -> _Ends:
        low, high = spline.t[self.degree], spline.t[-self.degree - 1]
        return _Ends(low, high, spline(low), spline(high), spline(low, nu=1), spline(high, nu=1))

    def takes(self, x: np.ndarray) -> bool:
        """Whether this input is one it gives the transformer's answer to: float64 rows (scikit-
        learn keeps a float32 input's type) and at least one (it refuses none)."""
        return self.own and x.dtype == np.float64 and x.ndim == 2 and x.shape[0] > 0

    def transform(self, x: np.ndarray) -> np.ndarray:
        """The basis of rows `takes` accepts."""
        if x.shape[1] != len(self.splines):
            raise ValueError(f"expected rows of {len(self.splines)} features, got an array of shape {x.shape}")
        if not np.isfinite(x).all():
            raise ValueError("the input contains NaN or infinity")
        out = np.zeros((x.shape[0], len(self.splines) * self.width))
        for feature, spline in enumerate(self.splines):
            columns = out[:, feature * self.width:(feature + 1) * self.width]
            if self.ends:
                self._linear(columns, x[:, feature], spline, self.ends[feature])
            else:
                columns[:] = spline(self._wrapped(x[:, feature], spline))
        return out

    def _linear(self, columns: np.ndarray, x: np.ndarray, spline: BSpline, ends: _Ends) -> None:
        """The spline inside its knots; beyond them its first and last `degree` basis functions
        carried on along their slope at the end, as SplineTransformer does (every other one is 0
        and flat there)."""
        inside = (ends.low <= x) & (x <= ends.high)
        columns[inside] = spline(x[inside])
        below, above = x < ends.low, x > ends.high
        if below.any():
            for j in range(self.degree):
                columns[below, j] = ends.value_low[j] + (x[below] - ends.low) * ends.slope_low[j]
        if above.any():
            for k in range(self.width - self.degree, self.width):
                columns[above, k] = ends.value_high[k] + (x[above] - ends.high) * ends.slope_high[k]

    @staticmethod
    def _wrapped(x: np.ndarray, spline: BSpline) -> np.ndarray:
        """x mapped into one period of the knots, as SplineTransformer maps it."""
        k = spline.k
        n = spline.t.size - k - 1
        period = spline.t[n] - spline.t[k]
        if period > 0:
            return spline.t[k] + (x - spline.t[k]) % period
        return np.zeros_like(x)  # one value seen in fitting: a constant feature


_BASES: weakref.WeakKeyDictionary[SplineTransformer, SplineBasis] = weakref.WeakKeyDictionary()


def spline_basis(fitted: SplineTransformer, x: np.ndarray) -> np.ndarray:
    """What `fitted.transform(x)` gives. The ends are evaluated at the transformer's first call (and
    again after a refit) and kept beside it, not in it: nothing new is pickled with a model, and a
    transformer no longer used is freed with its basis."""
    basis = _BASES.get(fitted)
    if basis is None or basis.fitted_splines is not fitted.bsplines_:
        basis = _BASES[fitted] = SplineBasis(fitted)
    x = np.asarray(x)
    return basis.transform(x) if basis.takes(x) else fitted.transform(x)
