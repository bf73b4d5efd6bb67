"""Scenes: the shipped files, crossfades, discrete switches and /param glides."""
from __future__ import annotations

import dataclasses
import logging
import math
import tomllib
import typing
from pathlib import Path

import numpy as np
import pytest

from installation.config import Config, load_config
from installation.config.model import list_scenes
from installation.ops.scenes import FIXED_AT_START, OPERATOR_KEYS, PROTECTED, SCENE_SECTIONS, SceneMixer

ROOT = Path(__file__).resolve().parents[1]
SCENES = ROOT / "configs" / "scenes"
HZ = 60


def smooth(t: float) -> float:  # the closed form, written out independently of the module
    return 3 * t * t - 2 * t * t * t


def float_fields(cfg: Config):
    """(section, key, value) of every float setting of the scene sections."""
    hints = typing.get_type_hints(Config)
    for sec in SCENE_SECTIONS:
        obj = getattr(cfg, sec)
        fh = typing.get_type_hints(hints[sec])
        for f in dataclasses.fields(obj):
            if fh[f.name] is float:
                yield sec, f.name, getattr(obj, f.name)


def scene_keys(name: str) -> set[str]:
    tree = tomllib.loads((SCENES / f"{name}.toml").read_text())
    return {f"{sec}.{k}" for sec, table in tree.items() for k in table}


# -- the shipped scenes ------------------------------------------------------------------

def test_four_distinct_scenes_ship_and_load():
    names = list_scenes(load_config())
    for required in ("living-mosaic", "calm-sanctuary", "surge", "night"):
        assert required in names
    configs = {n: load_config(scene=n) for n in names}
    assert configs["living-mosaic"].sim.particles >= 50000     # issue 2: the default scene has at least 50,000
    for a in names:
        for b in names:
            if a < b:
                ca, cb = configs[a], configs[b]
                assert ca.render.palette != cb.render.palette, (a, b)
                differ = sum(1 for (s, k, va), (_, _, vb) in zip(float_fields(ca), float_fields(cb))
                             if not math.isclose(va, vb, rel_tol=0.1, abs_tol=1e-9))
                assert differ >= 10, f"{a} and {b} differ in only {differ} continuous settings"


def test_scene_character():
    """The four scenes are what their names promise, relative to the default scene."""
    base, calm = load_config(scene="living-mosaic"), load_config(scene="calm-sanctuary")
    surge, night = load_config(scene="surge"), load_config(scene="night")
    assert calm.sim.max_speed < base.sim.max_speed < surge.sim.max_speed
    assert calm.sim.mosaic_pull > base.sim.mosaic_pull and calm.render.warmth < 0
    assert surge.sim.flow_strength > 3 * base.sim.flow_strength and surge.render.warmth > 0
    # dim (its deep palette's light, at its gain and exposure), not dark: see the projector test
    from installation.render.plan import LUMA, palette_linear

    def light(cfg):
        r = cfg.render
        lum = float((palette_linear(r.palette, cfg.sim.species) @ np.asarray(LUMA)).mean())
        return r.exposure * r.point_gain * lum
    assert light(night) < 0.5 * light(base)
    assert night.sim.max_speed < base.sim.max_speed


def test_shipped_scenes_name_the_same_runtime_keys():
    """Then a switch lands on the same values whichever scene ran before."""
    names = list_scenes(load_config())
    sets = {n: scene_keys(n) - FIXED_AT_START for n in names}
    first = sets[names[0]]
    for n, keys in sets.items():
        assert keys == first, f"{n}: {sorted(keys ^ first)}"
        assert not keys & (OPERATOR_KEYS | PROTECTED)
        assert {k.split(".")[0] for k in keys} <= set(SCENE_SECTIONS)


# -- crossfades --------------------------------------------------------------------------

def test_crossfade_midpoint_and_quarter_equal_the_interpolation():
    a, b = load_config(scene="living-mosaic"), load_config(scene="surge")
    mixer = SceneMixer(a)
    assert mixer.switch("surge", 2.0, tick=100) is None
    assert mixer.crossfading and mixer.current_name == "surge"
    fa, fb = list(float_fields(a)), list(float_fields(b))
    moving = 0
    for tick, t in ((100, 0.0), (130, 0.25), (160, 0.5), (190, 0.75)):
        cfg = mixer.update(tick)
        for (sec, key, va), (_, _, vb), (_, _, got) in zip(fa, fb, float_fields(cfg)):
            assert got == pytest.approx(va + (vb - va) * smooth(t), rel=1e-12, abs=1e-12), (tick, sec, key)
            moving += va != vb
    assert moving > 40
    # colours blend channel by channel at the midpoint
    mid = mixer.update(160)
    for ca, cb, cm in zip(a.render.palette, b.render.palette, mid.render.palette):
        for i in (1, 3, 5):
            assert int(cm[i:i + 2], 16) == pytest.approx((int(ca[i:i + 2], 16) + int(cb[i:i + 2], 16)) / 2, abs=0.5)
    end = mixer.update(220)
    assert not mixer.crossfading
    assert end == b  # lands exactly on the scene as loaded at start-up


