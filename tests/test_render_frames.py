"""What the audience sees: frames lit, coloured by species, dimmed, blacked out, hashed."""
from __future__ import annotations

import colorsys
import dataclasses
import hashlib

import numpy as np
import pytest

from installation.render.base import Renderer, create_renderer
from installation.render.cpu_renderer import CpuRenderer
from installation.render.look import LookParams
from installation.render.plan import parse_hex
from installation.render.settings import RenderSettings
from installation.render.synthetic import make_swarm

W, H = 256, 144
SETTINGS = RenderSettings()


def rgb(frame: np.ndarray) -> np.ndarray:
    return np.stack([(frame >> s) & 0xFF for s in (16, 8, 0)], axis=-1).astype(np.float64)


def run(renderer, swarm, look, frames=8, drift=True):
    for _ in range(frames):
        frame = renderer.render(swarm, look)
        if drift:
            swarm.drift()
    return frame


def hue_deg(r, g, b) -> float:
    return colorsys.rgb_to_hsv(r, g, b)[0] * 360.0


def test_default_frame_is_lit_but_not_washed_out():
    swarm = make_swarm(20000, seed=11)
    r = CpuRenderer(SETTINGS, 8, swarm.aspect, W, H)
    px = rgb(run(r, swarm, LookParams.from_settings(SETTINGS)))
    lit = px.max(axis=-1) > 8
    assert 0.15 < lit.mean() < 0.98
    assert (px.max(axis=-1) >= 250).mean() < 0.2
    assert px.mean() > 10


@pytest.mark.parametrize("species", range(8))
def test_a_single_species_shows_its_palette_hue(species):
    swarm = make_swarm(3000, seed=12, only_species=species)
    r = CpuRenderer(SETTINGS, 8, swarm.aspect, W, H)
    px = rgb(run(r, swarm, LookParams.from_settings(SETTINGS)))
    lit = px[px.max(axis=-1) > 20]
    assert len(lit) > 100
    got = hue_deg(*(lit.mean(axis=0) / 255))
    want = hue_deg(*parse_hex(SETTINGS.palette[species]))
    assert min(abs(got - want), 360 - abs(got - want)) < 15, (got, want)


def test_palette_repeats_over_more_species_than_colours():
    settings = dataclasses.replace(SETTINGS, palette=("#ff0000", "#0000ff"))
    means = []
    for s in (0, 1, 2, 3):
        swarm = make_swarm(2000, species_count=4, seed=13, only_species=s)
        r = CpuRenderer(settings, 4, swarm.aspect, W, H)
        means.append(rgb(run(r, swarm, LookParams.from_settings(settings), frames=3)).sum(axis=(0, 1)))
    assert means[0][0] > 5 * means[0][2] and means[2][0] > 5 * means[2][2]      # red
    assert means[1][2] > 5 * means[1][0] and means[3][2] > 5 * means[3][0]      # blue


def test_blackout_is_all_black_and_the_trails_carry_on():
    swarm = make_swarm(8000, seed=14)
    r = CpuRenderer(SETTINGS, 8, swarm.aspect, W, H)
    look = LookParams.from_settings(SETTINGS)
    run(r, swarm, look, frames=3)
    look.blackout = True
    frame = run(r, swarm, look, frames=2)
    assert (frame == 0xFF000000).all()
    look.blackout = False
    assert rgb(r.render(swarm, look)).max() > 100


def test_brightness_scales_every_pixel_down_to_black():
    swarm = make_swarm(8000, seed=15)
    look = LookParams.from_settings(SETTINGS)
    frames = {}
    for b in (1.0, 0.5, 0.1, 0.0):
        look.brightness = b
        r = CpuRenderer(SETTINGS, 8, swarm.aspect, W, H)
        frames[b] = rgb(run(r, swarm, look, drift=False))
    assert frames[0.0].max() == 0
    assert frames[1.0].mean() > frames[0.5].mean() > frames[0.1].mean() > 0
    assert (frames[0.5] <= frames[1.0]).all() and (frames[0.1] <= frames[0.5]).all()
    # master brightness scales light: half the brightness is about half the linear light
    lin = {b: ((f / 255) ** 2.2).mean() for b, f in frames.items()}
    assert 0.4 < lin[0.5] / lin[1.0] < 0.6


