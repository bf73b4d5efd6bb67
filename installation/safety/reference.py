"""Plain NumPy twins of the flash-guard kernels (`flash_kernels.py`): the test oracle.

Same signatures, same float32 arithmetic in the same order, so a guard built with
`FlashGuard(..., kernels=reference)` produces bit-identical frames. Slow; never used live.
"""
from __future__ import annotations

import numpy as np

from .flash_kernels import (ADMIT, CAND, ENC_SIZE, FLAG_AT, HIST, INF, L_CLAMP, LB, LG, LIMITED,
                            LR, Q_SCALE, REJECT)

F0 = np.float32(0.0)
F1 = np.float32(1.0)


def signals(r, g, b):
    lum = LR * r + LG * g + LB * b
    lc = np.minimum(lum, L_CLAMP)
    q = Q_SCALE * np.maximum(F0, r - g - b)
    return lc, q


def would_detect(ext, d, v, thr):
    return np.where(d > 0, ext - v >= thr, v - ext >= thr)


def block_sums(frame, lut, b, nby, nbx):
    """Per-block sums of linear R, G, B, added pixel by pixel in row order like the kernel."""
    h, w = frame.shape
    out = np.zeros((3, nby, nbx), np.float32)
    pad = np.zeros((3, nby * b, nbx * b), np.float32)
    for c, shift in enumerate((16, 8, 0)):
        pad[c, :h, :w] = lut[(frame >> np.uint32(shift)) & np.uint32(255)]
    for dy in range(b):
        for dx in range(b):
            out += pad[:, dy::b, dx::b]
    ys = np.minimum(h, np.arange(nby) * b + b) - np.arange(nby) * b
    xs = np.minimum(w, np.arange(nbx) * b + b) - np.arange(nbx) * b
    counts = (ys[:, None] * xs[None, :]).astype(np.float32)
    return out, counts


def measure_track(frame, lut, b, first, t, since, rgb, ext, dirs, hist, pend, pend_row, cand,
                  cand_row, thr_l, thr_q):
    nby, nbx = rgb.shape[1], rgb.shape[2]
    cand_row[:] = 0
    sums, counts = block_sums(frame, lut, b, nby, nbx)
    rgb[:] = sums * (F1 / counts)
    lc, q = signals(rgb[0], rgb[1], rgb[2])
    if first:
        ext[0] = lc
        ext[1] = q
        dirs[:] = 1
        pend_row[:] = 0
        return
    fl = would_detect(ext[0], dirs[0], lc, thr_l)
    fq = would_detect(ext[1], dirs[1], q, thr_q)
    pend[:] = fl.astype(np.uint8) | (fq.astype(np.uint8) << 1)   # all zero before: see kernel
    quiet = pend == 0
    for k, v in ((0, lc), (1, q)):
        grown = np.where(dirs[k] > 0, np.maximum(ext[k], v), np.minimum(ext[k], v))
        ext[k] = np.where(quiet, grown, ext[k])
    resolve(t, since, pend, rgb, ext, dirs, hist, cand, cand_row, thr_l, thr_q)
    pend_row[:] = (pend != 0).sum(axis=1)


def count_recent(hist, k, by, bx, since):
    c = 0
    for i in range(HIST):
        if hist[k, by, bx, i] > since:
            c += 1
        else:
            break
    return c


def commit(k, by, bx, v, t, thr, ext, dirs, hist):
    e = ext[k, by, bx]
    d = dirs[k, by, bx]
    if (e - v >= thr) if d > 0 else (v - e >= thr):
        hist[k, by, bx, 1:] = hist[k, by, bx, :-1].copy()
        hist[k, by, bx, 0] = t
        dirs[k, by, bx] = -d
        ext[k, by, bx] = v
        return True
    ext[k, by, bx] = max(e, v) if d > 0 else min(e, v)
    return False


