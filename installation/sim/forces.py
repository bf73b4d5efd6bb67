"""One tick of every particle after the neighbour pass: the outside forces (flow, touches,
pulses, mosaic pull, walls), integration, the new state and the statistics.

The kernel reads the previous state in cell order (the `*s` arrays) and the neighbour sums,
and writes the new state (the swarm's public arrays), so every force sees the same old
positions whatever the order in which particles are processed. Work is split into fixed
blocks, one per row of cells, each summed serially by one thread: per-particle results and
the block statistics are bit-identical whatever the thread count. Arithmetic is float64; the
state is stored float32.

Units: positions in world units (the world is aspect × 1), velocities in world/s, accelerations
in world/s². The gains below turn the dimensionless StepParams scalars into accelerations.
"""
from __future__ import annotations

import math

import numpy as np
from numba import njit, prange

from .neighbours import axis_bins, min_image
from .touch_field import finite_row, touch_at

LIFE_GAIN = 24.0      # 1/s² per unit of Σ F·r·(unit vector): particle life scales with the radius
ALIGN_GAIN = 4.0      # 1/s per unit of `alignment`
TOUCH_GAIN = 1.0      # world/s² per unit of touch_strength × pressure at the strongest point
PULSE_GAIN = 2.5      # world/s² per unit of pulse_strength × pulse strength on the ring's crest
TOUCH_ENERGY = 2.0    # energy/s gained at a touch's centre, full pressure, own species
PULSE_ENERGY = 8.0    # energy/s gained on a pulse's crest at full strength
TOUCH_PULL_MAX = 0.8  # the most pull touches add up to at one point (one touch's strongest: 0.385)
TOUCH_CROWD = 4.5     # times the neighbours of a uniform spread past which a touch's pull is shared
                      # out: above the densest clusters a scene makes by itself (calm-sanctuary: 4.0)
WALL_MARGIN = 0.04    # soft walls push back inside this band (world units)
WALL_ACCEL = 3.0      # their push at the wall itself (world/s²)

# prm: float64 scalars of one tick, filled by Swarm from StepParams and the settings
(P_DT, P_LIFE, P_ALIGN, P_FLOW, P_MOSAIC, P_DAMP, P_VMAX, P_TOUCH, P_TOUCH_R, P_TOUCH_OTHERS,
 P_PULSE, P_PULSE_SPEED, P_PULSE_W, P_EDECAY, P_RADIUS, P_REPEL, P_W, P_H, P_INV_CW, P_INV_CH,
 P_FLOW_KX, P_FLOW_KY, P_TB_INV_W, P_TB_INV_H, P_PULSE_RMAX, P_XTOP, P_YTOP, P_TF_INV_HX,
 P_TF_INV_HY, P_TOUCH_CROWD) = range(30)
N_PRM = 30
# iprm: int64 scalars of one tick
(I_GX, I_GY, I_WRAP, I_FLOW_NX, I_FLOW_NY, I_TGX, I_TGY, I_NTOUCH, I_NPULSE, I_SUB, I_TF_NX, I_TF_NY,
 I_TF_NONE, I_TF_SPECIES, I_TF_GRID) = range(15)
N_IPRM = 15

# block statistics columns (summed over each block; Swarm reduces them into `stats`)
B_SPEED, B_ENERGY, B_NEIGHBOURS, B_RESETS, B_HOME = range(5)
N_BLOCK_STATS = 5

NEAR_SUB = 4    # cells of the near map (`touch_near`) per touch bin and axis


