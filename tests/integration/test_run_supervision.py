"""`leadx run` (make run) keeps running when a part stalls or dies: a broker paused for 15 seconds and
a service killed with SIGKILL are printed, the service is started again, and leads sell again."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest


pytestmark = pytest.mark.integration

STALL_S = 15


class RunningExchange:
    """`leadx run` as a subprocess, its output collected line by line as it comes."""

    def __init__(self, run_dir: Path) -> None:
        env = {k: v for k, v in os.environ.items() if k not in {"KAFKA_BOOTSTRAP_SERVERS", "REDIS_URL", "DATABASE_URL"}}
        self.process = subprocess.Popen(
            [sys.executable, "-m", "leadx.cli.main", "run", "--rate", "4", "--window", "1", "--seed", "5",
             "--run-dir", str(run_dir)],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env)
        self.lines: list[str] = []
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.lines.append(line.rstrip("\n"))

    def wait_for(self, text: str, since: int = 0, timeout_s: float = 120) -> int:
        """The index of the first line from `since` on that contains `text`."""
        deadline = time.monotonic() + timeout_s
        while True:
            for index in range(since, len(self.lines)):
                if text in self.lines[index]:
                    return index
            if time.monotonic() > deadline or self.process.poll() is not None:
                raise AssertionError(f"no {text!r} in leadx run's output after {timeout_s}s:\n{self.tail()}")
            time.sleep(0.2)

    def tail(self) -> str:
        return "\n".join(self.lines[-40:])

    def child(self, marker: str) -> int:
        """The pid of the process `leadx run` started whose command line contains `marker`."""
        for pid in filter(str.isdigit, os.listdir("/proc")):
            try:
                parent = int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])
                command = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
            except (OSError, IndexError, ValueError):
                continue
            if parent == self.process.pid and marker in command:
                return int(pid)
        raise AssertionError(f"leadx run has no child process running {marker}")


def test_leadx_run_rides_out_a_stalled_broker_and_a_killed_service(tmp_path):
    run = RunningExchange(tmp_path)
    try:
        ready = run.wait_for("exchange ready", timeout_s=180)
        run.wait_for("SOLD ", since=ready)

        broker = run.child("tansu")
        stalled = len(run.lines)
        os.kill(broker, signal.SIGSTOP)
        time.sleep(STALL_S)
        os.kill(broker, signal.SIGCONT)
        assert run.process.poll() is None, run.tail()
        # The seller's calls meanwhile were held and timed out: each said so in one line, and it went on.
        run.wait_for("going on with the next lead", since=stalled, timeout_s=30)

        delivery = run.child("services.delivery.main")
        killed = len(run.lines)
        os.kill(delivery, signal.SIGKILL)
        reported = run.wait_for("leadx: delivery exited on its own (killed by signal 9)", since=killed, timeout_s=30)
        assert run.lines[reported + 1].startswith("leadx:   | ")  # the last lines of its log follow
        restarted = run.wait_for("leadx: starting delivery again (1 of 3)", since=reported, timeout_s=10)
        assert run.child("services.delivery.main") != delivery
        run.wait_for("SOLD ", since=restarted, timeout_s=180)  # leads sell again, through the new delivery
        assert run.process.poll() is None, run.tail()
    finally:
        run.process.send_signal(signal.SIGINT)  # Ctrl-C: the only way the demo ends without --leads
        code = run.process.wait(90)
    assert code == 0, run.tail()
    assert any(line.startswith("leadx: leads in") for line in run.lines), run.tail()
    assert "leadx: stopping services, broker and Redis ..." in run.lines
