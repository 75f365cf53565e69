"""The edit that breaks a copy of deploy/k8s on purpose (the copy: the `manifests` fixture in conftest)."""

from __future__ import annotations

from pathlib import Path


def edit(path: Path, old: str, new: str) -> None:
    text = path.read_text()
    assert old in text, f"{old!r} not in {path}"
    path.write_text(text.replace(old, new, 1))