@njit(nogil=True, cache=True)
def touch_sums(xi, yi, si, touches, tbin_start, tbin_items, tgx, tgy, tb_inv_w, tb_inv_h,
               wrap, w, h, touch_r, others):
    """Pull towards the touches within reach (own species fully, others by `others`), and the
    energy they give: Σ pressure × weight × (1 − q²) × (offset / reach) and Σ pressure × weight × (1 − q²)."""
    bx = min(max(int(xi * tb_inv_w), 0), tgx - 1)
    by = min(max(int(yi * tb_inv_h), 0), tgy - 1)
    inv_r = 1.0 / touch_r
    r2 = touch_r * touch_r
    ax = 0.0
    ay = 0.0
    de = 0.0
    for kr in range(3):
        row, _s = axis_bins(by, tgy, wrap, kr)
        if row < 0:
            continue
        for kc in range(3):
            col, _s2 = axis_bins(bx, tgx, wrap, kc)
            if col < 0:
                continue
            b = row * tgx + col
            for k in range(tbin_start[b], tbin_start[b + 1]):
                t = tbin_items[k]
                dx = np.float64(touches[t, 0]) - xi
                dy = np.float64(touches[t, 1]) - yi
                if wrap:
                    dx = min_image(dx, w)
                    dy = min_image(dy, h)
                d2 = dx * dx + dy * dy
                if d2 >= r2:
                    continue
                ts = int(touches[t, 3])
                wgt = 1.0 if (ts < 0 or ts == si) else others
                k_ = np.float64(touches[t, 2]) * wgt * (1.0 - d2 * inv_r * inv_r)
                ax += k_ * dx * inv_r
                ay += k_ * dy * inv_r
                de += k_
    return ax, ay, de


@njit(nogil=True, cache=True)
def pulse_sums(xi, yi, pulses, n_pulses, wrap, w, h, speed, width, rmax):
    """Outward push of the pulse rings passing over (xi, yi), and the energy they give.

    A ring of radius age × speed and half-width `width` pushes along the outward radius with a
    triangular profile, fading linearly to nothing as the ring reaches rmax (half the diagonal:
    by then it has swept the whole screen)."""
    ax = 0.0
    ay = 0.0
    de = 0.0
    for k in range(n_pulses):
        st = np.float64(pulses[k, 3])
        ring = np.float64(pulses[k, 2]) * speed
        if not (st > 0.0 and ring >= 0.0) or ring >= rmax:
            continue
        if not (math.isfinite(pulses[k, 0]) and math.isfinite(pulses[k, 1]) and math.isfinite(st)):
            continue
        dx = xi - np.float64(pulses[k, 0])
        dy = yi - np.float64(pulses[k, 1])
        if wrap:
            dx = min_image(dx, w)
            dy = min_image(dy, h)
        d2 = dx * dx + dy * dy
        hi = ring + width
        if d2 >= hi * hi:
            continue
        lo = ring - width
        if lo > 0.0 and d2 <= lo * lo:
            continue
        d = math.sqrt(d2)
        prof = 1.0 - abs(d - ring) / width
        if prof <= 0.0:
            continue
        k_ = st * prof * (1.0 - ring / rmax)
        if d > 0.0:
            ax += k_ * dx / d
            ay += k_ * dy / d
        de += k_
    return ax, ay, de


@njit(nogil=True, cache=True)
def _wall_accel(p, size):
    if p < WALL_MARGIN:
        return WALL_ACCEL * (WALL_MARGIN - p) / WALL_MARGIN
    if p > size - WALL_MARGIN:
        return -WALL_ACCEL * (p - (size - WALL_MARGIN)) / WALL_MARGIN
    return 0.0


@njit(nogil=True, cache=True)
def _nearest(d, period):
    """d to its nearest image, for the offset between two points inside the world (|d| < period):
    a compare instead of the division and floor of the general case."""
    if d > 0.5 * period:
        return d - period
    if d < -0.5 * period:
        return d + period
    return d


@njit(nogil=True, cache=True)
def _to_world(p, v, size, top, wrap):
    """Position back inside [0, size) as float32 (wrap: modulo; walls: clamp to [0, top], the
    largest float32 below size, and bounce)."""
    if wrap:
        # one period at most in one tick, unless the speed limit is huge: then the general way
        if p >= size:
            p -= size
        elif p < 0.0:
            p += size
        if p >= size or p < 0.0:
            p = p - size * math.floor(p / size)
        pf = np.float32(p)
        if pf >= np.float32(size) or pf < 0:   # float32 rounding of a position just below size
            pf = np.float32(0.0)
        return pf, v
    if p < 0.0:
        return np.float32(0.0), abs(v)
    pf = np.float32(p)
    if pf > top:
        return np.float32(top), -abs(v)
    return pf, v


