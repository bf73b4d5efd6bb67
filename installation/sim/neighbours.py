"""Particle life on the uniform grid: every particle's sums over its neighbours, in one pass.

Particles arrive in cell order (grid.py). A particle's candidates are three runs of memory,
one per row of cells; all particles of a cell share them, so they are worked out once per
cell. The hot loop (run_sums) is float32, branch-free and vectorised; it lives in a kernel of
its own, small enough that LLVM keeps it inlined and in registers.

Work is split into fixed blocks, one per row of cells, each summed serially by one thread in
cell order: every particle's sums are the same bits whatever the thread count. Rows are visited
even ones first, then odd ones: a thread's contiguous share of iterations then spans half the
world's height in every other row, so two threads get even work however the swarm is spread.
"""
from __future__ import annotations

import math

import numpy as np
from numba import njit, prange

# The neighbour loop works in chunks of LANES candidates, the last one masked, so LLVM turns each
# chunk into vector operations even though a run holds only 10-30 candidates (a plain loop
# that short would run in its scalar remainder). The cell-ordered arrays carry LANES slots of
# padding so the last chunk may read past the end. 16 measured 7% faster than 8 on the 2-core
# Zen 4 (AVX-512) box; AVX2 machines run a chunk as two 8-wide halves.
LANES = 16

REPEL_K = 12.0        # the push apart at contact, against at most 1 for any attraction: a dense
                      # patch cannot collapse, so neighbour counts (and the tick's cost) stay bounded
CROWD = 8.0           # neighbours beyond which the species attraction is shared out


