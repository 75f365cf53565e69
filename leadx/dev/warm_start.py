"""Start Python services by forking a process that has already imported their libraries.

A service started as `python -m services.<name>.main` spends 0.7 to 2 s of CPU importing before it
does anything (SQLAlchemy, redis, aiokafka, faust, aiohttp, starlette, protobuf, OpenTelemetry...),
and the test suite starts about a hundred of them on two cores. The launcher here imports those
libraries once; each start is then a fork of it in which the child takes the environment, working
directory, log file and session the start asks for, and runs the service's module as `python -m`
would. The service is the same code in a process of its own, talking over the same sockets.

What the launcher imports before forking is third-party only, and checked: a leadx module imported
there could have read its environment, or registered metrics in prometheus_client's default
registry, that every child would then share; a library that starts threads (numpy's OpenBLAS does,
so scoring's scikit-learn stays out) would leave its children with locks held by threads that are
not there. A start whose interpreter would differ (another executable, or other values of the
variables read once at start: PYTHON*, the locale, TZ, those the preloaded libraries read at import)
does not come here: `ManagedProcess` starts it with `subprocess.Popen` as before. What does differ:
`ps` shows every forked service as `python -m leadx.dev.warm_start` (its log and port tell them
apart), and they share the launcher's hash seed (`random` is seeded again in each child).

The children are reparented to the process that asked for them (it becomes a child subreaper, a
Linux feature), so it waits for them and reads their exit codes as it would its own children's.
Being a subreaper, it also adopts the orphans of its other descendants (the postmaster `pg_ctl`
leaves, the children of a service it killed): they stay zombies until it exits, which is harmless
for a test session. The flag is cleared with the launcher (`disable()`).
Only the tests use this (tests/conftest.py calls `enable()`); `leadx run` starts its services as
deployments do, each a fresh interpreter."""

from __future__ import annotations

import ctypes
import gc
import importlib
import json
import os
import runpy
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

# The libraries every service, or several, import (measured with `python -X importtime`).
PRELOADED = (
    "aiokafka", "aiohttp", "cryptography.fernet", "defusedxml.ElementTree", "faust", "google.protobuf.message",
    "grpc", "hiredis", "jinja2", "opentelemetry.sdk.trace", "opentelemetry.exporter.otlp.proto.http.trace_exporter",
    "prometheus_client", "psutil", "python_multipart", "redis.asyncio", "redis.asyncio.cluster", "sqlalchemy",
    "sqlalchemy.orm", "sqlalchemy.dialects.sqlite", "sqlalchemy.dialects.postgresql", "starlette.applications",
    "starlette.routing", "uvicorn", "uvloop", "zipcodes",
)
_PR_SET_CHILD_SUBREAPER = 36  # linux/prctl.h


# Read once, when the interpreter starts or a preloaded library is imported: a fork keeps the
# launcher's. (PYTHON*, the locale's LC_* and LANG are matched by prefix.)
STARTUP_VARIABLES = frozenset({
    "TZ", "PROMETHEUS_MULTIPROC_DIR", "PROMETHEUS_DISABLE_CREATED_SERIES", "OTEL_PYTHON_CONTEXT",
    "FAUST_LOOP", "F_LOOP", "FAUST_DATADIR", "F_DATADIR"})


def startup_variables(env: dict[str, str]) -> dict[str, str]:
    """The variables a fork of the launcher would take from the launcher rather than from `env`."""
    return {key: value for key, value in env.items()
            if key.startswith(("PYTHON", "LC_")) or key == "LANG" or key in STARTUP_VARIABLES}


def one_line(text: str) -> str:
    """An answer on the launcher's pipe is one line (an error's text may hold newlines)."""
    return " ".join(text.splitlines())


# --- the launcher: `python -m leadx.dev.warm_start` -------------------------------------------


