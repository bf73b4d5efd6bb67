"""How busy the machine was around us: CPU stolen by the hypervisor and used by others.

Benchmarks on a shared or virtual machine are only as good as the machine was quiet while
they ran; `bench` and the soak scripts report these two figures beside their numbers, so a
slow median can be told from a slow program. Linux only (/proc/stat); elsewhere None.
"""
from __future__ import annotations

import os

STEAL = 7          # index of `steal` among the numbers of /proc/stat's `cpu` line
IDLE, IOWAIT = 3, 4


def cpu_times() -> list[int] | None:
    """The aggregate `cpu` line of /proc/stat, in clock ticks (user nice system idle iowait
    irq softirq steal …), or None where there is none."""
    try:
        with open("/proc/stat") as f:
            parts = f.readline().split()
    except OSError:
        return None
    if not parts or parts[0] != "cpu" or len(parts) < STEAL + 2:
        return None
    return [int(x) for x in parts[1:]]


def _delta(before: list[int] | None, after: list[int] | None) -> list[int] | None:
    if not before or not after or len(before) != len(after):
        return None
    d = [a - b for a, b in zip(after, before)]
    # guest and guest_nice (10th and 11th) are already inside user and nice
    return d[:8] if sum(d[:8]) > 0 else None


def steal_percent(before: list[int] | None, after: list[int] | None) -> float | None:
    """Share of all CPU time between the two readings that the hypervisor gave to others."""
    d = _delta(before, after)
    return None if d is None else round(100.0 * d[STEAL] / sum(d), 2)


def others_busy_percent(before: list[int] | None, after: list[int] | None, own_cpu_s: float) -> float | None:
    """Share of all CPU time between the readings used by other processes (not idle, not
    stolen, not `own_cpu_s` seconds of ours, children included)."""
    d = _delta(before, after)
    if d is None:
        return None
    hz = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100
    busy = sum(d) - d[IDLE] - d[IOWAIT] - d[STEAL]
    return round(max(0.0, 100.0 * (busy - own_cpu_s * hz) / sum(d)), 2)


def own_cpu_seconds() -> float:
    """CPU seconds of this process and its waited-for children so far."""
    t = os.times()
    return t.user + t.system + t.children_user + t.children_system
