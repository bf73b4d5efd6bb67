"""Issue 4's soak, short, as CI runs it: the whole installation (`run` with swarm, renderer,
flash guard and the native audio callback) on a JACK dummy server of its own, under a
surge crowd of about 2,000 OSC messages a second, read from the run's own summary.

The ten-minute version is `python benchmarks/audio_run_soak.py --seconds 600 [--realtime]`.
"""
from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_short_audio_soak_of_the_whole_installation(tmp_path, cli_env, require):
    require(shutil.which("jackd") is not None and shutil.which("jack_lsp") is not None,
            "JACK (apt install jackd2) for the audio soak")
    report = tmp_path / "audio.json"
    proc = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "audio_run_soak.py"), "--seconds", "25", "--realtime",
                           "--json", str(report)],
                          capture_output=True, text=True, timeout=280, env=cli_env, cwd=ROOT)
    assert proc.returncode in (0, 1) and report.exists(), proc.stdout[-2000:] + proc.stderr[-2000:]
    r = json.loads(report.read_text())
    assert "JACK" in r["audio_backend"]
    # every block PortAudio asked for arrived: the callback kept real time for the whole run
    assert r["audio_callbacks"] >= 0.97 * r["callbacks_expected"], r
    assert r["audio_errors"] == 0
    assert r["osc_msgs_per_s"] > 1000, r          # the crowd really was there
    # Zero is the target: 0 per 10 s here with `jackd -R`, 6 in ten minutes (2 in the first
    # 10 s, the start). Where rtprio is refused, jackd -R runs as an ordinary process and the
    # scheduler alone costs 10-15 per 10 s on a 2-core machine at this load (measured here
    # with --no-realtime: 4, 13, 11), so the bound follows what the server was granted.
    windows = r["underflows_per_10s"]
    # the host's own gaps were measured beside the run, in the same windows
    assert len(r["host_gaps_per_10s"]) == len(windows) and r["host_max_wakeup_latency_ms"] > 0, r
    assert sum(r["host_gaps_per_10s"]) <= r["host_wakeups_later_than_block"] and r["host_verdict"], r
    per_window = 3 if r["jack_realtime_granted"] else 25
    assert len(windows) >= 2 and sum(windows[1:]) <= per_window * (len(windows) - 1), (r["jack_realtime_granted"], windows)
