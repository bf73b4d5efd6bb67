"""Numba kernels of the flash guard. Plain NumPy twins live in `reference.py`.

Regions. The frame is cut into square blocks of `b` pixels (0.1° of visual angle: finer
patterns are exempt under WCAG 2.3.1): the regions of level 0. Level l + 1 pools the regions
of level l 2 x 2, so a region of level l is a square of b * 2**l pixels on the grid that
starts at the top-left pixel (the edge regions keep the pixels they have). `lv` describes
the levels, one row each (columns LV_*).

Signals. Every region of every level follows two signals of the *output*, from its mean
linear colour:

* general: relative luminance clamped at 0.9. Clamping turns WCAG's "the darker state is
  below 0.8" into a plain amplitude test: a change of >= 0.1 whose darker end is < 0.8 is
  a change of >= 0.1 after the clamp, and a change between two states >= 0.8 is not.
* red: 320 * max(0, R - G - B) (the saturation condition is ignored here, which only makes
  the guard count more, never less).

Each signal runs a zig-zag transition detector (state: running extreme `ext`, direction
`dir`), and each detection's frame index goes into a short history (6 newest, newest first).

Layout. Per-region arrays are flat over all levels and region-major: region (Y, X) of level
l is row `lv[l, LV_BASE] + Y * nx + X` of `sums` (n, 3: linear R, G, B summed over its
pixels), `ext` (n, 2), `dirs` (n, 2), `hist` (n, 2, HIST). Level 0 comes first, so a
level-0 row is also the block's index in per-block arrays such as `kf`.

Bands. A band is one row of regions of the top level with every region under it: pixels,
regions and their children never cross a band's edge. One prange iteration owns one band
(or one row of one level), and each region sums its pixels and children in a fixed order,
so the result does not depend on the thread count. The twin repeats that arithmetic
operation for operation, so it gives bit-identical results; no fastmath.
"""
from __future__ import annotations

import numpy as np
from numba import njit, prange

LR = np.float32(0.2126)
LG = np.float32(0.7152)
LB = np.float32(0.0722)
L_CLAMP = np.float32(0.9)
Q_SCALE = np.float32(320.0)
HIST = 6                 # detections remembered per region and signal
FLAG_AT = 6              # a region with this many detections in the window counts as flashing
NEVER = -(1 << 30)       # "no detection" in the history
INF = np.float32(np.inf)
F0 = np.float32(0.0)
F1 = np.float32(1.0)

# columns of the level table `lv`
LV_BASE = 0              # first row of the level in the flat per-region arrays
LV_NY = 1                # regions down
LV_NX = 2                # regions across
LV_SIZE = 3              # pixels per side of a (whole) region
LV_SPAN = 4              # level-0 blocks per side of a region (2**l)
LV_RH = 5                # regions per side of the area check's rectangle
LV_RW = 6
LV_LIMIT = 7             # flashing regions allowed in one rectangle
LV_COLS = 8

# codes in the candidate map
CAND = 1
ADMIT = 2
REJECT = 3
# codes in `pending` (per band)
PENDING = 1              # measured, not tracked: the band is in the hands of the limiter
TOUCHED = 2              # ... and some of its pixels were changed: measure again
ENC_SIZE = 65536         # entries of the linear → sRGB byte table


@njit(nogil=True, cache=True, inline="always")
def signals(r, g, b):
    """Clamped luminance and red value of one linear colour (float32 in, float32 out)."""
    lum = LR * r + LG * g + LB * b
    lc = min(lum, L_CLAMP)
    d = r - g - b
    q = Q_SCALE * max(F0, d)
    return lc, q


@njit(nogil=True, cache=True, inline="always")
def would_detect(ext, d, v, thr):
    if d > 0:
        return ext - v >= thr
    return v - ext >= thr


