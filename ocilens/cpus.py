"""How many CPUs this process may use: its affinity mask, capped by a cgroup CPU quota (a container's
``--cpus``), not ``os.cpu_count()``, which counts the machine's. Thread and process pools are sized from it."""

from __future__ import annotations

import math
import os
from functools import lru_cache
from pathlib import Path

__all__ = ["usable_cpus"]

_CGROUP = Path("/sys/fs/cgroup")


def _affinity() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # not Linux
        return os.cpu_count() or 1


def _quota(root: Path = _CGROUP) -> float | None:
    """The cgroup's CPU quota in CPUs (``cpu.max`` of cgroup v2, ``cfs_quota_us / cfs_period_us`` of v1),
    or None when there is none."""
    try:
        quota, _, period = (root / "cpu.max").read_text().split()[:2] + [""]
        if quota != "max":
            return int(quota) / int(period or "100000")
        return None
    except (OSError, ValueError):
        pass
    for folder in ("cpu,cpuacct", "cpu"):
        try:
            quota_us = int((root / folder / "cpu.cfs_quota_us").read_text())
            period_us = int((root / folder / "cpu.cfs_period_us").read_text())
        except (OSError, ValueError):
            continue
        return quota_us / period_us if quota_us > 0 and period_us > 0 else None
    return None


@lru_cache(maxsize=1)
def usable_cpus() -> int:
    """The CPUs this process may run on, at least 1: the affinity mask, capped by a cgroup quota (rounded up:
    a quota of 1.5 CPUs keeps two threads busy part of the time)."""
    cpus = _affinity()
    quota = _quota()
    if quota is not None:
        cpus = min(cpus, max(1, math.ceil(quota)))
    return max(1, cpus)
