"""Adversarial input through the whole pipeline, checked by the independent flash checker.

Each case is rendered twice: with the guard (no failing one-second window) and with the
guard turned off through its explicit override (the checker must fail it — proof that the
test can fail). Small frames keep it quick; the field size follows the same geometry.
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

W, H, TICKS = 192, 108, 150
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


CASES = {
    "pulse at 10 Hz": (pulses, ["render.point_gain=3.0", "render.trail_decay=0.0"]),
    "blackout toggled at 8 Hz": (blackout, ["render.exposure=8.0", "render.point_gain=2.0"]),
    "red and black alternation": (blackout, ["render.palette=['#ff0000']", "render.exposure=8.0",
                                             "render.point_gain=2.0"]),
    "surge crowd": (None, ["render.point_gain=3.0", "render.trail_decay=0.0", "render.pulse_flash=4.0"]),
}


def frames_of(name, guard: bool):
    source, sets = CASES[name]
    if source is None:
        source = surge_crowd()
    extra = [] if guard else ["safety.flash_guard=false", f"safety.flash_guard_override='{OVERRIDE_PHRASE}'"]
    cfg = load_config(env={}, sets=BASE + sets + extra)
    p = Pipeline(cfg, render_size=(W, H))
    out = np.empty((TICKS, H, W), np.uint32)
    for t in range(TICKS):
        p.advance(source(t))
        out[t] = p.render()
    return out, p, cfg


@pytest.mark.parametrize("name", list(CASES))
def test_guarded_output_never_fails_and_unguarded_does(name):
    geo_w = int(W * 10 / load_config(env={}).safety.image_width_deg)
    field = (geo_w, int(geo_w * 0.75))
    unguarded, _, _ = frames_of(name, guard=False)
    bad = check_flashes(unguarded, 60, *field, block=2)
    assert bad.failures, f"{name}: the unguarded input should fail the checker (else this test proves nothing)"
    guarded, p, _ = frames_of(name, guard=True)
    report = check_flashes(guarded, 60, *field, block=2)
    assert not report.failures, report.summary()
    assert p.guard.limited_frames > 0


def test_calm_crowd_leaves_the_guard_untouched():
    crowd = VirtualCrowd(12, "calm", 2)
    cfg = load_config(env={}, scene="calm-sanctuary", sets=["sim.particles=6000"])
    p = Pipeline(cfg, render_size=(W, H))
    for t in range(240):
        p.advance([InputEvent(a, "f" * len(args), tuple(args), "127.0.0.1:3", 0.0) for _, a, args in crowd.step()])
        p.render()
    assert p.guard.limited_frames == 0
