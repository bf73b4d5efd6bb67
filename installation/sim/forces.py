"""One tick of every particle: neighbour forces, outside forces, integration, block statistics.

The kernel reads the previous state in cell order (the `*s` arrays) and writes the new state
(the swarm's public arrays), so every force sees the same old positions whatever the order in
which particles are processed. Work is split into fixed blocks of BLOCK particles: each block
is summed serially by one thread, so per-particle results and the block statistics are
bit-identical whatever the thread count. All arithmetic is float64; the state is stored float32.

Units: positions in world units (the world is aspect × 1), velocities in world/s, accelerations
in world/s². The gains below turn the dimensionless StepParams scalars into accelerations.
"""
from __future__ import annotations

import math

import numpy as np
from numba import njit, prange

from .flow import flow_at

BLOCK = 1024
# The neighbour loop works in chunks of LANES candidates, the last one masked, so LLVM turns each
# chunk into vector operations even though a run holds only 10-30 candidates (a plain loop
# that short would run in its scalar remainder). The cell-ordered arrays carry LANES slots of
# padding so the last chunk may read past the end.
LANES = 8

# Dimensionless knob -> acceleration. Chosen so that, with the default friction (2/s), each
# force alone moves particles at a visible fraction of the default speed limit.
LIFE_GAIN = 12.0      # 1/s² per unit of Σ F·r·(unit vector): particle-life scales with the radius
REPEL_K = 8.0         # the close-range push at contact, against at most 1 for any attraction
CROWD = 24.0          # neighbours beyond which the species attraction is shared out
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
def run_sums(j0, j1, xi, yi, sx, sy, xs, ys, vxs, vys, k0, k1, k2, u0, u1, u2, inv_r2, beta, repel_k):
    """Sums over the candidates j0..j1 (one contiguous run of cell-sorted particles), float32.

    The pair force is particle-life's, in q = d/r, along the unit vector towards the neighbour:
        q < beta:       F = repel_k · (q/beta − 1)                          (push apart, hardest at contact)
        beta ≤ q < 1:   F = m[si, sj] · (1 − |2q − 1 − beta| / (1 − beta))   (species attraction)
    returned as Σ F·r·(dx, dy)/d. The alignment weight 1 − q² fades to zero at the radius.
    m[si, sj] = u·k[j] (layout.interaction_factors): three numbers read in a straight line,
    where a lookup by species would stall the vector loop.
    The particle itself lies in its own run: it adds nothing to the force, 1 to the weight and
    1 to the count.

    The loop works in chunks of LANES candidates, the last one masked and reading into the
    padding, and has no branch, so LLVM turns each chunk into vector operations; `reassoc`
    lets it sum them in vector lanes, in an order fixed by the compiled code: the result is the
    same whatever the thread count. j0, j1 are unsigned so that numba emits no negative-index
    wraparound, which would turn the contiguous loads into gathers; the numpy error model drops
    the division-by-zero check (the masked lanes divide by zero), which would add a branch.
    """
    rx = np.float32(0.0)
    ry = np.float32(0.0)
    fx = np.float32(0.0)
    fy = np.float32(0.0)
    svx = np.float32(0.0)
    svy = np.float32(0.0)
    ws = np.float32(0.0)
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
            dx = (xs[j] + sx) - xi
            dy = (ys[j] + sy) - yi
            s = (dx * dx + dy * dy) * inv_r2
            inside = (s < one) & (j < j1)
            q = np.sqrt(s)
            m = u0 * k0[j] + u1 * k1[j] + u2 * k2[j]
            near = q < beta
            f = repel_k * (q * inv_beta - one) if near else m * (one - abs(two * q - peak) * inv_band)
            g = f / q if inside & (s > zero) else zero
            gr = g if near else zero
            ga = zero if near else g
            wgt = (one - s) if inside else zero
            rx += gr * dx
            ry += gr * dy
            fx += ga * dx
            fy += ga * dy
            svx += wgt * vxs[j]
            svy += wgt * vys[j]
            ws += wgt
            nb += 1 if inside else 0
    return rx, ry, fx, fy, svx, svy, ws, nb


@njit(nogil=True, cache=True)
def run_sums_min_image(j0, j1, xi, yi, xs, ys, vxs, vys, k0, k1, k2, u0, u1, u2, inv_r2, beta, repel_k, w, h):
    """run_sums for a wrapped world less than a run wide: each offset is taken to its nearest
    image. Only tiny worlds (or huge radii) get here, so it stays plain."""
    rx = np.float32(0.0)
    ry = np.float32(0.0)
    fx = np.float32(0.0)
    fy = np.float32(0.0)
    svx = np.float32(0.0)
    svy = np.float32(0.0)
    ws = np.float32(0.0)
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
        f = repel_k * (q / beta - one) if q < beta else m * (one - abs(two * q - (one + beta)) / (one - beta))
        if s > 0 and q < beta:
            rx += f / q * dx
            ry += f / q * dy
        elif s > 0:
            fx += f / q * dx
            fy += f / q * dy
        wgt = one - s
        svx += wgt * vxs[j]
        svy += wgt * vys[j]
        ws += wgt
        nb += 1
    return rx, ry, fx, fy, svx, svy, ws, nb