@njit(nogil=True, cache=True, parallel=True)
def step_particles(xs, ys, vxs, vys, es, sps, hxs, hys, nfx, nfy, nsvx, nsvy, nnb, cell_start, prm, iprm,
                   flow_u, flow_v, touches, tbin_start, tbin_items, tfield, tnear, pulses,
                   x, y, vx, vy, e, sp, hx, hy, block_stats, block_species):
    """Everything after the neighbour pass (whose sums arrive in nfx .. nnb): the outside
    forces, integration, the new state and the statistics of each row of cells. flow_u, flow_v:
    the flow at each particle (flow.flow_field, read only when the flow's strength is not 0)."""
    dt = prm[P_DT]
    align_k = prm[P_ALIGN] * ALIGN_GAIN
    flow_k = prm[P_FLOW]
    mosaic_k = prm[P_MOSAIC]
    damp = prm[P_DAMP]
    vmax = prm[P_VMAX]
    touch_k = prm[P_TOUCH] * TOUCH_GAIN
    touch_crowd = prm[P_TOUCH_CROWD]
    pulse_k = prm[P_PULSE] * PULSE_GAIN
    edecay = prm[P_EDECAY]
    w = prm[P_W]
    h = prm[P_H]
    gx = iprm[I_GX]
    gy = iprm[I_GY]
    wrap = iprm[I_WRAP] != 0
    n_touch = iprm[I_NTOUCH]
    n_pulse = iprm[I_NPULSE]
    touch_grid = iprm[I_TF_GRID] != 0
    nsp = block_species.shape[1]
    near_nx = NEAR_SUB * iprm[I_TGX]
    near_ny = NEAR_SUB * iprm[I_TGY]
    near_w = prm[P_TB_INV_W] * NEAR_SUB
    near_h = prm[P_TB_INV_H] * NEAR_SUB
    evens = (gy + 1) // 2
    for k in prange(gy):
        row = 2 * k if k < evens else 2 * (k - evens) + 1     # as in neighbour_pass
        s_speed = 0.0
        s_energy = 0.0
        s_nb = 0.0
        s_reset = 0.0
        s_home = 0.0
        for s in range(nsp):
            block_species[row, s, 0] = 0.0
            block_species[row, s, 1] = 0.0
        first = cell_start[row * gx]
        end = cell_start[(row + 1) * gx]
        for i in range(first, end):
            xi = np.float64(xs[i])
            yi = np.float64(ys[i])
            si = sps[i]
            nb = nnb[i]
            ax = LIFE_GAIN * np.float64(nfx[i]) + align_k * (np.float64(nsvx[i]) / (nb + 1) - vxs[i])
            ay = LIFE_GAIN * np.float64(nfy[i]) + align_k * (np.float64(nsvy[i]) / (nb + 1) - vys[i])
            gain = 0.0
            if flow_k != 0.0:
                ax += flow_k * flow_u[i]
                ay += flow_k * flow_v[i]
            if n_touch > 0 and tnear[min(max(int(yi * near_h), 0), near_ny - 1) * near_nx
                                     + min(max(int(xi * near_w), 0), near_nx - 1)]:
                # (`touch_near`: most particles are out of every touch's reach)
                if touch_grid:
                    tx, ty, tde = touch_at(xi, yi, si, tfield, iprm[I_TF_NX], iprm[I_TF_NY], prm[P_TF_INV_HX],
                                           prm[P_TF_INV_HY], prm[P_TOUCH_OTHERS], iprm[I_TF_NONE] != 0,
                                           iprm[I_TF_SPECIES] != 0)
                else:       # a reach too small for the grid: few touches reach a particle
                    tx, ty, tde = touch_sums(xi, yi, si, touches, tbin_start, tbin_items, iprm[I_TGX],
                                             iprm[I_TGY], prm[P_TB_INV_W], prm[P_TB_INV_H], wrap, w, h,
                                             prm[P_TOUCH_R], prm[P_TOUCH_OTHERS])
                # A crowd touching one spot must not crush the swarm into a pile (32 phones on
                # one point packed 40% of it there: ~900 neighbours each, a tick 7 times as
                # long). Their pulls add up to TOUCH_PULL_MAX at most, and in a dense patch a
                # pull is shared out between the neighbours (the push apart is not).
                pull = math.sqrt(tx * tx + ty * ty)
                if pull > TOUCH_PULL_MAX:
                    tx *= TOUCH_PULL_MAX / pull
                    ty *= TOUCH_PULL_MAX / pull
                tk = touch_k if nb <= touch_crowd else touch_k * (touch_crowd / nb)
                ax += tk * tx
                ay += tk * ty
                gain += TOUCH_ENERGY * tde
            if n_pulse > 0:
                px, py, pde = pulse_sums(xi, yi, pulses, n_pulse, wrap, w, h, prm[P_PULSE_SPEED],
                                         prm[P_PULSE_W], prm[P_PULSE_RMAX])
                ax += pulse_k * px
                ay += pulse_k * py
                gain += PULSE_ENERGY * pde
            hdx = np.float64(hxs[i]) - xi
            hdy = np.float64(hys[i]) - yi
            if wrap:
                hdx = _nearest(hdx, w)
                hdy = _nearest(hdy, h)
            ax += mosaic_k * hdx
            ay += mosaic_k * hdy
            if not wrap:
                ax += _wall_accel(xi, w)
                ay += _wall_accel(yi, h)

            nvx = (np.float64(vxs[i]) + ax * dt) * damp
            nvy = (np.float64(vys[i]) + ay * dt) * damp
            sp2 = nvx * nvx + nvy * nvy
            if sp2 > vmax * vmax:
                k = vmax / math.sqrt(sp2)
                nvx *= k
                nvy *= k
            ne = np.float64(es[i]) * edecay + gain * dt
            ne = min(max(ne, 0.0), 1.0)
            px_, nvx = _to_world(xi + nvx * dt, nvx, w, prm[P_XTOP], wrap)
            py_, nvy = _to_world(yi + nvy * dt, nvy, h, prm[P_YTOP], wrap)
            if not (math.isfinite(nvx) and math.isfinite(nvy) and math.isfinite(ne)):
                # a non-finite force (never expected: inputs are checked) must not spread
                px_ = hxs[i]
                py_ = hys[i]
                nvx = 0.0
                nvy = 0.0
                ne = 0.0
                s_reset += 1.0
            x[i] = px_
            y[i] = py_
            vx[i] = nvx
            vy[i] = nvy
            e[i] = ne
            sp[i] = si
            hx[i] = hxs[i]
            hy[i] = hys[i]
            speed = math.sqrt(nvx * nvx + nvy * nvy)
            s_speed += speed
            s_energy += ne
            s_nb += nb
            s_home += math.sqrt(hdx * hdx + hdy * hdy)
            block_species[row, si, 0] += ne
            block_species[row, si, 1] += speed
        block_stats[row, B_SPEED] = s_speed
        block_stats[row, B_ENERGY] = s_energy
        block_stats[row, B_NEIGHBOURS] = s_nb
        block_stats[row, B_RESETS] = s_reset
        block_stats[row, B_HOME] = s_home


