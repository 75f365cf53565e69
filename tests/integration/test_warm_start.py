"""The tests' warm launcher (leadx/dev/warm_start.py): a service forked from it finds its process as
a fresh `python -m` would (environment, working directory, session, files, exit codes, signals),
and a start it cannot serve as such goes to subprocess as before."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from leadx.dev import warm_start
from leadx.dev.stack import ManagedProcess
from tests.conftest import poll_until

PROBE = [sys.executable, "-m", "tests.warm_probe"]


def probe(tmp_path: Path, name: str, **env: str) -> ManagedProcess:
    environment = {**os.environ, "PYTHONUNBUFFERED": "1", "PROBE_VALUE": "given", **env}
    environment.pop("PROBE_UNSET", None)
    return ManagedProcess(name, PROBE, environment, tmp_path / f"{name}.log")


def facts_of(process: ManagedProcess) -> dict:
    line = poll_until(lambda: process.log_path.exists() and process.log_path.read_text().split("\n", 1)[0],
                      timeout_s=20, message=f"{process.name}'s first line")
    return json.loads(str(line))


def test_a_forked_service_finds_its_process_as_a_fresh_interpreter_would(warm, tmp_path, monkeypatch):
    monkeypatch.setenv("PROBE_UNSET", "the test process's, not the service's")
    forked = probe(tmp_path, "forked", PROBE_THEN="wait", PROBE_ON_TERM="exit")
    forked.start()
    assert isinstance(forked.process, warm_start.ForkedProcess)
    stat = Path(f"/proc/{forked.process.pid}/stat").read_text()
    assert int(stat.rsplit(")", 1)[1].split()[1]) == os.getpid()  # reparented here, so waited for here
    hot = facts_of(forked)
    poll_until(lambda: "waiting" in forked.log_path.read_text(), timeout_s=20)  # its SIGTERM handler is set
    forked.stop()
    assert forked.exit_code() == 0
    fresh = subprocess.run(PROBE, env={**forked.env, "PROBE_THEN": "exit:0"}, stdin=subprocess.DEVNULL,
                           capture_output=True, text=True, timeout=60, check=True, start_new_session=True)
    cold = json.loads(fresh.stdout.splitlines()[0])

    assert hot["leadx_modules"] == ["leadx.dev"]  # the launcher's package; none of leadx's code
    assert cold["leadx_modules"] == []
    del hot["leadx_modules"], cold["leadx_modules"]
    assert hot == cold == {
        "name": "__main__", "argv0": "warm_probe.py", "cwd": os.getcwd(),
        "env": {"PROBE_VALUE": "given", "PROBE_UNSET": None, "PYTHONUNBUFFERED": "1"},
        "own_session": True, "stdin": "", "gc_enabled": True, "threads": 1}


def test_exit_codes_and_signals_come_back_as_popen_gives_them(warm, tmp_path):
    cases = {"three": probe(tmp_path, "three", PROBE_THEN="exit:3"),
             "raises": probe(tmp_path, "raises", PROBE_THEN="raise"),
             "killed": probe(tmp_path, "killed", PROBE_THEN="wait"),
             "stopped": probe(tmp_path, "stopped", PROBE_THEN="wait", PROBE_ON_TERM="exit")}
    for process in cases.values():
        process.start()
        assert isinstance(process.process, warm_start.ForkedProcess)
    assert cases["three"].process.wait(20) == 3
    assert cases["raises"].process.wait(20) == 1
    assert "RuntimeError: the probe failed as asked" in cases["raises"].log_path.read_text()

    for name in ("killed", "stopped"):
        poll_until(lambda name=name: "waiting" in cases[name].log_path.read_text(), timeout_s=20)
        assert cases[name].alive()
    with pytest.raises(subprocess.TimeoutExpired):
        cases["killed"].process.wait(0.2)
    cases["killed"].signal(signal.SIGKILL)
    assert cases["killed"].process.wait(20) == -signal.SIGKILL
    cases["stopped"].stop()  # SIGTERM, handled
    assert cases["stopped"].exit_code() == 0 and not cases["stopped"].alive()
    cases["stopped"].signal(signal.SIGTERM)  # ended and reaped: nothing is sent to a pid reused since


def test_a_start_with_other_startup_variables_or_command_goes_to_subprocess(warm, tmp_path):
    for name, variable, value in (("flags", "PYTHONWARNINGS", "error"), ("zone", "TZ", "Asia/Tokyo"),
                                  ("metrics", "PROMETHEUS_MULTIPROC_DIR", str(tmp_path))):
        other = probe(tmp_path, name, **{variable: value})
        other.start()
        assert isinstance(other.process, subprocess.Popen), variable
        assert other.process.wait(60) == 0

    not_a_module = ManagedProcess("script", [sys.executable, "-c", "print('plain')"], dict(os.environ),
                                  tmp_path / "script.log")
    not_a_module.start()
    assert isinstance(not_a_module.process, subprocess.Popen)
    assert not_a_module.process.wait(60) == 0 and not_a_module.log_path.read_text() == "plain\n"


@pytest.mark.parametrize(("module", "said"), [
    ("leadx.platform.metrics", "imported leadx's modules ['leadx.platform"),  # its metrics: in every child
    # as numpy's OpenBLAS pool does: a child would inherit the pool's locks without its threads
    ("tests.thread_at_import", "started threads (2 in all)"),
])
def test_the_launcher_refuses_preloads_that_import_leadx_or_start_threads(module, said):
    script = f"from leadx.dev import warm_start as w; w.PRELOADED = ({module!r},); w._preload()"
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
    assert result.returncode == 1 and said in result.stderr
