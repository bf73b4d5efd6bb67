"""Numba kernels of the flash guard. Plain NumPy twins live in `reference.py`.

The frame is cut into square blocks of `b` pixels (0.1° of visual angle: finer patterns are
exempt under WCAG 2.3.1). Per block the guard follows two signals of the *output*:

* general: relative luminance clamped at 0.9. Clamping turns WCAG's "the darker state is
  below 0.8" into a plain amplitude test: a change of >= 0.1 whose darker end is < 0.8 is
  a change of >= 0.1 after the clamp, and a change between two states >= 0.8 is not.
* red: 320 * max(0, R - G - B) of the block's mean linear colour (the saturation condition
  is ignored here, which only makes the guard count more, never less).

Each signal runs a zig-zag transition detector (state: running extreme `ext`, direction
`dir`), and each detection's frame index goes into a short history (6 newest, newest
first). Everything is float32 structure-of-arrays, allocated once by the guard.

Arithmetic order is fixed so the NumPy twin gives bit-identical results; no fastmath.
"""
from __future__ import annotations

import numpy as np
from numba import njit, prange

LR = np.float32(0.2126)
LG = np.float32(0.7152)
LB = np.float32(0.0722)
L_CLAMP = np.float32(0.9)
Q_SCALE = np.float32(320.0)
HIST = 6                 # detections remembered per block and signal
FLAG_AT = 6              # a block with this many detections in the window counts as flashing
NEVER = -(1 << 30)       # "no detection" in the history
INF = np.float32(np.inf)

# codes in the candidate map
CAND = 1
ADMIT = 2
REJECT = 3
LIMITED = 0x80           # in `pend` after settle(): this block is limited; low bits = constrained signals
ENC_SIZE = 65536         # entries of the linear → sRGB byte table


@njit(nogil=True, cache=True, inline="always")
def signals(r, g, b):
    """Clamped luminance and red value of one linear colour (float32 in, float32 out)."""
    lum = LR * r + LG * g + LB * b
    lc = min(lum, L_CLAMP)
    d = r - g - b
    q = Q_SCALE * max(np.float32(0.0), d)
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
def _load(rgb, by, bx, start):
    if start:
        return np.float32(0.0), np.float32(0.0), np.float32(0.0)
    return rgb[0, by, bx], rgb[1, by, bx], rgb[2, by, bx]


@njit(nogil=True, cache=True, inline="always")
def _store(rgb, by, bx, s):
    rgb[0, by, bx] = s[0]
    rgb[1, by, bx] = s[1]
    rgb[2, by, bx] = s[2]


@njit(nogil=True, cache=True)
def add_row(row, lut, b, rgb, by, start):
    """Add one pixel row to the running sums of its row of blocks (`start`: the first row).

    Every block adds its pixels left to right, so with rows taken top to bottom each block
    sums in row order. The usual block sizes get unrolled loops: the short, variable-length
    inner loop would otherwise cost more than the pixels.
    """
    w = row.shape[0]
    nbx = rgb.shape[2]
    full = w // b
    if b == 1:
        for bx in range(full):
            s = _load(rgb, by, bx, start)
            _store(rgb, by, bx, _px(row[bx], lut, s[0], s[1], s[2]))
    elif b == 2:
        for bx in range(full):
            x = 2 * bx
            s = _load(rgb, by, bx, start)
            s = _px(row[x], lut, s[0], s[1], s[2])
            _store(rgb, by, bx, _px(row[x + 1], lut, s[0], s[1], s[2]))
    elif b == 3:
        for bx in range(full):
            x = 3 * bx
            s = _load(rgb, by, bx, start)
            s = _px(row[x], lut, s[0], s[1], s[2])
            s = _px(row[x + 1], lut, s[0], s[1], s[2])
            _store(rgb, by, bx, _px(row[x + 2], lut, s[0], s[1], s[2]))
    elif b == 4:
        for bx in range(full):
            x = 4 * bx
            s = _load(rgb, by, bx, start)
            s = _px(row[x], lut, s[0], s[1], s[2])
            s = _px(row[x + 1], lut, s[0], s[1], s[2])
            s = _px(row[x + 2], lut, s[0], s[1], s[2])
            _store(rgb, by, bx, _px(row[x + 3], lut, s[0], s[1], s[2]))
    else:
        for bx in range(full):
            s = _load(rgb, by, bx, start)
            for x in range(bx * b, bx * b + b):
                s = _px(row[x], lut, s[0], s[1], s[2])
            _store(rgb, by, bx, s)
    if full < nbx:   # the narrower block at the right edge
        s = _load(rgb, by, full, start)
        for x in range(full * b, w):
            s = _px(row[x], lut, s[0], s[1], s[2])
        _store(rgb, by, full, s)


