"""bench/comparison.py: the order of repeated runs and how a change is judged against its
baseline (bench/sustained.py --repeats, --compare)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

_SPEC = importlib.util.spec_from_file_location(
    "bench_comparison", Path(__file__).resolve().parents[2] / "bench" / "comparison.py")
assert _SPEC is not None and _SPEC.loader is not None
comparison = importlib.util.module_from_spec(_SPEC)
_SPEC.loader.exec_module(comparison)


def _phase(rate: float, cpu: float, sold: float, sustainable: bool = True, **cpu_by_process: float) -> dict:
    return {"offered_per_s": rate, "cpu_ms_per_sold_lead_total": cpu, "sold_per_s": sold,
            "answer_p50_ms": 10.0, "answer_p99_ms": 40.0, "sale_minus_window_p50_ms": 100.0,
            "sale_minus_window_p99_ms": 300.0, "sustainable": sustainable,
            "cpu_ms_per_sold_lead": cpu_by_process or {"delivery": cpu / 4}}


def _run(label: str, *phases: dict, database: str = "postgresql", auction_at_rest: float = 0.04) -> dict:
    return {"database": database, "label": label, "phases": list(phases),
            "idle_cores": {"auction": auction_at_rest, "broker": 0.1}}


def test_runs_alternate_so_a_drifting_machine_weighs_on_both_sides():
    assert comparison.run_order(3, comparing=True) == [
        ("baseline", 0), ("variant", 0), ("variant", 1), ("baseline", 1), ("baseline", 2), ("variant", 2)]
    assert comparison.run_order(2, comparing=False) == [("baseline", 0), ("baseline", 1)]
    with pytest.raises(ValueError):
        comparison.run_order(0, comparing=True)


def test_each_figure_is_the_median_of_its_runs_with_their_range():
    runs = [_run("baseline", _phase(50, 30.0, 49.9), _phase(80, 24.0, 79.8, sustainable=False)),
            _run("baseline", _phase(50, 34.0, 50.0), _phase(80, 26.0, 79.9)),
            _run("baseline", _phase(50, 31.0, 49.8))]  # this run stopped after 50/s
    summary = comparison.summarize(runs)["postgresql"]["baseline"]
    assert summary["50"]["cpu_ms_per_sold_lead_total"] == {"median": 31.0, "min": 30.0, "max": 34.0, "runs": 3}
    assert summary["80"]["cpu_ms_per_sold_lead_total"] == {"median": 25.0, "min": 24.0, "max": 26.0, "runs": 2}
    assert summary["80"]["sustainable_runs"] == 1 and summary["50"]["sustainable_runs"] == 3
    assert (summary["80"]["reached_in"], summary["80"]["runs_made"]) == (2, 3)
    assert summary["50"]["cpu_ms_per_sold_lead"]["delivery"]["median"] == 7.75


def test_the_cores_at_rest_are_summarized_per_label():
    runs = [_run("baseline", _phase(50, 30.0, 50.0), auction_at_rest=0.09),
            _run("baseline", _phase(50, 31.0, 50.0), auction_at_rest=0.08),
            _run("variant", _phase(50, 30.0, 50.0), auction_at_rest=0.04)]
    summary = comparison.summarize(runs)["postgresql"]
    assert summary["baseline"]["at rest"]["auction"] == {"median": 0.085, "min": 0.08, "max": 0.09, "runs": 2}
    assert summary["variant"]["at rest"]["broker"]["median"] == 0.1
    assert "at rest" not in comparison.changes({"postgresql": summary})["postgresql"]


def test_a_phase_without_a_figure_is_left_out_not_fatal():
    # A phase that sold nothing has no CPU per sold lead and no sale latency (None in its JSON).
    empty = {**_phase(80, 0.0, 0.0, sustainable=False), "cpu_ms_per_sold_lead_total": None,
             "sale_minus_window_p99_ms": None, "cpu_ms_per_sold_lead": {"delivery": None}}
    runs = [_run("baseline", _phase(80, 24.0, 80.0)), _run("baseline", empty),
            _run("variant", empty), _run("variant", {**empty})]
    summary = comparison.summarize(runs)["postgresql"]
    assert summary["baseline"]["80"]["cpu_ms_per_sold_lead_total"] == {
        "median": 24.0, "min": 24.0, "max": 24.0, "runs": 1}
    assert summary["variant"]["80"]["cpu_ms_per_sold_lead"]["delivery"]["median"] is None
    found = comparison.changes({"postgresql": summary})["postgresql"]["80"]
    assert found["cpu_ms_per_sold_lead_total"]["verdict"] == "not judged: no figure a side"
    assert found["sold_per_s"]["verdict"] == "within the runs' spread"  # 0 and 80 against 0 and 0: overlapping


def test_a_change_is_clear_only_when_the_ranges_are_apart():
    runs = [_run("baseline", _phase(50, 30.0, 50.0), _phase(80, 24.0, 80.0)),
            _run("baseline", _phase(50, 32.0, 50.0), _phase(80, 26.0, 80.0)),
            _run("variant", _phase(50, 27.0, 50.0), _phase(80, 23.0, 80.0)),
            _run("variant", _phase(50, 28.0, 50.0), _phase(80, 25.0, 80.0))]
    found = comparison.changes(comparison.summarize(runs))["postgresql"]
    assert found["50"]["cpu_ms_per_sold_lead_total"] == {
        "change_percent": -11.3, "clear": True, "verdict": "better"}
    assert found["80"]["cpu_ms_per_sold_lead_total"]["clear"] is False  # 23-25 overlaps 24-26
    assert found["80"]["cpu_ms_per_sold_lead_total"]["verdict"] == "within the runs' spread"
    assert found["50"]["sold_per_s"] == {"change_percent": 0.0, "clear": False,
                                         "verdict": "within the runs' spread"}


def test_more_sold_is_better_and_more_cpu_is_worse():
    runs = [_run("baseline", _phase(100, 20.0, 60.0)), _run("baseline", _phase(100, 21.0, 62.0)),
            _run("variant", _phase(100, 22.0, 90.0)), _run("variant", _phase(100, 23.0, 88.0))]
    found = comparison.changes(comparison.summarize(runs))["postgresql"]["100"]
    assert found["sold_per_s"]["verdict"] == "better"
    assert found["cpu_ms_per_sold_lead_total"]["verdict"] == "worse"


def test_one_run_a_side_is_not_judged():
    runs = [_run("baseline", _phase(100, 20.0, 60.0)), _run("variant", _phase(100, 30.0, 90.0))]
    found = comparison.changes(comparison.summarize(runs))["postgresql"]["100"]
    assert found["cpu_ms_per_sold_lead_total"] == {
        "change_percent": 50.0, "clear": False, "verdict": "not judged: one run on a side"}


def test_without_a_variant_nothing_is_compared():
    runs = [_run("baseline", _phase(50, 30.0, 50.0)), _run("baseline", _phase(50, 31.0, 50.0))]
    assert comparison.changes(comparison.summarize(runs)) == {}


def test_a_ways_runs_are_pooled_by_their_weight_with_each_runs_own_beside():
    runs = [{"leads": 100, "cpu": 1.0, "sql": None}, {"leads": 300, "cpu": 2.0, "sql": 0.5}]
    assert comparison.pooled(runs, ("cpu", "sql"), weight="leads") == {
        "cpu": 1.75, "cpu_by_round": [1.0, 2.0], "sql": None}  # a run without the figure: none pooled
    assert comparison.pooled(runs[1:], ("cpu",), weight="leads") == {"cpu": 2.0}  # one run: nothing beside
