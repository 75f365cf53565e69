"""The market simulator: seeded, realistic enough to pass intake's own verification, and its
outcomes drawn from the documented ground truth."""

from __future__ import annotations

import json

import numpy as np
import pytest

from leadx.dev.simulation import truth
from leadx.dev.simulation.market import simulate
from leadx.leads.rules import PACKAGED_RULES, load_rulebook
from leadx.leads.verticals import load_verticals, verify
from leadx.scoring.features import CONSUMER_FEATURES

START_MS = 1_767_225_600_000  # 2026-01-01T00:00:00Z


def test_the_same_seed_gives_the_same_market_and_another_seed_another():
    first = [lead.record() for lead in simulate(300, 7, START_MS)]
    again = [lead.record() for lead in simulate(300, 7, START_MS)]
    other = [lead.record() for lead in simulate(300, 8, START_MS)]
    assert json.dumps(first) == json.dumps(again)
    assert json.dumps(first) != json.dumps(other)


def test_simulated_consumers_pass_intakes_verification():
    verticals = load_verticals()
    rules = load_rulebook(PACKAGED_RULES, verticals).rules_for("auto_loan", "s_any")
    for lead in simulate(200, 3, START_MS):
        payload = {name: str(value) for name, value in lead.fields.items()}
        result = verify(verticals["auto_loan"], payload, rules)
        assert not result.errors, (lead.fields, result.errors)


def test_consumers_economics_hang_together():
    leads = list(simulate(3000, 5, START_MS))
    x = np.array([lead.features for lead in leads])
    col = {name: x[:, i] for i, name in enumerate(CONSUMER_FEATURES)}
    assert (col["months_employed"] <= (col["age_years"] - 18) * 12 + 12).all()  # tenure within working life
    assert col["age_years"].min() >= 18.9 and col["age_years"].max() <= 81
    older, younger = col["age_years"] >= 50, col["age_years"] < 30
    assert col["owns_home"][older].mean() > col["owns_home"][younger].mean() + 0.2
    assert np.exp(col["log_income"][older]).mean() > np.exp(col["log_income"][younger]).mean()


def test_outcomes_follow_the_ground_truth():
    leads = list(simulate(20_000, 11, START_MS))
    contact_truth = np.array([lead.respond * lead.timing_factor for lead in leads])
    contacted = np.array([lead.outcome.contacted for lead in leads])
    # The drawn rate is the mean true probability, within sampling error (4 standard errors).
    assert abs(contacted.mean() - contact_truth.mean()) < 4 * np.sqrt(contact_truth.mean() / len(leads))
    # Converted only after contacted; a returned lead is more often one never reached.
    assert all(lead.outcome.contacted for lead in leads if lead.outcome.converted)
    returned = np.array([lead.outcome.returned for lead in leads])
    assert returned[~contacted].mean() > returned[contacted].mean()
    direct = np.array([lead.answered_direct_offer for lead in leads])
    direct_truth = np.array([lead.direct_response for lead in leads])
    assert abs(direct.mean() - direct_truth.mean()) < 4 * np.sqrt(direct_truth.mean() / len(leads))


@pytest.mark.parametrize(("age", "hour", "weekend", "expected"), [
    (0.0, 18.0, 0, 1.0),                      # the best moment
    (0.0, 18.0, 1, 0.8),                      # a weekend
    (30.0, 18.0, 0, float(np.exp(-1.0))),     # a day and a quarter later
    (0.0, 3.0, 0, 0.25),                      # the middle of the night
])
def test_the_true_timing_factor_is_as_documented(age, hour, weekend, expected):
    got = truth.timing(np.array([age]), np.array([hour]), np.array([weekend]))[0]
    assert got == pytest.approx(expected, abs=0.01)
