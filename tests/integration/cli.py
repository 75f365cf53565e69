"""The operator's `leadx` command as tests run it: in this process through the same `main` (a
process each cost ~1.2 s of imports), or as a real process where that is the point."""

from __future__ import annotations

import contextlib
import io
import os
import subprocess
import sys

from leadx.cli.main import main


def leadx(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    """`leadx <args>` as an operator runs it, answered as a process would be: exit code, stdout, stderr."""
    out, err = io.StringIO(), io.StringIO()
    saved = dict(os.environ)
    os.environ.update(env or {})
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            try:
                code = main(list(args))
            except SystemExit as exc:  # as the interpreter would exit: a message is printed, then 1
                code = exc.code if isinstance(exc.code, int) else 0 if exc.code is None else 1
                if not isinstance(exc.code, int | None):
                    print(exc.code, file=sys.stderr)
    finally:
        os.environ.clear()
        os.environ.update(saved)
    return subprocess.CompletedProcess(["leadx", *args], code, out.getvalue(), err.getvalue())


def leadx_process(*args: str, env: dict[str, str] | None = None, timeout: float = 60) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "leadx.cli.main", *args], capture_output=True, text=True,
                          env={**os.environ, **(env or {})}, timeout=timeout)