def area_check(k, since, hist, cand, rh, rw, limit, integ, over):
    nby, nbx = cand.shape[1], cand.shape[2]
    flashing = (hist[k, :, :, FLAG_AT - 1] > since) | (cand[k] == CAND)
    integ[:] = 0
    integ[1:, 1:] = flashing.astype(np.int32).cumsum(0).cumsum(1)
    boxes = integ[rh:, rw:] - integ[:-rh, rw:] - integ[rh:, :-rw] + integ[:-rh, :-rw]
    pny, pnx = nby - rh + 1, nbx - rw + 1
    over[:] = 0
    over[1:, 1:] = (boxes > limit).astype(np.int32).cumsum(0).cumsum(1)
    for by, bx in zip(*np.nonzero(cand[k] == CAND)):
        py0, py1 = max(0, by - rh + 1), min(pny - 1, by)
        px0, px1 = max(0, bx - rw + 1), min(pnx - 1, bx)
        n_over = over[py1 + 1, px1 + 1] - over[py0, px1 + 1] - over[py1 + 1, px0] + over[py0, px0]
        cand[k, by, bx] = REJECT if n_over > 0 else ADMIT


def _bounds(e, d, thr, margin, top):
    lo, hi = -INF, INF
    if d > 0:
        lo = e - thr + margin
    else:
        hi = e + thr - margin
        if hi >= top:
            hi = INF
    return lo, hi


def encode(v, enc):
    """Array version of the kernel's encode."""
    v = np.asarray(v, np.float32)
    i = np.clip((v * np.float32(ENC_SIZE - 1) + np.float32(0.5)).astype(np.int64), 0, ENC_SIZE - 1)
    return np.where(v <= 0.0, 0, np.where(v >= 1.0, 255, enc[i].astype(np.int64)))


def _in_band(lum, dd, lo_l, hi_l, lo_d, hi_d):
    return lum >= lo_l and lum <= hi_l and dd >= lo_d and dd <= hi_d


def _alpha(v_in, v_t, lo, hi):
    a = F0
    if v_in < lo and v_t > v_in:
        a = (lo - v_in) / (v_t - v_in)
    elif v_in > hi and v_t < v_in:
        a = (v_in - hi) / (v_in - v_t)
    return a


def plan_block(by, bx, cons, ext, dirs, rgb, prev, thr_l, thr_q, m_t, m_a, lut, enc):
    lo_l, hi_l, lo_d, hi_d = -INF, INF, -INF, INF
    alo_l, ahi_l, alo_d, ahi_d = -INF, INF, -INF, INF
    if cons & 1:
        lo_l, hi_l = _bounds(ext[0, by, bx], dirs[0, by, bx], thr_l, m_t[0], L_CLAMP)
        alo_l, ahi_l = _bounds(ext[0, by, bx], dirs[0, by, bx], thr_l, m_a[0], L_CLAMP)
    if cons & 2:
        lo_q, hi_q = _bounds(ext[1, by, bx], dirs[1, by, bx], thr_q, m_t[1], INF)
        alo_q, ahi_q = _bounds(ext[1, by, bx], dirs[1, by, bx], thr_q, m_a[1], INF)
        if lo_q > 0.0:
            lo_d = lo_q / Q_SCALE
        if alo_q > 0.0:
            alo_d = alo_q / Q_SCALE
        hi_d = hi_q / Q_SCALE
        ahi_d = ahi_q / Q_SCALE
    tr, tg, tb = prev[0, by, bx], prev[1, by, bx], prev[2, by, bx]
    ok = False
    for _ in range(4):
        qr, qg, qb = (lut[int(encode(x, enc))] for x in (tr, tg, tb))
        lum = LR * qr + LG * qg + LB * qb
        dd = qr - qg - qb
        best = (qr, qg, qb)
        if _in_band(lum, dd, alo_l, ahi_l, alo_d, ahi_d):
            ok = True
            break
        want_l = min(max(lum, lo_l), hi_l) - lum
        want_d = min(max(dd, lo_d), hi_d) - dd
        c = (want_l + want_d) / np.float32(1.2126)
        a = c - want_d
        tr = min(F1, max(F0, qr + a + c))
        tg = min(F1, max(F0, qg + a))
        tb = min(F1, max(F0, qb + a))
    br, bg, bb = best
    if not ok:
        return F1, False, br, bg, bb
    r, g, bl = rgb[0, by, bx], rgb[1, by, bx], rgb[2, by, bx]
    lum_t = LR * br + LG * bg + LB * bb
    d_t = br - bg - bb
    lum_in = LR * r + LG * g + LB * bl
    d_in = r - g - bl
    alpha = max(_alpha(lum_in, lum_t, alo_l, ahi_l), _alpha(d_in, d_t, alo_d, ahi_d))
    return min(F1, alpha), True, br, bg, bb


