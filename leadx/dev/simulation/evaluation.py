"""`leadx scoring evaluate`: a model bundle against the simulator's oracle on leads neither has seen.

Three questions, each answered for the model and for the oracle (the true probabilities the
outcomes were drawn from, the best any model could do):

- **contact**: does the buyer's call at the time it was made succeed? Model: propensity × timing
  factor; oracle: true propensity × true timing factor.
- **propensity**: would the consumer respond if called at once at the best moment? The simulator
  draws that counterfactual outcome from the true propensity, so the propensity model is judged
  on its own.
- **direct_response**: does the consumer answer a direct offer?
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from leadx.dev.simulation.market import SimulatedLead
from leadx.scoring.metrics import reliability, summary
from leadx.scoring.models import ModelBundle

QUESTIONS = ("contact", "propensity", "direct_response")


def evaluate(bundle: ModelBundle, leads: Sequence[SimulatedLead], seed: int) -> dict:
    consumers = np.array([lead.features for lead in leads], dtype=float)
    timings = np.array([lead.timing for lead in leads], dtype=float)
    true_respond = np.array([lead.respond for lead in leads])
    draw = random.Random(seed)
    responded_at_best = np.array([draw.random() < p for p in true_respond])
    propensity = bundle.propensity_of(consumers)
    predictions = {
        "contact": (propensity * bundle.timing.factor(timings),
                    true_respond * np.array([lead.timing_factor for lead in leads]),
                    np.array([lead.outcome.contacted for lead in leads])),
        "propensity": (propensity, true_respond, responded_at_best),
        "direct_response": (bundle.direct_response_of(consumers),
                            np.array([lead.direct_response for lead in leads]),
                            np.array([lead.answered_direct_offer for lead in leads])),
    }
    results: dict = {"model_version": bundle.version, "leads": len(leads), "seed": seed}
    for question, (model, oracle, happened) in predictions.items():
        if np.isnan(model).any():
            results[question] = {"model": None, "oracle": summary(oracle, happened),
                                 "note": "this bundle has no model for it"}
            continue
        model_summary, oracle_summary = summary(model, happened), summary(oracle, happened)
        results[question] = {
            "model": model_summary, "oracle": oracle_summary,
            "auc_share_of_oracle": round(model_summary["auc"] / oracle_summary["auc"], 4),
            "mean_abs_error_vs_truth": round(float(np.mean(np.abs(model - oracle))), 4),
        }
    results["_curves"] = {question: (model, oracle, happened) for question, (model, oracle, happened)
                          in predictions.items() if not np.isnan(model).any()}
    return results


def plot_reliability(results: dict, path: Path) -> None:
    """A reliability diagram per question: predicted against observed, model and oracle."""
    import matplotlib

    matplotlib.use("Agg")  # files only, no screen
    from matplotlib import pyplot

    curves = results["_curves"]
    figure, axes = pyplot.subplots(1, len(curves), figsize=(5 * len(curves), 5), squeeze=False)
    for axis, (question, (model, oracle, happened)) in zip(axes[0], curves.items(), strict=True):
        top = float(max(np.quantile(model, 0.999), np.quantile(oracle, 0.999), 0.05))
        for name, predicted, style in (("model", model, "o-"), ("oracle", oracle, "s--")):
            r = reliability(predicted, happened, bins=20)
            shown = r.counts >= 50  # a bin of a handful of leads says nothing
            axis.plot(r.predicted[shown], r.observed[shown], style, label=name, markersize=4)
        axis.plot([0, top], [0, top], color="grey", linewidth=0.8, label="perfect")
        axis.set_xlim(0, top)
        axis.set_ylim(0, top)
        entry = results[question]
        axis.set_title(f"{question}: AUC {entry['model']['auc']:.3f} (oracle {entry['oracle']['auc']:.3f}),"
                       f" ECE {entry['model']['ece']:.3f}", fontsize=9)
        axis.set_xlabel("predicted probability")
        axis.set_ylabel("observed rate")
        axis.legend(loc="upper left", fontsize=8)
    figure.suptitle(f"Reliability of model {results['model_version']} on {results['leads']:,} simulated leads")
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    pyplot.close(figure)


def report(results: dict) -> str:
    lines = [f"model {results['model_version']} on {results['leads']:,} held-out simulated leads"
             f" (seed {results['seed']})",
             f"{'question':<17}{'':>8}{'AUC':>8}{'Brier':>9}{'ECE':>8}   AUC/oracle"]
    for question in QUESTIONS:
        entry = results[question]
        for who in ("model", "oracle"):
            figures = entry[who]
            if figures is None:
                lines.append(f"{question:<17}{who:>8}   {entry['note']}")
                continue
            share = f"   {entry['auc_share_of_oracle']:.3f}" if who == "model" else ""
            lines.append(f"{question if who == 'model' else '':<17}{who:>8}{figures['auc']:>8.4f}"
                         f"{figures['brier']:>9.5f}{figures['ece']:>8.4f}{share}")
    return "\n".join(lines)
