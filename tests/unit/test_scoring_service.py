"""The scoring service's parts that need no broker: leads scored in batches with the bundle in
hand, a new bundle picked up from the registry while running, and training rows from reports."""

from __future__ import annotations

import asyncio
import logging
import math
import os
import subprocess
import sys

import pytest

from leadx.dev.simulation.market import simulate
from leadx.leads.sealing import new_key
from leadx.ledger.outcomes import OutcomeRow
from leadx.scoring.recorded import training_data_from_rows
from leadx.scoring.registry import load_prior
from services.scoring.main import follow_registry
from services.scoring.scorer import BatchScorer
from tests.hostile_pickle import swap_in

START_MS = 1_767_225_600_000


class CountingBundle:
    """The prior bundle, counting the model calls made through it."""

    def __init__(self, bundle, fail: bool = False) -> None:
        self.bundle, self.fail, self.calls = bundle, fail, []
        self.version = bundle.version

    def score(self, leads, created_ms, scored_ms, direct=True):
        self.calls.append(len(leads))
        if self.fail:
            raise RuntimeError("model broke")
        return self.bundle.score(leads, created_ms, scored_ms, direct=direct)


def leads(count: int) -> list[dict]:
    return [lead.fields for lead in simulate(count, 4, START_MS)]


def test_leads_asked_for_together_are_scored_in_one_model_call():
    asyncio.run(_test_leads_asked_for_together_are_scored_in_one_model_call())


async def _test_leads_asked_for_together_are_scored_in_one_model_call():
    counting = CountingBundle(load_prior())
    scorer = BatchScorer(counting)
    fields = leads(50)
    results = await asyncio.gather(*(scorer.score(f, START_MS, START_MS + 500) for f in fields))
    assert counting.calls == [50]
    alone = load_prior().score(fields, [START_MS] * 50, [START_MS + 500] * 50)
    for (score, _), expected in zip(results, alone, strict=True):  # each lead its own score, in order
        assert (score.probability, score.timing_factor, score.cluster) == (
            expected.probability, expected.timing_factor, expected.cluster)
        assert math.isnan(score.direct_response)  # a live lead is not scored for direct offers
    assert {version for _, version in results} == {counting.version}
    await scorer.score(fields[0], START_MS, START_MS)
    assert counting.calls == [50, 1]


def test_a_failed_model_call_fails_every_lead_of_its_batch_and_not_the_next():
    asyncio.run(_test_a_failed_model_call_fails_every_lead_of_its_batch_and_not_the_next())


async def _test_a_failed_model_call_fails_every_lead_of_its_batch_and_not_the_next():
    broken = CountingBundle(load_prior(), fail=True)
    scorer = BatchScorer(broken)
    outcomes = await asyncio.gather(*(scorer.score(f, START_MS, START_MS) for f in leads(3)),
                                    return_exceptions=True)
    assert all(isinstance(o, RuntimeError) for o in outcomes)
    broken.fail = False
    score, _ = await scorer.score(leads(1)[0], START_MS, START_MS)
    assert 0 <= score.probability <= 1


def test_a_bundle_named_current_in_the_registry_is_served_without_a_restart(tmp_path):
    asyncio.run(_test_a_bundle_named_current_in_the_registry_is_served_without_a_restart(tmp_path))


async def _test_a_bundle_named_current_in_the_registry_is_served_without_a_restart(tmp_path):
    prior = load_prior()
    scorer = BatchScorer(prior)
    stop = asyncio.Event()
    following = asyncio.create_task(follow_registry(scorer, tmp_path, 0.02, stop))
    await asyncio.sleep(0.1)
    assert scorer.bundle is prior  # nothing in the registry yet
    (tmp_path / "current").write_text("half-written\n")  # names a folder that is not there
    await asyncio.sleep(0.1)
    assert scorer.bundle is prior
    prior.save_to(tmp_path / "v2")
    (tmp_path / "current").write_text("v2\n")
    await asyncio.sleep(0.2)
    stop.set()
    await following
    assert scorer.bundle is not prior and scorer.bundle.version == prior.version


def test_a_refused_bundle_leaves_the_one_in_hand_served_and_is_said_once(tmp_path, caplog):
    asyncio.run(_test_a_refused_bundle_leaves_the_one_in_hand_served_and_is_said_once(tmp_path, caplog))


async def _test_a_refused_bundle_leaves_the_one_in_hand_served_and_is_said_once(tmp_path, caplog):
    prior = load_prior()
    scorer = BatchScorer(prior)
    where = prior.save_to(tmp_path / "v2")
    good = (where / "model.joblib").read_bytes()
    trap = tmp_path / "the-pickle-ran"
    swap_in(where, trap)
    (tmp_path / "current").write_text("v2\n")
    stop = asyncio.Event()
    with caplog.at_level(logging.INFO, logger="leadx.scoring"):
        following = asyncio.create_task(follow_registry(scorer, tmp_path, 0.02, stop))
        await asyncio.sleep(0.2)  # several looks
        assert scorer.bundle is prior and not trap.exists()
        [refusal] = [r for r in caplog.records if r.getMessage() == "model bundle refused; serving the one in hand"]
        assert refusal.levelname == "ERROR" and refusal.fields["refused"] == "v2"
        assert "it changed after it was saved" in refusal.fields["reason"]
        (where / "model.joblib").write_bytes(good)  # the copy completed: looked at again, and served
        await asyncio.sleep(0.2)
        stop.set()
        await following
    assert scorer.bundle is not prior and scorer.bundle.version == prior.version


def test_the_service_stops_at_start_when_its_bundle_is_refused(tmp_path):
    where = load_prior().save_to(tmp_path / "v1")
    (tmp_path / "current").write_text("v1\n")
    trap = tmp_path / "the-pickle-ran"
    swap_in(where, trap)
    env = {**os.environ, "SCORING_MODELS": str(tmp_path), "KAFKA_BOOTSTRAP_SERVERS": "127.0.0.1:9",
           "LEADX_HMAC_KEY": "a-test-key-not-a-secret", "LEADX_PII_KEYS": new_key("test"), "HEALTH_PORT": "0"}
    done = subprocess.run([sys.executable, "-m", "services.scoring.main"], env=env, capture_output=True, text=True,
                          timeout=60)
    assert done.returncode == 1
    assert done.stderr.strip().splitlines()[-1].startswith(f"scoring: {where / 'model.joblib'} has SHA-256 ")
    assert not trap.exists()


def _row(i: int, contacted: bool | None) -> OutcomeRow:
    fields = next(iter(simulate(1, i, START_MS))).fields
    sold = START_MS + i * 60_000
    return OutcomeRow(f"LEAD{i:06d}", "b_1", fields, "auto_loan", sold, bool(contacted),
                      sold + 600_000 if contacted else None, False, None, contacted is None,
                      not_contacted_at_ms=sold + 900_000 if contacted is False else None)


def test_training_rows_with_a_known_attempt_become_training_data():
    rows = [_row(i, contacted=i % 4 == 0 if i % 10 else None) for i in range(400)]
    data = training_data_from_rows(rows, "reports")
    usable = [row for row in rows if row.attempt_at_ms is not None]
    assert len(data.responded) == len(usable) == 360  # a row with only a return says nothing of a contact
    assert data.responded.sum() == sum(row.contacted for row in usable)
    assert data.answered_direct is None  # not recorded from buyers: the previous model is kept
    assert data.timing[0][0] == pytest.approx(900_000 / 3_600_000)  # its age at the failed attempt
    assert data.first_ms == usable[0].sold_at_ms and data.last_ms == usable[-1].sold_at_ms
