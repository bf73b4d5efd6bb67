"""One tick of every particle: neighbour forces, outside forces, integration, block statistics.

The kernel reads the previous state in cell order (the `*s` arrays) and writes the new state
(the swarm's public arrays), so every force sees the same old positions whatever the order in
which particles are processed. Work is split into fixed blocks, one per row of cells: each
block is summed serially by one thread, in cell order, so per-particle results and the block
statistics are bit-identical whatever the thread count. The neighbour sums are float32 (they
are the hot loop and vectorise); everything else is float64; the state is stored float32.

Units: positions in world units (the world is aspect × 1), velocities in world/s, accelerations
in world/s². The gains below turn the dimensionless StepParams scalars into accelerations.
"""
from __future__ import annotations

import math

import numpy as np
from numba import njit, prange

from .flow import flow_at

# The neighbour loop works in chunks of LANES candidates, the last one masked, so LLVM turns each
# chunk into vector operations even though a run holds only 10-30 candidates (a plain loop
# that short would run in its scalar remainder). The cell-ordered arrays carry LANES slots of
# padding so the last chunk may read past the end.
LANES = 8

# Dimensionless knob -> acceleration. Chosen so that, with the default friction (2/s), each
# force alone moves particles at a visible fraction of the default speed limit.
LIFE_GAIN = 24.0      # 1/s² per unit of Σ F·r·(unit vector): particle life scales with the radius
REPEL_K = 12.0        # the push apart at contact, against at most 1 for any attraction: a dense
                      # patch cannot collapse, so neighbour counts (and the tick's cost) stay bounded
CROWD = 8.0           # neighbours beyond which the species attraction is shared out
ALIGN_GAIN = 4.0      # 1/s per unit of `alignment`
TOUCH_GAIN = 1.0      # world/s² per unit of touch_strength × pressure at the strongest point
PULSE_GAIN = 2.5      # world/s² per unit of pulse_strength × pulse strength on the ring's crest
TOUCH_ENERGY = 2.0    # energy/s gained at a touch's centre, full pressure, own species
PULSE_ENERGY = 8.0    # energy/s gained on a pulse's crest at full strength
WALL_MARGIN = 0.04    # soft walls push back inside this band (world units)
WALL_ACCEL = 3.0      # their push at the wall itself (world/s²)

# prm: float64 scalars of one tick, filled by Swarm from StepParams and the settings
(P_DT, P_LIFE, P_ALIGN, P_FLOW, P_MOSAIC, P_DAMP, P_VMAX, P_TOUCH, P_TOUCH_R, P_TOUCH_OTHERS,
 P_PULSE, P_PULSE_SPEED, P_PULSE_W, P_EDECAY, P_RADIUS, P_REPEL, P_W, P_H, P_INV_CW, P_INV_CH,
 P_FLOW_KX, P_FLOW_KY, P_TB_INV_W, P_TB_INV_H, P_PULSE_RMAX, P_XTOP, P_YTOP) = range(27)
N_PRM = 27
# iprm: int64 scalars of one tick
(I_GX, I_GY, I_WRAP, I_FLOW_NX, I_FLOW_NY, I_TGX, I_TGY, I_NTOUCH, I_NPULSE, I_SUB) = range(10)
N_IPRM = 10

# block statistics columns (summed over each block; Swarm reduces them into `stats`)
B_SPEED, B_ENERGY, B_NEIGHBOURS, B_RESETS, B_HOME = range(5)
N_BLOCK_STATS = 5


@njit(nogil=True, cache=True)
def _axis_bins(c, g, wrap, k):
    """The k-th of up to three bins around bin c on an axis of g bins (-1: none), and its shift
    in periods (-1, 0, 1) for minimum-image distances. With fewer than three bins and wrap, each
    bin is visited once and the caller takes the minimum image per pair."""
    if wrap:
        if g < 3:
            return (k, 0) if k < g else (-1, 0)
        b = c - 1 + k
        if b < 0:
            return b + g, -1
        if b >= g:
            return b - g, 1
        return b, 0
    b = c - 1 + k
    return (b, 0) if 0 <= b < g else (-1, 0)


@njit(nogil=True, cache=True)
def _min_image(d, period):
    return d - period * math.floor(d / period + 0.5)


