"""The touches as a force field: every live touch is drawn into a grid once per tick, and each
particle reads the grid where it stands.

Summing the touches per particle costs particles × touches in reach. A crowd that touches at
once is exactly when that grows: 250 phones touching (the default participant cap is 256) made
a tick of the default scene take 14 ms spread over the image and 24 ms where they clustered,
against 4 ms with none. Drawn into a grid, the touches cost (touches × grid nodes in reach) once,
and a particle pays the same few loads however many touches reach it: the GPU particle
systems' force texture. `bench`'s 256-touch row (50,000 particles): 16.9 ms a tick summed per
particle, 8.8 ms from the grid, of which ~1.8 ms is the touches' own cost; the rest is the
swarm answering them, pulled into clumps where each particle has ~30 neighbours, not ~12.

A touch at t with pressure p pulls a point x with p·w·(1 − q²)·(t − x)/r, q = |t − x|/r < 1, and
gives it energy p·w·(1 − q²); the weight w is 1 for the toucher's own species (and for touches
of no species), `touch_others` for the rest. Per species s that is A + o·B + (1 − o)·S_s, with
A the touches of no species, B all touches of one, S_s those of species s: channels 0, 1 and
2 + s of the grid, each holding (pull x, pull y, energy). Nodes are `FIELD_SUB` per reach (at
most `MAX_CELLS` cells in all); a particle interpolates the four nodes around it (bilinear), so
the pull reaches a cell diagonal beyond r, fading to zero there (`reach`: what `touch_near`
must cover). Fewer than GRID_FROM touches, and reaches under `grid_min_reach` (0.083 in a 16/9
world), are summed exactly per particle instead (`use_grid`): cheaper there, and exact. Against the exact sum, the pull of one touch is within 3 % of its strongest pull
(RMS 1.5 %) over the inner three quarters of its reach and within 14 % at the rim, where the
exact pull falls to zero with a kink that a grid rounds off (a test holds these bounds): the
price of a bounded tick, and not one the eye can find in a swarm.

The grid is drawn serially, touch by touch in row order: the same touches give the same bits.
"""
from __future__ import annotations

import math

import numpy as np
from numba import njit

FIELD_SUB = 8          # grid nodes per touch reach (finer: closer to the exact sum, more to draw)
GRID_FROM = 16         # touches at once from which the grid is used; fewer are summed exactly
MAX_CELLS = 16384      # cells of the grid at most (16/9 world: 171 x 96)
BASE = 2               # channels before the per-species ones: A (no species), B (any species)


def use_grid(n_touches: int, touch_r: float, aspect: float) -> bool:
    """Whether a tick's touches go through the grid: many of them (GRID_FROM or more; a few
    cost less summed exactly, per particle, and are exact: the attract crowd's two or three,
    a quiet room's), and a reach the grid can draw."""
    return n_touches >= GRID_FROM and touch_r >= grid_min_reach(aspect)


def grid_min_reach(aspect: float) -> float:
    """The smallest reach the grid draws with FIELD_SUB nodes across it. Below it the swarm
    sums the touches per particle instead: a touch that small reaches few particles, so the
    exact sum is cheap, and a grid capped at MAX_CELLS would lose it between its nodes."""
    return FIELD_SUB * math.sqrt(aspect / MAX_CELLS)


def max_shape(aspect: float) -> tuple[int, int]:
    """The most cells (across, down) any reach can ask for in this world."""
    h = math.sqrt(aspect / MAX_CELLS)
    return max(1, math.ceil(aspect / h)), max(1, math.ceil(1.0 / h))


def field_shape(aspect: float, reach: float) -> tuple[int, int]:
    """Cells (across, down) for a touch reach: FIELD_SUB per reach, MAX_CELLS at most."""
    mx, my = max_shape(aspect)
    h = max(reach / FIELD_SUB, math.sqrt(aspect / MAX_CELLS))
    return max(1, min(mx, math.ceil(aspect / h))), max(1, min(my, math.ceil(1.0 / h)))


def allocate(aspect: float, species: int) -> np.ndarray:
    mx, my = max_shape(aspect)
    return np.zeros((BASE + species, my + 1, mx + 1, 3), np.float64)


def reach(touch_r: float, aspect: float, nxc: int, nyc: int) -> float:
    """How far from a touch the interpolated pull can be non-zero."""
    return touch_r + math.hypot(aspect / nxc, 1.0 / nyc)


@njit(nogil=True, cache=True)
def _span(t, r, step, n, wrap):
    """Node indices i0..i1 (inclusive, unwrapped) within r of t along one axis: at most one
    period's worth when wrapped (the nearest image of each node), inside 0..n on walls."""
    lo = math.ceil((t - r) / step)
    hi = math.floor((t + r) / step)
    if wrap:
        if hi - lo + 1 > n:
            hi = lo + n - 1
    else:
        lo = max(lo, 0)
        hi = min(hi, n)
    return lo, hi


@njit(nogil=True, cache=True, inline="always")
def finite_row(rows, t):
    """Row t holds no NaN or infinity (the kernels skip such a touch or pulse)."""
    for k in range(rows.shape[1]):
        if not math.isfinite(rows[t, k]):
            return False
    return True


