"""The swarm as the rest of the installation sees it: determinism, what each force does, safety."""
from __future__ import annotations

import dataclasses
import math
import os
import subprocess
import sys
import textwrap
import tracemalloc

import numpy as np
import pytest

import installation.sim  # noqa: F401  (loads the config package first)
from installation.sim.layout import interaction_matrix, mosaic_grid, mosaic_homes, tile_species
from installation.sim.params import StepParams
from installation.sim.settings import SimSettings
from installation.sim.swarm import N_STATS, STAT_HOME, STAT_RESETS, Swarm

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def small(**kw) -> SimSettings:
    base = dict(particles=3000, species=4, radius=0.03, seed=3)
    base.update(kw)
    return SimSettings(**base)


def busy_params(s: SimSettings) -> StepParams:
    """Every force at work: two touches, a pulse, some mosaic pull."""
    p = StepParams.from_settings(s)
    p.touches[0] = (0.4, 0.5, 1.0, 1)
    p.touches[1] = (1.3, 0.3, 0.6, 2)
    p.n_touches = 2
    p.pulses[0] = (0.9, 0.5, 0.1, 1.0)
    p.n_pulses = 1
    p.mosaic_pull = 1.5
    return p


def run(sw: Swarm, p: StepParams, ticks: int) -> None:
    for _ in range(ticks):
        if p.n_pulses:
            p.pulses[0, 2] += sw.dt
        sw.step(p)


def test_same_seed_same_params_same_hash():
    s = small()
    a, b = Swarm(s), Swarm(s)
    assert a.state_hash() == b.state_hash()
    pa, pb = busy_params(s), busy_params(s)
    run(a, pa, 40)
    run(b, pb, 40)
    assert a.tick == b.tick == 40
    assert a.state_hash() == b.state_hash()
    c = Swarm(small(seed=4))
    run(c, busy_params(s), 40)
    assert c.state_hash() != a.state_hash()


HASH_SCRIPT = textwrap.dedent("""
    import numba, sys
    import installation.sim
    from installation.sim.swarm import SERIAL_BELOW
    from installation.sim.params import StepParams
    from installation.sim.settings import SimSettings
    from installation.sim.swarm import Swarm
    s = SimSettings(particles=25000, species=5, radius=0.015, seed=9)   # above SERIAL_BELOW
    sw = Swarm(s)
    p = StepParams.from_settings(s)
    p.touches[0] = (0.5, 0.5, 1.0, 2); p.n_touches = 1
    p.pulses[0] = (1.0, 0.4, 0.0, 1.0); p.n_pulses = 1
    p.mosaic_pull = 1.0
    assert sw.n >= SERIAL_BELOW
    for _ in range(30):
        p.pulses[0, 2] += sw.dt
        sw.step(p)
    print(numba.get_num_threads(), sw.state_hash(), repr(float(sw.stats.sum())))
""")


def test_one_and_two_threads_give_the_same_bits():
    out = []
    for threads in ("1", "2"):
        env = dict(os.environ, NUMBA_NUM_THREADS=threads, PYTHONPATH=ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""))
        res = subprocess.run([sys.executable, "-c", HASH_SCRIPT], env=env, capture_output=True, text=True, timeout=300)
        assert res.returncode == 0, res.stderr
        out.append(res.stdout.split())
    assert out[0][0] == "1" and out[1][0] == "2"
    assert out[0][1:] == out[1][1:]


def _mean_dist(sw, mask, x, y):
    dx = sw.x[mask] - x
    dy = sw.y[mask] - y
    return float(np.mean(np.hypot(dx, dy)))


def test_a_touch_draws_its_species_most():
    s = small(boundary="walls")
    sw = Swarm(s)
    p = StepParams.from_settings(s)
    p.flow_strength = 0.0
    tx, ty = 0.9, 0.5
    p.touches[0] = (tx, ty, 1.0, 2)
    p.n_touches = 1

    def near(species_is):
        mask = (species_is(sw.species)) & (np.hypot(sw.x - tx, sw.y - ty) < p.touch_radius)
        return mask

    before_own = _mean_dist(sw, near(lambda sp: sp == 2), tx, ty)
    before_other = _mean_dist(sw, near(lambda sp: sp != 2), tx, ty)
    e_before = sw.energy[sw.species == 2].mean()
    run(sw, p, 90)
    own = _mean_dist(sw, near(lambda sp: sp == 2), tx, ty)
    other = _mean_dist(sw, near(lambda sp: sp != 2), tx, ty)
    assert own < 0.75 * before_own
    assert own < other
    n_own_near = int(near(lambda sp: sp == 2).sum())
    assert n_own_near > 1.2 * (sw.n / s.species) * math.pi * p.touch_radius ** 2 / s.aspect
    assert sw.energy[(sw.species == 2) & (np.hypot(sw.x - tx, sw.y - ty) < 0.08)].mean() > e_before


