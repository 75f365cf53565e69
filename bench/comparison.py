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


def spread(values: Sequence[float]) -> dict:
    """The median of some runs' values, with the lowest and the highest."""
    return {"median": round(statistics.median(values), 2), "min": round(min(values), 2),
            "max": round(max(values), 2), "runs": len(values)}


def summarize(runs: Iterable[dict]) -> dict:
    """Per database, label and offered rate: each figure's spread over the runs, the CPU per sold
    lead of each process too, and in how many runs the rate was sustainable. A rate a run did not
    reach (it stopped after a rate it could not drain) counts only the runs that did."""
    phases: dict[tuple[str, str, float], list[dict]] = {}
    for run in runs:
        for phase in run["phases"]:
            phases.setdefault((run["database"], run["label"], phase["offered_per_s"]), []).append(phase)
    out: dict = {}
    for (database, label, rate), found in sorted(phases.items()):
        figures = {name: spread([p[name] for p in found]) for name in FIGURES}
        processes = {name: spread([p["cpu_ms_per_sold_lead"][name] for p in found])
                     for name in found[0]["cpu_ms_per_sold_lead"]}
        out.setdefault(database, {}).setdefault(label, {})[f"{rate:g}"] = {
            **figures, "cpu_ms_per_sold_lead": processes,
            "sustainable_runs": sum(bool(p["sustainable"]) for p in found)}
    return out


def changes(summary: dict) -> dict:
    """Per database and rate, the variant's median against the baseline's, in per cent, and
    whether their ranges are apart (`clear`): every variant run better, or every one worse, than
    every baseline run. With one run a side nothing is judged."""
    out: dict = {}
    for database, labels in summary.items():
        if BASELINE not in labels or VARIANT not in labels:
            continue
        for rate, base in labels[BASELINE].items():
            other = labels[VARIANT].get(rate)
            if other is None:
                continue
            row = {}
            for name, less_is_better in FIGURES.items():
                a, b = base[name], other[name]
                change = round((b["median"] - a["median"]) / a["median"] * 100, 1) if a["median"] else None
                judged = a["runs"] > 1 and b["runs"] > 1  # one run a side has no spread to be apart from
                apart = judged and (b["max"] < a["min"] or b["min"] > a["max"])
                better = (b["median"] < a["median"]) == less_is_better
                verdict = ("better" if better else "worse") if apart else \
                    "within the runs' spread" if judged else "not judged: one run a side"
                row[name] = {"change_percent": change, "clear": apart, "verdict": verdict}
            out.setdefault(database, {})[rate] = row
    return out
