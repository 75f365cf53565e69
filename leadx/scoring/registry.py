"""Where model bundles live: a registry folder holds one folder per version and a `current` file
naming the one to serve. With no registry configured, the prior shipped with leadx is served.

Loading a bundle imports numpy and scikit-learn (~100 MB in a process); what only needs a served
bundle's description (the intake's and the CLI's list views) reads its meta.json instead.

A bundle is a pickle, and unpickling runs whatever code the file names. So a bundle is unpickled
only once the SHA-256 of its bytes matches the one its manifest (meta.json) recorded when it was
saved: a bundle that was changed, swapped or half-written since is refused unread."""

from __future__ import annotations

import hashlib
import io
import json
import os
from pathlib import Path
from typing import TYPE_CHECKING

from leadx.platform.config import ConfigError

if TYPE_CHECKING:
    from leadx.scoring.models import ModelBundle

PRIOR = Path(__file__).with_name("prior")
RETRAIN = "train a new one with `leadx scoring train`"


class BundleRefused(ConfigError):
    """A model bundle that is not loaded: its bytes do not match its manifest's hash, or it has no
    manifest or no hash to check them against. A ConfigError: the bundle `SCORING_MODELS` names
    must change, like a setting."""


def bundle_folder(path: Path) -> Path:
    """A bundle's own folder: `path` itself, or the current one of a registry folder."""
    if (path / "current").exists():
        return path / (path / "current").read_text().strip()
    return path


def load(path: Path) -> ModelBundle:
    """A bundle from its own folder, or the current one of a registry folder; BundleRefused, before
    anything is unpickled, unless its bytes match its manifest's hash."""
    import joblib

    from leadx.scoring.models import ModelBundle

    path = bundle_folder(path)
    pickled = verified_bytes(path)
    # Unpickled from the bytes just checked, not read again: the file may change meanwhile.
    bundle = joblib.load(io.BytesIO(pickled))
    if not isinstance(bundle, ModelBundle):
        raise BundleRefused(f"{path / 'model.joblib'} is not a leadx model bundle")
    return bundle


def verified_bytes(folder: Path) -> bytes:
    """The bytes of a bundle's model.joblib, once their SHA-256 matches the manifest's."""
    from leadx.scoring.models import MODEL_SHA256

    model, manifest = folder / "model.joblib", folder / "meta.json"
    if not folder.is_dir():
        raise BundleRefused(f"no model bundle at {folder}")
    try:
        expected = json.loads(manifest.read_text()).get(MODEL_SHA256)
    except FileNotFoundError:
        raise BundleRefused(f"{folder} has no meta.json, so its model cannot be checked: refused; {RETRAIN}") from None
    except (OSError, ValueError, AttributeError) as exc:
        raise BundleRefused(f"{manifest} is unreadable ({exc}), so its model cannot be checked: refused") from None
    if not isinstance(expected, str) or not expected:
        raise BundleRefused(f"{manifest} records no {MODEL_SHA256}, so {model} cannot be checked: refused "
                            f"(bundles saved before leadx checked them have none); {RETRAIN}")
    try:
        pickled = model.read_bytes()
    except OSError as exc:
        raise BundleRefused(f"{model} is unreadable: {exc.strerror or exc}") from None
    found = hashlib.sha256(pickled).hexdigest()
    if found != expected:
        raise BundleRefused(f"{model} has SHA-256 {found} but its manifest records {expected}: it changed after it "
                            f"was saved, so it is refused unread; {RETRAIN}")
    return pickled


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
