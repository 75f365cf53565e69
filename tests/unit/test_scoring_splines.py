"""leadx.scoring.splines gives what SplineTransformer.transform gives, bit for bit, at a tenth of
its cost a call (bench/scoring.py measures the cost)."""

from __future__ import annotations

import gc
import pickle
import weakref

import numpy as np
import pytest
from sklearn.preprocessing import SplineTransformer

from leadx.scoring.registry import load_prior
from leadx.scoring.splines import SplineBasis, spline_basis
from leadx.scoring.timing import _log_age

RNG = np.random.default_rng(7)


def _rows(n: int, features: int, spread: float) -> np.ndarray:
    """Rows inside the fitted range and, with a wide enough spread, beyond it on both sides."""
    return RNG.normal(0.5, spread, (n, features))


@pytest.mark.parametrize("degree", [2, 3, 4])
@pytest.mark.parametrize("knots", ["quantile", "uniform"])
def test_linear_extrapolation_is_the_transformers_bit_for_bit(degree: int, knots: str) -> None:
    fitted = SplineTransformer(n_knots=6, degree=degree, knots=knots, extrapolation="linear").fit(RNG.random((400, 4)))
    rows = np.vstack([_rows(300, 4, 0.8), fitted.bsplines_[0].t[:, None].repeat(4, axis=1)])
    expected = fitted.transform(rows)
    assert (rows < 0).any() and (rows > 1).any()  # the continuation on both sides is exercised
    assert np.array_equal(spline_basis(fitted, rows), expected)


def test_periodic_extrapolation_is_the_transformers_bit_for_bit() -> None:
    hour = SplineTransformer(knots=np.linspace(0, 24, 9).reshape(-1, 1), degree=3,
                             extrapolation="periodic").fit(np.array([[0.0], [24.0]]))
    rows = np.concatenate([RNG.uniform(-50, 75, 400), [0.0, 3.0, 24.0, 48.0, -24.0]])[:, None]
    assert np.array_equal(spline_basis(hour, rows), hour.transform(rows))


def test_a_constant_periodic_feature_is_the_transformers() -> None:
    flat = SplineTransformer(n_knots=3, degree=2, knots="uniform", extrapolation="periodic").fit(np.ones((5, 1)))
    rows = np.array([[1.0], [7.0], [-2.0]])
    assert np.array_equal(spline_basis(flat, rows), flat.transform(rows))


def test_the_served_models_transformers_give_the_same_basis() -> None:
    bundle = load_prior()
    consumers = bundle.propensity.basis.splines
    numeric = _rows(200, consumers.n_features_in_, 3.0) * 50
    assert np.array_equal(spline_basis(consumers, numeric), consumers.transform(numeric))
    timing = np.column_stack([RNG.uniform(-1, 400, 200), RNG.uniform(0, 24, 200), RNG.integers(0, 2, 200)])
    basis = bundle.timing.basis
    assert np.array_equal(spline_basis(basis.age, _log_age(timing)), basis.age.transform(_log_age(timing)))
    hours = timing[:, 1:2]
    assert np.array_equal(spline_basis(basis.hour, hours), basis.hour.transform(hours))


@pytest.mark.parametrize("settings", [{"extrapolation": "constant"}, {"extrapolation": "continue"},
                                      {"include_bias": False}, {"sparse_output": True},
                                      {"extrapolation": "linear", "degree": 1}])
def test_other_configurations_are_left_to_the_transformer(settings: dict) -> None:
    fitted = SplineTransformer(**{"n_knots": 4, "degree": 3, **settings}).fit(RNG.random((50, 2)))
    rows = _rows(20, 2, 0.8)
    assert not SplineBasis(fitted).own
    got, expected = spline_basis(fitted, rows), fitted.transform(rows)
    if settings.get("sparse_output"):
        got, expected = got.toarray(), expected.toarray()
    assert np.array_equal(got, expected)


@pytest.mark.parametrize("rows", [RNG.random((4, 2)).astype(np.float32), np.empty((0, 2)),
                                  np.asfortranarray(RNG.random((4, 2)))], ids=["float32", "no rows", "F order"])
def test_inputs_it_does_not_take_are_the_transformers(rows: np.ndarray) -> None:
    fitted = SplineTransformer(n_knots=4, degree=3, extrapolation="linear").fit(RNG.random((50, 2)))
    if len(rows) == 0:  # scikit-learn refuses an empty input, and so does this
        with pytest.raises(ValueError):
            spline_basis(fitted, rows)
        return
    got, expected = spline_basis(fitted, rows), fitted.transform(rows)
    assert got.dtype == expected.dtype and np.array_equal(got, expected)


def test_an_output_in_f_order_is_left_to_the_transformer() -> None:
    fitted = SplineTransformer(n_knots=4, degree=3, order="F").fit(RNG.random((50, 2)))
    rows = RNG.random((4, 2))
    got = spline_basis(fitted, rows)
    assert not SplineBasis(fitted).own and got.flags.f_contiguous and np.array_equal(got, fitted.transform(rows))


def test_a_refit_transformer_is_evaluated_on_its_new_knots() -> None:
    fitted = SplineTransformer(n_knots=4, degree=3, extrapolation="linear").fit(RNG.random((50, 2)))
    rows = _rows(10, 2, 0.8)
    spline_basis(fitted, rows)
    fitted.fit(RNG.random((50, 2)) * 3)
    assert np.array_equal(spline_basis(fitted, rows), fitted.transform(rows))


def test_a_transformer_no_longer_used_is_freed_with_its_basis() -> None:
    fitted = SplineTransformer(n_knots=4, degree=3, extrapolation="linear").fit(RNG.random((50, 2)))
    spline_basis(fitted, RNG.random((3, 2)))
    gone = weakref.ref(fitted)
    del fitted
    gc.collect()
    assert gone() is None


def test_bad_input_is_refused_as_the_transformer_refuses_it() -> None:
    fitted = SplineTransformer(n_knots=4, degree=3, extrapolation="linear").fit(RNG.random((50, 2)))
    with pytest.raises(ValueError, match="NaN or infinity"):
        spline_basis(fitted, np.array([[0.1, np.nan]]))
    with pytest.raises(ValueError, match="NaN or infinity"):
        spline_basis(fitted, np.array([[np.inf, 0.1]]))
    with pytest.raises(ValueError, match="rows of 2 features"):
        spline_basis(fitted, np.array([[0.1, 0.2, 0.3]]))
    for bad in (np.array([[0.1, np.nan]]), np.array([[0.1, 0.2, 0.3]])):
        with pytest.raises(ValueError):
            fitted.transform(bad)


def test_nothing_new_is_pickled_with_a_model() -> None:
    fitted = SplineTransformer(n_knots=4, degree=3, extrapolation="linear").fit(RNG.random((50, 2)))
    before = pickle.dumps(fitted)
    spline_basis(fitted, RNG.random((3, 2)))
    assert pickle.dumps(fitted) == before
    restored = pickle.loads(before)
    rows = _rows(10, 2, 0.8)
    assert np.array_equal(spline_basis(restored, rows), fitted.transform(rows))
