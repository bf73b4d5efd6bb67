"""The per-tick pipeline: scene switches reach the swarm, the look and the audio; time of day dims."""
from __future__ import annotations

from datetime import datetime

import numpy as np
import pytest

from installation.config import load_config
from installation.config.model import list_scenes
from installation.events import InputEvent
from installation.pipeline import Pipeline

SMALL = ["sim.particles=4000"]


def ev(addr, *args):
    return InputEvent(addr, "".join("s" if isinstance(a, str) else "f" for a in args), args, "127.0.0.1:9", 0.0)


@pytest.mark.parametrize("scene", [s for s in list_scenes(load_config(env={})) if s != "living-mosaic"])
def test_a_crossfade_reaches_swarm_renderer_and_audio(scene):
    p = Pipeline(load_config(env={}, sets=SMALL), render_size=(160, 90))
    target = load_config(env={}, scene=scene, sets=SMALL)
    p.advance([ev("/scene", scene, 0.5)])
    for _ in range(40):
        p.advance([])
        p.render()
    assert p.mixer.current_name == scene and not p.mixer.crossfading
    assert p.swarm.settings.matrix_seed == target.sim.matrix_seed
    assert p.swarm.settings.boundary == target.sim.boundary
    assert p.renderer.settings.palette == target.render.palette
    assert p.config.sim.flow_strength == pytest.approx(target.sim.flow_strength)
    assert np.isfinite(p.swarm.x).all()


def test_param_glides_and_an_unknown_one_is_counted():
    p = Pipeline(load_config(env={}, sets=SMALL), render_size=(160, 90))
    p.advance([ev("/param/flow_strength", 2.0), ev("/param/no_such_thing", 1.0)])
    for _ in range(60):
        p.advance([])
    assert p.config.sim.flow_strength == pytest.approx(2.0)
    assert p.operator_rejected == 1


def test_quiet_hours_dim_the_light_and_tell_the_audio():
    cfg = load_config(env={}, sets=SMALL + ["safety.quiet_hours=['22:00-07:00']", "safety.quiet_brightness=0.25"])
    night = Pipeline(cfg, render_size=(160, 90), time_of_day=lambda tick: datetime(2026, 1, 1, 23, 0))
    day = Pipeline(cfg, render_size=(160, 90), time_of_day=lambda tick: datetime(2026, 1, 1, 12, 0))
    for p in (night, day):
        p.advance([])
    assert night.quiet_amount == 1.0 and day.quiet_amount == 0.0
    assert night.look.brightness == pytest.approx(0.25 * day.look.brightness)
    assert night.audio.quiet == 1.0


def test_emotion_moves_the_swarm_parameters_within_two_ticks():
    p = Pipeline(load_config(env={}, sets=SMALL + ["attract.enabled=false"]), render_size=(160, 90))
    p.advance([])
    calm_flow = p.step.flow_strength
    p.advance([ev("/crowd/a/emotion", 0.5, 1.0), ev("/crowd/a/motion", 1.0)])
    p.advance([])
    assert p.control.mood.arousal > 0
    assert p.step.flow_strength > calm_flow


_WARM = """
import sys
from installation.config import load_config
from installation.pipeline import Pipeline
from installation.sim import flow, touch_field
p = Pipeline(load_config(env={}, sets=["sim.flow_strength=0", "sim.particles=3000", "scene.name=''"]))
before = [len(k.signatures) for k in (flow.flow_field, touch_field.rasterize)]
p.warm_up()
print(before, [len(k.signatures) for k in (flow.flow_field, touch_field.rasterize)])
"""


def test_warm_up_loads_the_kernels_the_start_s_own_parameters_skip():
    """A venue config with no flow never ran flow_field before the show: the first tick the mood
    turned the flow on compiled it in the frame loop (1.2 s with a cold cache, a frozen
    picture). Likewise the touch grid, drawn only once 16 phones touch at once."""
    import os
    import subprocess
    import sys
    from conftest import ROOT
    r = subprocess.run([sys.executable, "-c", _WARM], capture_output=True, text=True, timeout=300,
                       env=dict(os.environ, PYTHONPATH=str(ROOT)))
    assert r.returncode == 0, r.stderr[-2000:]
    assert r.stdout.strip().splitlines()[-1] == "[0, 0] [1, 1]", r.stdout
