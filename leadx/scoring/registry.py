"""Where model bundles live: a registry folder holds one folder per version and a `current` file
naming the one to serve. With no registry configured, the prior shipped with leadx is served."""

from __future__ import annotations

import os
from pathlib import Path

import joblib

from leadx.scoring.models import ModelBundle

PRIOR = Path(__file__).with_name("prior")


def load(path: Path) -> ModelBundle:
    """A bundle from its own folder, or the current one of a registry folder."""
    if (path / "current").exists():
        path = path / (path / "current").read_text().strip()
    bundle = joblib.load(path / "model.joblib")
    if not isinstance(bundle, ModelBundle):
        raise ValueError(f"{path / 'model.joblib'} is not a leadx model bundle")
    return bundle


def load_prior() -> ModelBundle:
    """The bundle shipped with leadx, trained on simulated outcomes (`make prior-model`), so that a
    fresh install scores from its first lead."""
    return load(PRIOR)


def current(registry: Path | None) -> ModelBundle:
    """The registry's current bundle, or the prior while the registry has none."""
    if registry is not None and (registry / "current").exists():
        return load(registry)
    return load_prior()


def configured() -> ModelBundle:
    """What `SCORING_MODELS` names (optional: unset means the prior)."""
    folder = os.environ.get("SCORING_MODELS", "").strip()
    return current(Path(folder) if folder else None)