def test_switch_mid_fade_starts_from_the_blend():
    mixer = SceneMixer(load_config(scene="living-mosaic"))
    mixer.switch("surge", 1.0, tick=0)
    before = mixer.update(20).sim.flow_strength
    assert mixer.switch("night", 1.0, tick=20) is None
    assert mixer.update(20).sim.flow_strength == before
    assert mixer.update(80) == load_config(scene="night")


def test_zero_crossfade_is_immediate_and_steady_state_is_cached():
    mixer = SceneMixer(load_config())
    mixer.switch("calm-sanctuary", 0.0, tick=5)
    cfg = mixer.update(5)
    assert cfg == load_config(scene="calm-sanctuary") and not mixer.crossfading
    assert mixer.update(6) is cfg  # nothing moves: the loop can compare identities


@pytest.fixture
def scene_dir(tmp_path):
    """A config beside a scenes folder of our own, to exercise discrete and fixed keys."""
    (tmp_path / "scenes").mkdir()
    (tmp_path / "cfg.toml").write_text('[scene]\nname = "a"\n[sim]\nspecies = 4\n')
    (tmp_path / "scenes" / "a.toml").write_text(
        '[sim]\nboundary = "wrap"\nmosaic_tiles = 4\nflow_strength = 0.2\n'
        '[render]\npalette = ["#000000", "#ffffff"]\n[crowd]\nfade_s = 2.0\n')
    (tmp_path / "scenes" / "b.toml").write_text(
        '[sim]\nboundary = "walls"\nmosaic_tiles = 8\nflow_strength = 1.0\nparticles = 1000\n'
        '[render]\npalette = ["#ff0000", "#00ff00", "#0000ff"]\nbrightness = 0.1\n[audio]\nlufs_ceiling = -5.0\n'
        '[window]\nfullscreen = true\n[crowd]\nfade_s = 6.0\n')
    (tmp_path / "scenes" / "broken.toml").write_text("[sim]\nflow_strength = 99.0\n")
    return tmp_path


def test_discrete_settings_switch_at_the_midpoint(scene_dir):
    mixer = SceneMixer(load_config(scene_dir / "cfg.toml"))
    mixer.switch("b", 1.0, tick=0)  # 60 ticks
    before, at = mixer.update(29), mixer.update(30)
    assert (before.sim.boundary, before.sim.mosaic_tiles) == ("wrap", 4)
    assert (at.sim.boundary, at.sim.mosaic_tiles) == ("walls", 8)
    assert before.sim.flow_strength == pytest.approx(0.2 + 0.8 * smooth(29 / 60))
    assert at.crowd.fade_s == pytest.approx(4.0)
    # palettes of different lengths blend per species (4 here): colour i % len at each end
    a_pal, b_pal = ("#000000", "#ffffff"), ("#ff0000", "#00ff00", "#0000ff")
    quarter = mixer.update(15).render.palette
    assert len(quarter) == 4
    s = smooth(0.25)
    for i, c in enumerate(quarter):
        ca, cb = a_pal[i % 2], b_pal[i % 3]
        assert int(c[1:3], 16) == round(int(ca[1:3], 16) + (int(cb[1:3], 16) - int(ca[1:3], 16)) * s)
    assert mixer.update(60).render.palette == b_pal


def test_fixed_operator_and_installation_keys_survive_a_switch(scene_dir, caplog):
    start = load_config(scene_dir / "cfg.toml")
    mixer = SceneMixer(start)
    # /master/brightness sets it (crowd control); a /param would be undone by it at once
    assert "send /master/brightness" in mixer.set_param("render.brightness", 0.7, tick=0)
    with caplog.at_level(logging.INFO, logger="installation.ops.scenes"):
        assert mixer.switch("b", 0.0, tick=100) is None
    cfg = mixer.update(100)
    assert cfg.sim.particles == start.sim.particles
    assert cfg.window.fullscreen == start.window.fullscreen
    assert cfg.render.brightness == start.render.brightness  # the operator's, not the scene's 0.1
    text = caplog.text
    assert "sim.particles is fixed at start-up" in text and "[window]" in text
    assert "render.brightness belongs to the operator" in text
    assert "audio.lufs_ceiling is audience safety" in text and cfg.audio.lufs_ceiling == start.audio.lufs_ceiling