def test_a_crowd_touching_one_spot_cannot_crush_the_swarm_into_a_pile():
    """32 phones touching the centre of the surge scene packed 41% of the swarm within 0.05 of
    it: ~900 neighbours each, and the tick went from 10 to 70 ms (7 fps). Touches' pulls now add
    up to TOUCH_PULL_MAX at one point, and a pull is shared out past TOUCH_CROWD times a uniform
    spread's neighbours: the crowd still gathers the swarm, at a density (and a cost) a few
    times the uniform one."""
    from installation.config import load_config
    from installation.sim import forces as F
    from installation.sim.swarm import STAT_NEIGHBOURS
    s = dataclasses.replace(load_config(None, scene="surge", env={}).sim, particles=12_000, seed=3)
    sw = Swarm(s)
    p = StepParams.from_settings(s)
    cx, cy = 0.5 * s.aspect, 0.5
    p.touches[:32] = (cx, cy, 1.0, -1)
    p.n_touches = 32
    uniform = sw.expected_neighbours
    peak = 0.0
    for _ in range(8):
        run(sw, p, 75)
        peak = max(peak, sw.stats[STAT_NEIGHBOURS])
    near = float((np.hypot(sw.x - cx, sw.y - cy) < 0.05).mean())
    assert near > 3 * math.pi * 0.05 ** 2 / s.aspect            # the crowd still gathers the swarm
    assert peak < F.TOUCH_CROWD * uniform, (peak, uniform)       # but never into a pile
    assert near < 0.08, near


def test_a_pulse_pushes_outward_and_lights_up():
    s = small()
    calm, hit = Swarm(s), Swarm(s)
    p0 = StepParams.from_settings(s)
    p1 = StepParams.from_settings(s)
    px, py = 0.9, 0.5
    p1.pulses[0] = (px, py, 0.2, 1.0)        # ring radius 0.2 s × 0.9 world/s = 0.18
    p1.n_pulses = 1
    calm.step(p0)
    hit.step(p1)
    np.testing.assert_array_equal(calm.species, hit.species)    # same order: positions barely moved
    dx, dy = hit.x - px, hit.y - py
    d = np.hypot(dx, dy)
    kick = ((hit.vx - calm.vx) * dx + (hit.vy - calm.vy) * dy) / np.maximum(d, 1e-9)
    ring = (np.abs(d - 0.18) < 0.6 * p1.pulse_width) & (d > 0.02)
    assert ring.sum() > 50
    assert (kick[ring] > 0).all()
    assert (hit.energy - calm.energy)[ring].min() > 0
    far = np.abs(d - 0.18) > 1.5 * p1.pulse_width
    assert np.abs(kick[far]).max() < 1e-6


def test_mosaic_pull_brings_particles_home():
    s = small(mosaic_tiles=4)
    free, pulled = Swarm(s), Swarm(s)
    p0 = StepParams.from_settings(s)
    p1 = StepParams.from_settings(s)
    p1.mosaic_pull = 6.0
    start = free.stats[STAT_HOME]
    run(free, p0, 180)
    run(pulled, p1, 180)        # 3 s: the speed limit, not the pull, sets how fast they get home
    assert pulled.stats[STAT_HOME] < 0.4 * free.stats[STAT_HOME]
    cols, rows = pulled.mosaic_shape
    owner = tile_species(s.species, cols, rows)

    def in_own_tile(sw):
        col = np.minimum((sw.x / (s.aspect / cols)).astype(int), cols - 1)
        row = np.minimum((sw.y * rows).astype(int), rows - 1)
        return float(np.mean(owner[row, col] == sw.species))

    assert in_own_tile(pulled) > 0.9          # the mosaic has formed
    assert in_own_tile(free) < 0.5            # 1/4 by chance
    assert free.stats[STAT_HOME] > 0.7 * start     # without the pull nobody goes home