def test_brighter_with_energy_and_with_speed():
    look = LookParams.from_settings(SETTINGS)

    def mean_light(energy, speed_factor):
        swarm = make_swarm(4000, seed=16)
        swarm.energy[:] = energy
        swarm.vx *= speed_factor
        swarm.vy *= speed_factor
        r = CpuRenderer(SETTINGS, 8, swarm.aspect, W, H)
        return rgb(run(r, swarm, look, frames=2, drift=False)).mean()

    assert mean_light(1.0, 1.0) > mean_light(0.0, 1.0) * 1.1
    assert mean_light(0.0, 4.0) > mean_light(0.0, 0.0) * 1.1


def test_species_gain_fades_one_tile():
    swarm = make_swarm(6000, species_count=2, seed=17)
    settings = dataclasses.replace(SETTINGS, palette=("#ff2020", "#2020ff"))
    look = LookParams.from_settings(settings)
    r = CpuRenderer(settings, 2, swarm.aspect, W, H)
    both = rgb(run(r, swarm, look, frames=3, drift=False)).sum(axis=(0, 1))
    look.species_gain[1] = 0.0
    r.reset()
    red_only = rgb(run(r, swarm, look, frames=3, drift=False)).sum(axis=(0, 1))
    assert red_only[2] < 0.2 * both[2]
    assert red_only[0] > 0.7 * both[0]


def test_warmth_shifts_the_palette_warm_or_cool():
    swarm = make_swarm(8000, seed=18)
    ratios = {}
    for warmth in (-1.0, 0.0, 1.0):
        look = LookParams.from_settings(SETTINGS)
        look.warmth = warmth
        r = CpuRenderer(SETTINGS, 8, swarm.aspect, W, H)
        m = rgb(run(r, swarm, look, frames=3, drift=False)).sum(axis=(0, 1))
        ratios[warmth] = m[0] / m[2]
    assert ratios[1.0] > ratios[0.0] * 1.2 > ratios[-1.0] * 1.2 * 1.2


def test_trails_fade_to_exact_black_and_reset_clears_them():
    swarm = make_swarm(6000, seed=19)
    look = LookParams.from_settings(SETTINGS)
    r = CpuRenderer(SETTINGS, 8, swarm.aspect, W, H)
    run(r, swarm, look, frames=4)
    swarm.n = 0
    first_dark = r.render(swarm, look)
    assert rgb(first_dark).max() > 0          # the trail is still there
    run(r, swarm, look, frames=120, drift=False)
    assert (r.render(swarm, look) == 0xFF000000).all()
    swarm.n = 6000
    run(r, swarm, look, frames=4)
    swarm.n = 0
    r.reset()
    assert (r.render(swarm, look) == 0xFF000000).all()


def test_same_inputs_same_frames_and_hash():
    look = LookParams.from_settings(SETTINGS)
    hashes = []
    for _ in range(2):
        swarm = make_swarm(10000, seed=20)
        r = CpuRenderer(SETTINGS, 8, swarm.aspect, W, H)
        seq = []
        for _ in range(5):
            frame = r.render(swarm, look)
            assert r.frame_hash() == hashlib.sha256(frame.tobytes()).hexdigest()
            seq.append(r.frame_hash())
            swarm.drift()
        hashes.append(seq)
    assert hashes[0] == hashes[1]
    assert len(set(hashes[0])) == 5


