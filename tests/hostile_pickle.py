"""A stand-in for a hostile model bundle: a pickle whose loading runs code of its choosing. Here the
code only creates a file, so a test can tell whether anything unpickled it."""

from __future__ import annotations

from pathlib import Path

import joblib


class CreatesAFile:
    """Unpickling it opens `path` for writing, which creates the file."""

    def __init__(self, path: Path) -> None:
        self.path = str(path)

    def __reduce__(self):
        return open, (self.path, "w")


def swap_in(bundle_folder: Path, trap: Path) -> None:
    """Replace a bundle's model.joblib, leaving its manifest as it was."""
    joblib.dump(CreatesAFile(trap), bundle_folder / "model.joblib", compress=3)