@njit(nogil=True, cache=True, parallel=True)
def measure_track(frame, lut, b, first, t, since, rgb, ext, dirs, hist, pend, pend_row, cand,
                  cand_row, thr_l, thr_q):
    """Block means of linear RGB, fed to the detectors, in one pass over the pixels.

    A block whose signals complete no transition, or only transitions they may make (fewer
    than FLAG_AT - 1 detections in the window, or already flashing), is committed right
    here: its output will be its input. A signal about to get its FLAG_AT-th detection is
    a candidate for the area check (`cand`); its block is left in `pend` (all zero between
    frames). Per row of blocks, `pend_row` counts blocks left and `cand_row[k]` candidates.
    One prange iteration owns one row of blocks, so the result does not depend on the
    thread count.
    """
    h, w = frame.shape
    nby = rgb.shape[1]
    nbx = rgb.shape[2]
    for by in prange(nby):
        y0 = by * b
        y1 = min(h, y0 + b)
        npend = 0
        n0 = 0
        n1 = 0
        for y in range(y0, y1):
            add_row(frame[y], lut, b, rgb, by, y == y0)
        inv_full = np.float32(1.0) / np.float32((y1 - y0) * b)
        for bx in range(nbx):
            x0 = bx * b
            x1 = min(w, x0 + b)
            sr = rgb[0, by, bx]
            sg = rgb[1, by, bx]
            sb = rgb[2, by, bx]
            inv = inv_full if x1 - x0 == b else np.float32(1.0) / np.float32((y1 - y0) * (x1 - x0))
            r = sr * inv
            g = sg * inv
            bl = sb * inv
            rgb[0, by, bx] = r
            rgb[1, by, bx] = g
            rgb[2, by, bx] = bl
            lc, q = signals(r, g, bl)
            if first:
                ext[0, by, bx] = lc
                ext[1, by, bx] = q
                dirs[0, by, bx] = 1
                dirs[1, by, bx] = 1
                continue
            el = ext[0, by, bx]
            eq = ext[1, by, bx]
            # dir is +1 (watching for a fall from the running maximum) or -1 (a rise from
            # the minimum): multiplying by it is exact and avoids a branch per block
            sl = np.float32(dirs[0, by, bx])
            sq = np.float32(dirs[1, by, bx])
            fl = (el - lc) * sl >= thr_l
            fq = (eq - q) * sq >= thr_q
            code = (1 if fl else 0) | (2 if fq else 0)
            quiet = code == 0
            # moving content makes these data-dependent: selects and plain stores instead
            # of branches that would mispredict
            ext[0, by, bx] = lc if quiet and (lc - el) * sl > 0 else el
            ext[1, by, bx] = q if quiet and (q - eq) * sq > 0 else eq
            if quiet:
                continue
            c0 = fl and count_recent(hist, 0, by, bx, since) == FLAG_AT - 1
            c1 = fq and count_recent(hist, 1, by, bx, since) == FLAG_AT - 1
            if c0 or c1:
                pend[by, bx] = code
                npend += 1
                if c0:
                    cand[0, by, bx] = CAND
                    n0 += 1
                if c1:
                    cand[1, by, bx] = CAND
                    n1 += 1
            else:
                commit(0, by, bx, lc, t, thr_l, ext, dirs, hist)
                commit(1, by, bx, q, t, thr_q, ext, dirs, hist)
        pend_row[by] = npend
        cand_row[0, by] = n0
        cand_row[1, by] = n1


@njit(nogil=True, cache=True, inline="always")
def count_recent(hist, k, by, bx, since):
    """Detections of signal k in block (by, bx) after frame `since` (history is newest first)."""
    c = 0
    for i in range(HIST):
        if hist[k, by, bx, i] > since:
            c += 1
        else:
            break
    return c


@njit(nogil=True, cache=True, inline="always")
def commit(k, by, bx, v, t, thr, ext, dirs, hist):
    """Feed one output value to signal k's detector; True when it completed a transition."""
    e = ext[k, by, bx]
    d = dirs[k, by, bx]
    if would_detect(e, d, v, thr):
        for i in range(HIST - 1, 0, -1):
            hist[k, by, bx, i] = hist[k, by, bx, i - 1]
        hist[k, by, bx, 0] = t
        dirs[k, by, bx] = -d
        ext[k, by, bx] = v
        return True
    if d > 0:
        ext[k, by, bx] = max(e, v)
    else:
        ext[k, by, bx] = min(e, v)
    return False