def test_letterbox_bars_stay_black():
    swarm = make_swarm(8000, aspect=1.0, seed=21)
    r = CpuRenderer(SETTINGS, 8, 1.0, W, H)       # a square world on a 16:9 frame
    look = LookParams.from_settings(SETTINGS)
    look.bloom = 0.0
    px = rgb(run(r, swarm, look, frames=3))
    bar = (W - H) // 2
    assert px[:, :bar - 1].max() == 0 and px[:, W - bar + 1:].max() == 0
    assert px[:, bar:W - bar].max() > 100


def test_broken_input_never_crashes_and_is_counted():
    swarm = make_swarm(2000, seed=22)
    swarm.x[:10] = np.nan
    swarm.energy[10:20] = np.inf
    swarm.species[20:30] = 99
    swarm.species[30:35] = -1
    look = LookParams.from_settings(SETTINGS)
    look.exposure = float("nan")
    look.trail_decay = 7.0
    look.species_gain = np.full(16, np.nan, np.float32)
    look.species_gain[:8] = 1.0
    r = CpuRenderer(SETTINGS, 8, swarm.aspect, W, H)
    frame = r.render(swarm, look)
    assert r.skipped_particles == 35
    assert rgb(frame).max() > 0
    # more particles claimed than the arrays hold; float64 arrays; a list of gains
    swarm.n = 10 ** 6
    swarm.vx = swarm.vx.astype(np.float64)
    look.species_gain = [1.0] * 3
    r.render(swarm, look)
    assert r.skipped_particles == 70


def test_frame_is_bgra_for_pygame_without_a_copy():
    pygame = pytest.importorskip("pygame")
    settings = dataclasses.replace(SETTINGS, palette=("#ff0000",))
    swarm = make_swarm(3000, species_count=1, seed=23, spread=0.01, clusters=1)
    r = CpuRenderer(settings, 1, swarm.aspect, W, H)
    frame = run(r, swarm, LookParams.from_settings(settings), frames=3, drift=False)
    surf = pygame.image.frombuffer(frame, (W, H), "BGRA")
    assert surf.get_size() == (W, H)
    y, x = np.unravel_index(np.argmax(rgb(frame).sum(axis=-1)), (H, W))
    c = surf.get_at((int(x), int(y)))
    assert c.r > 200 and c.r > 2 * c.b and c.a == 255
    assert frame.flags.c_contiguous and frame.dtype == np.uint32 and frame.shape == (H, W)


def test_factory_and_interface():
    r = create_renderer(SETTINGS, 8, 16 / 9, 320, 200)
    assert isinstance(r, Renderer) and isinstance(r, CpuRenderer)
    assert (r.width, r.height) == (320, 200)
    r = create_renderer(SETTINGS, 8, 16 / 9)
    assert (r.width, r.height) == (SETTINGS.width, SETTINGS.height)
    with pytest.raises(ValueError, match="render size"):
        CpuRenderer(SETTINGS, 8, 16 / 9, 0, 10)


@pytest.mark.parametrize("radius", [0.03, 0.2])      # the same buffers, then a new scale factor
def test_a_scene_switch_takes_its_bloom_radius(radius):
    """A switch or /param that changes bloom_radius draws with the new blur, exactly as a
    renderer started with it would (no trails here, so the two have the same history)."""
    from installation.render.plan import bloom_plan
    start = dataclasses.replace(SETTINGS, trail_decay=0.0, bloom=2.0, bloom_threshold=0.0, bloom_radius=0.04)
    new = dataclasses.replace(start, bloom_radius=radius)
    look = LookParams.from_settings(start)
    look.trail_decay = 0.0
    swarm = make_swarm(6000, seed=23)
    switched = CpuRenderer(start, 8, swarm.aspect, W, H)
    old_frame = run(switched, swarm, look, frames=3, drift=False).copy()
    switched.set_settings(new)
    fresh = CpuRenderer(new, 8, swarm.aspect, W, H)
    got = switched.render(swarm, look)
    assert (got == fresh.render(swarm, look)).all()
    assert (got != old_frame).any()
    assert switched.bloom_plan.factor == bloom_plan(W, H, radius).factor
