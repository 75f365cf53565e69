"""The settings of the exchange `make run` (`leadx run`) started, for the `leadx` commands run beside it.

`leadx run` writes them to `exchange.env` in its run folder (`.leadx/` by default), readable by its
owner only (it holds the admin key and the PII key), and removes the file when it stops. A `leadx`
command run from the project (the folder holding `.leadx/`, or one below it), or with `LEADX_ENV`
naming such a file, takes from it every setting the environment does not give, and says on stderr
which exchange it talks to. A file whose `leadx run` is no longer running is ignored, with a note;
`LEADX_ENV=off` ignores any.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, MutableMapping
from pathlib import Path

FILE_NAME = "exchange.env"
ENV_VARIABLE = "LEADX_ENV"
OFF = "off"  # LEADX_ENV=off: use the environment only (the test suite does, beside a developer's make run)
RUN_PID = "LEADX_RUN_PID"  # the `leadx run` that wrote the file; not a setting of the exchange


def write(run_dir: Path, settings: Mapping[str, str]) -> Path:
    """The file, owner-only from its first byte, one `NAME=value` per line."""
    path = run_dir / FILE_NAME
    path.unlink(missing_ok=True)
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    lines = [f"{RUN_PID}={os.getpid()}", *(f"{name}={value}" for name, value in settings.items())]
    with os.fdopen(descriptor, "w") as out:
        out.write("\n".join(lines) + "\n")
    return path


def read(path: Path) -> dict[str, str]:
    settings = {}
    for line in path.read_text().splitlines():
        name, separator, value = line.partition("=")
        if separator and name.strip() and not name.startswith("#"):
            settings[name.strip()] = value
    return settings


def find(start: Path, environ: Mapping[str, str]) -> Path | None:
    """`LEADX_ENV` when set (`off`: none), else `.leadx/exchange.env` in `start` or the nearest folder
    above it."""
    if environ.get(ENV_VARIABLE) == OFF:
        return None
    if environ.get(ENV_VARIABLE):
        return Path(environ[ENV_VARIABLE])
    for folder in (start, *start.parents):
        candidate = folder / ".leadx" / FILE_NAME
        if candidate.is_file():
            return candidate
    return None


def running(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # it runs, as someone else
    return True


def apply(environ: MutableMapping[str, str], start: Path) -> str | None:
    """Fill `environ` with the running exchange's settings it lacks (a variable set, even to an empty
    value, wins). Returns the line to show the user, or None when no exchange file was found."""
    path = find(start, environ)
    if path is None:
        return None
    if not path.is_file():
        return f"leadx: {ENV_VARIABLE} names {path}, which does not exist; using the environment only"
    settings = read(path)
    pid = settings.pop(RUN_PID, "")
    if pid.isdigit() and not running(int(pid)):
        return f"leadx: {path} is left from a `leadx run` that is no longer running; ignored"
    taken = [name for name in settings if name not in environ]
    for name in taken:
        environ[name] = settings[name]
    where = settings.get("INTAKE_URL", "?")
    return f"leadx: using the exchange `make run` started ({path}; intake {where}; {len(taken)} settings from it)"