@njit(nogil=True, cache=True, fastmath={"reassoc"}, error_model="numpy")
def run_sums(j0, j1, xi, yi, xs, ys, vxs, vys, k0, k1, k2, u0, u1, u2, inv_r2, beta, repel_k, crowd):
    """Sums over the candidates j0..j1 (one contiguous run of cell-sorted particles), float32;
    (xi, yi) is the particle's position shifted by the run's image offset.

    The pair force is particle-life's, in q = d/r, along the unit vector towards the neighbour:
        q < beta:       F = repel_k · (q/beta − 1)                                 (push apart)
        beta ≤ q < 1:   F = crowd · m[si, sj] · (1 − |2q − 1 − beta| / (1 − beta))  (species pull)
    returned as Σ F·r·(dx, dy)/d, with Σ v and the count over the neighbours within r.
    m[si, sj] = u·k[j] (layout.interaction_factors): three numbers read in a straight line,
    where a lookup by species would stall the vector loop. The particle itself lies in its own
    run: it adds nothing to the force, its velocity to Σ v and 1 to the count.

    The loop works in chunks of LANES candidates, the last one masked and reading into the
    padding, and has no branch, so LLVM turns each chunk into vector operations; `reassoc`
    lets it sum them in vector lanes, in an order fixed by the compiled code: the result is the
    same whatever the thread count. j0, j1 are unsigned so that numba emits no negative-index
    wraparound, which would turn the contiguous loads into gathers; the numpy error model drops
    the division-by-zero check (the masked lanes divide by zero), which would add a branch.
    Few sums, because each one costs a horizontal add per chunk.
    """
    fx = np.float32(0.0)
    fy = np.float32(0.0)
    svx = np.float32(0.0)
    svy = np.float32(0.0)
    nb = 0
    one = np.float32(1.0)
    two = np.float32(2.0)
    zero = np.float32(0.0)
    inv_beta = one / beta
    peak = one + beta
    inv_band = one / (one - beta)
    for jc in range(j0, j1, np.uint64(LANES)):
        for lane in range(LANES):
            j = jc + np.uint64(lane)
            dx = xs[j] - xi
            dy = ys[j] - yi
            s = (dx * dx + dy * dy) * inv_r2
            inside = (s < one) & (j < j1)
            q = np.sqrt(s)
            m = u0 * k0[j] + u1 * k1[j] + u2 * k2[j]
            f = repel_k * (q * inv_beta - one) if q < beta else crowd * m * (one - abs(two * q - peak) * inv_band)
            g = f / q if inside & (s > zero) else zero
            fx += g * dx
            fy += g * dy
            svx += vxs[j] if inside else zero
            svy += vys[j] if inside else zero
            nb += 1 if inside else 0
    return fx, fy, svx, svy, nb


@njit(nogil=True, cache=True)
def run_sums_min_image(j0, j1, xi, yi, xs, ys, vxs, vys, k0, k1, k2, u0, u1, u2, inv_r2, beta, repel_k,
                       crowd, w, h):
    """run_sums for a wrapped world less than a run wide: each offset is taken to its nearest
    image. Only tiny worlds (or huge radii) get here, so it stays plain."""
    fx = np.float32(0.0)
    fy = np.float32(0.0)
    svx = np.float32(0.0)
    svy = np.float32(0.0)
    nb = 0
    one = np.float32(1.0)
    two = np.float32(2.0)
    for j in range(j0, j1):
        dx = np.float32(_min_image(np.float64(xs[j]) - np.float64(xi), w))
        dy = np.float32(_min_image(np.float64(ys[j]) - np.float64(yi), h))
        s = (dx * dx + dy * dy) * inv_r2
        if s >= one:
            continue
        q = np.sqrt(s)
        m = u0 * k0[j] + u1 * k1[j] + u2 * k2[j]
        f = repel_k * (q / beta - one) if q < beta else crowd * m * (one - abs(two * q - (one + beta)) / (one - beta))
        if s > 0:
            fx += f / q * dx
            fy += f / q * dy
        svx += vxs[j]
        svy += vys[j]
        nb += 1
    return fx, fy, svx, svy, nb


@njit(nogil=True, cache=True)
def _runs(cx, cy, gx, gy, sub, wrap, mi_x, kr, seg):
    """Row `kr` (0..2), segment `seg` (0..1) of a particle's candidate runs: (row, first column,
    last column, x image shift in periods, y image shift in periods), row −1 when there is none.
    A run spans `sub` columns either side: one contiguous part, plus the part wrapped round the
    edge. With the minimum image (a world narrower than a run) a row is one run of all columns."""
    row, shy = _axis_bins(cy, gy, wrap, kr)
    if row < 0:
        return -1, 0, 0, 0, 0
    if mi_x or not wrap:
        if seg == 1:
            return -1, 0, 0, 0, 0
        if mi_x:
            return row, 0, gx - 1, 0, shy
        return row, max(cx - sub, 0), min(cx + sub, gx - 1), 0, shy
    if seg == 0:
        return row, max(cx - sub, 0), min(cx + sub, gx - 1), 0, shy
    if cx - sub < 0:
        return row, gx + cx - sub, gx - 1, -1, shy
    if cx + sub >= gx:
        return row, 0, cx + sub - gx, 1, shy
    return -1, 0, 0, 0, 0


