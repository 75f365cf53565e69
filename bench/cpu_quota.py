"""A CPU quota for one process, through the kernel's control groups: a small node on a big machine.

A process placed in a group with a quota of `cores` gets at most `cores` × 100 ms of CPU in each
100 ms (the CFS bandwidth controller), however many threads it runs; beyond that its threads wait
for the next period, as on a node of that size. Threads and children it starts later stay in the
group. Both hierarchies are handled: cgroup v2 (`cpu.max` in a group under /sys/fs/cgroup whose
parent delegates the cpu controller) and cgroup v1 (`cpu.cfs_quota_us` under /sys/fs/cgroup/cpu).
It needs write access to them (root, or a delegated subtree); `available()` says why not when it
cannot. `taskset` is no substitute: it pins to whole cores, not fractions of one."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

CGROUP_ROOT = Path("/sys/fs/cgroup")
PERIOD_US = 100_000
GROUP_PREFIX = "leadx-bench-"


@dataclass(frozen=True)
class Hierarchy:
    base: Path  # the groups are made here
    version: int  # 1 or 2


def hierarchy() -> Hierarchy | None:
    """Where this machine lets a CPU quota be set, or None."""
    v1 = CGROUP_ROOT / "cpu"
    if (v1 / "cpu.cfs_quota_us").exists() and os.access(v1, os.W_OK):
        return Hierarchy(v1, 1)
    controllers = CGROUP_ROOT / "cgroup.subtree_control"
    if controllers.exists() and "cpu" in controllers.read_text().split() and os.access(CGROUP_ROOT, os.W_OK):
        return Hierarchy(CGROUP_ROOT, 2)
    return None


def available() -> str | None:
    """None when quotas can be set here, else why not."""
    if hierarchy() is not None:
        return None
    return (f"no writable cpu controller under {CGROUP_ROOT} (cgroup v1 {CGROUP_ROOT / 'cpu'} or v2 with "
            "'cpu' in cgroup.subtree_control): run as root, or in a container started with a writable "
            "cgroup namespace")


class CpuQuota:
    """One control group with a quota of `cores`; `add(pid)` moves a process (all its threads)
    into it; `close()` moves them back to the root group and removes it."""

    def __init__(self, name: str, cores: float) -> None:
        if cores <= 0:
            raise ValueError(f"a quota is a positive number of cores, not {cores}")
        found = hierarchy()
        if found is None:
            raise RuntimeError(available())
        self.hierarchy, self.cores = found, cores
        self.path = found.base / f"{GROUP_PREFIX}{name}-{os.getpid()}"
        self.path.mkdir(exist_ok=True)
        quota_us = max(1000, round(cores * PERIOD_US))  # the kernel's floor is 1 ms a period
        if found.version == 1:
            (self.path / "cpu.cfs_period_us").write_text(str(PERIOD_US))
            (self.path / "cpu.cfs_quota_us").write_text(str(quota_us))
        else:
            (self.path / "cpu.max").write_text(f"{quota_us} {PERIOD_US}")

    def add(self, pid: int) -> None:
        (self.path / "cgroup.procs").write_text(str(pid))

    def throttled_s(self) -> float:
        """The time its processes were held back by the quota so far, in seconds: proof that it binds."""
        for line in (self.path / "cpu.stat").read_text().splitlines():
            key, _, value = line.partition(" ")
            if key == "throttled_time":  # v1, nanoseconds
                return int(value) / 1e9
            if key == "throttled_usec":  # v2
                return int(value) / 1e6
        return 0.0

    def close(self) -> None:
        if not self.path.exists():
            return
        for pid in (self.path / "cgroup.procs").read_text().split():
            try:
                (self.hierarchy.base / "cgroup.procs").write_text(pid)
            except OSError:  # exited meanwhile
                pass
        self.path.rmdir()