def test_unknown_or_broken_scene_is_a_counted_reason_not_a_crash(scene_dir):
    mixer = SceneMixer(load_config(scene_dir / "cfg.toml"))
    before = mixer.update(0)
    why = mixer.switch("nowhere", 1.0, tick=1)
    assert "nowhere" in why and "known scenes" in why and "\n" not in why
    why = mixer.switch("broken", 1.0, tick=2)
    assert "broken.toml" in why and "flow_strength" in why
    why = mixer.switch("../etc/passwd", 1.0, tick=3)
    assert "letters, digits" in why
    assert mixer.rejected == 3 and mixer.current_name == "a"
    assert mixer.update(4) is before


def test_a_scene_file_no_osc_message_can_name_is_refused_with_a_rename(scene_dir):
    """'nuit-été' could be started but never reached by /scene, the schedule or a vote:
    one name rule for all, so a switch to it is refused saying how to rename the file."""
    (scene_dir / "scenes" / "nuit-été.toml").write_text("[sim]\nflow_strength = 0.3\n")
    mixer = SceneMixer(load_config(scene_dir / "cfg.toml"))
    assert "nuit-été" not in mixer.scenes()
    why = mixer.switch("nuit-été", 1.0, tick=1)
    assert why is not None and "nuit-été.toml" in why and "rename it to nuit-ete.toml" in why, why
    assert mixer.rejected == 1 and mixer.current_name == "a"


def test_a_crossfade_between_two_valid_pitch_ranges_never_raises(tmp_path):
    """The pitch-range check (root_hz with octaves under Nyquist) is a loading check: each
    scene passes it, but a linear blend of root_hz and octaves midway may not, and the frame
    loop must not raise in the middle of a crossfade."""
    (tmp_path / "scenes").mkdir()
    (tmp_path / "scenes" / "deep.toml").write_text("[audio]\nroot_hz = 100.0\noctaves = 5.0\n")
    (tmp_path / "scenes" / "high.toml").write_text("[audio]\nroot_hz = 880.0\noctaves = 3.0\n")
    (tmp_path / "cfg.toml").write_text('[scene]\nname = "deep"\n')
    cfg = load_config(tmp_path / "cfg.toml", env={})
    assert cfg.scenes.broken == {}
    mixer = SceneMixer(cfg)
    assert mixer.switch("high", 1.0, tick=0) is None
    mids = [mixer.update(t).audio for t in range(0, 61, 5)]
    assert mids[-1].root_hz == 880.0 and mids[-1].octaves == 3.0
    assert any(400 < a.root_hz < 600 for a in mids)

# -- /param --------------------------------------------------------------------------------

