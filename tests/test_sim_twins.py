"""The numba kernels of the swarm against their plain NumPy twins, on seeded small inputs."""
from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest

import installation.sim  # noqa: F401  (loads the config package first)
from installation.sim import reference as R
from installation.sim.flow import FlowLattice, flow_field, lattice_shape
from installation.sim import forces as F
from installation.sim import touch_field as TF
from installation.sim.grid import GridSpec, assign_cells, counting_sort, gather_state
from installation.sim.neighbours import LANES, neighbour_pass, neighbour_pass_min_image
from installation.sim.settings import SimSettings
from installation.sim.swarm import STAT_ENERGY, STAT_HOME, STAT_NEIGHBOURS, STAT_SPEED, Swarm


def test_cells_and_stable_sort_match_reference():
    rng = np.random.default_rng(3)
    aspect = 16 / 9
    g = GridSpec.for_world(aspect, 0.05)
    x = rng.uniform(0, aspect, 700).astype(np.float32)
    y = rng.uniform(0, 1, 700).astype(np.float32)
    x[:5] = np.float32(aspect)          # rounding onto the far edge must clamp, not overflow
    y[5:10] = 0.0
    cell = np.empty(700, np.int32)
    assign_cells(x, y, g.gx, g.gy, g.inv_cw, g.inv_ch, cell)
    np.testing.assert_array_equal(cell, R.cells_ref(x, y, g.gx, g.gy, g.inv_cw, g.inv_ch))
    start = np.zeros(g.cells + 1, np.int32)
    perm = np.empty(700, np.int32)
    counting_sort(cell, start, np.zeros(g.cells, np.int32), perm)
    perm_ref, start_ref = R.sort_ref(cell, g.cells)
    np.testing.assert_array_equal(perm, perm_ref)
    np.testing.assert_array_equal(start, start_ref)


def test_gather_puts_the_state_in_cell_order():
    rng = np.random.default_rng(2)
    n = 300
    perm = rng.permutation(n).astype(np.int32)
    src = [rng.random(n).astype(np.float32) for _ in range(5)]
    sp = rng.integers(0, 4, n).astype(np.int32)
    hx, hy = rng.random(n).astype(np.float32), rng.random(n).astype(np.float32)
    kin = rng.random((4, 3)).astype(np.float32)
    out = [np.zeros(n + LANES, np.float32) for _ in range(4)] + [np.zeros(n, np.float32)]
    sps = np.zeros(n, np.int32)
    hxs, hys = np.zeros(n, np.float32), np.zeros(n, np.float32)
    kins = np.zeros((3, n + LANES), np.float32)
    gather_state(perm, *src, sp, hx, hy, kin, *out, sps, hxs, hys, kins)
    for a, b in zip(src, out):
        np.testing.assert_array_equal(b[:n], a[perm])
    np.testing.assert_array_equal(sps, sp[perm])
    np.testing.assert_array_equal(hys, hy[perm])
    np.testing.assert_array_equal(kins[:, :n], kin[sp[perm]].T)
    assert not kins[:, n:].any() and not out[0][n:].any()     # the padding stays zero


@pytest.mark.parametrize("wrap, aspect, radius", [(True, 16 / 9, 0.09), (False, 16 / 9, 0.09),
                                                   (True, 0.25, 0.2), (True, 16 / 9, 0.4)])
