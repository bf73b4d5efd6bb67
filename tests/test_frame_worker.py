"""Frames drawn a tick behind on a thread of their own (exports) against frames drawn in line."""
from __future__ import annotations

import hashlib
import threading

import numba
import pytest

from installation.config import load_config
from installation.events import InputEvent
from installation.frame_worker import FrameWorker
from installation.pipeline import Pipeline

W, H, TICKS = 192, 108, 150
SETS = ["sim.particles=6000", "render.point_gain=3.0", "render.trail_decay=0.0"]


def ev(addr, *args):
    tags = "".join("s" if isinstance(a, str) else "f" for a in args)
    return InputEvent(addr, tags, tuple(args), "127.0.0.1:1", 0.0)


def script(tick):
    """Pulses at 10 Hz (bursts of light the guard has to hold back), a touch, and a switch to
    another scene halfway: its palette and tone curve reach the renderer between frames."""
    events = [ev("/pulse", 1.0)] if tick % 6 == 0 else []
    if tick == 20:
        events.append(ev("/crowd/a/touch", 0.3, 0.6, 1.0))
    if tick == 70:
        events.append(ev("/scene", "surge", 0.4))
    return events


def in_line():
    p = Pipeline(load_config(env={}, sets=SETS), render_size=(W, H))
    hashes = []
    for t in range(TICKS):
        p.advance(script(t))
        hashes.append(hashlib.sha256(p.render()).hexdigest())
    return p, hashes


def behind():
    p = Pipeline(load_config(env={}, sets=SETS), render_size=(W, H))
    hashes = []
    threads = set()

    def sink(frame):
        threads.add(threading.current_thread().name)
        hashes.append(hashlib.sha256(frame).hexdigest())

    before = numba.get_num_threads()
    worker = FrameWorker(p, sink)
    for t in range(TICKS):
        p.advance(script(t))
        worker.submit()
    worker.close()
    assert numba.get_num_threads() == before      # the caller's threads are given back
    assert threads == {"frame-worker"} and worker.frames == TICKS
    return p, hashes


def test_frames_drawn_behind_are_the_frames_drawn_in_line():
    a, want = in_line()
    b, got = behind()
    assert got == want
    assert b.state_hash() == a.state_hash()
    assert b.renderer.settings.palette == a.renderer.settings.palette != \
        load_config(env={}, sets=SETS).render.palette      # the scene's look reached it
    # the flash guard held bursts back, in both the same way
    assert a.guard.limited_frames > 0
    for name in ("limited_frames", "limited_blocks", "held_regions", "frozen_regions"):
        assert getattr(b.guard, name) == getattr(a.guard, name), name


def small_pipeline():
    return Pipeline(load_config(env={}, sets=["sim.particles=2000"]), render_size=(64, 36))


def test_an_error_in_the_sink_reaches_the_caller_and_nothing_waits_forever():
    p = small_pipeline()
    drawn = []

    def sink(frame):
        drawn.append(p.tick)
        if len(drawn) == 3:
            raise OSError("ffmpeg went away")

    worker = FrameWorker(p, sink)
    with pytest.raises(OSError, match="ffmpeg went away"):
        for _ in range(50):       # more than the queue holds: submit must not block for good
            p.advance([])
            worker.submit()
    worker.close()                # raised once only
    assert len(drawn) == 3
    assert numba.get_num_threads() >= 1


def test_close_draws_every_queued_frame_in_tick_order_and_abort_drops_them():
    p = small_pipeline()
    ticks = []
    worker = FrameWorker(p, lambda frame: ticks.append(p.guard._last_tick))
    for _ in range(7):
        p.advance([])
        worker.submit()
    worker.close()
    assert ticks == list(range(1, 8))
    with pytest.raises(RuntimeError):
        worker.submit()

    gate = threading.Event()
    q = small_pipeline()
    seen = []
    aborted = FrameWorker(q, lambda frame: (gate.wait(5), seen.append(1)))
    for _ in range(2):
        q.advance([])
        aborted.submit()
    threading.Timer(0.2, gate.set).start()
    aborted.abort()
    assert len(seen) <= 1         # the one being drawn when it was told; the rest dropped


def test_analyze_notes_the_guard_on_frames_drawn_behind_as_drawn_in_line():
    """`analyze`'s replay draws behind the simulation; its timeline must still say, tick by
    tick, which frames the flash guard changed."""
    import numpy as np
    from installation.app import replay_timeline
    cfg = load_config(env={}, sets=SETS + ["render.width=192", "render.height=108"])
    by_tick = {t: script(t) for t in range(TICKS) if script(t)}
    ticks_seen = []
    tl = replay_timeline(cfg, by_tick, TICKS, on_tick=ticks_seen.append)
    p = Pipeline(cfg)
    want = []
    for t in range(TICKS):
        before = p.guard.limited_frames
        p.advance(by_tick.get(t, []))
        p.render()
        want.append(p.guard.limited_frames != before)
    got = tl.column("flash_limited")
    assert got.tolist() == want and any(want) and not all(want)
    assert tl.column("tick").tolist() == list(range(TICKS)) and ticks_seen == list(range(0, TICKS, 30))
    assert np.isfinite(tl.column("arousal")).all() and tl.column("participants").max() == 1