def _preload() -> None:
    for name in PRELOADED:
        try:
            importlib.import_module(name)
        except ImportError:
            pass  # a library this install lacks: its services import it themselves (and fail as they would)
    # The US ZIP list (42,000 records the intake, the auction's selection and scoring each read at
    # start: 0.3 to 1 s of CPU), read once here and kept by the library in a module global.
    zipcodes = sys.modules.get("zipcodes")
    if zipcodes is not None:
        zipcodes.list_all()
    own = {"leadx", "leadx.dev", __name__, "leadx.dev.warm_start"}  # this module and its (docstring-only) packages
    leaked = sorted(name for name in sys.modules if name.split(".")[0] in ("leadx", "services") and name not in own)
    threads = max(len(os.listdir("/proc/self/task")), threading.active_count())
    problems = ([f"imported leadx's modules {leaked}"] if leaked else []) + (
        [f"started threads ({threads} in all)"] if threads > 1 else [])
    if problems:
        raise SystemExit(f"warm_start: the preloaded libraries {' and '.join(problems)}: a fork of this "
                         "process would not give each service a clean start")
    # Out of the collector's sight: a child's collections would otherwise walk (and so copy, page
    # by page) every object it shares with the launcher.
    gc.freeze()


def _serve() -> None:
    """Read one start per line on stdin, answer each with the service's pid (or an error) on stdout."""
    requests = os.fdopen(0, "rb", buffering=0)
    os.write(1, b"ready\n")
    line = b""
    while True:
        chunk = requests.read(65536)
        if not chunk:
            return  # the process that asked is gone
        line += chunk
        while b"\n" in line:
            request, line = line.split(b"\n", 1)
            try:
                answer = _fork(json.loads(request))
            except (OSError, ValueError, KeyError) as error:
                answer = f"error: {error}"
            os.write(1, one_line(answer).encode() + b"\n")


def _fork(request: dict) -> str:
    """Fork twice: the service's parent exits at once, so the service is reparented to the
    subreaper that asked for it. Returns its pid, as the service itself reports it."""
    read_end, write_end = os.pipe()
    middle = os.fork()
    if middle == 0:
        os.close(read_end)
        try:
            service = os.fork()
        except OSError:
            os._exit(1)
        if service == 0:
            _become(request, write_end)  # does not return
        os._exit(0)
    os.close(write_end)
    os.waitpid(middle, 0)
    with os.fdopen(read_end, "rb") as report:
        answer = report.read().decode()
    return answer or "error: the service's process did not start"