def _commit_input(by, bx, rgb, t, thr_l, thr_q, ext, dirs, hist):
    lc, q = signals(rgb[0, by, bx], rgb[1, by, bx], rgb[2, by, bx])
    commit(0, by, bx, lc, t, thr_l, ext, dirs, hist)
    commit(1, by, bx, q, t, thr_q, ext, dirs, hist)


def resolve(t, since, pend, rgb, ext, dirs, hist, cand, cand_row, thr_l, thr_q):
    """Commit pending blocks whose transitions are allowed; mark the candidates."""
    for by, bx in zip(*np.nonzero(pend)):
        pm = int(pend[by, bx])
        has = False
        for k in range(2):
            if pm & (1 << k) and count_recent(hist, k, by, bx, since) == FLAG_AT - 1:
                cand[k, by, bx] = CAND
                cand_row[k, by] += 1
                has = True
        if not has:
            _commit_input(by, bx, rgb, t, thr_l, thr_q, ext, dirs, hist)
            pend[by, bx] = 0


def settle(t, since, pend, pend_row, rgb, ext, dirs, hist, cand, thr_l, thr_q):
    for by, bx in zip(*np.nonzero(pend)):
        c0, c1 = int(cand[0, by, bx]), int(cand[1, by, bx])
        cand[:, by, bx] = 0
        if c0 != REJECT and c1 != REJECT:
            _commit_input(by, bx, rgb, t, thr_l, thr_q, ext, dirs, hist)
            pend[by, bx] = 0
            continue
        cons = 0
        if c0 != ADMIT and count_recent(hist, 0, by, bx, since) == FLAG_AT - 1:
            cons |= 1
        if c1 != ADMIT and count_recent(hist, 1, by, bx, since) == FLAG_AT - 1:
            cons |= 2
        pend[by, bx] = LIMITED | cons
    pend_row[:] = (pend != 0).sum(axis=1)


def apply_limits(frame, lut, enc, b, t, pend, pend_row, rgb, prev, ext, dirs, hist, thr_l,
                 thr_q, m_t, m_a, plan, row_missed, row_crossed):
    h, w = frame.shape
    row_missed[:] = 0
    row_crossed[:] = 0
    for by, bx in zip(*np.nonzero(pend)):
        cons = int(pend[by, bx]) & 3
        pend[by, bx] = 0
        a, ok, t_r, t_g, t_b = plan_block(by, bx, cons, ext, dirs, rgb, prev, thr_l, thr_q,
                                          m_t, m_a, lut, enc)
        row_missed[by] += 0 if ok else 1
        keep = F1 - a
        tgt = (a * t_r, a * t_g, a * t_b)
        y0, x0 = by * b, bx * b
        tile = frame[y0:min(h, y0 + b), x0:min(w, x0 + b)]
        codes = []
        for c, shift in enumerate((16, 8, 0)):
            lin = lut[(tile >> np.uint32(shift)) & np.uint32(255)]
            codes.append(encode(keep * lin + tgt[c], enc).astype(np.uint32))
        tile[:] = (tile & np.uint32(0xFF000000)) | (codes[0] << 16) | (codes[1] << 8) | codes[2]
        sums = [F0, F0, F0]
        for y in range(tile.shape[0]):
            for x in range(tile.shape[1]):
                for c in range(3):
                    sums[c] = sums[c] + lut[codes[c][y, x]]
        n = np.float32(tile.size)
        r, g, bl = sums[0] / n, sums[1] / n, sums[2] / n
        rgb[:, by, bx] = (r, g, bl)
        lc, q = signals(r, g, bl)
        if commit(0, by, bx, lc, t, thr_l, ext, dirs, hist) and cons & 1:
            row_crossed[by] += 1
        if commit(1, by, bx, q, t, thr_q, ext, dirs, hist) and cons & 2:
            row_crossed[by] += 1
    pend_row[:] = 0