@njit(nogil=True, cache=True)
def cell_runs(cx, cy, gx, gy, sub, wrap, cell_start, runs, shifts):
    """The candidate runs of every particle in cell (cx, cy): runs[k] = (first, end) index,
    shifts[k] = the image offset in periods (x, y). Returns (number of runs, candidates)."""
    mi_x = wrap and gx < 2 * sub + 1
    nr = 0
    candidates = 0
    for kr in range(3):
        for seg in range(2):
            row, c0, c1, shx, shy = _runs(cx, cy, gx, gy, sub, wrap, mi_x, kr, seg)
            if row < 0:
                continue
            j0 = cell_start[row * gx + c0]
            j1 = cell_start[row * gx + c1 + 1]
            if j1 == j0:
                continue
            runs[nr, 0] = j0
            runs[nr, 1] = j1
            shifts[nr, 0] = shx
            shifts[nr, 1] = shy
            nr += 1
            candidates += j1 - j0
    return nr, candidates


@njit(nogil=True, cache=True)
def crowding(candidates, sub, life):
    """life_strength × CROWD / max(CROWD, local count): the local count is the other candidates
    times π / (run area / r²), known before any distance is taken. Past CROWD neighbours the
    species pull is shared out, so a clump cannot keep pulling itself denser."""
    area = (2.0 * sub + 1.0) / sub * 3.0     # the runs cover (2·sub + 1)/sub × 3 r², near enough
    return np.float32(life * CROWD / max(CROWD, (candidates - 1) * math.pi / area))


