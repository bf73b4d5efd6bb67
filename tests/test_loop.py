"""The frame loop's pacing and figures, on an injected clock (no sleeping, no timing noise)."""
from __future__ import annotations

import pytest

from installation.loop import RECENT, run_loop


class FakeTime:
    def __init__(self):
        self.now = 0.0

    def clock(self) -> float:
        return self.now

    def sleep(self, s: float) -> None:
        self.now += s


class Stage:
    """Costs `cost(frame)` seconds of fake time per rendered frame, `tick_cost` per tick."""

    def __init__(self, ft: FakeTime, cost, tick_cost=0.0):
        self.ft, self.cost, self.tick_cost = ft, cost, tick_cost
        self.ticks = self.frames = 0

    def tick(self):
        self.ticks += 1
        self.ft.now += self.tick_cost

    def frame(self):
        self.ft.now += self.cost(self.frames)
        self.frames += 1

    def keep_going(self):
        return True


def test_a_fast_frame_runs_one_tick_and_waits_for_the_next():
    ft = FakeTime()
    st = Stage(ft, lambda f: 0.004)
    stats = run_loop(st, tick_s=1 / 60, frames=120, clock=ft.clock, sleep=ft.sleep)
    assert (stats.ticks, stats.frames, stats.dropped_ticks) == (120, 120, 0)
    assert stats.percentile(50) == pytest.approx(4.0)
    assert stats.fps_recent == pytest.approx(60.0, rel=1e-6)


def test_a_slow_frame_catches_up_with_at_most_max_catchup_ticks_and_counts_the_rest():
    ft = FakeTime()
    # one frame of 200 ms among fast ones: the next frame finds 12 ticks due
    st = Stage(ft, lambda f: 0.2 if f == 10 else 0.002)
    stats = run_loop(st, tick_s=1 / 60, max_catchup=4, frames=40, clock=ft.clock, sleep=ft.sleep)
    assert stats.dropped_ticks == 12 - 4            # 4 run, the rest dropped (and counted)
    assert stats.ticks == stats.frames + 3          # the one catch-up frame ran 4 ticks
    assert max(stats.recent_frame_ms()) == pytest.approx(200.0)


def test_the_current_frame_rate_shows_a_slowdown_that_the_whole_run_mean_hides():
    ft = FakeTime()
    # an hour-like run: 6,000 fast frames, then the frames take 40 ms (25 fps)
    st = Stage(ft, lambda f: 0.005 if f < 6000 else 0.040)
    stats = run_loop(st, tick_s=1 / 60, frames=6000 + 3 * RECENT, clock=ft.clock, sleep=ft.sleep)
    assert stats.fps_recent == pytest.approx(25.0, rel=1e-6)
    assert stats.fps_mean > 50.0


def test_unpaced_runs_one_tick_per_frame_as_fast_as_it_can():
    ft = FakeTime()
    st = Stage(ft, lambda f: 0.010, tick_cost=0.002)
    stats = run_loop(st, tick_s=None, frames=50, clock=ft.clock, sleep=ft.sleep)
    assert (stats.ticks, stats.frames, stats.dropped_ticks) == (50, 50, 0)
    assert stats.percentile(99) == pytest.approx(12.0)
    assert stats.fps_recent == pytest.approx(1 / 0.012, rel=1e-6)


def test_a_replay_never_ticks_past_its_session(monkeypatch):
    """A slow frame owes several ticks; at a replay's end the catch-up stops at the session's
    last tick (it ran past it, and the replay ended on another state_hash)."""
    from installation.app import RunStage, StopFlag
    from installation.config import load_config
    from installation.pipeline import Pipeline
    cfg = load_config(env={}, sets=["sim.particles=500", "render.width=128", "render.height=72"])
    ft = FakeTime()
    stage = RunStage(Pipeline(cfg), source=lambda tick: [], stop=StopFlag())
    stage.frame = lambda: setattr(ft, "now", ft.now + 3.5 / 60)      # every frame owes ~4 ticks
    total = 10
    stage.keep_going = lambda: stage.p.tick < total
    stage.last_tick = total
    run_loop(stage, tick_s=1 / 60, max_catchup=8, clock=ft.clock, sleep=ft.sleep)
    assert stage.p.tick == total


def test_the_hud_frame_time_is_the_newest_frames_after_the_ring_wraps():
    """After RING frames (about 18 minutes at 60 fps) the ring's tail is no longer the newest
    frames: the HUD's frame time must still follow the screen."""
    from installation.loop import RING, LoopStats
    stats = LoopStats()
    for ms in [10.0] * (RING + 4000) + [50.0] * 120:
        stats.frame_ms[stats.frames % RING] = ms
        stats.frames += 1
    assert stats.mean_last_ms(120) == 50.0
    assert stats.mean_last_ms(240) == 30.0
    wrapped = LoopStats()                 # the newest 120 straddle the ring's end
    for ms in [10.0] * (RING - 60) + [50.0] * 120:
        wrapped.frame_ms[wrapped.frames % RING] = ms
        wrapped.frames += 1
    assert wrapped.mean_last_ms(120) == 50.0
    fresh = LoopStats()
    assert fresh.mean_last_ms(120) == 0.0
