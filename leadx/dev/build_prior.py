"""Trains the prior model bundle shipped in leadx/scoring/prior (`make prior-model`): simulated
outcomes with a fixed seed, so that anyone can rebuild it and get the same model."""

from __future__ import annotations

from leadx.dev.simulation.days import DEFAULT_START, day_start_ms
from leadx.dev.simulation.market import simulate
from leadx.dev.simulation.training import training_data
from leadx.scoring.models import train
from leadx.scoring.registry import PRIOR

LEADS = 120_000
SEED = 1


def main() -> None:
    leads = list(simulate(LEADS, SEED, day_start_ms(DEFAULT_START)))
    bundle = train(training_data(leads, f"simulated {LEADS} leads, seed {SEED} (the prior)"), seed=SEED)
    bundle.version = f"prior-{bundle.version}"
    bundle.meta["version"] = bundle.version
    bundle.save_to(PRIOR)
    print(f"{bundle.version}: {PRIOR}")


if __name__ == "__main__":
    main()