@njit(nogil=True, cache=True)
def area_check(k, since, hist, cand, rh, rw, limit, integ, over):
    """Admit or reject signal k's candidates so that no field holds too many flashing blocks.

    Flashing = already FLAG_AT detections in the window, or a candidate about to get its
    FLAG_AT-th. With all candidates counted as flashing, every field rectangle (rh x rw
    blocks, block-aligned: it covers any pixel-aligned 10° field) holding more than
    `limit` is "over"; candidates inside any over rectangle are rejected, the rest admitted.
    Admitted blocks only lie in rectangles that stay within the limit, and a rectangle
    without admitted blocks gains no flashing block, so the limit holds after every frame.
    """
    nby = cand.shape[1]
    nbx = cand.shape[2]
    for bx in range(nbx + 1):
        integ[0, bx] = 0
    for by in range(nby):
        integ[by + 1, 0] = 0
        run = 0
        for bx in range(nbx):
            if hist[k, by, bx, FLAG_AT - 1] > since or cand[k, by, bx] == CAND:
                run += 1
            integ[by + 1, bx + 1] = integ[by, bx + 1] + run
    pny = nby - rh + 1
    pnx = nbx - rw + 1
    for px in range(pnx + 1):
        over[0, px] = 0
    for py in range(pny):
        over[py + 1, 0] = 0
        run = 0
        for px in range(pnx):
            s = (integ[py + rh, px + rw] - integ[py, px + rw]
                 - integ[py + rh, px] + integ[py, px])
            if s > limit:
                run += 1
            over[py + 1, px + 1] = over[py, px + 1] + run
    for by in range(nby):
        for bx in range(nbx):
            if cand[k, by, bx] != CAND:
                continue
            py0 = max(0, by - rh + 1)
            py1 = min(pny - 1, by)
            px0 = max(0, bx - rw + 1)
            px1 = min(pnx - 1, bx)
            n_over = (over[py1 + 1, px1 + 1] - over[py0, px1 + 1]
                      - over[py1 + 1, px0] + over[py0, px0])
            cand[k, by, bx] = REJECT if n_over > 0 else ADMIT


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
def encode(v, enc):
    """Linear value → the sRGB byte nearest in linear light (`enc` samples it finely)."""
    if v <= 0.0:
        return 0
    if v >= 1.0:
        return 255
    return enc[int(v * np.float32(ENC_SIZE - 1) + np.float32(0.5))]


@njit(nogil=True, cache=True, inline="always")
def _in_band(lum, dd, lo_l, hi_l, lo_d, hi_d):
    return lum >= lo_l and lum <= hi_l and dd >= lo_d and dd <= hi_d


@njit(nogil=True, cache=True, inline="always")
def _alpha(v_in, v_t, lo, hi):
    a = np.float32(0.0)
    if v_in < lo and v_t > v_in:
        a = (lo - v_in) / (v_t - v_in)
    elif v_in > hi and v_t < v_in:
        a = (v_in - hi) / (v_in - v_t)
    return a


