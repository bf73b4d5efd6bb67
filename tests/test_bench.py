"""The bench's measures of issue 2's paced run and issue 5's export, on a small scene."""
from __future__ import annotations

import pytest

from installation import bench
from installation.config import load_config
from test_session_export import ffmpeg_or_skip

SMALL = ["sim.particles=4000", "render.width=320", "render.height=180"]


def test_paced_run_reports_what_run_headless_would():
    cfg = load_config(env={}, sets=SMALL)
    out = bench.bench_paced(cfg, 1.5)
    assert 0 < out["paced_frame_ms_p50"] <= out["paced_frame_ms_p99"] < 1000
    # paced: about the tick rate, never faster (an unpaced loop here runs at hundreds of fps)
    assert 0.5 * cfg.sim.tick_hz < out["paced_fps"] <= 1.02 * cfg.sim.tick_hz
    assert out["paced_dropped_ticks"] >= 0


def test_export_measure_encodes_every_frame(require, monkeypatch):
    ffmpeg_or_skip(require)
    from installation.session import export
    written = []
    real_write = export.VideoWriter.write

    def counting_write(self, frame):
        written.append(frame.shape)
        return real_write(self, frame)
    monkeypatch.setattr(export.VideoWriter, "write", counting_write)
    cfg = load_config(env={}, sets=SMALL)
    out = bench.bench_export(cfg, 90)
    assert out["export_size"] == "320x180"
    assert len(written) == 90 and set(written) == {(180, 320)}     # the measured frames, no more
    assert out["export_realtime_ratio"] > 0
    assert out["export_ms_per_frame"] == pytest.approx(
        1000.0 * 90 / cfg.sim.tick_hz / out["export_realtime_ratio"] / 90, rel=0.01)


def test_touch_measure_has_the_crowd_touching(monkeypatch):
    """The 256-touch row steps a swarm whose touches are all live and inside the world."""
    from installation.sim.swarm import Swarm
    seen = []
    real_step = Swarm.step

    def step(self, params):
        seen.append((params.n_touches, float(params.touches[:params.n_touches, 0].max()),
                     float(params.touches[:params.n_touches, 1].max())))
        return real_step(self, params)
    monkeypatch.setattr(Swarm, "step", step)
    cfg = load_config(env={}, sets=SMALL)
    ms = bench.bench_sim_touches(cfg, 2000, 256, 3)
    assert ms > 0 and len(seen) == 120 + 5 + 3
    n, xmax, ymax = seen[-1]
    assert n == 256 and xmax < cfg.sim.aspect and ymax < 1.0