@njit(nogil=True, cache=True, inline="always")
def _px(p, lut, sr, sg, sb):
    """Add one pixel's linear R, G, B to running sums."""
    return sr + lut[(p >> 16) & 255], sg + lut[(p >> 8) & 255], sb + lut[p & 255]


@njit(nogil=True, cache=True, inline="always")
def _put(sums, i, s):
    sums[i, 0] = s[0]
    sums[i, 1] = s[1]
    sums[i, 2] = s[2]


@njit(nogil=True, cache=True)
def sum_blocks(frame, lut, b, by, sums, i0):
    """Sums of linear R, G, B of the row `by` of level-0 blocks into sums[i0:i0 + nx].

    Each block adds its pixels row by row, left to right, starting from zero. The usual
    block sizes get unrolled loops: the short, variable-length inner loops would otherwise
    cost more than the pixels.
    """
    h, w = frame.shape
    y0 = by * b
    y1 = min(h, y0 + b)
    full = w // b
    nx = -(-w // b)
    z = (F0, F0, F0)
    if b == 1:
        r0 = frame[y0]
        for bx in range(w):
            _put(sums, i0 + bx, _px(r0[bx], lut, F0, F0, F0))
        return
    if y1 - y0 == b and b == 2:
        r0 = frame[y0]
        r1 = frame[y0 + 1]
        for bx in range(full):
            x = 2 * bx
            s = _px(r0[x], lut, z[0], z[1], z[2])
            s = _px(r0[x + 1], lut, s[0], s[1], s[2])
            s = _px(r1[x], lut, s[0], s[1], s[2])
            _put(sums, i0 + bx, _px(r1[x + 1], lut, s[0], s[1], s[2]))
    elif y1 - y0 == b and b == 3:
        r0 = frame[y0]
        r1 = frame[y0 + 1]
        r2 = frame[y0 + 2]
        for bx in range(full):
            x = 3 * bx
            s = _px(r0[x], lut, z[0], z[1], z[2])
            s = _px(r0[x + 1], lut, s[0], s[1], s[2])
            s = _px(r0[x + 2], lut, s[0], s[1], s[2])
            s = _px(r1[x], lut, s[0], s[1], s[2])
            s = _px(r1[x + 1], lut, s[0], s[1], s[2])
            s = _px(r1[x + 2], lut, s[0], s[1], s[2])
            s = _px(r2[x], lut, s[0], s[1], s[2])
            s = _px(r2[x + 1], lut, s[0], s[1], s[2])
            _put(sums, i0 + bx, _px(r2[x + 2], lut, s[0], s[1], s[2]))
    elif y1 - y0 == b and b == 4:
        for bx in range(full):
            x = 4 * bx
            s = z
            for y in range(y0, y1):
                r = frame[y]
                s = _px(r[x], lut, s[0], s[1], s[2])
                s = _px(r[x + 1], lut, s[0], s[1], s[2])
                s = _px(r[x + 2], lut, s[0], s[1], s[2])
                s = _px(r[x + 3], lut, s[0], s[1], s[2])
            _put(sums, i0 + bx, s)
    else:
        full = 0          # every block by the general loop
    for bx in range(full, nx):
        s = z
        for y in range(y0, y1):
            r = frame[y]
            for x in range(bx * b, min(w, bx * b + b)):
                s = _px(r[x], lut, s[0], s[1], s[2])
        _put(sums, i0 + bx, s)


@njit(nogil=True, cache=True)
def pool_row(lv, l, Y, sums, flags, use_flags):
    """Region row Y of level l (>= 1) from its children: sums (children added in the order
    top-left, top-right, bottom-left, bottom-right) and, with `use_flags`, their flags ORed."""
    base = lv[l, LV_BASE]
    nx = lv[l, LV_NX]
    cb = lv[l - 1, LV_BASE]
    cny = lv[l - 1, LV_NY]
    cnx = lv[l - 1, LV_NX]
    two_rows = 2 * Y + 1 < cny
    for X in range(nx):
        a = cb + 2 * Y * cnx + 2 * X
        two_cols = 2 * X + 1 < cnx
        sr = sums[a, 0]
        sg = sums[a, 1]
        sb = sums[a, 2]
        f = flags[a] if use_flags else np.uint8(0)
        if two_cols:
            sr += sums[a + 1, 0]
            sg += sums[a + 1, 1]
            sb += sums[a + 1, 2]
            if use_flags:
                f |= flags[a + 1]
        if two_rows:
            sr += sums[a + cnx, 0]
            sg += sums[a + cnx, 1]
            sb += sums[a + cnx, 2]
            if use_flags:
                f |= flags[a + cnx]
            if two_cols:
                sr += sums[a + cnx + 1, 0]
                sg += sums[a + cnx + 1, 1]
                sb += sums[a + cnx + 1, 2]
                if use_flags:
                    f |= flags[a + cnx + 1]
        i = base + Y * nx + X
        sums[i, 0] = sr
        sums[i, 1] = sg
        sums[i, 2] = sb
        if use_flags:
            flags[i] = f


@njit(nogil=True, cache=True, inline="always")
def row_scale(h, w, s, Y, nx):
    """(whole regions in the row, 1 / pixels of a whole one, 1 / pixels of the last one)."""
    rows = min(h, (Y + 1) * s) - Y * s
    full = w // s
    inv_full = F1 / np.float32(rows * s)
    inv_edge = inv_full
    if full < nx:
        inv_edge = F1 / np.float32(rows * (w - full * s))
    return full, inv_full, inv_edge


@njit(nogil=True, cache=True, inline="always")
def record(i, k, v, t, ext, dirs, hist):
    """A detection of signal k of region i at frame t, value v."""
    for m in range(HIST - 1, 0, -1):
        hist[i, k, m] = hist[i, k, m - 1]
    hist[i, k, 0] = t
    dirs[i, k] = -dirs[i, k]
    ext[i, k] = v


@njit(nogil=True, cache=True, inline="always")
def track_row(i0, nx, full, inv_full, inv_edge, first, t, sums, ext, dirs, hist, cons,
              check, thr_l, thr_q):
    """Feed one row of regions to their detectors. Returns (the latest 5th-newest detection
    among those that detected, detections of signals that `cons` marks as constrained, when
    `check`; `cons` is then cleared)."""
    risk = NEVER
    crossed = 0
    for X in range(nx):
        i = i0 + X
        c = 0
        if check:
            c = cons[i]
            cons[i] = 0
        inv = inv_full if X < full else inv_edge
        lc, q = signals(sums[i, 0] * inv, sums[i, 1] * inv, sums[i, 2] * inv)
        if first:
            ext[i, 0] = lc
            ext[i, 1] = q
            dirs[i, 0] = 1
            dirs[i, 1] = 1
            continue
        el = ext[i, 0]
        eq = ext[i, 1]
        # dir is +1 (watching for a fall from the running maximum) or -1 (a rise from the
        # minimum): multiplying by it is exact and saves a branch per region
        sl = np.float32(dirs[i, 0])
        sq = np.float32(dirs[i, 1])
        if (el - lc) * sl >= thr_l:
            record(i, 0, lc, t, ext, dirs, hist)
            risk = max(risk, hist[i, 0, FLAG_AT - 2])
            crossed += c & 1
        else:
            ext[i, 0] = lc if (lc - el) * sl > 0 else el
        if (eq - q) * sq >= thr_q:
            record(i, 1, q, t, ext, dirs, hist)
            risk = max(risk, hist[i, 1, FLAG_AT - 2])
            crossed += (c >> 1) & 1
        else:
            ext[i, 1] = q if (q - eq) * sq > 0 else eq
    return risk, crossed


@njit(nogil=True, cache=True, parallel=True)
def measure_track(frame, lut, lv, mode, first, t, since, sums, ext, dirs, hist, band_risk,
                  pending, cons, crossed, thr_l, thr_q):
    """Region sums of every level, fed to the detectors, in one pass over the pixels.

    mode 0 (every frame): a band where some region of any level has FLAG_AT - 1 detections
    in the window (`band_risk[band] > since`) may need limiting: it is only measured and
    left PENDING. Every other band is tracked here and now; its output is its input.
    mode 1 (after the limiter): the pending bands, measured again where TOUCHED, are
    tracked; `crossed[band]` counts constrained signals that still transitioned.
    `band_risk` keeps, per band, the latest 5th-newest detection of any of its regions.
    """
    h, w = frame.shape
    top = lv.shape[0] - 1
    b = lv[0, LV_SIZE]
    for j in prange(band_risk.shape[0]):
        if mode == 1 and pending[j] == 0:
            continue
        measure = mode == 0 or pending[j] == TOUCHED
        defer = mode == 0 and not first and band_risk[j] > since
        risk = band_risk[j]
        n_cross = 0
        for l in range(top + 1):
            base = lv[l, LV_BASE]
            ny = lv[l, LV_NY]
            nx = lv[l, LV_NX]
            s = lv[l, LV_SIZE]
            for Y in range(j << (top - l), min(ny, (j + 1) << (top - l))):
                if measure:
                    if l == 0:
                        sum_blocks(frame, lut, b, Y, sums, base + Y * nx)
                    else:
                        pool_row(lv, l, Y, sums, cons, False)
                if defer:
                    continue
                full, inv_full, inv_edge = row_scale(h, w, s, Y, nx)
                r, c = track_row(base + Y * nx, nx, full, inv_full, inv_edge, first, t, sums,
                                 ext, dirs, hist, cons, mode == 1, thr_l, thr_q)
                risk = max(risk, r)
                n_cross += c
        band_risk[j] = risk
        crossed[j] = n_cross
        pending[j] = PENDING if defer else 0


@njit(nogil=True, cache=True, inline="always")
def count_recent(hist, i, k, since):
    """Detections of signal k of region i after frame `since` (history is newest first)."""
    c = 0
    for m in range(HIST):
        if hist[i, k, m] > since:
            c += 1
        else:
            break
    return c


@njit(nogil=True, cache=True, parallel=True)
def classify(l, lv, h, w, since, sums, comp, kf, mixed, ext, dirs, hist, pending, five, cand,
             cand_row, thr_l, thr_q):
    """Level l of the pending bands, given what finer levels decided: the composite sums
    (`comp`: level 0 starts from the input, `kf` = 1; coarser levels pool their children,
    `mixed` = some block under it is part blended), then per signal: FLAG_AT - 1 detections
    in the window → a bit in `five`; and if the composite would complete a transition, a
    candidate (CAND) for the area check. `cand_row[k, Y]` counts them per row."""
    top = lv.shape[0] - 1
    base = lv[l, LV_BASE]
    ny = lv[l, LV_NY]
    nx = lv[l, LV_NX]
    s = lv[l, LV_SIZE]
    for Y in prange(ny):
        n0 = 0
        n1 = 0
        if pending[Y >> (top - l)] != 0:
            i0 = base + Y * nx
            if l == 0:
                for i in range(i0, i0 + nx):
                    comp[i, 0] = sums[i, 0]
                    comp[i, 1] = sums[i, 1]
                    comp[i, 2] = sums[i, 2]
                    mixed[i] = 0
                    kf[i] = F1
            else:
                pool_row(lv, l, Y, comp, mixed, True)
            full, inv_full, inv_edge = row_scale(h, w, s, Y, nx)
            for X in range(nx):
                i = i0 + X
                inv = inv_full if X < full else inv_edge
                lc, q = signals(comp[i, 0] * inv, comp[i, 1] * inv, comp[i, 2] * inv)
                f = 0
                if count_recent(hist, i, 0, since) == FLAG_AT - 1:
                    f |= 1
                    if would_detect(ext[i, 0], dirs[i, 0], lc, thr_l):
                        cand[i, 0] = CAND
                        n0 += 1
                if count_recent(hist, i, 1, since) == FLAG_AT - 1:
                    f |= 2
                    if would_detect(ext[i, 1], dirs[i, 1], q, thr_q):
                        cand[i, 1] = CAND
                        n1 += 1
                five[i] = f
        cand_row[0, Y] = n0
        cand_row[1, Y] = n1


@njit(nogil=True, cache=True)
def area_check(k, since, hist, cand, rh, rw, limit, integ, over):
    """Admit or reject signal k's candidates of one level so that no field holds too many
    flashing regions. `hist` (ny, nx, 2, HIST) and `cand` (ny, nx, 2) are the level's rows.

    Flashing = already FLAG_AT detections in the window, or a candidate about to get its
    FLAG_AT-th. With all candidates counted as flashing, every field rectangle (rh x rw
    regions, region-aligned: it covers any pixel-aligned 10° field) holding more than
    `limit` is "over"; candidates inside any over rectangle are rejected, the rest admitted.
    Admitted regions only lie in rectangles that stay within the limit, and a rectangle
    without admitted regions gains no flashing region, so the limit holds after every frame.
    """
    ny = cand.shape[0]
    nx = cand.shape[1]
    for x in range(nx + 1):
        integ[0, x] = 0
    for y in range(ny):
        integ[y + 1, 0] = 0
        run = 0
        for x in range(nx):
            if hist[y, x, k, FLAG_AT - 1] > since or cand[y, x, k] == CAND:
                run += 1
            integ[y + 1, x + 1] = integ[y, x + 1] + run
    pny = ny - rh + 1
    pnx = nx - rw + 1
    for px in range(pnx + 1):
        over[0, px] = 0
    for py in range(pny):
        over[py + 1, 0] = 0
        run = 0
        for px in range(pnx):
            n = (integ[py + rh, px + rw] - integ[py, px + rw]
                 - integ[py + rh, px] + integ[py, px])
            if n > limit:
                run += 1
            over[py + 1, px + 1] = over[py, px + 1] + run
    for y in range(ny):
        for x in range(nx):
            if cand[y, x, k] != CAND:
                continue
            py0 = max(0, y - rh + 1)
            py1 = min(pny - 1, y)
            px0 = max(0, x - rw + 1)
            px1 = min(pnx - 1, x)
            n_over = (over[py1 + 1, px1 + 1] - over[py0, px1 + 1]
                      - over[py1 + 1, px0] + over[py0, px0])
            cand[y, x, k] = REJECT if n_over > 0 else ADMIT


@njit(nogil=True, cache=True, inline="always")
def _bounds(e, d, thr, margin, top):
    """Values a constrained signal may take without a detection, `margin` inside the edge.

    Returns (lo, hi); `top` is the largest value the signal can reach (beyond it no bound).
    """
    lo = -INF
    hi = INF
    if d > 0:
        lo = e - thr + margin
    else:
        hi = e + thr - margin
        if hi >= top:
            hi = INF
    return lo, hi


@njit(nogil=True, cache=True, inline="always")
def band_of(i, cons, ext, dirs, thr_l, thr_q, m):
    """(lo_l, hi_l, lo_d, hi_d): the luminance and R - G - B a region's constrained signals
    may take, `m` (luminance, red value) inside the edges of the no-transition band."""
    lo_l = -INF
    hi_l = INF
    lo_d = -INF
    hi_d = INF
    if cons & 1:
        lo_l, hi_l = _bounds(ext[i, 0], dirs[i, 0], thr_l, m[0], L_CLAMP)
    if cons & 2:
        lo_q, hi_q = _bounds(ext[i, 1], dirs[i, 1], thr_q, m[1], INF)
        # the red value is 320 * max(0, D): a bound on it is a bound on D = R - G - B
        if lo_q > 0.0:
            lo_d = lo_q / Q_SCALE
        hi_d = hi_q / Q_SCALE
    return lo_l, hi_l, lo_d, hi_d


@njit(nogil=True, cache=True, inline="always")
def _in_band(lum, dd, lo_l, hi_l, lo_d, hi_d):
    return lum >= lo_l and lum <= hi_l and dd >= lo_d and dd <= hi_d


@njit(nogil=True, cache=True, inline="always")
def _alpha(v_in, v_t, lo, hi):
    a = F0
    if v_in < lo and v_t > v_in:
        a = (lo - v_in) / (v_t - v_in)
    elif v_in > hi and v_t < v_in:
        a = (v_in - hi) / (v_in - v_t)
    return a


@njit(nogil=True, cache=True, inline="always")
def passes(i, cons, is_mixed, comp, inv, ext, dirs, thr_l, thr_q, m):
    """Will the region's constrained signals stay without a transition? A region whose
    blocks are all untouched or all copied is measured exactly as its composite: the
    detectors' own test decides. A part-blended one must keep `m` away from the edges,
    more than the 8-bit rounding of the blend can move it."""
    r = comp[i, 0] * inv
    g = comp[i, 1] * inv
    bl = comp[i, 2] * inv
    if not is_mixed:
        lc, q = signals(r, g, bl)
        if cons & 1 and would_detect(ext[i, 0], dirs[i, 0], lc, thr_l):
            return False
        if cons & 2 and would_detect(ext[i, 1], dirs[i, 1], q, thr_q):
            return False
        return True
    lo_l, hi_l, lo_d, hi_d = band_of(i, cons, ext, dirs, thr_l, thr_q, m)
    return _in_band(LR * r + LG * g + LB * bl, r - g - bl, lo_l, hi_l, lo_d, hi_d)


@njit(nogil=True, cache=True, inline="always")
def hold_factor(i, cons, is_mixed, comp, psums, inv, ext, dirs, thr_l, thr_q, m_chk, m_aim):
    """How far to blend a region toward its previous output: 0 (it passes as it is), 1
    (copy the previous output: exact, and inside the band by construction) or the least
    fraction that brings it `m_aim` inside the band (linear in the mean colour: exact)."""
    if passes(i, cons, is_mixed, comp, inv, ext, dirs, thr_l, thr_q, m_chk):
        return F0
    lo_l, hi_l, lo_d, hi_d = band_of(i, cons, ext, dirs, thr_l, thr_q, m_aim)
    pr = psums[i, 0] * inv
    pg = psums[i, 1] * inv
    pb = psums[i, 2] * inv
    lum_p = LR * pr + LG * pg + LB * pb
    d_p = pr - pg - pb
    if not _in_band(lum_p, d_p, lo_l, hi_l, lo_d, hi_d):
        return F1     # the previous output itself lies near an edge: only an exact copy is safe
    r = comp[i, 0] * inv
    g = comp[i, 1] * inv
    bl = comp[i, 2] * inv
    beta = max(_alpha(LR * r + LG * g + LB * bl, lum_p, lo_l, hi_l),
               _alpha(r - g - bl, d_p, lo_d, hi_d))
    return min(F1, beta)


@njit(nogil=True, cache=True, inline="always")
def scale_blocks(lv, l, Y, X, keep, kf):
    """Multiply the input share `kf` of every level-0 block under region (Y, X) of level l."""
    span = lv[l, LV_SPAN]
    ny0 = lv[0, LV_NY]
    nx0 = lv[0, LV_NX]
    for by in range(Y * span, min(ny0, Y * span + span)):
        for bx in range(X * span, min(nx0, X * span + span)):
            kf[by * nx0 + bx] = kf[by * nx0 + bx] * keep


@njit(nogil=True, cache=True, parallel=True)
def hold(l, lv, h, w, comp, psums, kf, mixed, ext, dirs, pending, five, cand, cons, row_held,
         thr_l, thr_q, m_chk, m_aim):
    """Level l of the pending bands, after its area check: every signal with FLAG_AT - 1
    detections that was not admitted is constrained (`cons`); a region whose constrained
    signals would transition is blended toward its previous output (`kf` of its blocks
    scaled; its composite follows). `row_held[Y]` counts the regions blended per row."""
    top = lv.shape[0] - 1
    base = lv[l, LV_BASE]
    ny = lv[l, LV_NY]
    nx = lv[l, LV_NX]
    s = lv[l, LV_SIZE]
    for Y in prange(ny):
        n = 0
        if pending[Y >> (top - l)] != 0:
            full, inv_full, inv_edge = row_scale(h, w, s, Y, nx)
            for X in range(nx):
                i = base + Y * nx + X
                f = five[i]
                if f == 0:
                    continue
                c = 0
                if f & 1 and cand[i, 0] != ADMIT:
                    c |= 1
                if f & 2 and cand[i, 1] != ADMIT:
                    c |= 2
                five[i] = 0
                cand[i, 0] = 0
                cand[i, 1] = 0
                cons[i] = c
                if c == 0:
                    continue
                inv = inv_full if X < full else inv_edge
                beta = hold_factor(i, c, mixed[i] != 0, comp, psums, inv, ext, dirs, thr_l,
                                   thr_q, m_chk, m_aim)
                if beta <= F0:
                    continue
                n += 1
                keep = F1 - beta
                scale_blocks(lv, l, Y, X, keep, kf)
                if beta >= F1:
                    comp[i, 0] = psums[i, 0]
                    comp[i, 1] = psums[i, 1]
                    comp[i, 2] = psums[i, 2]
                    mixed[i] = 0
                else:
                    comp[i, 0] = keep * comp[i, 0] + beta * psums[i, 0]
                    comp[i, 1] = keep * comp[i, 1] + beta * psums[i, 1]
                    comp[i, 2] = keep * comp[i, 2] + beta * psums[i, 2]
                    mixed[i] = 1
        row_held[Y] = n


@njit(nogil=True, cache=True, parallel=True)
def verify(l, lv, h, w, sums, psums, comp, kf, mixed, ext, dirs, pending, cons, row_frozen,
           thr_l, thr_q, m_chk):
    """Level l of the pending bands, with the blends of every level decided: the composite
    again, exactly as the blended output will measure before rounding (level 0 from `kf`,
    coarser levels pooled); a constrained region that no longer passes (a coarser blend
    drew it toward a previous output near an edge, or a finer copy moved it) becomes an
    exact copy of its previous output. Run from level 0 up, so a copy only changes the
    levels still to check. `row_frozen[Y]` counts them per row."""
    top = lv.shape[0] - 1
    base = lv[l, LV_BASE]
    ny = lv[l, LV_NY]
    nx = lv[l, LV_NX]
    s = lv[l, LV_SIZE]
    for Y in prange(ny):
        n = 0
        if pending[Y >> (top - l)] != 0:
            i0 = base + Y * nx
            if l == 0:
                for i in range(i0, i0 + nx):
                    a = kf[i]
                    if a >= F1:
                        comp[i, 0] = sums[i, 0]
                        comp[i, 1] = sums[i, 1]
                        comp[i, 2] = sums[i, 2]
                    elif a <= F0:
                        comp[i, 0] = psums[i, 0]
                        comp[i, 1] = psums[i, 1]
                        comp[i, 2] = psums[i, 2]
                    else:
                        rest = F1 - a
                        comp[i, 0] = a * sums[i, 0] + rest * psums[i, 0]
                        comp[i, 1] = a * sums[i, 1] + rest * psums[i, 1]
                        comp[i, 2] = a * sums[i, 2] + rest * psums[i, 2]
                    mixed[i] = 1 if F0 < a < F1 else 0
            else:
                pool_row(lv, l, Y, comp, mixed, True)
            full, inv_full, inv_edge = row_scale(h, w, s, Y, nx)
            for X in range(nx):
                i = i0 + X
                c = cons[i]
                if c == 0:
                    continue
                inv = inv_full if X < full else inv_edge
                if passes(i, c, mixed[i] != 0, comp, inv, ext, dirs, thr_l, thr_q, m_chk):
                    continue
                n += 1
                scale_blocks(lv, l, Y, X, F0, kf)
                comp[i, 0] = psums[i, 0]
                comp[i, 1] = psums[i, 1]
                comp[i, 2] = psums[i, 2]
                mixed[i] = 0
        row_frozen[Y] = n


@njit(nogil=True, cache=True, inline="always")
def encode(v, enc):
    """Linear value → the sRGB byte nearest in linear light (`enc` samples it finely)."""
    if v <= 0.0:
        return 0
    if v >= 1.0:
        return 255
    return enc[int(v * np.float32(ENC_SIZE - 1) + np.float32(0.5))]


@njit(nogil=True, cache=True, parallel=True)
def apply_limits(frame, prev_px, lut, enc, lv, kf, pending, band_blocks):
    """Every level-0 block of the pending bands with `kf` < 1 becomes, pixel by pixel in
    linear light, kf * input + (1 - kf) * previous output (kf = 0: the previous pixels,
    exactly); alpha is kept. Bands with changed pixels become TOUCHED; `band_blocks[band]`
    counts the blocks changed."""
    h, w = frame.shape
    top = lv.shape[0] - 1
    b = lv[0, LV_SIZE]
    ny0 = lv[0, LV_NY]
    nx0 = lv[0, LV_NX]
    alpha = np.uint32(0xFF000000)
    colour = np.uint32(0x00FFFFFF)
    for j in prange(pending.shape[0]):
        band_blocks[j] = 0
        if pending[j] == 0:
            continue
        n = 0
        for by in range(j << top, min(ny0, (j + 1) << top)):
            y0 = by * b
            y1 = min(h, y0 + b)
            for bx in range(nx0):
                a = kf[by * nx0 + bx]
                if a >= F1:
                    continue
                n += 1
                x0 = bx * b
                x1 = min(w, x0 + b)
                if a <= F0:
                    for y in range(y0, y1):
                        for x in range(x0, x1):
                            frame[y, x] = (frame[y, x] & alpha) | (prev_px[y, x] & colour)
                    continue
                rest = F1 - a
                # flat areas (most flashes) repeat a pixel pair: blend it once
                last_p = np.uint32(0)
                last_q = np.uint32(0)
                last_out = np.uint32(0)
                memo = False
                for y in range(y0, y1):
                    for x in range(x0, x1):
                        p = frame[y, x]
                        q = prev_px[y, x]
                        if not (memo and p == last_p and q == last_q):
                            er = encode(a * lut[(p >> 16) & 255] + rest * lut[(q >> 16) & 255], enc)
                            eg = encode(a * lut[(p >> 8) & 255] + rest * lut[(q >> 8) & 255], enc)
                            eb = encode(a * lut[p & 255] + rest * lut[q & 255], enc)
                            last_out = (p & alpha) | np.uint32((int(er) << 16) | (int(eg) << 8) | int(eb))
                            last_p = p
                            last_q = q
                            memo = True
                        frame[y, x] = last_out
        band_blocks[j] = n
        if n > 0:
            pending[j] = TOUCHED


@njit(nogil=True, cache=True, parallel=True)
def store_prev(frame, prev_px, lv, band_risk, since_next):
    """Keep the output pixels of the bands the next frame may have to limit."""
    h = frame.shape[0]
    rows = lv[0, LV_SIZE] * lv[lv.shape[0] - 1, LV_SPAN]
    for j in prange(band_risk.shape[0]):
        if band_risk[j] > since_next:
            for y in range(j * rows, min(h, (j + 1) * rows)):
                prev_px[y, :] = frame[y, :]