def test_neighbour_pass_matches_all_pairs(wrap, aspect, radius):
    rng = np.random.default_rng(21)
    n = 400
    g = GridSpec.for_world(aspect, radius)
    x = rng.uniform(0, aspect, n).astype(np.float32)
    y = rng.uniform(0, 1, n).astype(np.float32)
    perm, start = R.sort_ref(R.cells_ref(x, y, g.gx, g.gy, g.inv_cw, g.inv_ch), g.cells)
    x, y = x[perm], y[perm]
    vx, vy = rng.normal(0, 0.1, n).astype(np.float32), rng.normal(0, 0.1, n).astype(np.float32)
    sp = rng.integers(0, 5, n).astype(np.int32)
    from installation.sim.layout import interaction_factors
    u, v = interaction_factors(5, 3)
    pad = lambda a: np.concatenate([a, np.zeros(LANES, a.dtype)])   # noqa: E731
    kin = np.stack([pad(v.astype(np.float32)[sp, k]) for k in range(3)])
    out = [np.zeros(n, np.float32) for _ in range(4)] + [np.zeros(n, np.int32)]
    narrow = wrap and (g.gx < 2 * g.sub + 1 or g.gy < 3)
    kernel = neighbour_pass_min_image if narrow else neighbour_pass
    kernel(pad(x), pad(y), pad(vx), pad(vy), kin[0], kin[1], kin[2], sp, u, start, g.gx, g.gy, g.sub, wrap,
           aspect, 1.0, radius, 0.4, 0.8, np.zeros((g.gy, 6, 2), np.int64), np.zeros((g.gy, 6, 2)), *out)
    pull = np.float32(0.8 * R.crowd_ref(x, y, g, wrap))
    want = R.life_ref(x, y, vx, vy, sp, u, v, radius, 0.4, aspect, wrap, pull)
    for got, ref in zip(out[:4], want[:4]):
        np.testing.assert_allclose(got, ref, rtol=1e-4, atol=2e-5 * max(1.0, np.abs(ref).max()))
    np.testing.assert_array_equal(out[4], want[4])
    assert want[4].mean() > 3


def _lattice(scale=3.0, phase=2 * math.pi * 0.4 * 2.5, aspect=16 / 9):
    lat = FlowLattice(aspect, np.random.default_rng(5))
    lat.update(phase, scale)
    return lat


def test_flow_gradients_match_reference():
    lat = _lattice()
    gx, gy = R.flow_gradients_ref(lat.angle0, lat.spin, 2 * math.pi * 0.4 * 2.5, lat.nx, lat.ny)
    np.testing.assert_allclose(lat.gx[:lat.ny, :lat.nx], gx, rtol=0, atol=1e-12)
    np.testing.assert_allclose(lat.gy[:lat.ny, :lat.nx], gy, rtol=0, atol=1e-12)


