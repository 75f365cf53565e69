"""The simulator's ground truth: how likely a consumer is to respond, and when. The models never see
these functions; they learn from the outcomes drawn from them, and `leadx scoring evaluate` compares
their predictions with these true probabilities (the oracle).

All functions take a matrix of consumer features (`leadx.scoring.features.CONSUMER_FEATURES`, one
row per consumer, no missing values) and return one probability per row.

Responding to a dealer who calls (propensity), when contacted at once at the best moment:

    z = -1.9 + 0.9·ln(income / $3,000) + 1.1·(1 - e^(-months employed / 18))
        - 1.6·max(0, loan-to-income - 0.45) - 0.0012·(age - 42)² + 0.5·[owns] - 0.25·[rents]
        + 0.2·[work phone]
    p = 1 / (1 + e^-z)

Higher income, a settled job, a loan the consumer can afford, middle age and owning a home make a
consumer more likely to pick up and engage; the loan-to-income term is zero up to 45% and then
falls steeply (a threshold the models have to find).

Timing: the chance of a contact succeeding is p times a factor m(age, hour, day) ≤ 1 that is 1 when
contacted at once on a weekday at 18:00 local time:

    m = e^(-age hours / 30) · hour(h) · (0.8 on a weekend, else 1)
    hour(h) = 0.25 + 0.75·e^(-((h - 18) / 2.5)²) + 0.35·e^(-((h - 11.5) / 2)²)  (capped at 1)

Responding to a direct offer (a list sale: a letter or e-mail, no call), which favours other people:

    z = -3.2 + 0.035·(age - 40) + 0.8·[owns] + 0.5·ln(income / $3,000)
        - 0.7·[employed under a year] + 0.6·min(loan-to-income, 1)

Converting (buying) once contacted: z = -1.0 + 0.8·ln(income / $3,000) - 1.5·max(0, lti - 0.6).
"""

from __future__ import annotations

import numpy as np

from leadx.scoring.features import CONSUMER_FEATURES

_I = {name: index for index, name in enumerate(CONSUMER_FEATURES)}
_LN_3000 = float(np.log(3000.0))
BEST_HOUR = 18.0
HALF_LIFE_SCALE_HOURS = 30.0


def _sigmoid(z: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-z))


def _columns(x: np.ndarray) -> dict[str, np.ndarray]:
    return {name: x[:, index] for name, index in _I.items()}


def respond(x: np.ndarray) -> np.ndarray:
    """Probability of responding to a dealer's call made at once at the best moment."""
    c = _columns(x)
    z = (-1.9 + 0.9 * (c["log_income"] - _LN_3000) + 1.1 * (1 - np.exp(-c["months_employed"] / 18))
         - 1.6 * np.maximum(0.0, c["loan_to_income"] - 0.45) - 0.0012 * (c["age_years"] - 42) ** 2
         + 0.5 * c["owns_home"] - 0.25 * c["rents"] + 0.2 * c["has_work_phone"])
    return _sigmoid(z)


def hour_factor(local_hour: np.ndarray) -> np.ndarray:
    h = np.asarray(local_hour, dtype=float)
    raw = 0.25 + 0.75 * np.exp(-(((h - BEST_HOUR) / 2.5) ** 2)) + 0.35 * np.exp(-(((h - 11.5) / 2.0) ** 2))
    return np.minimum(raw, 1.0)


def timing(age_hours: np.ndarray, local_hour: np.ndarray, weekend: np.ndarray) -> np.ndarray:
    """How much of `respond` is left when contacted at that age, hour and day (1 at best)."""
    decay = np.exp(-np.asarray(age_hours, dtype=float) / HALF_LIFE_SCALE_HOURS)
    return decay * hour_factor(local_hour) * np.where(np.asarray(weekend) > 0.5, 0.8, 1.0)


def direct_response(x: np.ndarray) -> np.ndarray:
    """Probability of responding to a direct offer (list sales)."""
    c = _columns(x)
    z = (-3.2 + 0.035 * (c["age_years"] - 40) + 0.8 * c["owns_home"] + 0.5 * (c["log_income"] - _LN_3000)
         - 0.7 * (c["months_employed"] < 12) + 0.6 * np.minimum(c["loan_to_income"], 1.0))
    return _sigmoid(z)


def convert(x: np.ndarray) -> np.ndarray:
    """Probability of buying once contacted."""
    c = _columns(x)
    z = -1.0 + 0.8 * (c["log_income"] - _LN_3000) - 1.5 * np.maximum(0.0, c["loan_to_income"] - 0.6)
    return _sigmoid(z)