@njit(nogil=True, cache=True)
def axis_bins(c, g, wrap, k):
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
def min_image(d, period):
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
    Few sums, because each one costs a horizontal add per chunk; all of them float32 (the
    count too: exact to 2**24) and the mask a 32-bit compare, so each chunk works in one lane
    width (64-bit lanes for the index and the count measured 5% slower).
    """
    fx = np.float32(0.0)
    fy = np.float32(0.0)
    svx = np.float32(0.0)
    svy = np.float32(0.0)
    nb = np.float32(0.0)
    one = np.float32(1.0)
    two = np.float32(2.0)
    zero = np.float32(0.0)
    inv_beta = one / beta
    peak = one + beta
    inv_band = one / (one - beta)
    for jc in range(j0, j1, np.uint64(LANES)):
        left = np.int32(min(j1 - jc, np.uint64(LANES)))
        for lane in range(LANES):
            j = jc + np.uint64(lane)
            dx = xs[j] - xi
            dy = ys[j] - yi
            s = (dx * dx + dy * dy) * inv_r2
            inside = (s < one) & (np.int32(lane) < left)
            q = np.sqrt(s)
            m = u0 * k0[j] + u1 * k1[j] + u2 * k2[j]
            f = repel_k * (q * inv_beta - one) if q < beta else crowd * m * (one - abs(two * q - peak) * inv_band)
            g = f / q if inside & (s > zero) else zero
            fx += g * dx
            fy += g * dy
            svx += vxs[j] if inside else zero
            svy += vys[j] if inside else zero
            nb += one if inside else zero
    return fx, fy, svx, svy, np.int64(nb)


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
        dx = np.float32(min_image(np.float64(xs[j]) - np.float64(xi), w))
        dy = np.float32(min_image(np.float64(ys[j]) - np.float64(yi), h))
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
    row, shy = axis_bins(cy, gy, wrap, kr)
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


@njit(nogil=True, cache=True, parallel=True)
def neighbour_pass(xs, ys, vxs, vys, k0, k1, k2, sps, matrix_u, cell_start, gx, gy, sub, wrap, w, h,
                   radius, repel, life, runs, shifts, fx, fy, svx, svy, nb):
    """For every particle i (cell order): fx, fy = Σ F·r·(dx, dy)/d over its neighbours (the push
    apart at full strength, the species pull times life × crowding); svx, svy = Σ v over the
    neighbours and itself; nb = the neighbour count. runs, shifts: one scratch slot per row.
    The world must be at least a run wide and three rows high (else neighbour_pass_min_image)."""
    inv_r2 = np.float32(1.0 / (radius * radius))
    beta = np.float32(repel)
    repel_k = np.float32(REPEL_K)
    w32 = np.float32(w)
    h32 = np.float32(h)
    evens = (gy + 1) // 2
    for t in prange(gy):
        row = 2 * t if t < evens else 2 * (t - evens) + 1
        row_runs = runs[row]
        row_shifts = shifts[row]
        for cx in range(gx):
            first = cell_start[row * gx + cx]
            end = cell_start[row * gx + cx + 1]
            if first == end:
                continue
            nr, candidates = cell_runs(cx, row, gx, gy, sub, wrap, cell_start, row_runs, row_shifts)
            pull = crowding(candidates, sub, life)
            for i in range(first, end):
                si = sps[i]
                u0 = np.float32(matrix_u[si, 0])
                u1 = np.float32(matrix_u[si, 1])
                u2 = np.float32(matrix_u[si, 2])
                ax = np.float32(0.0)
                ay = np.float32(0.0)
                bx = np.float32(0.0)
                by = np.float32(0.0)
                count = 0
                for k in range(nr):
                    # unsigned: numba then needs no negative-index wraparound, and the loads stay
                    # contiguous vector loads instead of gathers. The neighbour's image offset
                    # moves to the particle: xj + shift − xi = xj − (xi − shift)
                    a, b, c, d, m = run_sums(np.uint64(row_runs[k, 0]), np.uint64(row_runs[k, 1]),
                                             xs[i] - np.float32(row_shifts[k, 0]) * w32,
                                             ys[i] - np.float32(row_shifts[k, 1]) * h32,
                                             xs, ys, vxs, vys, k0, k1, k2, u0, u1, u2, inv_r2, beta,
                                             repel_k, pull)
                    ax += a
                    ay += b
                    bx += c
                    by += d
                    count += m
                fx[i] = ax
                fy[i] = ay
                svx[i] = bx
                svy[i] = by
                nb[i] = count - 1


@njit(nogil=True, cache=True, parallel=True)
def neighbour_pass_min_image(xs, ys, vxs, vys, k0, k1, k2, sps, matrix_u, cell_start, gx, gy, sub, wrap,
                             w, h, radius, repel, life, runs, shifts, fx, fy, svx, svy, nb):
    """neighbour_pass for a wrapped world narrower than a run or under three rows high: every
    offset is taken to its nearest image. Only tiny worlds (or huge radii) get here."""
    inv_r2 = np.float32(1.0 / (radius * radius))
    beta = np.float32(repel)
    repel_k = np.float32(REPEL_K)
    evens = (gy + 1) // 2
    for t in prange(gy):
        row = 2 * t if t < evens else 2 * (t - evens) + 1
        row_runs = runs[row]
        row_shifts = shifts[row]
        for cx in range(gx):
            first = cell_start[row * gx + cx]
            end = cell_start[row * gx + cx + 1]
            if first == end:
                continue
            nr, candidates = cell_runs(cx, row, gx, gy, sub, wrap, cell_start, row_runs, row_shifts)
            pull = crowding(candidates, sub, life)
            for i in range(first, end):
                si = sps[i]
                u0 = np.float32(matrix_u[si, 0])
                u1 = np.float32(matrix_u[si, 1])
                u2 = np.float32(matrix_u[si, 2])
                ax = np.float32(0.0)
                ay = np.float32(0.0)
                bx = np.float32(0.0)
                by = np.float32(0.0)
                count = 0
                for k in range(nr):
                    a, b, c, d, m = run_sums_min_image(row_runs[k, 0], row_runs[k, 1], xs[i], ys[i], xs, ys,
                                                       vxs, vys, k0, k1, k2, u0, u1, u2, inv_r2, beta,
                                                       repel_k, pull, w, h)
                    ax += a
                    ay += b
                    bx += c
                    by += d
                    count += m
                fx[i] = ax
                fy[i] = ay
                svx[i] = bx
                svy[i] = by
                nb[i] = count - 1
