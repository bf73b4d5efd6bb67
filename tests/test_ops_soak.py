"""The soak script: its analysis on made-up series, its /proc sampling, and a short real soak."""
from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
spec = importlib.util.spec_from_file_location("soak", ROOT / "benchmarks" / "soak.py")
soak = importlib.util.module_from_spec(spec)
spec.loader.exec_module(soak)

linux_only = pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="the soak samples /proc")


def series(rss, fds=None, fps=None, threads=None, dt=5.0):
    n = len(rss)
    return [{"t": i * dt, "rss_mb": rss[i], "fds": (fds or [20] * n)[i], "threads": (threads or [9] * n)[i],
             "fps": (fps or [60.0] * n)[i]} for i in range(n)]


def test_flat_run_passes_and_warmup_growth_does_not_count():
    rss = [100, 180, 260, 300, 301, 299, 302, 300, 301, 303]  # compiles and fills buffers, then flat
    r = soak.analyse(series(rss), warmup_until=15.0)
    assert r["failures"] == [] and r["steady_samples"] == 7
    assert r["rss_mb"]["start"] == 300 and r["rss_mb"]["end"] == 301 and r["rss_mb"]["growth"] == 1


def test_rss_growth_beyond_the_limit_fails():
    rss = [300 + 4 * i for i in range(12)]  # 4 MiB every sample: a leak
    r = soak.analyse(series(rss), warmup_until=0.0, max_rss_growth_mb=20.0)
    assert r["rss_mb"]["growth"] == pytest.approx(4 * 9)
    assert any("RSS grew" in f for f in r["failures"])


def test_one_spike_does_not_fail_but_is_reported():
    rss = [300, 301, 300, 360, 300, 301, 300, 301]
    r = soak.analyse(series(rss), warmup_until=0.0)
    assert r["failures"] == [] and r["rss_mb"]["peak_growth"] == 60


def test_fd_and_thread_growth_and_fps_drop_fail():
    n = 10
    r = soak.analyse(series([300] * n, fds=[20] * 5 + [21] * 5), warmup_until=0.0)
    assert any("open files grew" in f for f in r["failures"])
    r = soak.analyse(series([300] * n, threads=[9] * 5 + [10] * 5), warmup_until=0.0)
    assert any("threads grew" in f for f in r["failures"])
    r = soak.analyse(series([300] * n, fps=[60.0] * 5 + [40.0] * 5), warmup_until=0.0)
    assert any("fps fell" in f for f in r["failures"])
    r = soak.analyse(series([300] * n, fps=[None] * n), warmup_until=0.0)
    assert r["failures"] == []  # no status: fps is not judged


def test_too_few_samples_is_a_failure_not_a_pass():
    r = soak.analyse(series([300, 300]), warmup_until=6.0)
    assert r["failures"] and "samples after the warm-up" in r["failures"][0]


@linux_only
def test_proc_sample_sees_a_new_open_file(tmp_path):
    before = soak.proc_sample(os.getpid())
    with open(tmp_path / "x", "w"):
        during = soak.proc_sample(os.getpid())
    assert during["fds"] == before["fds"] + 1
    assert before["rss_mb"] > 1 and before["threads"] >= 1
    assert soak.proc_sample(2**22 + 12345) is None  # above pid_max: never a live process


def test_session_complete(tmp_path):
    p = tmp_path / "s.jsonl"
    p.write_text('{"format": "living-mosaic-session"}\n{"tick": 1}\n{"end": true, "ticks": 10}\n')
    assert soak.session_complete(p) == (True, "session complete, 10 ticks")
    p.write_text('{"format": "living-mosaic-session"}\n{"tick": 1, "t": 0.1, "ad')
    assert soak.session_complete(p)[0] is False
    assert soak.session_complete(tmp_path / "none.jsonl")[0] is False


@linux_only
@pytest.mark.slow
@pytest.mark.timeout(600)
def test_short_real_soak(tmp_path, cli_env):
    """Issue 7's short soak: the real CLI, the virtual crowd, recording on, status over OSC."""
    report = tmp_path / "report.json"
    proc = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "soak.py"), "--duration", "25",
                           "--warmup", "8", "--interval", "1", "--participants", "8",
                           "--set", "sim.particles=20000", "--out", str(tmp_path / "soak"),
                           "--json", str(report)],
                          capture_output=True, text=True, timeout=580, env=cli_env, cwd=ROOT)
    assert report.exists(), proc.stdout + proc.stderr
    r = json.loads(report.read_text())
    assert proc.returncode == 0, proc.stdout[-3000:]
    assert r["steady_samples"] >= 10 and r["run_exit"] == 0
    assert r["summary"]["osc_received"] > 0 and r["summary"]["frames"] > 0
    assert r["fps"]["start"] is not None  # status over OSC reached the listener
