"""Adversarial input through the whole pipeline, checked by the independent flash checker.

Each case is rendered twice: with the guard (no failing one-second window, at the guard's
0.1° points and at every coarser scale it holds the rule at) and with the guard turned off
through its explicit override (the checker must fail it — proof that the test can fail).
Small frames keep it quick; the field size follows the same geometry.
"""
from __future__ import annotations

import math

import numpy as np
import pytest

from flash_checker import check_flashes
from installation.config import load_config
from installation.crowd.virtual import VirtualCrowd
from installation.events import InputEvent
from installation.pipeline import Pipeline
from installation.safety.settings import OVERRIDE_PHRASE

W, H, TICKS = 192, 108, 120
BASE = ["sim.particles=6000", "scene.name=''"]


def pulses(tick):
    return [InputEvent("/pulse", "f", (1.0,), "127.0.0.1:1", 0.0)] if tick % 6 == 0 else []


def blackout(tick):
    # toggled at 8 Hz: every 3.75 ticks at 60 Hz
    if math.floor(tick * 8 / 60 * 2) != math.floor((tick - 1) * 8 / 60 * 2):
        return [InputEvent("/blackout", "i", (int(tick * 16 // 60) % 2,), "127.0.0.1:1", 0.0)]
    return []


def surge_crowd():
    crowd = VirtualCrowd(24, "surge", 5)

    def events(tick):
        return [InputEvent(addr, "f" * len(args), tuple(args), "127.0.0.1:2", 0.0) for _, addr, args in crowd.step()]
    return events


# The surge crowd is calm for 8-14 s, then most of it jumps up for a few seconds (this one,
# seed 5, about 12.7 s in). The case runs that long unrendered and records the 2 s around
# the jump. Its overrides make the surge adversarial: a detector that raises a pulse on every
# small rise of a lightly smoothed mood, and a strong burst of light on each pulse, so that
# the surge becomes a train of light bursts several times a second. (With the defaults a
# surge raises one or two pulses: a flash or so, not a failure.)
SURGE_PREROLL = 690
CASES = {
    "pulse at 10 Hz": (pulses, ["render.point_gain=3.0", "render.trail_decay=0.0"], 0),
    "blackout toggled at 8 Hz": (blackout, ["render.exposure=8.0", "render.point_gain=2.0"], 0),
    "red and black alternation": (blackout, ["render.palette=['#ff0000']", "render.exposure=8.0",
                                             "render.point_gain=2.0"], 0),
    "surge crowd": (None, ["crowd.surge_threshold=0.04", "crowd.surge_window_s=0.2",
                           "crowd.mood_smoothing_s=0.3", "render.pulse_flash=8.0",
                           "render.exposure=3.0"], SURGE_PREROLL),
}


def frames_of(name, guard: bool):
    """The case's frames, its pipeline, and how many pulses the crowd raised while recording."""
    source, sets, preroll = CASES[name]
    if source is None:
        source = surge_crowd()
    extra = [] if guard else ["safety.flash_guard=false", f"safety.flash_guard_override='{OVERRIDE_PHRASE}'"]
    cfg = load_config(env={}, sets=BASE + sets + extra)
    p = Pipeline(cfg, render_size=(W, H))
    for t in range(preroll):
        p.advance(source(t))
    out = np.empty((TICKS, H, W), np.uint32)
    n_pulses = 0
    for t in range(preroll, preroll + TICKS):
        p.advance(source(t))
        n_pulses += len(p.control.new_pulses)
        out[t - preroll] = p.render()
    return out, p, n_pulses


@pytest.mark.parametrize("name", list(CASES))
def test_guarded_output_never_fails_and_unguarded_does(name):
    geo_w = int(W * 10 / load_config(env={}).safety.image_width_deg)
    field = (geo_w, int(geo_w * 0.75))
    unguarded, _, n_pulses = frames_of(name, guard=False)
    bad = check_flashes(unguarded, 60, *field, block=2)
    assert bad.failures, f"{name}: the unguarded input should fail the checker (else this test proves nothing)"
    if name == "surge crowd":
        assert n_pulses >= 8, f"the crowd's surge raised only {n_pulses} pulses while recording"
    guarded, p, _ = frames_of(name, guard=True)
    assert p.guard.scales == (1, 2, 4, 8)
    for block in p.guard.scales:
        report = check_flashes(guarded, 60, *field, block=block)
        assert not report.failures, f"points of {block} px: {report.summary()}"
    assert p.guard.limited_frames > 0


@pytest.mark.parametrize("fixed", [True, False])
def test_a_fast_replay_in_a_window_is_guarded_in_the_viewer_s_seconds(fixed):
    """`replay --speed 4` in a window shows 4 ticks a frame: 4 of the session's seconds in one
    of the viewer's. Counted in ticks, the guard let 10 Hz pulses through as 40 Hz on screen
    (53 failing windows); told the screen's rate (Pipeline.show_at), it holds the viewer's
    second. Without that call the same frames fail: the test can tell the two apart."""
    speed, frames = 4, 120
    geo_w = int(W * 10 / load_config(env={}).safety.image_width_deg)
    field = (geo_w, int(geo_w * 0.75))
    cfg = load_config(env={}, sets=BASE + CASES["pulse at 10 Hz"][1])
    p = Pipeline(cfg, render_size=(W, H))
    if fixed:
        p.show_at(cfg.sim.tick_hz * speed)
    shown = np.empty((frames, H, W), np.uint32)
    for f in range(frames):
        for _ in range(speed):
            p.advance(pulses(p.tick))
        shown[f] = p.render()
    worst = [check_flashes(shown, 60, *field, block=block) for block in p.guard.scales]
    if fixed:
        assert not any(r.failures for r in worst), [r.summary() for r in worst]
    else:
        assert any(r.failures for r in worst)


def test_calm_crowd_leaves_the_guard_untouched():
    crowd = VirtualCrowd(12, "calm", 2)
    cfg = load_config(env={}, scene="calm-sanctuary", sets=["sim.particles=6000"])
    p = Pipeline(cfg, render_size=(W, H))
    for t in range(240):
        p.advance([InputEvent(a, "f" * len(args), tuple(args), "127.0.0.1:3", 0.0) for _, a, args in crowd.step()])
        p.render()
    assert p.guard.limited_frames == 0


@pytest.mark.parametrize("participants", [0, 30])
def test_default_scene_at_its_real_size_leaves_the_guard_untouched(participants):
    """The default look, at the default particle count and render size, with the attract
    crowd alone (0) or a mixed crowd of phones: the guard must not dim it. A swarm streaming
    through 0.1° patches with short trails did trip it (every other frame was dimmed)."""
    cfg = load_config(env={})
    assert cfg.scene.name == "living-mosaic"
    p = Pipeline(cfg)
    crowd = VirtualCrowd(participants, "mixed", 5) if participants else None
    for _ in range(420):
        events = crowd.step() if crowd else []
        p.advance([InputEvent(a, "f" * len(args), tuple(args), "127.0.0.1:3", 0.0) for _, a, args in events])
        p.render()
    assert p.guard.limited_frames == 0, f"{p.guard.limited_blocks} blocks dimmed in {p.guard.limited_frames} frames"