@njit(nogil=True, cache=True)
def touch_near(touches, n_touches, tgx, tgy, tb_inv_w, tb_inv_h, wrap, w, h, touch_r, tnear):
    """tnear[cy * NEAR_SUB * tgx + cx] = 1 where some point of near-map cell (cx, cy) (a
    NEAR_SUB-th of a touch bin per side) is within reach of a touch, else 0. Most particles are
    out of every touch's reach: they skip the nine-bin search. The test is a little generous,
    so a cell left at 0 holds no particle that any touch could pull."""
    nx = NEAR_SUB * tgx
    ny = NEAR_SUB * tgy
    cw = 1.0 / (tb_inv_w * NEAR_SUB)
    ch = 1.0 / (tb_inv_h * NEAR_SUB)
    reach = touch_r * 1.0001
    reach2 = reach * reach
    for c in range(nx * ny):
        tnear[c] = 0
    for t in range(n_touches):
        tx = np.float64(touches[t, 0])
        ty = np.float64(touches[t, 1])
        if not (math.isfinite(tx) and math.isfinite(ty)):
            continue
        # only the cells around the touch are tested (small reaches make many cells)
        y0, y1 = _cell_span(ty, reach, ch, ny, wrap)
        x0, x1 = _cell_span(tx, reach, cw, nx, wrap)
        for j in range(y0, y1):
            cy = j % ny
            dy = _gap(ty, cy, ny, ch, wrap, h)
            if dy * dy >= reach2:
                continue
            for i in range(x0, x1):
                cx = i % nx
                dx = _gap(tx, cx, nx, cw, wrap, w)
                if dx * dx + dy * dy < reach2:
                    tnear[cy * nx + cx] = 1