def test_mosaic_layout_gives_every_species_tiles_and_homes_inside_them():
    for k, aspect, cols in ((8, 16 / 9, 4), (5, 1.0, 3), (16, 16 / 9, 4), (1, 0.5, 1), (3, 4.0, 8)):
        c, r = mosaic_grid(k, aspect, cols)
        owner = tile_species(k, c, r)
        assert set(owner.ravel()) == set(range(k))
        sp = (np.arange(4000) % k).astype(np.int32)
        hx, hy = mosaic_homes(sp, k, aspect, cols, np.random.default_rng(1))
        col = np.floor(hx / (aspect / c)).astype(int)
        row = np.floor(hy * r).astype(int)
        assert ((hx >= 0) & (hx < aspect) & (hy >= 0) & (hy < 1)).all()
        np.testing.assert_array_equal(owner[row, col], sp)
    # adjacent rows of the default layout do not stack one species into a stripe
    owner = tile_species(8, 8, 4)
    assert (owner[1:] != owner[:-1]).all()


def test_interaction_matrix_is_seeded_asymmetric_and_bounded():
    m = interaction_matrix(8, 7)
    np.testing.assert_array_equal(m, interaction_matrix(8, 7))
    assert not np.allclose(m, m.T)
    assert np.abs(m).max() == pytest.approx(1.0)
    assert (np.diag(m) > 0).all()
    assert not np.allclose(m, interaction_matrix(8, 8))


EXTREMES = [
    dict(life_strength=100.0, alignment=50.0, flow_strength=100.0, flow_scale=50.0, flow_speed=100.0,
         friction=0.0, max_speed=50.0, touch_strength=500.0, pulse_strength=500.0, mosaic_pull=200.0),
    dict(friction=1000.0, max_speed=1e-3, touch_radius=4.0, pulse_width=4.0, flow_scale=0.1),
]


@pytest.mark.parametrize("boundary", ["wrap", "walls"])
@pytest.mark.parametrize("extreme", range(len(EXTREMES)))
def test_extreme_params_stay_finite_and_inside_the_world(boundary, extreme):
    s = small(particles=2000, boundary=boundary)
    sw = Swarm(s)
    p = busy_params(s)
    for k, v in EXTREMES[extreme].items():
        setattr(p, k, v)
    p.touches[2] = (0.0, 0.0, 1.0, -1)
    p.n_touches = 3
    run(sw, p, 150)
    for a in (sw.x, sw.y, sw.vx, sw.vy, sw.energy):
        assert np.isfinite(a).all()
    assert ((sw.x >= 0) & (sw.x < s.aspect) & (sw.y >= 0) & (sw.y < 1)).all()
    assert ((sw.energy >= 0) & (sw.energy <= 1)).all()
    assert np.hypot(sw.vx, sw.vy).max() <= p.max_speed * (1 + 1e-5)
    assert np.isfinite(sw.stats).all() and sw.stats.shape == (N_STATS,)
    assert sw.stats[STAT_RESETS] == 0


def test_non_finite_inputs_are_replaced_and_counted():
    s = small(particles=1000)
    sw = Swarm(s)
    p = busy_params(s)
    p.flow_strength = float("nan")
    p.max_speed = float("inf")
    p.touches[1] = (np.nan, 0.5, 1.0, 0)
    p.pulses[0] = (0.5, np.inf, 0.1, 1.0)
    run(sw, p, 5)
    assert sw.bad_params == 20      # two scalars, one touch row, one pulse row, five ticks
    assert np.isfinite(sw.x).all() and np.isfinite(sw.vx).all()
    p.n_touches = 10_000
    p.n_pulses = -3
    sw.step(p)                   # counts beyond the buffers are clamped
    assert np.isfinite(sw.vx).all()


def test_no_allocation_growth_per_tick():
    s = small(particles=2000)
    sw = Swarm(s)
    p = busy_params(s)
    run(sw, p, 5)                 # warm: compiled, buffers sized
    tracemalloc.start()
    try:
        run(sw, p, 5)
        first = tracemalloc.get_traced_memory()[0]
        run(sw, p, 100)
        grown = tracemalloc.get_traced_memory()[0] - first
    finally:
        tracemalloc.stop()
    assert grown < 4096


