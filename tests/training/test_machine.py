"""Thread counts for training, evaluation and the export check: from the machine, overridable."""

from __future__ import annotations

import pytest

from training.machine import ThreadCounts, cgroup_cpu_limit, machine_threads


@pytest.mark.parametrize(("cpu_max", "cpus"), [("200000 100000\n", 2), ("150000 100000\n", 2),
                                               ("max 100000\n", None), ("garbage\n", None)])
def test_a_containers_cpu_quota_limits_the_threads(tmp_path, cpu_max, cpus):
    (tmp_path / "cpu.max").write_text(cpu_max)
    assert cgroup_cpu_limit(tmp_path / "cpu.max") == cpus


def test_no_cgroup_file_means_no_quota(tmp_path):
    assert cgroup_cpu_limit(tmp_path / "missing") is None


def test_the_machine_count_stays_within_the_quota_and_an_override_wins(monkeypatch):
    from training import machine

    monkeypatch.setattr(machine, "physical_cores", lambda: 16)
    monkeypatch.setattr(machine, "cgroup_cpu_limit", lambda: 3)
    monkeypatch.setattr(machine.os, "sched_getaffinity", lambda pid: set(range(8)), raising=False)
    assert machine_threads() == 3
    assert ThreadCounts.choose() == ThreadCounts(3, 3, 3)
    assert ThreadCounts.choose(5) == ThreadCounts(5, 5, 5)
    assert ThreadCounts.choose(0) == ThreadCounts(3, 3, 3)  # 0, as the setting says: the machine's
