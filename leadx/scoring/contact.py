"""Propensity and timing fitted together, by maximum likelihood, from whether buyers' contacts
succeeded: a contact of consumer x at timing t succeeds with probability

    q = σ(Φ(x)·θ + θ0) · exp((B(t) - B(ref))·β)

(`leadx.scoring.propensity`, `leadx.scoring.timing`). One fit for both is what separates them: a
late call's failure is put on the timing, not on the consumer. The reference is then moved to the
moment the fitted timing model rates best at age 0, and the propensity restated there.
"""

from __future__ import annotations

import numpy as np
from scipy.optimize import minimize

from leadx.scoring.propensity import ConsumerBasis, PropensityModel
from leadx.scoring.timing import TimingBasis, TimingModel

_RIDGE = 1e-6  # enough to keep the fit stable; more shrinks the timing effect and biases the propensity low
_MAX_Q = 0.999  # a contact's modelled success probability is kept below 1 during the fit
_PROVISIONAL = np.array([0.0, 18.0, 0.0])
_HOURS = np.arange(0.0, 24.0, 0.25)


def fit(consumers: np.ndarray, timing: np.ndarray, responded: np.ndarray) -> tuple[PropensityModel, TimingModel]:
    consumer_basis, timing_basis = ConsumerBasis.fit(consumers), TimingBasis.fit(timing)
    phi = consumer_basis.transform(consumers)
    delta = timing_basis.transform(timing) - timing_basis.transform(_PROVISIONAL[None, :])
    y = responded.astype(float)
    n, k = len(y), phi.shape[1]
    rate = min(max(float(y.mean()), 1e-4), 0.5)

    def loss(params: np.ndarray) -> tuple[float, np.ndarray]:
        theta, intercept, beta = params[:k], params[k], params[k + 1:]
        p = 1.0 / (1.0 + np.exp(-(phi @ theta + intercept)))
        m = np.exp(delta @ beta)
        q = np.clip(p * m, 1e-12, _MAX_Q)
        log_lik = y * np.log(q) + (1 - y) * np.log1p(-q)
        # d log-lik / dq, times dq/d(logit p) = q(1-p) and dq/d(log m) = q.
        d_q = y / q - (1 - y) / (1 - q)
        d_logit = d_q * q * (1 - p)
        d_log_m = d_q * q
        gradient = np.concatenate([phi.T @ d_logit, [d_logit.sum()], delta.T @ d_log_m])
        penalty = np.concatenate([theta, [0.0], beta])
        return -log_lik.sum() / n + _RIDGE * penalty @ penalty, -gradient / n + 2 * _RIDGE * penalty

    start = np.zeros(k + 1 + delta.shape[1])
    start[k] = np.log(rate / (1 - rate))
    params = minimize(loss, start, jac=True, method="L-BFGS-B", options={"maxiter": 2000}).x
    timing_model = TimingModel(timing_basis, params[k + 1:], _PROVISIONAL)
    best = _best_moment(timing_model)
    propensity = PropensityModel(consumer_basis, params[:k], float(params[k]),
                                 scale=float(timing_model.uncapped(best[None, :])[0]))
    return propensity, timing_model.at(best)


def _best_moment(model: TimingModel) -> np.ndarray:
    moments = np.array([[0.0, hour, weekend] for weekend in (0.0, 1.0) for hour in _HOURS])
    return moments[int(np.argmax(model.uncapped(moments)))]
