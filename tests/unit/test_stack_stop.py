"""LocalStack.stop_services on real processes: every service is told to stop before any is waited for
(each drains on its own, so one after another only added their drains up), and one that overstays
its stop timeout is killed."""

from __future__ import annotations

import signal
import sys
from pathlib import Path

from leadx.dev.stack import LocalStack, ManagedProcess
from tests.conftest import poll_until

# Notes when SIGTERM came and when it left, after a drain of a second.
DRAINER = """
import signal, sys, time
def drain(*_):
    with open(sys.argv[1], "a") as marks:
        marks.write(f"term {time.time()}\\n")
    time.sleep(1.0)
    with open(sys.argv[1], "a") as marks:
        marks.write(f"exit {time.time()}\\n")
    sys.exit(0)
signal.signal(signal.SIGTERM, drain)
print("up", flush=True)
time.sleep(120)
"""
STUBBORN = ("import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); print('up', flush=True);"
            " time.sleep(120)")


def started(stack: LocalStack, name: str, args: list[str], **options) -> ManagedProcess:
    process = ManagedProcess(name, args, {}, stack.run_dir / "logs" / f"{name}.log", **options)
    process.start()
    stack.services[name] = process
    return process


def wait_up(stack: LocalStack) -> None:
    poll_until(lambda: all(p.log_path.exists() and "up" in p.log_path.read_text() for p in stack.services.values()),
               message="every process up, its SIGTERM handler set")


def test_every_service_is_told_to_stop_before_any_is_waited_for(tmp_path: Path):
    stack = LocalStack(tmp_path)
    marks = {name: tmp_path / f"{name}.marks" for name in ("intake", "dedup", "ledger")}
    for name, path in marks.items():
        started(stack, name, [sys.executable, "-c", DRAINER, str(path)])
    wait_up(stack)

    stack.stop_services()

    times = {name: dict((kind, float(at)) for kind, at in (line.split() for line in path.read_text().splitlines()))
             for name, path in marks.items()}
    first_done = min(seen["exit"] for seen in times.values())
    assert all(seen["term"] < first_done for seen in times.values()), times  # all told before one had drained
    assert [process.exit_code() for process in stack.services.values()] == [0, 0, 0]


def test_a_service_that_overstays_its_stop_timeout_is_killed(tmp_path: Path):
    stack = LocalStack(tmp_path)
    stubborn = started(stack, "stubborn", [sys.executable, "-c", STUBBORN], stop_timeout_s=0.5)
    wait_up(stack)

    stack.stop_services()

    assert stubborn.exit_code() == -signal.SIGKILL