def _become(request: dict, report: int) -> None:
    """In the forked child: take the start's session, files and environment, report the pid on
    `report`, and run the module."""
    try:
        os.setsid()
        log = os.open(request["log"], os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        null = os.open(os.devnull, os.O_RDONLY)
        os.dup2(null, 0)
        os.dup2(log, 1)
        os.dup2(log, 2)
        os.close(log)
        os.close(null)
        os.chdir(request["cwd"])
        os.environ.clear()
        os.environ.update(request["env"])
        sys.stdin = open(0, encoding="utf-8", closefd=False)  # noqa: SIM115 - the process's own stdin
        sys.argv = [request["module"]]
        gc.enable()
    except BaseException as error:  # noqa: BLE001 - said to the asker, then gone
        os.write(report, one_line(f"error: {error}").encode())
        os._exit(1)
    os.write(report, str(os.getpid()).encode())
    os.close(report)
    # From here the process ends as `python -m` would: SystemExit and KeyboardInterrupt reach the
    # interpreter's top (nothing on the launcher's stack catches them), which then runs the atexit
    # handlers and waits for non-daemon threads; any other exception is printed, exit code 1.
    try:
        runpy.run_module(request["module"], run_name="__main__", alter_sys=True)
    except Exception:
        try:
            sys.excepthook(*sys.exc_info())
        finally:
            raise SystemExit(1) from None  # whatever the hook did: never back to the launcher's loop
    raise SystemExit(0)


# --- the asker's side -------------------------------------------------------------------------


class ForkedProcess:
    """A service the launcher forked, waited for as `subprocess.Popen` waits for its own."""

    def __init__(self, args: list[str], pid: int) -> None:
        self.args = args
        self.pid = pid
        self.returncode: int | None = None
        self._waitpid_lock = threading.Lock()  # one waitpid at a time, as Popen does

    def poll(self) -> int | None:
        with self._waitpid_lock:
            if self.returncode is None:
                try:
                    pid, status = os.waitpid(self.pid, os.WNOHANG)
                except ChildProcessError:
                    self.returncode = 0  # reaped by someone else: its status is lost (Popen says 0 too)
                else:
                    if pid:
                        self.returncode = os.waitstatus_to_exitcode(status)
            return self.returncode

    def wait(self, timeout: float | None = None) -> int:
        deadline = None if timeout is None else time.monotonic() + timeout
        while (code := self.poll()) is None:
            if deadline is not None and time.monotonic() >= deadline:
                raise subprocess.TimeoutExpired(self.args, timeout or 0)
            time.sleep(0.01)
        return code

    def send_signal(self, sig: int) -> None:
        if self.poll() is None:  # a reaped pid may be another process's by now
            os.kill(self.pid, sig)

    def terminate(self) -> None:
        self.send_signal(signal.SIGTERM)

    def kill(self) -> None:
        self.send_signal(signal.SIGKILL)


class _Launcher:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._process: subprocess.Popen | None = None
        self._env: dict[str, str] = {}

    def _started(self) -> subprocess.Popen:
        if self._process is None or self._process.poll() is not None:
            _set_child_subreaper(True)
            self._env = {**os.environ, "PYTHONUNBUFFERED": "1"}  # as LocalStack starts its services
            # A session of its own: a Ctrl-C in the terminal is for the tests, not for it.
            self._process = subprocess.Popen([sys.executable, "-m", __name__], env=self._env, stdin=subprocess.PIPE,
                                             stdout=subprocess.PIPE, start_new_session=True)
            assert self._process.stdout is not None
            first = self._process.stdout.readline()
            if first != b"ready\n":
                self._discard()
                raise RuntimeError(f"warm_start: the launcher did not start (it said {first!r})")
        return self._process

    def _discard(self) -> None:
        """Kill the launcher (the services it forked go on). The next start begins a new one."""
        if self._process is not None:
            self._process.kill()
            self._process.wait(10)
            self._process = None

    def start(self, args: list[str], env: dict[str, str], log_path: Path,
              cwd: Path | None = None) -> ForkedProcess | None:
        """The service `args` would start with `env`, forked; None when a fork would not be the
        interpreter those would start (another command, or other startup variables), or when it is
        to start in a directory of its own (`cwd`: another checkout's code, which a fork of this
        launcher, whose leadx package is this checkout's, would not import)."""
        if len(args) != 3 or args[:2] != [sys.executable, "-m"] or cwd is not None:
            return None
        request = {"module": args[2], "env": env, "cwd": os.getcwd(), "log": str(log_path.resolve())}
        with self._lock:
            process = self._started()
            if startup_variables(env) != startup_variables(self._env):
                return None
            assert process.stdin is not None and process.stdout is not None
            try:
                process.stdin.write(json.dumps(request).encode() + b"\n")
                process.stdin.flush()
                answer = process.stdout.readline().decode().strip()
            except BaseException:
                # Interrupted (a test's timeout, Ctrl-C) between the request and its answer: that
                # answer would be read by the next start. A launcher in step or none at all.
                self._discard()
                raise
        if not answer.isdigit():
            raise RuntimeError(f"warm_start: {args[2]} did not start: {answer or 'the launcher exited'}")
        return ForkedProcess(args, int(answer))

    def stop(self) -> None:
        with self._lock:
            if self._process is not None:
                self._process.stdin.close()  # type: ignore[union-attr]
                try:
                    self._process.wait(10)
                except subprocess.TimeoutExpired:
                    self._discard()
                self._process = None
                _set_child_subreaper(False)


def _set_child_subreaper(on: bool) -> None:
    if ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_CHILD_SUBREAPER, int(on), 0, 0, 0) != 0:
        raise OSError(ctypes.get_errno(), "prctl(PR_SET_CHILD_SUBREAPER)")


_launcher: _Launcher | None = None


def enable() -> None:
    """Start this process's services (`ManagedProcess` with `python -m`) from a warm launcher."""
    global _launcher
    if _launcher is None:
        _launcher = _Launcher()


def disable() -> None:
    global _launcher
    if _launcher is not None:
        _launcher.stop()
        _launcher = None


def launcher() -> _Launcher | None:
    """The launcher when `enable()` was called in this process, else None."""
    return _launcher


if __name__ == "__main__":
    gc.disable()  # as the gc documentation advises before a fork server's forks: see _preload
    _preload()
    _serve()