@njit(nogil=True, cache=True)
def neighbour_sums(i, xs, ys, vxs, vys, kins, u, si, cell_start, gx, gy, sub, inv_cw, inv_ch,
                   wrap, w, h, radius, repel):
    """Particle-life force sum Σ g·(dx, dy), the weighted velocity sum Σ w·v with its weight Σ w
    (self included), and the neighbour count (self excluded) of particle i of species si, float32."""
    xi = xs[i]
    yi = ys[i]
    k0 = kins[0]
    k1 = kins[1]
    k2 = kins[2]
    u0 = np.float32(u[si, 0])
    u1 = np.float32(u[si, 1])
    u2 = np.float32(u[si, 2])
    cx = min(max(int(np.float64(xi) * inv_cw), 0), gx - 1)
    cy = min(max(int(np.float64(yi) * inv_ch), 0), gy - 1)
    inv_r2 = np.float32(1.0 / (radius * radius))
    beta = np.float32(repel)
    repel_k = np.float32(REPEL_K)
    w32 = np.float32(w)
    zero = np.float32(0.0)
    span = 2 * sub + 1
    mi_x = wrap and gx < span     # the world is narrower than a run: take the minimum image
    mi_y = wrap and gy < 3
    rx = zero
    ry = zero
    fx = zero
    fy = zero
    svx = zero
    svy = zero
    ws = zero
    nb = 0
    for kr in range(3):
        row, shy = _axis_bins(cy, gy, wrap, kr)
        if row < 0:
            continue
        sy = np.float32(shy * h)
        base = row * gx
        for seg in range(2):
            # a run of `span` columns: one contiguous part, plus the part wrapped round the edge
            sx = zero
            if mi_x or not wrap:
                if seg == 1:
                    continue
                c0 = 0 if mi_x else max(cx - sub, 0)
                c1 = gx - 1 if mi_x else min(cx + sub, gx - 1)
            elif seg == 0:
                c0 = max(cx - sub, 0)
                c1 = min(cx + sub, gx - 1)
            elif cx - sub < 0:
                c0 = gx + cx - sub
                c1 = gx - 1
                sx = -w32
            elif cx + sub >= gx:
                c0 = 0
                c1 = cx + sub - gx
                sx = w32
            else:
                continue
            # unsigned: numba then needs no negative-index wraparound, and the loads stay
            # contiguous vector loads instead of gathers
            j0 = np.uint64(cell_start[base + c0])
            j1 = np.uint64(cell_start[base + c1 + 1])
            if mi_x or mi_y:
                ra, rb, a, b, c, d, e, k = run_sums_min_image(j0, j1, xi, yi, xs, ys, vxs, vys, k0, k1, k2, u0, u1,
                                                      u2, inv_r2, beta, repel_k, w, h)
            else:
                ra, rb, a, b, c, d, e, k = run_sums(j0, j1, xi, yi, sx, sy, xs, ys, vxs, vys, k0, k1, k2, u0, u1,
                                            u2, inv_r2, beta, repel_k)
            rx += ra
            ry += rb
            fx += a
            fy += b
            svx += c
            svy += d
            ws += e
            nb += k
    return rx, ry, fx, fy, svx, svy, ws, nb - 1


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
                   x, y, vx, vy, e, sp, hx, hy, block_stats, block_species):
    n = es.shape[0]     # xs and the other neighbour arrays are padded
    nblocks = (n + BLOCK - 1) // BLOCK
    dt = prm[P_DT]
    life_k = prm[P_LIFE] * LIFE_GAIN
    sep_k = LIFE_GAIN      # the push apart does not fade with life_strength: nothing may pile up
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
    n_touch = iprm[I_NTOUCH]
    n_pulse = iprm[I_NPULSE]
    nsp = block_species.shape[1]
    for b in prange(nblocks):
        s_speed = 0.0
        s_energy = 0.0
        s_nb = 0.0
        s_reset = 0.0
        s_home = 0.0
        for s in range(nsp):
            block_species[b, s, 0] = 0.0
            block_species[b, s, 1] = 0.0
        for i in range(b * BLOCK, min(n, (b + 1) * BLOCK)):
            xi = np.float64(xs[i])
            yi = np.float64(ys[i])
            si = sps[i]
            rx, ry, fx, fy, svx, svy, wsum, nb = neighbour_sums(
                i, xs, ys, vxs, vys, kins, matrix_u, si, cell_start, gx, gy, sub, prm[P_INV_CW],
                prm[P_INV_CH], wrap, w, h, prm[P_RADIUS], prm[P_REPEL])
            # crowding: past CROWD neighbours the species pull is shared out, so a clump cannot
            # keep pulling itself denser (particle-life's attraction outweighs its short push)
            crowd = CROWD / max(nb, CROWD)
            ax = sep_k * rx + life_k * crowd * fx + align_k * (svx / wsum - vxs[i])
            ay = sep_k * ry + life_k * crowd * fy + align_k * (svy / wsum - vys[i])
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
            block_species[b, si, 0] += ne
            block_species[b, si, 1] += speed
        block_stats[b, B_SPEED] = s_speed
        block_stats[b, B_ENERGY] = s_energy
        block_stats[b, B_NEIGHBOURS] = s_nb
        block_stats[b, B_RESETS] = s_reset
        block_stats[b, B_HOME] = s_home


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