@njit(nogil=True, cache=True)
def neighbour_sums(i, xs, ys, vxs, vys, k0, k1, k2, u, si, runs, shifts, nr, minimum_image, w, h,
                   radius, repel, pull):
    """Particle-life force Σ F·r·(dx, dy)/d (the push apart at full strength, the species pull
    times `pull`), Σ v over the neighbours with the particle itself, and the neighbour count
    (self excluded), float32, over the runs of the particle's cell."""
    xi = xs[i]
    yi = ys[i]
    u0 = np.float32(u[si, 0])
    u1 = np.float32(u[si, 1])
    u2 = np.float32(u[si, 2])
    inv_r2 = np.float32(1.0 / (radius * radius))
    beta = np.float32(repel)
    repel_k = np.float32(REPEL_K)
    fx = np.float32(0.0)
    fy = np.float32(0.0)
    svx = np.float32(0.0)
    svy = np.float32(0.0)
    nb = 0
    for k in range(nr):
        # unsigned: numba then needs no negative-index wraparound, and the loads stay
        # contiguous vector loads instead of gathers
        j0 = np.uint64(runs[k, 0])
        j1 = np.uint64(runs[k, 1])
        if minimum_image:
            a, b, c, d, m = run_sums_min_image(j0, j1, xi, yi, xs, ys, vxs, vys, k0, k1, k2, u0, u1, u2,
                                               inv_r2, beta, repel_k, pull, w, h)
        else:
            # the neighbour's image offset moves to the particle: xj + shift − xi = xj − (xi − shift)
            a, b, c, d, m = run_sums(j0, j1, xi - np.float32(shifts[k, 0] * w), yi - np.float32(shifts[k, 1] * h),
                                     xs, ys, vxs, vys, k0, k1, k2, u0, u1, u2, inv_r2, beta, repel_k, pull)
        fx += a
        fy += b
        svx += c
        svy += d
        nb += m
    return fx, fy, svx, svy, nb - 1


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
        row, _s = _axis_bins(by, tgy, wrap, kr)
        if row < 0:
            continue
        for kc in range(3):
            col, _s2 = _axis_bins(bx, tgx, wrap, kc)
            if col < 0:
                continue
            b = row * tgx + col
            for k in range(tbin_start[b], tbin_start[b + 1]):
                t = tbin_items[k]
                dx = np.float64(touches[t, 0]) - xi
                dy = np.float64(touches[t, 1]) - yi
                if wrap:
                    dx = _min_image(dx, w)
                    dy = _min_image(dy, h)
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
            dx = _min_image(dx, w)
            dy = _min_image(dy, h)
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
def _to_world(p, v, size, top, wrap):
    """Position back inside [0, size) as float32 (wrap: modulo; walls: clamp to [0, top], the
    largest float32 below size, and bounce)."""
    if wrap:
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
def step_particles(xs, ys, vxs, vys, es, sps, hxs, hys, kins, cell_start, matrix_u, prm, iprm,
                   flow_gx, flow_gy, touches, tbin_start, tbin_items, pulses,
                   x, y, vx, vy, e, sp, hx, hy, runs, shifts, block_stats, block_species):
    """One tick. A block is one row of cells, in cell order: the particles of a cell share their
    candidate runs, worked out once per cell (runs, shifts: one scratch slot per row). Rows are
    visited even ones first, then odd ones: a thread's contiguous share of iterations then spans
    half the world's height in every other row, so two threads get even work however the swarm
    is spread, and neighbouring rows stay close in time (their particles stay in cache)."""
    dt = prm[P_DT]
    align_k = prm[P_ALIGN] * ALIGN_GAIN
    flow_k = prm[P_FLOW]
    mosaic_k = prm[P_MOSAIC]
    damp = prm[P_DAMP]
    vmax = prm[P_VMAX]
    touch_k = prm[P_TOUCH] * TOUCH_GAIN
    pulse_k = prm[P_PULSE] * PULSE_GAIN
    edecay = prm[P_EDECAY]
    w = prm[P_W]
    h = prm[P_H]
    gx = iprm[I_GX]
    gy = iprm[I_GY]
    sub = iprm[I_SUB]
    wrap = iprm[I_WRAP] != 0
    minimum_image = wrap and (gx < 2 * sub + 1 or gy < 3)
    n_touch = iprm[I_NTOUCH]
    n_pulse = iprm[I_NPULSE]
    evens = (gy + 1) // 2
    # views made once here, not per particle: each one costs an atomic reference count
    k0 = kins[0]
    k1 = kins[1]
    k2 = kins[2]
    nsp = block_species.shape[1]
    for k in prange(gy):
        row = 2 * k if k < evens else 2 * (k - evens) + 1
        s_speed = 0.0
        s_energy = 0.0
        s_nb = 0.0
        s_reset = 0.0
        s_home = 0.0
        for s in range(nsp):
            block_species[row, s, 0] = 0.0
            block_species[row, s, 1] = 0.0
        row_runs = runs[row]
        row_shifts = shifts[row]
        for cx in range(gx):
            first = cell_start[row * gx + cx]
            end = cell_start[row * gx + cx + 1]
            if first == end:
                continue
            nr, candidates = cell_runs(cx, row, gx, gy, sub, wrap, cell_start, row_runs, row_shifts)
            pull = crowding(candidates, sub, prm[P_LIFE])
            for i in range(first, end):
                xi = np.float64(xs[i])
                yi = np.float64(ys[i])
                si = sps[i]
                fx, fy, svx, svy, nb = neighbour_sums(i, xs, ys, vxs, vys, k0, k1, k2, matrix_u, si, row_runs,
                                                      row_shifts, nr, minimum_image, w, h, prm[P_RADIUS],
                                                      prm[P_REPEL], pull)
                ax = LIFE_GAIN * fx + align_k * (svx / (nb + 1) - vxs[i])
                ay = LIFE_GAIN * fy + align_k * (svy / (nb + 1) - vys[i])
                gain = 0.0
                if flow_k != 0.0:
                    u, v = flow_at(xi, yi, flow_gx, flow_gy, iprm[I_FLOW_NX], iprm[I_FLOW_NY],
                                   prm[P_FLOW_KX], prm[P_FLOW_KY])
                    ax += flow_k * u
                    ay += flow_k * v
                if n_touch > 0:
                    tx, ty, tde = touch_sums(xi, yi, si, touches, tbin_start, tbin_items, iprm[I_TGX],
                                             iprm[I_TGY], prm[P_TB_INV_W], prm[P_TB_INV_H], wrap, w, h,
                                             prm[P_TOUCH_R], prm[P_TOUCH_OTHERS])
                    ax += touch_k * tx
                    ay += touch_k * ty
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
                    hdx = _min_image(hdx, w)
                    hdy = _min_image(hdy, h)
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
def bin_touches(touches, n_touches, tgx, tgy, tb_inv_w, tb_inv_h, tbin_start, tcell, tbin_items):
    """Counting sort of the live touches into coarse bins (a bin is at least a touch's reach),
    so each particle looks only at the touches in its 3×3 bins. Rows with a non-finite value are
    dropped. Returns how many touches were binned."""
    nb = tgx * tgy
    for c in range(nb + 1):
        tbin_start[c] = 0
    for t in range(n_touches):
        ok = True
        for k in range(4):
            if not math.isfinite(touches[t, k]):
                ok = False
        if not ok:
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
        for k in range(rows.shape[1]):
            if not math.isfinite(rows[t, k]):
                bad += 1
                break
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
