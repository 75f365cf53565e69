"""Repeated runs of the whole, and a change against its baseline in the same bench run
(bench/sustained.py --repeats, --compare).

One run of the whole on this machine moves by up to a fifth from the next identical one (the
machine's other work, the JVM's compilation, where the scheduler puts the processes), so a change
worth a few per cent cannot be read off one pair of runs. The runs here alternate A B B A A B ...,
so a drift of the machine during the bench falls on both sides alike, and each figure is given as
the median of its runs with their lowest and highest: a change is worth believing only where the
two ranges do not overlap."""

from __future__ import annotations

import statistics
from collections.abc import Iterable, Sequence

BASELINE, VARIANT = "baseline", "variant"
# The phase figures compared, and whether less is better.
FIGURES = {
    "cpu_ms_per_sold_lead_total": True,
    "cpu_ms_per_sold_lead_exchange": True,
    "wakes_per_sold_lead_total": True,
    "sold_per_s": False,
    "answer_p50_ms": True,
    "answer_p99_ms": True,
    "sale_minus_window_p50_ms": True,
    "sale_minus_window_p99_ms": True,
}


def run_order(repeats: int, comparing: bool) -> list[tuple[str, int]]:
    """The runs to make, (label, repeat) in order: A B B A A B ... when comparing (every repeat
    has one of each), A A A ... otherwise."""
    if repeats < 1:
        raise ValueError("at least one repeat")
    if not comparing:
        return [(BASELINE, repeat) for repeat in range(repeats)]
    order = []
    for repeat in range(repeats):
        pair = (BASELINE, VARIANT) if repeat % 2 == 0 else (VARIANT, BASELINE)
        order += [(label, repeat) for label in pair]
    return order


def spread(values: Sequence[float | None], digits: int = 2) -> dict:
    """The median of some runs' values, with the lowest and the highest, over the runs that have
    one (a phase that sold nothing has no CPU per sold lead; `runs` counts those that do)."""
    found = [value for value in values if value is not None]
    if not found:
        return {"median": None, "min": None, "max": None, "runs": 0}
    return {"median": round(statistics.median(found), digits), "min": round(min(found), digits),
            "max": round(max(found), digits), "runs": len(found)}


def pooled(runs: Sequence[dict], figures: Iterable[str], weight: str, digits: int = 2) -> dict:
    """Runs of one way as one figure each (bench/ledger.py, bench/attempts.py): the runs' mean,
    each weighted by its `weight` (the leads it had), with each run's own beside it as
    `<figure>_by_round`; None where a run has none (no SQL server measured)."""
    out: dict = {}
    total = sum(run[weight] for run in runs)
    for figure in figures:
        values = [run[figure] for run in runs]
        if None in values:
            out[figure] = None
            continue
        out[figure] = round(sum(value * run[weight] for value, run in zip(values, runs, strict=True)) / total, digits)
        if len(runs) > 1:
            out[f"{figure}_by_round"] = values
    return out


def summarize(runs: Iterable[dict]) -> dict:
    """Per database, label and offered rate: each figure's spread over the runs, the CPU per sold
    lead of each process too, in how many runs the rate was sustainable, and how many runs reached
    it of how many were made (a run stops after a rate it could not drain: the figures of the
    rates after it are those of the runs that reached them); and per label the cores each process
    used at rest."""
    runs = list(runs)
    made: dict[tuple[str, str], int] = {}
    rest: dict[tuple[str, str], list[dict]] = {}
    phases: dict[tuple[str, str, float], list[dict]] = {}
    for run in runs:
        made[run["database"], run["label"]] = made.get((run["database"], run["label"]), 0) + 1
        rest.setdefault((run["database"], run["label"]), []).append(run.get("idle_cores", {}))
        for phase in run["phases"]:
            phases.setdefault((run["database"], run["label"], phase["offered_per_s"]), []).append(phase)
    out: dict = {}
    for (database, label), idle in rest.items():
        names = dict.fromkeys(name for cores in idle for name in cores)
        out.setdefault(database, {}).setdefault(label, {})["at rest"] = {
            name: spread([cores.get(name) for cores in idle], digits=3) for name in names}
    for (database, label, rate), found in sorted(phases.items()):
        figures = {name: spread([p.get(name) for p in found]) for name in FIGURES}  # None: a run without it
        names = dict.fromkeys(name for p in found for name in p["cpu_ms_per_sold_lead"])
        processes = {name: spread([p["cpu_ms_per_sold_lead"].get(name) for p in found]) for name in names}
        out[database][label][f"{rate:g}"] = {
            **figures, "cpu_ms_per_sold_lead": processes, "reached_in": len(found),
            "runs_made": made[database, label], "sustainable_runs": sum(bool(p["sustainable"]) for p in found)}
    return out


def changes(summary: dict) -> dict:
    """Per database and rate, the variant's median against the baseline's, in per cent, and
    whether their ranges are apart (`clear`): every variant run better, or every one worse, than
    every baseline run. With one run on either side nothing is judged."""
    out: dict = {}
    for database, labels in summary.items():
        if BASELINE not in labels or VARIANT not in labels:
            continue
        for rate, base in labels[BASELINE].items():
            other = labels[VARIANT].get(rate)
            if other is None or rate == "at rest":
                continue
            row = {}
            for name, less_is_better in FIGURES.items():
                a, b = base[name], other[name]
                if a["median"] is None or b["median"] is None:
                    row[name] = {"change_percent": None, "clear": False, "verdict": "not judged: no figure a side"}
                    continue
                change = round((b["median"] - a["median"]) / a["median"] * 100, 1) if a["median"] else None
                judged = a["runs"] > 1 and b["runs"] > 1  # one run on a side has no spread to be apart from
                apart = judged and (b["max"] < a["min"] or b["min"] > a["max"])
                better = (b["median"] < a["median"]) == less_is_better
                verdict = ("better" if better else "worse") if apart else \
                    "within the runs' spread" if judged else "not judged: one run on a side"
                row[name] = {"change_percent": change, "clear": apart, "verdict": verdict}
            out.setdefault(database, {})[rate] = row
    return out
