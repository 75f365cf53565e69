"""The scoring models trained on simulated outcomes: seeded and deterministic, calibrated, close to
the oracle, clusters stable across retrains, and a bundle that saves, loads and scores leads."""

from __future__ import annotations

import hashlib
import json
import math
import subprocess
import sys

import joblib
import numpy as np
import pytest

from leadx.dev.simulation.evaluation import evaluate
from leadx.dev.simulation.market import simulate
from leadx.dev.simulation.training import training_data
from leadx.scoring import clusters as clustering
from leadx.scoring.features import consumer_row, timing_row, zone_of
from leadx.scoring.metrics import expected_calibration_error, summary
from leadx.scoring.models import TrainingData, train
from leadx.scoring.registry import PRIOR, BundleRefused, cluster_descriptions, current, load, load_prior
from tests.hostile_pickle import swap_in

START_MS = 1_767_225_600_000  # 2026-01-01T00:00:00Z


def consumers_of(leads) -> np.ndarray:
    return np.array([lead.features for lead in leads], dtype=float)


@pytest.fixture(scope="module")
def market():
    return list(simulate(40_000, 21, START_MS))


@pytest.fixture(scope="module")
def held_out():
    return list(simulate(20_000, 22, START_MS + 40 * 86_400_000))


@pytest.fixture(scope="module")
def bundle(market):
    return train(training_data(market, "test market"), seed=3)


def test_training_is_seeded_and_deterministic(market, bundle):
    again = train(training_data(market, "test market"), seed=3)
    x = consumers_of(market[:500])
    assert np.array_equal(bundle.propensity_of(x), again.propensity_of(x))
    assert np.array_equal(bundle.direct_response_of(x), again.direct_response_of(x))
    assert bundle.clusters.assign(x) == again.clusters.assign(x)
    assert bundle.meta["data"] == again.meta["data"]


def test_the_models_are_calibrated_and_close_to_the_oracle(bundle, held_out):
    results = evaluate(bundle, held_out, seed=5)
    for question in ("contact", "propensity", "direct_response"):
        assert results[question]["model"]["ece"] <= 0.03, (question, results[question])
        assert results[question]["auc_share_of_oracle"] >= 0.93, (question, results[question])


def test_the_timing_factor_is_one_at_the_best_moment_and_falls_with_age(bundle):
    reference = bundle.timing.reference
    assert reference[0] == 0.0 and bundle.timing.factor(reference[None, :])[0] == pytest.approx(1.0)
    ages = np.array([[age, reference[1], reference[2]] for age in (2.0, 12.0, 48.0, 120.0)])
    factors = bundle.timing.factor(ages)
    assert (np.diff(factors) < 0).all() and (factors <= 1.0).all() and (factors > 0).all()
    night = bundle.timing.factor(np.array([[0.0, 3.0, 0.0]]))[0]
    assert night < 0.5  # the simulated consumers sleep at 3 a.m.


def test_the_bundle_records_its_data_and_metrics(bundle, market):
    meta = bundle.meta
    assert meta["data"]["leads"] == len(market)
    assert meta["data"]["from"] < meta["data"]["to"]
    assert set(meta["held_out_metrics"]) == {"contact", "direct_response"}
    assert meta["held_out_metrics"]["contact"]["rows"] == len(market) // 5
    assert set(meta["clusters"]) == {f"c{i}" for i in range(1, 7)}


def test_cluster_ids_survive_a_retrain_on_other_data(bundle, held_out):
    retrained = clustering.fit(training_data(held_out, "later").consumers, 6, seed=99, previous=bundle.clusters)
    x = consumers_of(held_out[:5000])
    before, after = bundle.clusters.assign(x), retrained.assign(x)
    agreement = np.mean([a == b for a, b in zip(before, after, strict=True)])
    assert agreement >= 0.8
    assert set(retrained.ids) == set(bundle.clusters.ids)


def test_a_new_group_gets_an_id_never_used_before(bundle, market):
    more = clustering.fit(training_data(market, "more groups").consumers, 7, seed=3, previous=bundle.clusters)
    assert set(bundle.clusters.ids) < set(more.ids) and "c7" in more.ids


def test_clusters_are_described_by_their_needs():
    centroid = np.array([math.log(2400), 6.0, 0.75, 27.0, 0.0, 1.0])
    assert clustering.describe(centroid) == ("renter, under 1 year employed, aged about 27, earns about $2,400 a"
                                             " month, asks for about $22k (75% of a year's income)")


def test_a_bundle_saves_and_loads_as_the_registrys_current(bundle, tmp_path, market):
    assert current(tmp_path).version == load_prior().version  # an empty registry serves the prior
    where = bundle.save(tmp_path)
    assert (tmp_path / "current").read_text().strip() == bundle.version == where.name
    manifest = json.loads((where / "meta.json").read_text())
    assert manifest["model_sha256"] == hashlib.sha256((where / "model.joblib").read_bytes()).hexdigest()
    loaded = current(tmp_path)
    x = consumers_of(market[:200])
    assert loaded.version == bundle.version
    assert np.array_equal(loaded.propensity_of(x), bundle.propensity_of(x))
    assert load(where).version == bundle.version