@njit(nogil=True, cache=True, inline="always")
def plan_block(by, bx, cons, ext, dirs, rgb, prev, thr_l, thr_q, m_t, m_a, lut, enc):
    """Target colour and blend factor that keep the constrained signals of one block quiet.

    The output becomes (1 - alpha) * input + alpha * target, per pixel in linear light, so
    its block mean moves on a straight line from the input to the target, and both signals
    (linear in the mean colour inside a band) move monotonically: the smallest alpha that
    puts every constrained signal `m_a` inside its band is exact, and `m_a` exceeds the
    worst 8-bit rounding of the blend. The target is the previous output's mean colour,
    rounded to bytes (so alpha = 1 reproduces it exactly); if that lies outside the `m_a`
    band it is steered `m_t` inside (deeper than rounding can undo) along grey and red.
    Returns (alpha, ok, r, g, b); not ok means no byte colour was found inside the bands
    and the block is frozen at the last try.
    """
    lo_l = -INF
    hi_l = INF
    lo_d = -INF
    hi_d = INF
    alo_l = -INF
    ahi_l = INF
    alo_d = -INF
    ahi_d = INF
    if cons & 1:
        lo_l, hi_l = _bounds(ext[0, by, bx], dirs[0, by, bx], thr_l, m_t[0], L_CLAMP)
        alo_l, ahi_l = _bounds(ext[0, by, bx], dirs[0, by, bx], thr_l, m_a[0], L_CLAMP)
    if cons & 2:
        lo_q, hi_q = _bounds(ext[1, by, bx], dirs[1, by, bx], thr_q, m_t[1], INF)
        alo_q, ahi_q = _bounds(ext[1, by, bx], dirs[1, by, bx], thr_q, m_a[1], INF)
        # the red value is 320 * max(0, D): a bound on it is a bound on D = R - G - B
        if lo_q > 0.0:
            lo_d = lo_q / Q_SCALE
        if alo_q > 0.0:
            alo_d = alo_q / Q_SCALE
        hi_d = hi_q / Q_SCALE
        ahi_d = ahi_q / Q_SCALE
    tr = prev[0, by, bx]
    tg = prev[1, by, bx]
    tb = prev[2, by, bx]
    ok = False
    br = bg = bb = np.float32(0.0)
    for _ in range(4):
        qr = lut[encode(tr, enc)]
        qg = lut[encode(tg, enc)]
        qb = lut[encode(tb, enc)]
        lum = LR * qr + LG * qg + LB * qb
        dd = qr - qg - qb
        br = qr
        bg = qg
        bb = qb
        if _in_band(lum, dd, alo_l, ahi_l, alo_d, ahi_d):
            ok = True
            break
        # grey (1,1,1) moves L by 1 and D by -1, red (1,0,0) moves L by 0.2126 and D by 1:
        # solve for the two amounts that bring both signals inside
        want_l = min(max(lum, lo_l), hi_l) - lum
        want_d = min(max(dd, lo_d), hi_d) - dd
        c = (want_l + want_d) / np.float32(1.2126)
        a = c - want_d
        tr = min(np.float32(1.0), max(np.float32(0.0), qr + a + c))
        tg = min(np.float32(1.0), max(np.float32(0.0), qg + a))
        tb = min(np.float32(1.0), max(np.float32(0.0), qb + a))
    if not ok:
        return np.float32(1.0), False, br, bg, bb
    r = rgb[0, by, bx]
    g = rgb[1, by, bx]
    bl = rgb[2, by, bx]
    lum_t = LR * br + LG * bg + LB * bb
    d_t = br - bg - bb
    lum_in = LR * r + LG * g + LB * bl
    d_in = r - g - bl
    alpha = max(_alpha(lum_in, lum_t, alo_l, ahi_l), _alpha(d_in, d_t, alo_d, ahi_d))
    return min(np.float32(1.0), alpha), True, br, bg, bb


@njit(nogil=True, cache=True, parallel=True)
def settle(t, since, pend, pend_row, rgb, ext, dirs, hist, cand, thr_l, thr_q):
    """After the area check: commit blocks whose candidates were all admitted; mark the
    others LIMITED, with every signal that may not transition freely constrained.
    `pend_row[by]` becomes the number of limited blocks in the row."""
    nby = pend.shape[0]
    nbx = pend.shape[1]
    for by in prange(nby):
        if pend_row[by] == 0:
            continue
        n_lim = 0
        for bx in range(nbx):
            if pend[by, bx] == 0:
                continue
            c0 = cand[0, by, bx]
            c1 = cand[1, by, bx]
            cand[0, by, bx] = 0
            cand[1, by, bx] = 0
            if c0 != REJECT and c1 != REJECT:
                lc, q = signals(rgb[0, by, bx], rgb[1, by, bx], rgb[2, by, bx])
                commit(0, by, bx, lc, t, thr_l, ext, dirs, hist)
                commit(1, by, bx, q, t, thr_q, ext, dirs, hist)
                pend[by, bx] = 0
                continue
            cons = 0
            if c0 != ADMIT and count_recent(hist, 0, by, bx, since) == FLAG_AT - 1:
                cons |= 1
            if c1 != ADMIT and count_recent(hist, 1, by, bx, since) == FLAG_AT - 1:
                cons |= 2
            pend[by, bx] = LIMITED | cons
            n_lim += 1
        pend_row[by] = n_lim


