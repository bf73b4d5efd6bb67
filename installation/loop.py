"""The frame loop: the one place that knows the order and the pacing.

Each frame runs the simulation ticks that are due (at least one, at most
`max_catchup` — beyond that the time is dropped and counted rather than letting a slow
frame demand ever more ticks), then renders once. Time is injected: live runs pace
themselves against `clock`, replays and exports run unpaced or at a chosen speed.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Callable, Protocol

import numpy as np

RING = 1 << 16  # frame times kept for the percentiles: the last ~18 minutes at 60 fps
RECENT = 120    # frames the current frame rate is measured over


class Stage(Protocol):
    def tick(self) -> None: ...          # one fixed simulation tick (input → control → swarm → audio)
    def frame(self) -> None: ...         # render what the ticks produced and show/encode it
    def keep_going(self) -> bool: ...    # window events, signals, end of a replay


@dataclass
class LoopStats:
    frames: int = 0
    ticks: int = 0
    dropped_ticks: int = 0
    wall_s: float = 0.0
    frame_ms: np.ndarray = field(default_factory=lambda: np.zeros(RING, np.float64))
    frame_end: np.ndarray = field(default_factory=lambda: np.zeros(RING, np.float64))

    def recent_frame_ms(self) -> np.ndarray:
        """The frame times kept (the last RING frames), in ring order, not time order."""
        return self.frame_ms[:min(self.frames, RING)]

    def mean_last_ms(self, n: int = RECENT) -> float:
        """Mean time of the newest n frames (the ring wraps after RING frames: its tail
        is not the newest then)."""
        n = min(n, self.frames, RING)
        if n <= 0:
            return 0.0
        end = self.frames % RING
        if end >= n:
            return float(self.frame_ms[end - n:end].mean())
        return float((self.frame_ms[:end].sum() + self.frame_ms[RING - (n - end):].sum()) / n)

    def percentile(self, q: float) -> float:
        recent = self.recent_frame_ms()
        return float(np.percentile(recent, q)) if recent.size else 0.0

    @property
    def fps_mean(self) -> float:
        return self.frames / self.wall_s if self.wall_s > 0 else 0.0

    @property
    def fps_recent(self) -> float:
        """Frames per second over the last RECENT frames (about 2 s at 60 fps): what the
        screen does now. After hours the whole-run mean hardly moves, so it cannot show a
        slowdown to the technician watching the HUD or the status feed."""
        n = min(self.frames, RECENT + 1)
        if n < 2:
            return 0.0
        last = (self.frames - 1) % RING
        span = self.frame_end[last] - self.frame_end[(self.frames - n) % RING]
        return (n - 1) / span if span > 0 else 0.0


def run_loop(stage: Stage, *, tick_s: float | None, max_catchup: int = 4,
             frames: int | None = None, duration_s: float | None = None,
             clock: Callable[[], float] = time.perf_counter,
             sleep: Callable[[float], None] = time.sleep,
             on_frame: Callable[[LoopStats], None] | None = None) -> LoopStats:
    """Run until the stage says stop, `frames` frames, or `duration_s` of wall time.

    `tick_s` is the wall time of one tick (None: as fast as possible, one tick per frame).
    `frame_ms` measures the work of a frame (ticks + render + present), not the wait for the
    next tick, so it is the budget figure: ≤ 16.7 ms at 60 Hz holds the frame rate.
    """
    stats = LoopStats()
    start = clock()
    next_tick = start
    while stage.keep_going():
        t0 = clock()
        due = 1
        if tick_s is not None:
            due = max(1, int((t0 - next_tick) / tick_s) + 1)
            if due > max_catchup:
                stats.dropped_ticks += due - max_catchup
                next_tick += (due - max_catchup) * tick_s
                due = max_catchup
        for _ in range(due):
            stage.tick()
            stats.ticks += 1
            if tick_s is not None:
                next_tick += tick_s
        stage.frame()
        t1 = clock()
        stats.frame_ms[stats.frames % RING] = (t1 - t0) * 1000.0
        stats.frame_end[stats.frames % RING] = t1
        stats.frames += 1
        stats.wall_s = t1 - start
        if on_frame is not None:
            on_frame(stats)
        if frames is not None and stats.frames >= frames:
            break
        if duration_s is not None and stats.wall_s >= duration_s:
            break
        if tick_s is not None:
            wait = next_tick - clock()
            if wait > 0:
                sleep(wait)
    stats.wall_s = clock() - start
    return stats
