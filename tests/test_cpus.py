"""Threads and processes are sized from the CPUs this process may use: its affinity mask, capped by a cgroup
CPU quota (v2 ``cpu.max``, v1 ``cpu.cfs_quota_us``), as a container started with ``--cpus`` has."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from ocilens import cpus


def test_cgroup_v2_quota(tmp_path: Path) -> None:
    (tmp_path / "cpu.max").write_text("150000 100000\n")
    assert cpus._quota(tmp_path) == 1.5
    (tmp_path / "cpu.max").write_text("max 100000\n")
    assert cpus._quota(tmp_path) is None


def test_cgroup_v1_quota(tmp_path: Path) -> None:
    (tmp_path / "cpu,cpuacct").mkdir()
    (tmp_path / "cpu,cpuacct" / "cpu.cfs_quota_us").write_text("50000\n")
    (tmp_path / "cpu,cpuacct" / "cpu.cfs_period_us").write_text("100000\n")
    assert cpus._quota(tmp_path) == 0.5
    (tmp_path / "cpu,cpuacct" / "cpu.cfs_quota_us").write_text("-1\n")
    assert cpus._quota(tmp_path) is None


def test_the_quota_and_the_affinity_cap_the_count(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(cpus, "_affinity", lambda: 8)
    monkeypatch.setattr(cpus, "_quota", lambda root=None: 1.5)
    cpus.usable_cpus.cache_clear()
    try:
        assert cpus.usable_cpus() == 2
        monkeypatch.setattr(cpus, "_quota", lambda root=None: None)
        cpus.usable_cpus.cache_clear()
        assert cpus.usable_cpus() == 8
    finally:
        cpus.usable_cpus.cache_clear()


def test_this_process_affinity() -> None:
    assert cpus._affinity() == len(os.sched_getaffinity(0))