@pytest.mark.parametrize("scale", [0.1, 1.3, 3.0, 11.0])
def test_flow_matches_reference(scale):
    lat = _lattice(scale=scale)
    rng = np.random.default_rng(8)
    x = rng.uniform(0, lat.aspect, 400).astype(np.float32)
    y = rng.uniform(0, 1, 400).astype(np.float32)
    u = np.empty(400)
    v = np.empty(400)
    flow_field(x, y, lat.gx, lat.gy, lat.nx, lat.ny, lat.kx, lat.ky, u, v)
    ur, vr = R.flow_ref(x, y, lat.gx, lat.gy, lat.nx, lat.ny, lat.kx, lat.ky)
    np.testing.assert_allclose(u, ur, rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(v, vr, rtol=1e-9, atol=1e-12)
    assert np.abs(u).max() > 0.05      # not a dead field


def test_flow_over_many_blocks_edges_and_one_period_out_matches_reference():
    """flow_field runs in blocks of FIELD_BLOCK points and wraps lattice nodes by compares: points
    on the world's edges, just outside it (within a period) and past a block boundary all agree
    with the twin's modulo; a NaN reads nothing outside the lattice."""
    from installation.sim.flow import FIELD_BLOCK
    lat = _lattice(scale=3.0)
    rng = np.random.default_rng(10)
    n = 2 * FIELD_BLOCK + 77
    x = rng.uniform(-lat.aspect, 2 * lat.aspect, n).astype(np.float32)
    y = rng.uniform(-1.0, 2.0, n).astype(np.float32)
    x[:6] = [0.0, lat.aspect, np.nextafter(np.float32(lat.aspect), np.float32(0)), -1e-7, 0.5, 1.0]
    y[:6] = [0.0, 1.0, np.nextafter(np.float32(1.0), np.float32(0)), 0.5, -1e-7, 1.0]
    u = np.empty(n)
    v = np.empty(n)
    flow_field(x, y, lat.gx, lat.gy, lat.nx, lat.ny, lat.kx, lat.ky, u, v)
    ur, vr = R.flow_ref(x, y, lat.gx, lat.gy, lat.nx, lat.ny, lat.kx, lat.ky)
    np.testing.assert_allclose(u, ur, rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(v, vr, rtol=1e-9, atol=1e-12)
    bad = np.array([np.nan, np.inf, -np.inf, 1e30], np.float32)
    ub = np.empty(4)
    vb = np.empty(4)
    flow_field(bad, bad, lat.gx, lat.gy, lat.nx, lat.ny, lat.kx, lat.ky, ub, vb)   # no crash


def test_flow_is_the_curl_of_the_noise_and_divergence_free():
    lat = _lattice(scale=4.0)
    rng = np.random.default_rng(9)
    x = rng.uniform(0.01, lat.aspect - 0.01, 300)
    y = rng.uniform(0.01, 0.99, 300)
    args = (lat.gx, lat.gy, lat.nx, lat.ny, lat.kx, lat.ky)
    h = 1e-6
    psi = lambda a, b: R.noise_ref(a, b, *args) / lat.ky   # noqa: E731
    u, v = R.flow_ref(x, y, *args)
    np.testing.assert_allclose(u, (psi(x, y + h) - psi(x, y - h)) / (2 * h), atol=1e-5)
    np.testing.assert_allclose(v, -(psi(x + h, y) - psi(x - h, y)) / (2 * h), atol=1e-5)
    hh = 1e-5
    div = ((R.flow_ref(x + hh, y, *args)[0] - R.flow_ref(x - hh, y, *args)[0])
           + (R.flow_ref(x, y + hh, *args)[1] - R.flow_ref(x, y - hh, *args)[1])) / (2 * hh)
    grad = np.abs((R.flow_ref(x + hh, y, *args)[0] - R.flow_ref(x - hh, y, *args)[0]) / (2 * hh))
    assert np.abs(div).max() < 1e-4 * max(grad.max(), 1.0)


def test_flow_has_no_seam_where_the_world_wraps():
    lat = _lattice(scale=2.6)
    y = np.linspace(0.0, 0.999, 50)
    args = (lat.gx, lat.gy, lat.nx, lat.ny, lat.kx, lat.ky)
    a = R.flow_ref(np.full(50, 1e-9), y, *args)
    b = R.flow_ref(np.full(50, lat.aspect - 1e-9), y, *args)
    np.testing.assert_allclose(a, b, atol=1e-6)
    c = R.flow_ref(y * lat.aspect, np.full(50, 1e-9), *args)
    d = R.flow_ref(y * lat.aspect, np.full(50, 1.0 - 1e-9), *args)
    np.testing.assert_allclose(c, d, atol=1e-6)


def test_lattice_shape_is_a_whole_number_of_cells():
    assert lattice_shape(16 / 9, 3.0) == (5, 3)
    assert lattice_shape(1.0, 0.01) == (1, 1)
    assert lattice_shape(1.0, 1e9) == (50, 50)


def test_the_touch_grid_skips_broken_rows_and_matches_its_twin():
    rng = np.random.default_rng(4)
    touches = np.zeros((40, 4), np.float32)
    touches[:, 0] = rng.uniform(0, 16 / 9, 40)
    touches[:, 1] = rng.uniform(0, 1, 40)
    touches[:, 2] = rng.uniform(0.2, 1.0, 40)
    touches[:, 3] = np.arange(40) % 5 - 1          # species -1 (none) .. 3
    touches[7, 2] = np.nan
    touches[9, 0] = np.inf
    field = TF.allocate(16 / 9, 4)
    for wrap in (True, False):
        nx, ny = TF.field_shape(16 / 9, 0.18)
        drawn, none, some = TF.rasterize(touches, 30, 0.18, wrap, 16 / 9, 1.0, nx, ny, field)
        assert (drawn, none, some) == (28, True, True)
        x, y = rng.uniform(0, 16 / 9, 5000), rng.uniform(0, 1, 5000)
        sp = rng.integers(0, 4, 5000)
        got = np.array([TF.touch_at(x[i], y[i], int(sp[i]), field, nx, ny, nx / (16 / 9), float(ny), 0.2, none, some)
                        for i in range(5000)])
        want = np.stack(R.touch_ref(x, y, sp, touches, 30, 0.18, 0.2, 16 / 9, wrap, 4), axis=1)   # >= GRID_FROM
        np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-12)
    assert TF.rasterize(touches, 0, 0.18, True, 16 / 9, 1.0, nx, ny, field) == (0, False, False)


@pytest.mark.parametrize("wrap", [True, False])
def test_the_touch_grid_is_close_to_the_exact_pull(wrap):
    """The grid's price (touch_field.py): within 3 % of a touch's strongest pull over the inner
    three quarters of its reach, 15 % at its rim, and nothing beyond one cell past it."""
    rng = np.random.default_rng(5)
    r, w = 0.18, 16 / 9
    touches = np.array([[0.05, 0.97, 1.0, -1.0]], np.float32)     # by a corner: across the wrap
    x, y = rng.uniform(0, w, 200_000), rng.uniform(0, 1, 200_000)
    sp = rng.integers(0, 4, x.shape[0])
    padded = np.zeros((TF.GRID_FROM, 4), np.float32)      # as many rows as make the grid ...
    padded[:] = touches[0]
    padded[1:, 2] = 0.0                                    # ... all but one of no strength
    grid = R.touch_ref(x, y, sp, padded, TF.GRID_FROM, r, 0.2, w, wrap, 4)
    exact = R.touch_exact_ref(x, y, sp, touches, 1, r, 0.2, w, wrap)
    dx, dy = x - 0.05, y - 0.97
    if wrap:
        dx, dy = dx - w * np.round(dx / w), dy - np.round(dy)
    q = np.hypot(dx, dy) / r
    err = np.hypot(grid[0] - exact[0], grid[1] - exact[1]) / (2 / (3 * np.sqrt(3)))   # / the peak pull
    assert err[q < 0.75].max() < 0.03 and err.max() < 0.15
    nx, ny = TF.field_shape(w, r)
    far = q * r > TF.reach(r, w, nx, ny)
    assert not np.any(grid[2][far]) and np.any(grid[2][q < 1])


# --- one whole tick against step_ref -----------------------------------------------------------

ISOLATE = {
    "all": {},
    "life": dict(alignment=0.0, flow_strength=0.0, touch_strength=0.0, pulse_strength=0.0, mosaic_pull=0.0),
    "alignment": dict(life_strength=0.0, alignment=2.0, flow_strength=0.0, touch_strength=0.0,
                      pulse_strength=0.0, mosaic_pull=0.0),
    "flow": dict(life_strength=0.0, alignment=0.0, touch_strength=0.0, pulse_strength=0.0, mosaic_pull=0.0),
    "touch": dict(life_strength=0.0, alignment=0.0, flow_strength=0.0, pulse_strength=0.0, mosaic_pull=0.0),
    "pulse": dict(life_strength=0.0, alignment=0.0, flow_strength=0.0, touch_strength=0.0, mosaic_pull=0.0),
    "speed_limit": dict(max_speed=0.02, friction=0.0, touch_strength=30.0),
}


def _swarm_at(inp, settings):
    sw = Swarm(settings)
    for name, src in (("x", inp.x), ("y", inp.y), ("vx", inp.vx), ("vy", inp.vy), ("energy", inp.energy),
                      ("species", inp.species), ("target_x", inp.home_x), ("target_y", inp.home_y)):
        getattr(sw, name)[:] = src
    sw.tick = inp.tick
    sw.flow_phase = inp.flow_phase
    return sw


def _compare(settings, inp):
    sw = _swarm_at(inp, settings)
    sw.step(inp.params)
    want, nb, sums = R.step_ref(inp, settings, sw.matrix_u, sw.matrix_v, sw.flow.angle0, sw.flow.spin)
    np.testing.assert_array_equal(sw.species, want["species"])      # same cell order
    np.testing.assert_array_equal(sw.target_x, want["target_x"])
    for name in ("x", "y"):
        got, ref = getattr(sw, name).astype(np.float64), want[name].astype(np.float64)
        period = settings.aspect if name == "x" else 1.0
        diff = got - ref
        if settings.boundary == "wrap":
            diff -= period * np.round(diff / period)
        assert np.abs(diff).max() < 2e-6, name
    for name in ("vx", "vy", "energy"):
        np.testing.assert_allclose(getattr(sw, name), want[name], rtol=1e-4, atol=1e-5, err_msg=name)
    n = inp.x.shape[0]
    assert sw.stats[STAT_NEIGHBOURS] == pytest.approx(sums[2] / n, abs=1e-9)
    assert sw.stats[STAT_SPEED] == pytest.approx(sums[0] / n, rel=1e-4)
    assert sw.stats[STAT_ENERGY] == pytest.approx(sums[1] / n, rel=1e-4)
    assert sw.stats[STAT_HOME] == pytest.approx(sums[4] / n, rel=1e-6)
    assert nb.mean() > 3       # the inputs really exercise the neighbour search
    return sw


@pytest.mark.parametrize("boundary", ["wrap", "walls"])
@pytest.mark.parametrize("case", list(ISOLATE))
def test_step_matches_reference(boundary, case):
    settings = SimSettings(particles=400, species=4, radius=0.09, boundary=boundary, seed=2)
    inp = R.make_inputs(400, seed=11, aspect=settings.aspect, species=4)
    for k, v in ISOLATE[case].items():
        setattr(inp.params, k, v)
    _compare(settings, inp)


@pytest.mark.parametrize("touches", [4, TF.GRID_FROM + 4])     # summed exactly, and from the grid
def test_step_matches_reference_with_a_crowd_touching_one_packed_spot(touches):
    """Coincident touches whose pulls add past TOUCH_PULL_MAX, over particles packed past
    TOUCH_CROWD times a uniform spread's neighbours: the clip and the sharing out, both ways."""
    settings = SimSettings(particles=400, species=4, radius=0.09, seed=6)
    inp = R.make_inputs(400, seed=14, aspect=settings.aspect, species=4, touches=0, pulses=0)
    rng = np.random.default_rng(15)
    inp.x[:150] = (0.9 + rng.normal(0, 0.03, 150)).astype(np.float32)
    inp.y[:150] = (0.5 + rng.normal(0, 0.03, 150)).astype(np.float32)
    p = inp.params
    p.touches[:touches] = (0.9, 0.5, 1.0, -1)
    p.n_touches = touches
    p.touch_strength = 4.0
    sw = _compare(settings, inp)
    crowd = F.TOUCH_CROWD * sw.expected_neighbours
    assert sw.stats[STAT_NEIGHBOURS] * 400 > 0 and int((sw._nnb > crowd).sum()) > 50     # sharing applies


def test_step_matches_reference_in_a_world_narrower_than_a_run():
    # three columns only: the kernel takes the minimum-image path
    settings = SimSettings(particles=300, species=3, radius=0.2, aspect=0.25, seed=4)
    inp = R.make_inputs(300, seed=12, aspect=0.25, species=3)
    sw = _compare(settings, inp)
    assert sw.grid.gx < 2 * sw.grid.sub + 1


def test_step_matches_reference_with_particles_on_the_edges():
    settings = SimSettings(particles=300, species=4, radius=0.09, seed=5)
    inp = R.make_inputs(300, seed=13, aspect=settings.aspect, species=4)
    inp.x[:20] = 0.0
    inp.x[20:40] = np.nextafter(np.float32(settings.aspect), np.float32(0))
    inp.y[40:60] = 0.0
    _compare(settings, inp)
    _compare(dataclasses.replace(settings, boundary="walls"), inp)


def test_step_matches_reference_when_crowded():
    # dense enough that the species pull is shared out for most particles
    settings = SimSettings(particles=500, species=4, radius=0.2, seed=6)
    inp = R.make_inputs(500, seed=14, aspect=settings.aspect, species=4)
    g = GridSpec.for_world(settings.aspect, settings.radius)
    assert (R.crowd_ref(inp.x, inp.y, g, True) < 1.0).mean() > 0.5
    _compare(settings, inp)


@pytest.mark.parametrize("boundary", ["wrap", "walls"])
def test_many_touches_go_through_the_grid_and_few_or_small_ones_are_summed(boundary):
    """A crowd touching at once (GRID_FROM or more) is drawn into the grid; fewer touches, or a
    reach under `grid_min_reach` (a touch would fall between the nodes), are summed per
    particle. Each path against its twin."""
    settings = SimSettings(particles=400, species=4, radius=0.09, boundary=boundary, seed=2)
    inp = R.make_inputs(400, seed=11, aspect=settings.aspect, species=4, touches=TF.GRID_FROM + 8)
    for k, v in ISOLATE["touch"].items():
        setattr(inp.params, k, v)
    inp.params.touch_radius = 0.18
    assert _compare(settings, inp)._iprm[F.I_TF_GRID] == 1
    inp.params.touch_radius = 0.05
    assert inp.params.touch_radius < TF.grid_min_reach(settings.aspect)
    assert _compare(settings, inp)._iprm[F.I_TF_GRID] == 0
    inp.params.touch_radius = 0.18
    inp.params.n_touches = TF.GRID_FROM - 1
    assert _compare(settings, inp)._iprm[F.I_TF_GRID] == 0
