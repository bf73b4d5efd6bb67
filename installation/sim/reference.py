"""Plain NumPy twins of the swarm kernels: the test oracle, not a fallback.

Each twin is written the obvious way (all pairs instead of a grid, float64, whole-array
operations) so that agreeing with it says the fast kernels compute the documented physics.
`make_inputs` builds seeded small inputs; `step_ref` is one whole tick.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from . import forces as F
from . import neighbours as N
from . import touch_field as TF
from .flow import lattice_shape
from .grid import GridSpec, expected_neighbours
from .params import StepParams


# --- grid ------------------------------------------------------------------------------------

def cells_ref(x, y, gx, gy, inv_cw, inv_ch):
    cx = np.clip((x.astype(np.float64) * inv_cw).astype(np.int64), 0, gx - 1)
    cy = np.clip((y.astype(np.float64) * inv_ch).astype(np.int64), 0, gy - 1)
    return (cy * gx + cx).astype(np.int32)


def sort_ref(cell, ncell):
    """(perm, cell_start) of a stable sort by cell."""
    perm = np.argsort(cell, kind="stable").astype(np.int32)
    start = np.zeros(ncell + 1, np.int32)
    start[1:] = np.cumsum(np.bincount(cell, minlength=ncell))
    return perm, start


# --- flow ------------------------------------------------------------------------------------

def flow_gradients_ref(angle0, spin, phase, nx, ny):
    a = angle0[:ny, :nx] + spin[:ny, :nx] * phase
    return np.cos(a), np.sin(a)


def _fade(t):
    return t * t * t * (t * (t * 6 - 15) + 10)


def _lattice(x, y, nx, ny, kx, ky):
    u = np.asarray(x, np.float64) * kx
    v = np.asarray(y, np.float64) * ky
    fu, fv = u - np.floor(u), v - np.floor(v)
    i0 = np.floor(u).astype(np.int64) % nx
    j0 = np.floor(v).astype(np.int64) % ny
    return fu, fv, i0, (i0 + 1) % nx, j0, (j0 + 1) % ny


def noise_ref(x, y, gx, gy, nx, ny, kx, ky):
    """The scalar noise ψ (gradient noise, quintic fade) whose curl is the flow."""
    fu, fv, i0, i1, j0, j1 = _lattice(x, y, nx, ny, kx, ky)
    n00 = gx[j0, i0] * fu + gy[j0, i0] * fv
    n10 = gx[j0, i1] * (fu - 1) + gy[j0, i1] * fv
    n01 = gx[j1, i0] * fu + gy[j1, i0] * (fv - 1)
    n11 = gx[j1, i1] * (fu - 1) + gy[j1, i1] * (fv - 1)
    su, sv = _fade(fu), _fade(fv)
    return n00 + su * (n10 - n00) + sv * (n01 - n00) + su * sv * (n00 - n10 - n01 + n11)


def flow_ref(x, y, gx, gy, nx, ny, kx, ky):
    """(dψ/dy, −dψ/dx) / ky, differentiating noise_ref by hand."""
    fu, fv, i0, i1, j0, j1 = _lattice(x, y, nx, ny, kx, ky)
    g00 = np.stack([gx[j0, i0], gy[j0, i0]])
    g10 = np.stack([gx[j0, i1], gy[j0, i1]])
    g01 = np.stack([gx[j1, i0], gy[j1, i0]])
    g11 = np.stack([gx[j1, i1], gy[j1, i1]])
    n00 = g00[0] * fu + g00[1] * fv
    n10 = g10[0] * (fu - 1) + g10[1] * fv
    n01 = g01[0] * fu + g01[1] * (fv - 1)
    n11 = g11[0] * (fu - 1) + g11[1] * (fv - 1)
    su, sv = _fade(fu), _fade(fv)
    dsu = 30 * fu ** 2 * (fu - 1) ** 2
    dsv = 30 * fv ** 2 * (fv - 1) ** 2
    mix = g00 + su * (g10 - g00) + sv * (g01 - g00) + su * sv * (g00 - g10 - g01 + g11)
    k3 = n00 - n10 - n01 + n11
    dpu = mix[0] + dsu * ((n10 - n00) + sv * k3)
    dpv = mix[1] + dsv * ((n01 - n00) + su * k3)
    return dpv, -dpu * (kx / ky)


# --- forces ----------------------------------------------------------------------------------

def _offsets(xa, xb, period, wrap):
    """xb − xa for every pair (rows a, columns b), nearest image when the world wraps."""
    d = xb[None, :] - xa[:, None]
    if wrap:
        d = d - period * np.floor(d / period + 0.5)
    return d


def crowd_ref(x, y, grid, wrap):
    """CROWD / max(CROWD, local count): the count is how many others share the particle's
    candidate cells (its row and the two beside it, `sub` columns either side) times π / area."""
    cell = cells_ref(x, y, grid.gx, grid.gy, grid.inv_cw, grid.inv_ch)
    counts = np.bincount(cell, minlength=grid.cells).reshape(grid.gy, grid.gx)
    span = 2 * grid.sub + 1

    def around(c, g, reach, narrow):
        if wrap and narrow:
            return list(range(g))
        if wrap:
            return [(c + k) % g for k in range(-reach, reach + 1)]
        return [k for k in range(c - reach, c + reach + 1) if 0 <= k < g]

    out = np.empty(x.shape[0])
    for i, c in enumerate(cell):
        cy, cx = divmod(int(c), grid.gx)
        rows = around(cy, grid.gy, 1, grid.gy < 3)
        cols = around(cx, grid.gx, grid.sub, grid.gx < span)
        local = (counts[np.ix_(rows, cols)].sum() - 1) * math.pi / (span / grid.sub * 3.0)
        out[i] = N.CROWD / max(N.CROWD, local)
    return out


def life_ref(x, y, vx, vy, species, u, v, radius, repel, aspect, wrap, pull):
    """All-pairs particle life: (fx, fy) = Σ F·r·unit vector, the push apart at full strength and
    the species pull times `pull` (life_strength × crowding, per particle); (svx, svy) = Σ v
    over the neighbours and the particle itself; nb the neighbour count."""
    x64, y64 = x.astype(np.float64), y.astype(np.float64)
    dx = _offsets(x64, x64, aspect, wrap)
    dy = _offsets(y64, y64, 1.0, wrap)
    s = (dx * dx + dy * dy) / radius ** 2
    inside = s < 1.0
    q = np.sqrt(s)
    m = (u.astype(np.float32).astype(np.float64)[species] @ v.astype(np.float32).astype(np.float64)[species].T)
    f = np.where(q < repel, N.REPEL_K * (q / repel - 1.0),
                 pull[:, None] * m * (1.0 - np.abs(2.0 * q - 1.0 - repel) / (1.0 - repel)))
    with np.errstate(divide="ignore", invalid="ignore"):
        g = np.where(inside & (s > 0), f / q, 0.0)
    return ((g * dx).sum(1), (g * dy).sum(1), inside @ vx.astype(np.float64),
            inside @ vy.astype(np.float64), inside.sum(1) - 1)


def touch_ref(x, y, species, touches, n_touches, touch_r, others, aspect, wrap, nsp):
    """The touches' pull and energy as the swarm reads them: drawn into the grid of
    `touch_field` (every node within reach, touch by touch), read back bilinearly; summed
    exactly where `use_grid` says the swarm does."""
    if not TF.use_grid(n_touches, touch_r, aspect):
        return touch_exact_ref(x, y, species, touches, n_touches, touch_r, others, aspect, wrap)
    nxc, nyc = TF.field_shape(aspect, touch_r)
    hx, hy = aspect / nxc, 1.0 / nyc
    field = np.zeros((TF.BASE + nsp, nyc + 1, nxc + 1, 3))
    nodes_x = np.arange(nxc + 1) * hx
    nodes_y = np.arange(nyc + 1) * hy
    any_none = any_species = False
    for t in range(n_touches):
        tx, ty, pressure, ts = (float(c) for c in touches[t])
        if not all(math.isfinite(c) for c in (tx, ty, pressure, ts)):
            continue
        dx = _offsets(nodes_x, np.array([tx]), aspect, wrap)[:, 0][None, :]
        dy = _offsets(nodes_y, np.array([ty]), 1.0, wrap)[:, 0][:, None]
        d2 = dx * dx + dy * dy
        k = np.where(d2 < touch_r * touch_r, pressure * (1.0 - d2 / touch_r ** 2), 0.0)
        add = np.stack([k * dx / touch_r, k * dy / touch_r, k], axis=-1)
        if int(ts) < 0:
            any_none = True
            field[0] += add
        else:
            any_species = True
            field[1] += add
            if int(ts) < nsp:
                field[TF.BASE + int(ts)] += add
    u = x * (nxc / aspect)
    v = y * float(nyc)
    i0 = np.clip(np.floor(u).astype(np.int64), 0, nxc - 1)
    j0 = np.clip(np.floor(v).astype(np.int64), 0, nyc - 1)
    fu = np.clip(u - i0, 0.0, 1.0)[:, None]
    fv = np.clip(v - j0, 0.0, 1.0)[:, None]

    def read(c):
        f = field
        a = f[c, j0, i0] + fu * (f[c, j0, i0 + 1] - f[c, j0, i0])
        b = f[c, j0 + 1, i0] + fu * (f[c, j0 + 1, i0 + 1] - f[c, j0 + 1, i0])
        return a + fv * (b - a)
    out = np.zeros((x.shape[0], 3))
    if any_none:
        out += read(np.zeros_like(species))
    if any_species:
        out += others * read(np.ones_like(species))
        if others != 1.0:
            out += (1.0 - others) * read(TF.BASE + species)
    return out[:, 0], out[:, 1], out[:, 2]


def touch_exact_ref(x, y, species, touches, n_touches, touch_r, others, aspect, wrap):
    """Σ pressure·weight·(1 − q²)·offset/reach and Σ pressure·weight·(1 − q²) over live touches:
    what the grid of `touch_field` approximates."""
    ax = np.zeros(x.shape[0])
    ay = np.zeros(x.shape[0])
    de = np.zeros(x.shape[0])
    for t in range(n_touches):
        tx, ty, pressure, ts = (float(c) for c in touches[t])
        if not all(math.isfinite(c) for c in (tx, ty, pressure, ts)):
            continue
        dx = _offsets(x.astype(np.float64), np.array([tx]), aspect, wrap)[:, 0]
        dy = _offsets(y.astype(np.float64), np.array([ty]), 1.0, wrap)[:, 0]
        q2 = (dx * dx + dy * dy) / touch_r ** 2
        own = (int(ts) < 0) | (species == int(ts))
        k = np.where(q2 < 1.0, pressure * np.where(own, 1.0, others) * (1.0 - q2), 0.0)
        ax += k * dx / touch_r
        ay += k * dy / touch_r
        de += k
    return ax, ay, de


def pulse_ref(x, y, pulses, n_pulses, speed, width, rmax, aspect, wrap):
    """Outward push of the rings (triangular profile, fading as the ring grows) and energy."""
    ax = np.zeros(x.shape[0])
    ay = np.zeros(x.shape[0])
    de = np.zeros(x.shape[0])
    for k in range(n_pulses):
        px, py, age, st = (float(c) for c in pulses[k])
        ring = age * speed
        if not all(math.isfinite(c) for c in (px, py, age, st)) or not st > 0 or not 0 <= ring < rmax:
            continue
        dx = -_offsets(x.astype(np.float64), np.array([px]), aspect, wrap)[:, 0]
        dy = -_offsets(y.astype(np.float64), np.array([py]), 1.0, wrap)[:, 0]
        d = np.hypot(dx, dy)
        prof = np.maximum(1.0 - np.abs(d - ring) / width, 0.0)
        kk = st * prof * (1.0 - ring / rmax)
        with np.errstate(divide="ignore", invalid="ignore"):
            ax += np.where(d > 0, kk * dx / d, 0.0)
            ay += np.where(d > 0, kk * dy / d, 0.0)
        de += kk
    return ax, ay, de


def wall_ref(p, size):
    m = F.WALL_MARGIN
    return np.where(p < m, F.WALL_ACCEL * (m - p) / m,
                    np.where(p > size - m, -F.WALL_ACCEL * (p - (size - m)) / m, 0.0))


# --- one tick --------------------------------------------------------------------------------

@dataclass
class TickInputs:
    """Everything one tick depends on, as plain arrays and numbers."""
    x: np.ndarray
    y: np.ndarray
    vx: np.ndarray
    vy: np.ndarray
    energy: np.ndarray
    species: np.ndarray
    home_x: np.ndarray
    home_y: np.ndarray
    params: StepParams
    tick: int
    flow_phase: float = 0.0     # the swarm's running flow phase at this tick


def make_inputs(n: int, seed: int, aspect: float = 16 / 9, species: int = 4,
                touches: int = 3, pulses: int = 2) -> TickInputs:
    """A seeded small swarm, dense enough that every particle has neighbours, with touches
    and pulses placed over it."""
    rng = np.random.default_rng(seed)
    p = StepParams()
    p.touch_radius = 0.3
    p.mosaic_pull = 0.7
    for t in range(touches):
        p.touches[t] = (rng.uniform(0, aspect), rng.uniform(0, 1), rng.uniform(0.3, 1.0), t % species)
    p.n_touches = touches
    for k in range(pulses):
        p.pulses[k] = (rng.uniform(0, aspect), rng.uniform(0, 1), rng.uniform(0.05, 0.4), rng.uniform(0.5, 1.0))
    p.n_pulses = pulses
    f32 = np.float32
    return TickInputs(
        x=rng.uniform(0, aspect, n).astype(f32), y=rng.uniform(0, 1, n).astype(f32),
        vx=rng.normal(0, 0.05, n).astype(f32), vy=rng.normal(0, 0.05, n).astype(f32),
        energy=rng.uniform(0, 1, n).astype(f32), species=(np.arange(n) % species).astype(np.int32),
        home_x=rng.uniform(0, aspect, n).astype(f32), home_y=rng.uniform(0, 1, n).astype(f32),
        params=p, tick=int(rng.integers(0, 10_000)), flow_phase=float(rng.uniform(0.0, 1e4)))


def _to_world_ref(p, v, size, wrap):
    if wrap:
        p = p - size * np.floor(p / size)
        pf = p.astype(np.float32)
        pf = np.where((pf >= np.float32(size)) | (pf < 0), np.float32(0), pf)
        return pf, v
    top = np.nextafter(np.float32(size), np.float32(0))
    low = p < 0
    pf = np.where(low, 0.0, p).astype(np.float32)
    v = np.where(low, np.abs(v), v)
    high = pf > top
    return np.where(high, top, pf).astype(np.float32), np.where(high, -np.abs(v), v)


def step_ref(inp: TickInputs, settings, u, v, angle0, spin):
    """One tick as Swarm.step does it: returns the new state in cell order (dict of arrays),
    the neighbour counts and the stats sums (speed, energy, neighbours, resets, home distance)."""
    s = settings
    p = inp.params
    aspect = float(s.aspect)
    wrap = s.boundary == "wrap"
    dt = 1.0 / s.tick_hz
    g = GridSpec.for_world(aspect, s.radius)
    perm, _ = sort_ref(cells_ref(inp.x, inp.y, g.gx, g.gy, g.inv_cw, g.inv_ch), g.cells)
    x, y, vx, vy = inp.x[perm], inp.y[perm], inp.vx[perm], inp.vy[perm]
    e, sp, hx, hy = inp.energy[perm], inp.species[perm], inp.home_x[perm], inp.home_y[perm]
    x64, y64 = x.astype(np.float64), y.astype(np.float64)

    pull = np.float32(p.life_strength * crowd_ref(x, y, g, wrap))
    fx, fy, svx, svy, nb = life_ref(x, y, vx, vy, sp, u, v, s.radius, s.repel, aspect, wrap, pull)
    ax = F.LIFE_GAIN * fx + p.alignment * F.ALIGN_GAIN * (svx / (nb + 1) - vx)
    ay = F.LIFE_GAIN * fy + p.alignment * F.ALIGN_GAIN * (svy / (nb + 1) - vy)

    nx, ny = lattice_shape(aspect, p.flow_scale)
    gxs, gys = flow_gradients_ref(angle0, spin, inp.flow_phase, nx, ny)
    fu, fv = flow_ref(x64, y64, gxs, gys, nx, ny, nx / aspect, float(ny))
    if p.flow_strength != 0:
        ax = ax + p.flow_strength * fu
        ay = ay + p.flow_strength * fv

    gain = np.zeros(x.shape[0])
    n_touch = min(max(int(p.n_touches), 0), p.touches.shape[0])
    if n_touch:
        tx, ty, tde = touch_ref(x64, y64, sp, p.touches, n_touch, p.touch_radius, s.touch_others, aspect, wrap,
                                s.species)
        pull = np.hypot(tx, ty)         # the touches' pulls add up to TOUCH_PULL_MAX at most
        over = pull > F.TOUCH_PULL_MAX
        clip = np.where(over, F.TOUCH_PULL_MAX / np.where(over, pull, 1.0), 1.0)
        tx, ty = tx * clip, ty * clip
        # shared out in a pile: past TOUCH_CROWD times a uniform spread's neighbours
        crowd = F.TOUCH_CROWD * max(expected_neighbours(x.shape[0], s.radius, aspect), 1.0)
        k = p.touch_strength * F.TOUCH_GAIN * np.where(nb > crowd, crowd / np.maximum(nb, 1), 1.0)
        ax = ax + k * tx
        ay = ay + k * ty
        gain += F.TOUCH_ENERGY * tde
    n_pulse = min(max(int(p.n_pulses), 0), p.pulses.shape[0])
    if n_pulse:
        rmax = 0.5 * math.hypot(aspect, 1.0)
        px, py, pde = pulse_ref(x64, y64, p.pulses, n_pulse, p.pulse_speed, p.pulse_width, rmax, aspect, wrap)
        ax = ax + p.pulse_strength * F.PULSE_GAIN * px
        ay = ay + p.pulse_strength * F.PULSE_GAIN * py
        gain += F.PULSE_ENERGY * pde
    hdx = hx.astype(np.float64) - x64
    hdy = hy.astype(np.float64) - y64
    if wrap:
        hdx -= aspect * np.floor(hdx / aspect + 0.5)
        hdy -= np.floor(hdy + 0.5)
    ax = ax + p.mosaic_pull * hdx
    ay = ay + p.mosaic_pull * hdy
    if not wrap:
        ax = ax + wall_ref(x64, aspect)
        ay = ay + wall_ref(y64, 1.0)

    damp = math.exp(-p.friction * dt)
    nvx = (vx + ax * dt) * damp
    nvy = (vy + ay * dt) * damp
    speed = np.hypot(nvx, nvy)
    over = speed > p.max_speed
    scale = np.where(over, p.max_speed / np.where(over, speed, 1.0), 1.0)
    nvx, nvy = nvx * scale, nvy * scale
    ne = np.clip(e * math.exp(-s.energy_decay * dt) + gain * dt, 0.0, 1.0)
    nxp, nvx = _to_world_ref(x64 + nvx * dt, nvx, aspect, wrap)
    nyp, nvy = _to_world_ref(y64 + nvy * dt, nvy, 1.0, wrap)
    state = dict(x=nxp, y=nyp, vx=nvx.astype(np.float32), vy=nvy.astype(np.float32),
                 energy=ne.astype(np.float32), species=sp, target_x=hx, target_y=hy)
    sums = np.array([np.hypot(nvx, nvy).sum(), ne.sum(), nb.sum(), 0.0, np.hypot(hdx, hdy).sum()])
    return state, nb, sums
