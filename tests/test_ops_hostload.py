"""How busy the machine was around a measurement (installation/ops/hostload.py)."""
from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from installation.ops import hostload

linux_only = pytest.mark.skipif(not Path("/proc/stat").exists(), reason="reads /proc/stat")


def test_steal_share_from_made_up_readings():
    before = [100, 0, 50, 800, 0, 0, 0, 10, 0, 0]
    after = [200, 0, 100, 1600, 0, 0, 0, 60, 7, 0]        # 1000 ticks, 50 stolen; guest is inside user
    assert hostload.steal_percent(before, after) == 5.0
    assert hostload.steal_percent(None, after) is None
    assert hostload.steal_percent(before, before) is None  # no time passed: no share
    assert hostload.steal_percent(before, after[:9]) is None


@linux_only
def test_our_own_cpu_time_children_included_is_not_counted_as_others():
    before, own0, t0 = hostload.cpu_times(), hostload.own_cpu_seconds(), time.monotonic()
    burn = "import time\nwhile time.process_time() < 1.0: pass"      # 1 s of CPU, however busy the machine
    subprocess.run([sys.executable, "-c", burn], check=True, timeout=60)
    after, own, wall = hostload.cpu_times(), hostload.own_cpu_seconds() - own0, time.monotonic() - t0
    assert own >= 0.95                                  # the waited child's CPU time is ours
    ours = hostload.others_busy_percent(before, after, own)
    as_stranger = hostload.others_busy_percent(before, after, 0.0)
    share = 100.0 * own / (os.cpu_count() * wall)       # of all the CPUs' time, what we used
    assert as_stranger >= 0.8 * share, (as_stranger, share)
    assert as_stranger - ours >= min(as_stranger, 0.8 * share), (as_stranger, ours, share)
    assert 0.0 <= ours <= as_stranger <= 100.0