def test_param_glides_and_clamps():
    start = load_config(scene="living-mosaic")
    mixer = SceneMixer(start)
    glide = round(start.scene.param_glide_s * HZ)
    old = start.sim.flow_strength
    assert mixer.set_param("flow_strength", 2.0, tick=10) is None
    assert mixer.update(10).sim.flow_strength == old
    assert mixer.update(10 + glide // 2).sim.flow_strength == pytest.approx(old + (2.0 - old) * 0.5)
    assert mixer.update(10 + glide).sim.flow_strength == 2.0
    # out of range: clamped to the setting's hi, not rejected
    assert mixer.set_param("sim.alignment", 1e6, tick=100) is None
    assert mixer.update(100 + glide).sim.alignment == 5.0
    assert mixer.set_param("render.trail_decay", -3, tick=200) is None
    assert mixer.update(200 + glide).render.trail_decay == 0.0
    # ints step at once, rounded; bools from >= 0.5
    assert mixer.set_param("mosaic_tiles", 6.6, tick=300) is None
    assert mixer.update(300).sim.mosaic_tiles == 7
    assert mixer.set_param("attract.enabled", 0.0, tick=300) is None
    assert mixer.update(300).attract.enabled is False
    assert mixer.rejected == 0


@pytest.mark.parametrize("name, value, words", [
    ("flow_strenght", 1.0, "did you mean"),
    ("enabled", 1.0, "ambiguous"),
    ("particles", 1000.0, "fixed at start-up"),
    ("sim.tick_hz", 30.0, "fixed at start-up"),
    ("render.palette", 1.0, "not a number"),
    ("safety.flash_guard", 0.0, "unknown parameter"),
    ("audio.lufs_ceiling", 0.0, "audience safety"),
    ("brightness", 1.0, "ambiguous"),
    ("render.brightness", 0.05, "send /master/brightness"),     # the operator's master would undo it
    ("volume", 0.1, "send /master/volume"),
    ("flow_strength", float("nan"), "finite number"),
    ("flow_strength", "fast", "finite number"),
])
def test_param_rejects_with_a_reason(name, value, words):
    mixer = SceneMixer(load_config())
    before = mixer.update(0)
    why = mixer.set_param(name, value, tick=1)
    assert words in why and "\n" not in why
    assert mixer.rejected == 1
    assert mixer.update(2) is before


def test_param_holds_through_a_running_crossfade_and_resets_at_the_next_switch():
    a, b = load_config(scene="living-mosaic"), load_config(scene="calm-sanctuary")
    mixer = SceneMixer(a)
    mixer.switch("calm-sanctuary", 2.0, tick=0)  # 120 ticks
    mixer.update(30)
    mixer.set_param("exposure", 3.0, tick=30)
    glide = round(a.scene.param_glide_s * HZ)
    cfg = mixer.update(30 + glide)
    assert cfg.render.exposure == 3.0
    t = (30 + glide) / 120
    assert cfg.sim.flow_speed == pytest.approx(a.sim.flow_speed + (b.sim.flow_speed - a.sim.flow_speed) * smooth(t))
    assert mixer.update(120).render.exposure == 3.0
    mixer.switch("calm-sanctuary", 0.0, tick=200)
    assert mixer.update(200).render.exposure == b.render.exposure


def test_state_events_put_a_second_mixer_where_the_first_is():
    """A recording started mid-run begins with these events; replayed into a mixer built from
    the start-up config they lead to the same configuration, a switch later included."""
    start = load_config(scene="living-mosaic")
    live = SceneMixer(start)
    live.switch("calm-sanctuary", 2.0, tick=0)
    assert live.set_param("sim.touch_others", 0.9, tick=30) is None
    events = live.state_events(60)
    assert events[0][0] == "/scene" and events[0][2][0] == "calm-sanctuary"
    assert events[0][2][1] == pytest.approx(1.0)           # half of the 2 s fade is left
    assert ("/param/sim.touch_others", "f", (0.9,)) in events
    again = SceneMixer(start)
    for addr, _types, args in events:
        if addr == "/scene":
            again.switch(args[0], args[1], tick=60)
        else:
            again.set_param(addr[len("/param/"):], args[0], tick=60)
    done = 60 + 2 * HZ
    assert again.update(done) == live.update(done)
    # and both go back to the scene's own value at the next switch
    live.switch("surge", 0.0, tick=done)
    again.switch("surge", 0.0, tick=done)
    assert again.update(done + 1) == live.update(done + 1)
    assert live.update(done + 1).sim.touch_others == start.sim.touch_others


@pytest.mark.parametrize("scene", ["living-mosaic", "calm-sanctuary", "surge", "night"])
def test_every_shipped_scene_shows_on_a_projector(scene):
    """Dim is a look; black is a fault. The night scene once averaged 0.5 of 255 at 720p."""
    import numpy as np
    from installation.pipeline import Pipeline
    p = Pipeline(load_config(scene=scene, env={}), render_size=(640, 360))
    for _ in range(120):             # two seconds as shown: a frame a tick, so the trails build
        p.advance([])
        frame = p.render()
    rgb = frame.view(np.uint8).reshape(frame.shape + (4,))[..., :3]
    lit = float((rgb.max(axis=2) >= 16).mean())
    assert rgb.mean() >= 1.5 and lit >= 0.05, (scene, float(rgb.mean()), lit)


@pytest.mark.parametrize("scene", ["living-mosaic", "calm-sanctuary", "surge", "night"])
def test_every_shipped_scene_s_bloom_shows(scene):
    """The bloom compares light averaged over its cells with the threshold: the scenes' old
    thresholds (0.45-0.8) sat above the brightest cell any of them reached (0.3), so the bloom,
    its strength and its radius changed no pixel. At the scene's own render size, after five
    seconds (the swarm gathers into the clusters that glow)."""
    import numpy as np
    from installation.pipeline import Pipeline
    p = Pipeline(load_config(scene=scene, env={}))
    glow = []
    for t in range(300):
        p.advance([])
        p.render()
        if t >= 240:
            glow.append(p.renderer._up.max(axis=0))       # the light the bloom adds, per pixel
    glow = np.array(glow)
    assert glow.max() > 0.005, (scene, glow.max())
    assert float((glow.max(axis=0) > 0.001).mean()) > 0.002, scene    # not one stray cell


@pytest.mark.parametrize("scene", ["living-mosaic", "calm-sanctuary", "surge", "night"])
def test_no_shipped_scene_keeps_the_flash_guard_limiting_at_rest(scene):
    """The guard is a safety net, not a look: surge's short trails made every 0.1 degree of the
    screen sparkle, the guard limited nine frames in ten over the whole picture at some 50 ms
    a frame, and the scene ran at 20 fps. At the scene's own size, its attract crowd playing."""
    from installation.pipeline import Pipeline
    p = Pipeline(load_config(scene=scene, env={}))
    for _ in range(360):
        p.advance([])
        p.render()
    assert p.guard.limited_frames <= 0.05 * 360, (scene, p.guard.limited_frames)
