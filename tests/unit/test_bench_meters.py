"""bench/meters.py: the threads woken, per process, that bench/sustained.py reports a sold lead."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
import time
from pathlib import Path

_SPEC = importlib.util.spec_from_file_location(
    "bench_meters", Path(__file__).resolve().parents[2] / "bench" / "meters.py")
assert _SPEC is not None and _SPEC.loader is not None
meters = importlib.util.module_from_spec(_SPEC)
_SPEC.loader.exec_module(meters)

# On its first line a thread sleeps 200 times (each a block, so a voluntary switch and a wake),
# then waits, alive, until the second line.
SLEEPER = """
import sys, threading, time
done = threading.Event()
def sleeps():
    for _ in range(200):
        time.sleep(0.001)
    done.wait()
sys.stdin.readline()
threading.Thread(target=sleeps).start()
sys.stdin.readline()
done.set()
"""


def _line(process: subprocess.Popen) -> None:
    assert process.stdin is not None
    process.stdin.write("\n")
    process.stdin.flush()


def _counted(process: subprocess.Popen, roots: dict) -> dict:
    time.sleep(0.5)  # the interpreter started and waits for its first line
    tree = meters.SwitchTree(roots)
    _line(process)
    time.sleep(1.5)  # the 200 sleeps are over; the thread is alive
    try:
        return tree.stop()
    finally:
        _line(process)
        process.wait(10)


def test_a_thread_that_blocks_200_times_is_counted_woken_200_times_in_its_process() -> None:
    process = subprocess.Popen([sys.executable, "-c", SLEEPER], stdin=subprocess.PIPE, text=True)
    voluntary, involuntary = _counted(process, {"sleeper": (process.pid, False)})["sleeper"]
    assert 200 <= voluntary < 400  # its main thread woke once more, to read the line
    assert involuntary >= 0


def test_descendants_count_only_where_asked() -> None:
    # A shell whose child is the sleeper, the shell waiting for it (one wake, at the end).
    parent = subprocess.Popen(["sh", "-c", '"$0" -c "$1"; true', sys.executable, SLEEPER],
                              stdin=subprocess.PIPE, text=True)
    counted = _counted(parent, {"with": (parent.pid, True), "without": (parent.pid, False)})
    assert counted["with"][0] >= 200
    assert counted["without"][0] < 10


def test_thread_switches_reads_each_live_thread_of_a_process() -> None:
    process = subprocess.Popen([sys.executable, "-c", SLEEPER], stdin=subprocess.PIPE, text=True)
    try:
        time.sleep(0.5)
        _line(process)
        time.sleep(1.0)
        counts = meters.thread_switches(process.pid)
        assert len(counts) == 2  # the main thread and the sleeper
        assert max(voluntary for voluntary, _ in counts.values()) >= 200
    finally:
        _line(process)
        process.wait(10)
    assert meters.thread_switches(process.pid) == {}  # gone: nothing to read


def test_cpu_counts_a_busy_descendant_only_where_asked() -> None:
    # A shell whose child spins for half a second of CPU.
    spin = "import time\nend = time.process_time() + 0.5\nwhile time.process_time() < end: pass"
    parent = subprocess.Popen(["sh", "-c", '"$0" -c "$1"; sleep 2', sys.executable, spin])
    try:
        tree = meters.CpuTree({"with": (parent.pid, True), "without": (parent.pid, False)})
        time.sleep(1.5)  # the child has spun and exited, reaped by the shell
        used = tree.stop()
        assert used["with"] >= 0.3
        assert used["without"] < 0.1
    finally:
        parent.wait(10)
