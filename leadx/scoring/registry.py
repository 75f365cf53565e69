"""Where model bundles live: a registry folder holds one folder per version and a `current` file
naming the one to serve. With no registry configured, the prior shipped with leadx is served.

Loading a bundle imports numpy and scikit-learn (~100 MB in a process); what only needs a served
bundle's description (the intake's and the CLI's list views) reads its meta.json instead."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from leadx.scoring.models import ModelBundle

PRIOR = Path(__file__).with_name("prior")


def bundle_folder(path: Path) -> Path:
    """A bundle's own folder: `path` itself, or the current one of a registry folder."""
    if (path / "current").exists():
        return path / (path / "current").read_text().strip()
    return path


def load(path: Path) -> ModelBundle:
    """A bundle from its own folder, or the current one of a registry folder."""
    import joblib

    from leadx.scoring.models import ModelBundle

    path = bundle_folder(path)
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


def configured_folder() -> Path:
    """The folder of the bundle `configured()` loads, without loading it."""
    folder = os.environ.get("SCORING_MODELS", "").strip()
    registry = Path(folder) if folder else None
    if registry is not None and (registry / "current").exists():
        return bundle_folder(registry)
    return PRIOR


def cluster_descriptions() -> dict[str, str]:
    """The served bundle's description of each cluster, from its meta.json (written beside every
    bundle, `ModelBundle.save_to`): what list views show, without the models."""
    meta = json.loads((configured_folder() / "meta.json").read_text())
    return {str(cluster): str(text) for cluster, text in meta["clusters"].items()}