def test_arrays_keep_their_identity_across_ticks():
    s = small(particles=500)
    sw = Swarm(s)
    ids = [id(a) for a in (sw.x, sw.y, sw.vx, sw.vy, sw.energy, sw.species, sw.stats)]
    run(sw, busy_params(s), 3)
    assert ids == [id(a) for a in (sw.x, sw.y, sw.vx, sw.vy, sw.energy, sw.species, sw.stats)]
    assert sw.x.dtype == np.float32 and sw.species.dtype == np.int32
    assert np.bincount(sw.species, minlength=s.species).tolist() == [s.particles // s.species] * s.species


def test_measure_reports_ms_and_neighbours(tmp_path, capsys):
    from installation.sim import measure
    out = tmp_path / "m.json"
    assert measure.main(["--sizes", "2000,4000", "--ticks", "3", "--settle", "2", "--json", str(out)]) == 0
    import json
    rows = json.loads(out.read_text())["rows"]
    assert [r["settled"]["particles"] for r in rows] == [2000, 4000]
    for r in rows:
        assert 0 < r["fresh"]["ms_median"] < 1000
        assert r["settled"]["neighbours"] > 0
    assert "4000" in capsys.readouterr().out


def test_a_scene_switch_applies_to_the_running_swarm():
    import dataclasses
    s = small(particles=2000, mosaic_tiles=4)
    sw = Swarm(s)
    run(sw, busy_params(s), 3)
    x_id = id(sw.x)
    new = dataclasses.replace(s, boundary="walls", repel=0.3, matrix_seed=99, mosaic_tiles=8, energy_decay=3.0)
    sw.apply_settings(new)
    assert sw.mosaic_shape == mosaic_grid(4, s.aspect, 8)
    np.testing.assert_allclose(sw.matrix, interaction_matrix(4, 99))
    owner = tile_species(4, *sw.mosaic_shape)
    col = (sw.target_x / (s.aspect / sw.mosaic_shape[0])).astype(int)
    row = (sw.target_y * sw.mosaic_shape[1]).astype(int)
    np.testing.assert_array_equal(owner[row, col], sw.species)
    p = busy_params(new)
    p.mosaic_pull = 0.0
    sw.vx[:] = 0.5                      # heading out through the right-hand wall
    sw.x[:] = np.float32(s.aspect - 1e-3)
    run(sw, p, 5)
    assert (sw.x < s.aspect).all() and sw.x.min() > s.aspect - 0.1     # walls now: nobody wrapped round
    assert id(sw.x) == x_id
    twin = Swarm(s)
    run(twin, busy_params(s), 3)
    twin.apply_settings(new)
    twin.vx[:] = 0.5
    twin.x[:] = np.float32(s.aspect - 1e-3)
    run(twin, p, 5)
    assert twin.state_hash() == sw.state_hash()            # switches replay exactly
    with pytest.raises(ValueError, match="particles"):
        sw.apply_settings(dataclasses.replace(s, particles=3000))


def test_a_change_of_flow_speed_after_hours_of_uptime_turns_the_flow_smoothly():
    """A crossfade or a /param glide changes flow_speed a little every tick. After an hour
    of uptime that must still turn each lattice gradient by at most spin·2π·speed·dt a tick,
    not jump it by 2π·Δspeed·uptime (a new random swirl every tick of the fade)."""
    from installation.sim.flow import SPIN_MAX
    s = small()
    sw = Swarm(s)
    sw.tick = 3600 * s.tick_hz
    p = StepParams.from_settings(s)
    nx, ny = sw.flow.nx, sw.flow.ny
    speeds = np.linspace(0.1, 0.4, 40)          # a 40-tick glide of flow_speed
    prev, worst = None, 0.0
    for speed in speeds:
        p.flow_speed = float(speed)
        sw.step(p)
        nx, ny = sw.flow.nx, sw.flow.ny
        angle = np.arctan2(sw.flow.gy[:ny, :nx], sw.flow.gx[:ny, :nx])
        if prev is not None:
            turn = np.abs((angle - prev + np.pi) % (2 * np.pi) - np.pi)
            worst = max(worst, float(turn.max()))
        prev = angle
    bound = SPIN_MAX * 2 * np.pi * speeds.max() / s.tick_hz
    assert 0.0 < worst <= bound * (1 + 1e-9), (worst, bound)
