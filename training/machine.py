"""How many threads training, evaluation and the export check use: chosen from the machine,
overridable (`smallcoder train --threads N`, the server's `smallcoder.training.threads`).

The machine's count is its physical cores, fewer when the process may run on fewer: its CPU
affinity (taskset, a container's cpuset) or its cgroup's CPU quota (a container's --cpus).
Threads beyond those only wait for each other, and torch's and llama.cpp's spin while waiting.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from pathlib import Path

from model.loading import physical_cores

CGROUP_CPU_MAX = Path("/sys/fs/cgroup/cpu.max")


def cgroup_cpu_limit(cpu_max: Path = CGROUP_CPU_MAX) -> int | None:
    """The CPUs a cgroup v2 quota allows ("200000 100000": 2), or None without a quota."""
    try:
        quota, period = cpu_max.read_text().split()[:2]
    except (OSError, ValueError):
        return None
    if quota == "max":
        return None
    try:
        return max(1, math.ceil(int(quota) / int(period)))
    except (ValueError, ZeroDivisionError):
        return None


def machine_threads() -> int:
    """Threads worth running on this machine for one compute-bound job."""
    try:
        allowed = len(os.sched_getaffinity(0))
    except AttributeError:  # macOS and Windows have no affinity call
        allowed = os.cpu_count() or 1
    limits = [physical_cores(), allowed]
    if (quota := cgroup_cpu_limit()) is not None:
        limits.append(quota)
    return max(1, min(limits))


@dataclass(frozen=True)
class ThreadCounts:
    train: int  # torch, for the training steps
    evaluate: int  # llama.cpp, for the report's two arms
    export_check: int  # torch and llama.cpp, comparing the exported adapter's logits

    @classmethod
    def choose(cls, override: int | None = None) -> ThreadCounts:
        """`override` for everything when given (> 0), else the machine's count."""
        threads = override if override and override > 0 else machine_threads()
        return cls(threads, threads, threads)