def test_list_views_read_the_served_bundles_descriptions_without_loading_it(bundle, tmp_path, monkeypatch):
    monkeypatch.delenv("SCORING_MODELS", raising=False)
    assert cluster_descriptions() == load_prior().clusters.descriptions
    monkeypatch.setenv("SCORING_MODELS", str(tmp_path))
    assert cluster_descriptions() == load_prior().clusters.descriptions  # an empty registry: the prior
    bundle.save(tmp_path)
    assert cluster_descriptions() == bundle.clusters.descriptions
    # ... and without importing the models' libraries (~100 MB in the intake).
    probe = ("import sys; from leadx.scoring.registry import cluster_descriptions; "
             "assert cluster_descriptions(); print('sklearn' in sys.modules, 'numpy' in sys.modules)")
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert done.stdout.split() == ["False", "False"]


def test_leads_are_scored_from_their_fields_whatever_they_carry(bundle):
    good = next(iter(simulate(1, 1, START_MS))).fields
    junk = {"zip": "nope", "gross_monthly_income": "lots", "date_of_birth": "yesterday", "residence_type": "boat"}
    scores = bundle.score([good, junk, {}], [START_MS] * 3, [START_MS + 1000] * 3)
    for score in scores:
        assert 0.0 <= score.probability <= 1.0 and 0.0 < score.timing_factor <= 1.0
        assert score.cluster in bundle.clusters.ids and 0.0 <= score.direct_response <= 1.0


def test_the_shipped_prior_scores_from_the_first_lead():
    prior = load_prior()
    assert prior.version.startswith("prior-")
    lead = next(iter(simulate(1, 2, START_MS))).fields
    (score,) = prior.score([lead], [START_MS], [START_MS])
    assert 0.0 < score.probability < 1.0 and score.cluster in prior.clusters.ids
    assert prior.meta["held_out_metrics"]["contact"]["ece"] <= 0.02


def test_features_read_the_fields_and_the_consumers_own_clock():
    from datetime import date
    row = consumer_row({"gross_monthly_income": "300000", "months_employed": "24", "requested_amount": "1800000",
                        "date_of_birth": "1986-01-01", "residence_type": "own", "work_phone": "2125550100"},
                       date(2026, 1, 1))
    assert row == pytest.approx([math.log(3000), 24, 0.5, 40.0, 1.0, 0.0, 1.0], abs=0.01)
    assert all(math.isnan(v) for v in consumer_row({}, date(2026, 1, 1))[:6])
    # 23:30 UTC on Friday 2 January 2026 is 18:30 in New York, a weekday; 2 hours after creation.
    friday = 1_767_396_600_000
    assert timing_row(zone_of("10001"), friday - 7_200_000, friday) == pytest.approx([2.0, 18.5, 0.0])


def test_too_few_outcomes_to_train_on_is_a_clear_error():
    with pytest.raises(ValueError, match="too few outcomes"):
        TrainingData(np.zeros((50, 7)), np.zeros((50, 3)), np.zeros(50, dtype=bool), None, 0, 0, "tiny")


def test_the_calibration_error_is_the_count_weighted_gap_per_bin():
    predicted = np.array([0.05, 0.05, 0.05, 0.05, 0.95, 0.95])
    happened = np.array([0, 0, 0, 1, 1, 1])
    # Bin 0: predicted 0.05, observed 0.25 (4 rows); bin 9: 0.95 against 1.0 (2 rows).
    assert expected_calibration_error(predicted, happened) == pytest.approx((4 * 0.2 + 2 * 0.05) / 6)
    assert summary(predicted, happened)["auc"] == pytest.approx(7.5 / 9, abs=1e-4)  # ties count half


def test_a_bundle_whose_bytes_changed_is_refused_before_it_is_unpickled(tmp_path):
    registry = tmp_path / "models"
    where = load_prior().save_to(registry / "v1")
    (registry / "current").write_text("v1\n")
    assert current(registry).version == load_prior().version  # as saved, it loads
    trap = tmp_path / "the-pickle-ran"
    swap_in(where, trap)

    with pytest.raises(BundleRefused, match=r"models/v1/model\.joblib has SHA-256 [0-9a-f]{64} but its manifest "
                                            r"records [0-9a-f]{64}: it changed after it was saved"):
        current(registry)
    with pytest.raises(BundleRefused):
        load(where)
    assert not trap.exists()
    # The trap is real: the same file, unpickled without the check, does run its code.
    joblib.load(where / "model.joblib").close()
    assert trap.exists()


def test_a_bundle_without_a_hash_to_check_is_refused_unread(tmp_path):
    where = load_prior().save_to(tmp_path / "v1")
    trap = tmp_path / "the-pickle-ran"
    swap_in(where, trap)
    manifest = json.loads((where / "meta.json").read_text())
    del manifest["model_sha256"]  # as bundles saved before the check have it
    (where / "meta.json").write_text(json.dumps(manifest))
    with pytest.raises(BundleRefused, match=r"records no model_sha256, so .*model\.joblib cannot be checked: refused"):
        load(where)
    (where / "meta.json").write_text("{not json")
    with pytest.raises(BundleRefused, match=r"meta\.json is unreadable"):
        load(where)
    (where / "meta.json").unlink()
    with pytest.raises(BundleRefused, match=r"has no meta\.json, so its model cannot be checked"):
        load(where)
    with pytest.raises(BundleRefused, match=r"no model bundle at .*nonesuch"):
        load(tmp_path / "nonesuch")
    assert not trap.exists()


def test_the_shipped_prior_carries_the_hash_of_its_bytes():
    manifest = json.loads((PRIOR / "meta.json").read_text())
    assert manifest["model_sha256"] == hashlib.sha256((PRIOR / "model.joblib").read_bytes()).hexdigest()
