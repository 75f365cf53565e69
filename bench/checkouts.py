"""Another revision of this repository's code, checked out beside it for a bench to run: a bench's
baseline can then be the services of an earlier commit, run in the same bench run as this
checkout's (bench/sustained.py --baseline-code), so a drift of the machine weighs on both.

The checkout is a git worktree in a temporary directory, detached at the commit, removed afterwards;
it shares this checkout's virtual environment (its services are started with this interpreter, in
its directory, so they import its leadx and services first: leadx.dev.stack's `code_dir`). Only the
services' code differs: the bench's own code, the buyers and the load generator are this checkout's,
and so are the libraries, so a revision that needs other ones cannot be compared this way.
"""

from __future__ import annotations

import contextlib
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _git(*args: str) -> str:
    return subprocess.run(["git", "-C", str(ROOT), *args], check=True, capture_output=True,
                          text=True).stdout.strip()


def commit_of(revision: str) -> str:
    """The full commit id a revision names; ValueError when it names none."""
    try:
        return _git("rev-parse", "--verify", "--quiet", f"{revision}^{{commit}}")
    except subprocess.CalledProcessError:
        raise ValueError(f"{revision!r} names no commit of {ROOT}") from None


def this_checkout() -> dict[str, object]:
    """The commit this checkout is at, and whether its files differ from it (the figures are then
    of code no commit holds)."""
    return {"commit": _git("rev-parse", "HEAD"), "uncommitted_changes": bool(_git("status", "--porcelain"))}


@contextlib.contextmanager
def checkout(revision: str) -> Iterator[tuple[Path, str]]:
    """A worktree of `revision` and its commit id, removed on leaving."""
    commit = commit_of(revision)
    directory = Path(tempfile.mkdtemp(prefix="leadx-code-")) / commit[:12]
    _git("worktree", "add", "--detach", str(directory), commit)
    try:
        yield directory, commit
    finally:
        _git("worktree", "remove", "--force", str(directory))
        with contextlib.suppress(OSError):
            directory.parent.rmdir()