@njit(nogil=True, cache=True, inline="always")
def _cell_span(t, reach, size, n, wrap):
    """Cells j0..j1-1 (taken modulo n when wrapped) that can lie within `reach` of t, with a
    cell to spare each side; all n when that is as many."""
    lo = int(math.floor((t - reach) / size)) - 1
    hi = int(math.floor((t + reach) / size)) + 2
    if wrap:
        span = hi - lo
        if span >= n:
            return 0, n
        lo %= n
        return lo, lo + span
    return max(0, min(lo, n - 1)), min(n, max(hi, 1))


@njit(nogil=True, cache=True, inline="always")
def _gap(t, c, n, size, wrap, period):
    """Distance along one axis from coordinate t to cell c of n cells of `size` (0 inside).
    Wrapped, to the nearest image (positions stay in the world); walled, the edge cells
    reach out to infinity."""
    if wrap:
        return max(0.0, abs(min_image(t - (c + 0.5) * size, period)) - 0.5 * size)
    lo = -math.inf if c == 0 else c * size
    hi = math.inf if c == n - 1 else (c + 1) * size
    return lo - t if t < lo else (t - hi if t > hi else 0.0)


@njit(nogil=True, cache=True)
def bin_touches(touches, n_touches, tgx, tgy, tb_inv_w, tb_inv_h, tbin_start, tcell, tbin_items):
    """Counting sort of the live touches into coarse bins (a bin is at least a touch's reach),
    so each particle looks only at the touches in its 3×3 bins. Rows with a non-finite value are
    dropped. Returns how many touches were binned."""
    nb = tgx * tgy
    for c in range(nb + 1):
        tbin_start[c] = 0
    for t in range(n_touches):
        if not finite_row(touches, t):
            tcell[t] = -1
            continue
        bx = min(max(int(np.float64(touches[t, 0]) * tb_inv_w), 0), tgx - 1)
        by = min(max(int(np.float64(touches[t, 1]) * tb_inv_h), 0), tgy - 1)
        tcell[t] = by * tgx + bx
        tbin_start[tcell[t] + 1] += 1
    for c in range(nb):
        tbin_start[c + 1] += tbin_start[c]
    binned = tbin_start[nb]
    # place in index order (stable), using the starts as cursors, then shift them back
    for t in range(n_touches):
        c = tcell[t]
        if c >= 0:
            tbin_items[tbin_start[c]] = t
            tbin_start[c] += 1
    for c in range(nb, 0, -1):
        tbin_start[c] = tbin_start[c - 1]
    tbin_start[0] = 0
    return binned


@njit(nogil=True, cache=True)
def count_bad_rows(rows, n):
    """How many of the first n rows hold a NaN or an infinity (the kernels skip those rows)."""
    bad = 0
    for t in range(n):
        if not finite_row(rows, t):
            bad += 1
    return bad


@njit(nogil=True, cache=True)
def reduce_blocks(block_stats, block_species, nblocks, out, out_species):
    """Serial sums over blocks in index order: the same bits whatever the thread count."""
    for k in range(out.shape[0]):
        out[k] = 0.0
    for s in range(out_species.shape[0]):
        out_species[s, 0] = 0.0
        out_species[s, 1] = 0.0
    for b in range(nblocks):
        for k in range(out.shape[0]):
            out[k] += block_stats[b, k]
        for s in range(out_species.shape[0]):
            out_species[s, 0] += block_species[b, s, 0]
            out_species[s, 1] += block_species[b, s, 1]