@njit(nogil=True, cache=True)
def rasterize(touches, n_touches, touch_r, wrap, w, h, nxc, nyc, field):
    """Draw the live touches into field[:, :nyc + 1, :nxc + 1] (cleared first). Rows with a
    non-finite value are skipped. Returns (touches drawn, whether any has no species, whether
    any has one)."""
    nsp = field.shape[0] - BASE
    for c in range(field.shape[0]):
        for j in range(nyc + 1):
            for i in range(nxc + 1):
                field[c, j, i, 0] = 0.0
                field[c, j, i, 1] = 0.0
                field[c, j, i, 2] = 0.0
    hx = w / nxc
    hy = h / nyc
    r = touch_r
    # nearest image only: a reach over half the world stops at half of it
    rx = min(r, 0.5 * w) if wrap else r
    ry = min(r, 0.5 * h) if wrap else r
    inv_r = 1.0 / r
    inv_r2 = inv_r * inv_r
    drawn = 0
    any_none = False
    any_species = False
    for t in range(n_touches):
        if not finite_row(touches, t):
            continue
        drawn += 1
        tx = np.float64(touches[t, 0])
        ty = np.float64(touches[t, 1])
        p = np.float64(touches[t, 2])
        ts = int(touches[t, 3])
        c1 = 0
        c2 = -1
        if ts < 0:
            any_none = True
        else:
            any_species = True
            c1 = 1
            if ts < nsp:
                c2 = BASE + ts
        j0, j1 = _span(ty, ry, hy, nyc, wrap)
        i0, i1 = _span(tx, rx, hx, nxc, wrap)
        for jj in range(j0, j1 + 1):
            dy = ty - jj * hy
            j = jj % nyc if wrap else jj
            for ii in range(i0, i1 + 1):
                dx = tx - ii * hx
                d2 = dx * dx + dy * dy
                if d2 >= r * r:
                    continue
                k_ = p * (1.0 - d2 * inv_r2)
                fx = k_ * dx * inv_r
                fy = k_ * dy * inv_r
                i = ii % nxc if wrap else ii
                _add(field, c1, j, i, fx, fy, k_, wrap, nxc, nyc)
                if c2 >= 0:
                    _add(field, c2, j, i, fx, fy, k_, wrap, nxc, nyc)
    return drawn, any_none, any_species


@njit(nogil=True, cache=True, inline="always")
def _add(field, c, j, i, fx, fy, e, wrap, nxc, nyc):
    """Add to node (j, i); wrapped, node 0 and node n are one point: both get it."""
    _add1(field, c, j, i, fx, fy, e)
    if wrap:
        if i == 0:
            _add1(field, c, j, nxc, fx, fy, e)
        if j == 0:
            _add1(field, c, nyc, i, fx, fy, e)
            if i == 0:
                _add1(field, c, nyc, nxc, fx, fy, e)


@njit(nogil=True, cache=True, inline="always")
def _add1(field, c, j, i, fx, fy, e):
    field[c, j, i, 0] += fx
    field[c, j, i, 1] += fy
    field[c, j, i, 2] += e


@njit(nogil=True, cache=True, inline="always")
def _bilinear(field, c, j0, i0, fu, fv, k):
    a = field[c, j0, i0, k] + fu * (field[c, j0, i0 + 1, k] - field[c, j0, i0, k])
    b = field[c, j0 + 1, i0, k] + fu * (field[c, j0 + 1, i0 + 1, k] - field[c, j0 + 1, i0, k])
    return a + fv * (b - a)


@njit(nogil=True, cache=True)
def touch_at(xi, yi, si, field, nxc, nyc, inv_hx, inv_hy, others, any_none, any_species):
    """(pull x, pull y, energy) of every touch at (xi, yi) for species si, from the grid."""
    u = xi * inv_hx
    v = yi * inv_hy
    i0 = min(max(int(math.floor(u)), 0), nxc - 1)
    j0 = min(max(int(math.floor(v)), 0), nyc - 1)
    fu = min(max(u - i0, 0.0), 1.0)
    fv = min(max(v - j0, 0.0), 1.0)
    ax = 0.0
    ay = 0.0
    de = 0.0
    if any_none:
        ax += _bilinear(field, 0, j0, i0, fu, fv, 0)
        ay += _bilinear(field, 0, j0, i0, fu, fv, 1)
        de += _bilinear(field, 0, j0, i0, fu, fv, 2)
    if any_species:
        ax += others * _bilinear(field, 1, j0, i0, fu, fv, 0)
        ay += others * _bilinear(field, 1, j0, i0, fu, fv, 1)
        de += others * _bilinear(field, 1, j0, i0, fu, fv, 2)
        c = BASE + si
        if c < field.shape[0] and others != 1.0:
            own = 1.0 - others
            ax += own * _bilinear(field, c, j0, i0, fu, fv, 0)
            ay += own * _bilinear(field, c, j0, i0, fu, fv, 1)
            de += own * _bilinear(field, c, j0, i0, fu, fv, 2)
    return ax, ay, de
