"""What each process of a bench's exchange used between two moments: its CPU (`CpuTree`) and its
threads' context switches (`SwitchTree`), each with its descendants where asked (PostgreSQL's backends).

A voluntary switch is a thread that blocked (on a socket, a timer, a lock) and is woken again. On
this machine a wake costs a process about 0.05 to 0.2 ms of CPU whatever it then does
(bench/README.md, `bench/hop.py`: a process woken by a timer and doing nothing else), so where a
process sleeps between a lead's records its cost a lead follows how often the lead wakes it. Where
it hardly sleeps (delivery and the auction at the machine's limit) its cost is its own work, and
its preemptions (involuntary switches) say the cores were full.
"""

from __future__ import annotations

import contextlib
from pathlib import Path

import psutil


class _ProcessTrees:
    """Named processes, `(pid, with_descendants)` each, measured from here to `stop`."""

    def __init__(self, processes: dict[str, tuple[int, bool]]) -> None:
        self.roots = {name: (psutil.Process(pid), children) for name, (pid, children) in processes.items()}

    @staticmethod
    def _members(process: psutil.Process, children: bool) -> list[psutil.Process]:
        """The process and, where asked, its live descendants."""
        members = [process]
        if children:
            with contextlib.suppress(psutil.NoSuchProcess):
                members += process.children(recursive=True)
        return members


class CpuTree(_ProcessTrees):
    """CPU seconds (user and system, every thread) each process used from here to `stop`; with its
    descendants where asked, live or exited (an exited child counts through the parent that reaped it)."""

    def __init__(self, processes: dict[str, tuple[int, bool]]) -> None:
        super().__init__(processes)
        self.started = {name: self._used(process, children) for name, (process, children) in self.roots.items()}

    @classmethod
    def _used(cls, process: psutil.Process, children: bool) -> float:
        try:
            times = process.cpu_times()
        except psutil.NoSuchProcess:
            return 0.0
        used = times.user + times.system + (times.children_user + times.children_system if children else 0.0)
        for child in cls._members(process, children)[1:]:
            with contextlib.suppress(psutil.NoSuchProcess):
                child_times = child.cpu_times()
                used += child_times.user + child_times.system
        return used

    def stop(self) -> dict[str, float]:
        return {name: max(0.0, self._used(process, children) - self.started[name])
                for name, (process, children) in self.roots.items()}


class SwitchTree(_ProcessTrees):
    """Context switches each process's threads made from here to `stop` (with its descendants'
    where asked), voluntary and not. A voluntary one is a thread that blocked (on a socket, a timer,
    a lock) and is woken again: the wakes a sold lead. An involuntary one is a thread preempted: the
    cores were wanted by another. Read per thread from /proc/<pid>/task/*/status (/proc/<pid>/status
    counts the main thread's only): a thread that began in between counts whole, one that ended in
    between counts nothing (its last count is gone with it), so a process whose connections come
    and go (PostgreSQL's backends) is counted short by its ended ones' share."""

    def __init__(self, processes: dict[str, tuple[int, bool]]) -> None:
        super().__init__(processes)
        self.started = {name: self._threads(process, children) for name, (process, children) in self.roots.items()}

    @classmethod
    def _threads(cls, process: psutil.Process, children: bool) -> dict[int, tuple[int, int]]:
        counts: dict[int, tuple[int, int]] = {}
        for member in cls._members(process, children):
            counts.update(thread_switches(member.pid))
        return counts

    def stop(self) -> dict[str, tuple[int, int]]:
        """Per process, (voluntary, involuntary) switches since the start."""
        out = {}
        for name, (process, children) in self.roots.items():
            before, voluntary, involuntary = self.started[name], 0, 0
            for tid, (now_voluntary, now_involuntary) in self._threads(process, children).items():
                was_voluntary, was_involuntary = before.get(tid, (0, 0))
                voluntary += max(0, now_voluntary - was_voluntary)
                involuntary += max(0, now_involuntary - was_involuntary)
            out[name] = (voluntary, involuntary)
        return out


def thread_switches(pid: int) -> dict[int, tuple[int, int]]:
    """Per live thread of the process, its (voluntary, involuntary) context switches."""
    counts = {}
    for status in Path(f"/proc/{pid}/task").glob("*/status"):
        voluntary = involuntary = 0
        try:
            lines = status.read_text().splitlines()
        except OSError:  # the thread ended while its siblings were read
            continue
        for line in lines:
            if line.startswith("voluntary_ctxt_switches:"):
                voluntary = int(line.split()[1])
            elif line.startswith("nonvoluntary_ctxt_switches:"):
                involuntary = int(line.split()[1])
        counts[int(status.parent.name)] = (voluntary, involuntary)
    return counts
