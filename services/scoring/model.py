"""The response model used until trained models land (issue 8): a documented logistic score
and rule-based behavioural clusters. Pure functions.

    z = -1.6 + 0.9·ln(income / $3,000)  + 0.6·min(months employed, 60)/60
             - 0.8·min(requested / (12 · income), 3)/3 + 0.4·[owns home]
    p = 1 / (1 + e^-z)

Higher income, longer tenure, home ownership and a modest loan relative to income all make a
consumer more likely to respond; missing fields count at neutral values.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

MODEL_VERSION = "prior-logistic-1"

CLUSTERS = {
    "owner-stable": "owns home, employed 2+ years",
    "owner-new": "owns home, employed under 2 years",
    "renter-stable": "rents or other, employed 2+ years",
    "renter-new": "rents or other, employed under 2 years",
}


@dataclass(frozen=True)
class Score:
    probability: float
    cluster: str


def _number(fields: dict[str, str], name: str, default: float) -> float:
    try:
        return float(fields[name])
    except (KeyError, ValueError):
        return default


def score(fields: dict[str, str]) -> Score:
    income = max(_number(fields, "gross_monthly_income", 300_000), 1.0)  # cents per month
    months = _number(fields, "months_employed", 24)
    requested = _number(fields, "requested_amount", 12 * income)
    owner = fields.get("residence_type") == "own"
    z = (-1.6 + 0.9 * math.log(income / 300_000) + 0.6 * min(months, 60) / 60
         - 0.8 * min(requested / (12 * income), 3) / 3 + (0.4 if owner else 0.0))
    probability = 1 / (1 + math.exp(-z))
    cluster = f"{'owner' if owner else 'renter'}-{'stable' if months >= 24 else 'new'}"
    return Score(round(probability, 6), cluster)
