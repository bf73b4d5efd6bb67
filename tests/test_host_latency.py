"""The host-latency probe (benchmarks/host_latency.py): it must see a real scheduling gap.

The gap is made for real: the probe processes are stopped with SIGSTOP for 40 ms, as a
hypervisor that deschedules the machine would stop them, and must report it at that time.
"""
from __future__ import annotations

import importlib.util
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
spec = importlib.util.spec_from_file_location("host_latency", ROOT / "benchmarks" / "host_latency.py")
hl = importlib.util.module_from_spec(spec)
spec.loader.exec_module(hl)

linux_only = pytest.mark.skipif(not hasattr(os, "sched_setaffinity") or not Path("/proc/stat").exists(),
                                reason="the probe pins itself to CPUs and reads /proc/stat")


@linux_only
def test_a_stopped_machine_shows_as_a_gap_at_the_time_it_happened():
    probe = hl.HostLatency(3.0).start()
    time.sleep(1.2)
    stopped_at = time.monotonic()
    for p in probe.procs:
        os.kill(p.pid, signal.SIGSTOP)
    time.sleep(0.04)
    for p in probe.procs:
        os.kill(p.pid, signal.SIGCONT)
    r = probe.finish()
    cpus = len(os.sched_getaffinity(0))
    assert len(r["per_cpu"]) == cpus and all("error" not in c for c in r["per_cpu"]), r
    for c in r["per_cpu"]:
        # 1 ms sleeps for 3 s: a loaded machine loses a few hundred to oversleeping, not most
        assert 1500 <= c["wakeups"] <= 3001, c
        assert c["later_than_block"] >= 1 and c["max_ms"] >= 30.0, c
    assert r["wakeups_later_than_block"] >= cpus and r["max_wakeup_latency_ms"] >= 30.0
    # each probe notes the gap where it woke: within the stop (plus a loaded machine's slack)
    near = [t for t in r["gap_times"] if stopped_at - 0.05 <= t <= stopped_at + 0.5]
    assert len(near) >= cpus, (stopped_at, r["gap_times"])
    assert "not fit" in hl.verdict(r)


def test_verdicts_name_the_gaps_and_the_missing_rights():
    fit = {"wakeups_later_than_block": 0, "block_ms": 5.333, "max_wakeup_latency_ms": 0.9,
           "seconds": 60.0, "realtime_priority": True, "cpu_steal_percent": 0.0}
    assert hl.verdict(fit).startswith("fit:")
    unfit = dict(fit, wakeups_later_than_block=3, max_wakeup_latency_ms=9.4, realtime_priority=False)
    text = hl.verdict(unfit)
    assert "3 real-time wake-ups" in text and "9.4 ms" in text and "rtprio" in text
    # no probe ran: that is no measurement, not a fit machine
    none = dict(fit, measured=False, per_cpu=[{"error": "OSError: affinity refused"}])
    assert hl.verdict(none).startswith("not measured") and "affinity refused" in hl.verdict(none)


@linux_only
def test_the_command_reports_json_and_exits_by_its_verdict(tmp_path):
    out = tmp_path / "host.json"
    proc = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "host_latency.py"), "--seconds", "1",
                           "--json", str(out)], capture_output=True, text=True, timeout=60)
    r = json.loads(out.read_text())
    assert proc.returncode == (0 if r["wakeups_later_than_block"] == 0 else 1), proc.stderr
    assert r["block_ms"] == 5.333 and r["verdict"] and abs(json.loads(proc.stdout)["seconds"] - 1.0) < 0.3
    bad = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "host_latency.py"), "--seconds", "0"],
                         capture_output=True, text=True, timeout=60)
    assert bad.returncode == 2 and "positive" in bad.stderr