@njit(nogil=True, cache=True, parallel=True)
def apply_limits(frame, lut, enc, b, t, pend, pend_row, rgb, prev, ext, dirs, hist, thr_l,
                 thr_q, m_t, m_a, plan, row_missed, row_crossed):
    """Plan and blend every LIMITED block in place, then feed its true output back to the
    detectors. `plan` (4, nby, nbx) is scratch for alpha and the target. Per row:
    `row_missed` counts blocks frozen without a fitting target, `row_crossed` constrained
    signals that still transitioned (both should stay 0)."""
    h, w = frame.shape
    nby = pend.shape[0]
    nbx = pend.shape[1]
    for by in prange(nby):
        row_missed[by] = 0
        row_crossed[by] = 0
        if pend_row[by] == 0:
            continue
        pend_row[by] = 0
        # plan_block is a pure function of these; neighbours in a flat flash share them
        k_cons = -1
        k_el = k_eq = k_r = k_g = k_b = k_pr = k_pg = k_pb = np.float32(0.0)
        k_dl = k_dq = np.int8(0)
        a = t_r = t_g = t_b = np.float32(0.0)
        ok = True
        for bx in range(nbx):
            cons = pend[by, bx] & 3
            if pend[by, bx] == 0:
                continue
            if not (cons == k_cons and ext[0, by, bx] == k_el and ext[1, by, bx] == k_eq
                    and dirs[0, by, bx] == k_dl and dirs[1, by, bx] == k_dq
                    and rgb[0, by, bx] == k_r and rgb[1, by, bx] == k_g and rgb[2, by, bx] == k_b
                    and prev[0, by, bx] == k_pr and prev[1, by, bx] == k_pg
                    and prev[2, by, bx] == k_pb):
                a, ok, t_r, t_g, t_b = plan_block(by, bx, cons, ext, dirs, rgb, prev, thr_l,
                                                  thr_q, m_t, m_a, lut, enc)
                k_cons = cons
                k_el = ext[0, by, bx]
                k_eq = ext[1, by, bx]
                k_dl = dirs[0, by, bx]
                k_dq = dirs[1, by, bx]
                k_r = rgb[0, by, bx]
                k_g = rgb[1, by, bx]
                k_b = rgb[2, by, bx]
                k_pr = prev[0, by, bx]
                k_pg = prev[1, by, bx]
                k_pb = prev[2, by, bx]
            if not ok:
                row_missed[by] += 1
            plan[0, by, bx] = a
            plan[1, by, bx] = a * t_r
            plan[2, by, bx] = a * t_g
            plan[3, by, bx] = a * t_b
        # blend pixel rows across the row of blocks, summing each block's output in row
        # order (as measure_track does) so the blocks' addition chains overlap
        y0 = by * b
        y1 = min(h, y0 + b)
        for y in range(y0, y1):
            # the last pixel blended and the plan it was blended with
            memo = False
            last_in = np.uint32(0)
            last_out = np.uint32(0)
            mo_a = mo_r = mo_g = mo_b = np.float32(0.0)
            lr = lg = lb = np.float32(0.0)
            for bx in range(nbx):
                if pend[by, bx] == 0:
                    continue
                a = plan[0, by, bx]
                keep = np.float32(1.0) - a
                tr = plan[1, by, bx]
                tg = plan[2, by, bx]
                tb = plan[3, by, bx]
                if memo and not (a == mo_a and tr == mo_r and tg == mo_g and tb == mo_b):
                    memo = False
                if y == y0:
                    sr = np.float32(0.0)
                    sg = np.float32(0.0)
                    sb = np.float32(0.0)
                else:
                    sr = rgb[0, by, bx]
                    sg = rgb[1, by, bx]
                    sb = rgb[2, by, bx]
                for x in range(bx * b, min(w, bx * b + b)):
                    p = frame[y, x]
                    if not memo or p != last_in:
                        # flat areas (most flashes) repeat a pixel: blend it once
                        er = encode(keep * lut[(p >> 16) & 255] + tr, enc)
                        eg = encode(keep * lut[(p >> 8) & 255] + tg, enc)
                        eb = encode(keep * lut[p & 255] + tb, enc)
                        last_in = p
                        last_out = (p & np.uint32(0xFF000000)) | np.uint32((int(er) << 16) | (int(eg) << 8) | int(eb))
                        lr = lut[er]
                        lg = lut[eg]
                        lb = lut[eb]
                        memo = True
                        mo_a = a
                        mo_r = tr
                        mo_g = tg
                        mo_b = tb
                    frame[y, x] = last_out
                    sr += lr
                    sg += lg
                    sb += lb
                rgb[0, by, bx] = sr
                rgb[1, by, bx] = sg
                rgb[2, by, bx] = sb
        for bx in range(nbx):
            pm = pend[by, bx]
            if pm == 0:
                continue
            pend[by, bx] = 0
            n = np.float32((y1 - y0) * (min(w, bx * b + b) - bx * b))
            r = rgb[0, by, bx] / n
            g = rgb[1, by, bx] / n
            bl = rgb[2, by, bx] / n
            rgb[0, by, bx] = r
            rgb[1, by, bx] = g
            rgb[2, by, bx] = bl
            lc, q = signals(r, g, bl)
            if commit(0, by, bx, lc, t, thr_l, ext, dirs, hist) and pm & 1:
                row_crossed[by] += 1
            if commit(1, by, bx, q, t, thr_q, ext, dirs, hist) and pm & 2:
                row_crossed[by] += 1
