"""Plain NumPy twins of the flash-guard kernels (`flash_kernels.py`): the test oracle.

Same signatures, same float32 arithmetic in the same order per value, so a guard built with
`FlashGuard(..., kernels=reference)` produces bit-identical frames and state. Vectorized
over regions where the kernels' order does not matter (regions of one level are independent
of each other); slow all the same, never used live. The kernels' own shortcuts
(`chunk_next`, the `fired` scratch of the vectorised sweep) are accepted and not used.
"""
from __future__ import annotations

import numpy as np

from .flash_kernels import (ADMIT, CAND, CAREFUL, ENC_SIZE, FLAG_AT, H_DROP, H_STAMP, HIST, INF,
                            L_CLAMP, LB, LG, LR, LV_BASE, LV_CBASE, LV_LIMIT, LV_NX, LV_NY,
                            LV_RH, LV_RW, LV_SIZE, LV_SPAN, NEVER, PENDING, Q_SCALE, REJECT)

H5 = FLAG_AT - 2      # the 5th and 6th newest detections in a history record
H6 = FLAG_AT - 1

F0 = np.float32(0.0)
F1 = np.float32(1.0)


# --- geometry of the regions ---------------------------------------------------------------
def level_slices(lv):
    return [(int(r[LV_BASE]), int(r[LV_NY]), int(r[LV_NX])) for r in lv]


def region_inv(lv, h, w):
    """1 / pixel count of every region, computed as the kernels do (per row: whole / last)."""
    out = []
    for r in lv:
        ny, nx, s = int(r[LV_NY]), int(r[LV_NX]), int(r[LV_SIZE])
        full = w // s
        inv = np.empty((ny, nx), np.float32)
        for y in range(ny):
            rows = min(h, (y + 1) * s) - y * s
            inv[y, :] = F1 / np.float32(rows * s)
            if full < nx:
                inv[y, full:] = F1 / np.float32(rows * (w - full * s))
        out.append(inv.ravel())
    return np.concatenate(out)


def region_tiles(lv):
    """(ty, tx) of the tile holding every region, and its level."""
    top = len(lv) - 1
    ty, tx, lev = [], [], []
    for l, (base, ny, nx) in enumerate(level_slices(lv)):
        yy, xx = np.mgrid[0:ny, 0:nx]
        ty.append((yy >> (top - l)).ravel())
        tx.append((xx >> (top - l)).ravel())
        lev.append(np.full(ny * nx, l))
    return np.concatenate(ty), np.concatenate(tx), np.concatenate(lev)


def region_chunks(lv):
    """The `chunk_risk` entry of every region, and its bit in `chunk_mask`."""
    top = len(lv) - 1
    ntx = int(lv[top, LV_NX])
    out, bits = [], []
    for l, (base, ny, nx) in enumerate(level_slices(lv)):
        yy, xx = np.mgrid[0:ny, 0:nx]
        out.append((int(lv[l, LV_CBASE]) + yy * ntx + (xx >> (top - l))).ravel())
        bits.append((xx - ((xx >> (top - l)) << (top - l))).ravel())
    return np.concatenate(out), np.concatenate(bits)


def in_tiles(lv, tiles_mask):
    """Regions whose tile is set in `tiles_mask` (nty, ntx)."""
    ty, tx, _ = region_tiles(lv)
    return tiles_mask[ty, tx]


# --- measuring -----------------------------------------------------------------------------
def block_sums(frame, lut, b, ny, nx):
    """Per-block sums of linear R, G, B (ny * nx, 3), pixel by pixel in row order from zero."""
    h, w = frame.shape
    pad = np.zeros((3, ny * b, nx * b), np.float32)
    for c, shift in enumerate((16, 8, 0)):
        pad[c, :h, :w] = lut[(frame >> np.uint32(shift)) & np.uint32(255)]
    out = np.zeros((3, ny, nx), np.float32)
    for dy in range(b):
        for dx in range(b):
            out += pad[:, dy::b, dx::b]
    return out.reshape(3, -1).T


def pool(lv, l, arr, flags=None):
    """Level l's values from level l - 1's: children added TL, TR, BL, BR (absent ones are
    zeros: adding 0 changes no sum); flags ORed."""
    (cb, cny, cnx), (base, ny, nx) = level_slices(lv)[l - 1], level_slices(lv)[l]
    child = np.zeros((2 * ny, 2 * nx, 3), np.float32)
    child[:cny, :cnx] = arr[cb:cb + cny * cnx].reshape(cny, cnx, 3)
    s = child[0::2, 0::2] + child[0::2, 1::2]
    s = s + child[1::2, 0::2]
    s = s + child[1::2, 1::2]
    arr[base:base + ny * nx] = s.reshape(-1, 3)
    if flags is not None:
        f = np.zeros((2 * ny, 2 * nx), np.uint8)
        f[:cny, :cnx] = flags[cb:cb + cny * cnx].reshape(cny, cnx)
        flags[base:base + ny * nx] = (f[0::2, 0::2] | f[0::2, 1::2] | f[1::2, 0::2]
                                      | f[1::2, 1::2]).ravel()


def measure(frame, lut, lv, sums):
    base, ny, nx = level_slices(lv)[0]
    sums[base:base + ny * nx] = block_sums(frame, lut, int(lv[0, LV_SIZE]), ny, nx)
    for l in range(1, len(lv)):
        pool(lv, l, sums)


def signals(r, g, b):
    lum = LR * r + LG * g + LB * b
    lc = np.minimum(lum, L_CLAMP)
    q = Q_SCALE * np.maximum(F0, r - g - b)
    return lc, q


def region_signals(arr, inv, idx):
    m = arr[idx] * inv[idx, None]
    return signals(m[:, 0], m[:, 1], m[:, 2])


# --- detectors -----------------------------------------------------------------------------
def at_five(hist, idx, k, since):
    return (hist[idx, k, H5] > since) & (hist[idx, k, H6] <= since)


def record(r, k, t, hist):
    """Detections of signal k at frame t in regions r (the value and direction: callers)."""
    hist[r, k, 1:HIST] = hist[r, k, :HIST - 1].copy()
    hist[r, k, 0] = t


def keep(frame, prev_px, lv, idx, hist, since_next):
    """Copy the output pixels of every chunk (of the regions `idx`) with a region at risk
    next frame: the chunk's whole rectangle, as the kernels do."""
    h, w = frame.shape
    top = len(lv) - 1
    risky = idx[(hist[idx, 0, H5] > since_next) | (hist[idx, 1, H5] > since_next)]
    done = set()
    for i in risky:
        for l, (base, ny, nx) in enumerate(level_slices(lv)):
            if base <= i < base + ny * nx:
                y, x = divmod(int(i) - base, nx)
                sh = top - l
                x0 = (x >> sh) << sh
                if (l, y, x0) in done:
                    break
                done.add((l, y, x0))
                s = int(lv[l, LV_SIZE])
                x1 = min(nx, x0 + (1 << sh))
                prev_px[y * s:min(h, y * s + s), x0 * s:min(w, x1 * s)] = \
                    frame[y * s:min(h, y * s + s), x0 * s:min(w, x1 * s)]
                break


def track(lv, first, t, since, values, thrs, idx, ext, dirs, hist, chunk_risk, chunk_mask,
          cons=None, skip=None, backup=None):
    """Feed regions `idx` (whole chunks) their values, except signals flagged in `skip`;
    returns crossings of `cons`-flagged signals. `backup` (the frame's stamp) records
    what each detection drops from the history, for `settle` to undo."""
    chunk, bit = region_chunks(lv)
    crossed = 0
    for k, (v, thr) in enumerate(zip(values, thrs)):
        if first:
            ext[idx, k] = v
            dirs[idx, k] = 1
            continue
        e = ext[idx, k]
        sgn = dirs[idx, k].astype(np.float32)
        det = (e - v) * sgn >= thr
        grow = ~det
        if skip is not None:
            det &= ~skip[:, k]
        r = idx[det]
        if backup is not None:
            hist[r, k, H_DROP] = hist[r, k, HIST - 1]
            hist[r, k, H_STAMP] = backup
        record(r, k, t, hist)
        dirs[r, k] = -dirs[r, k]
        ext[r, k] = v[det]
        q = idx[grow]
        ext[q, k] = np.where((v[grow] - e[grow]) * sgn[grow] > 0, v[grow], e[grow])
        if cons is not None:
            crossed += int(((cons[r] >> k) & 1).sum())
    if cons is not None:
        cons[idx] = 0
    # every region with 5 detections in the window is flagged in its chunk (the kernels
    # look only at regions that were flagged or just detected: the same set)
    chunks = np.unique(chunk[idx])
    chunk_mask[chunks] = 0
    chunk_risk[chunks] = NEVER
    r5 = np.maximum(hist[idx, 0, H5], hist[idx, 1, H5]).astype(np.int64)
    hot = r5 > since
    np.bitwise_or.at(chunk_mask, chunk[idx[hot]], (1 << bit[idx[hot]]).astype(np.uint8))
    np.maximum.at(chunk_risk, chunk[idx[hot]], r5[hot])
    return crossed


def mark_fmap(fmap, hist, cand, idx, since):
    for k in (0, 1):
        fmap[k, idx] = (hist[idx, k, H6] > since) | (cand[idx, k] == CAND)


def measure_track(frame, keep_px, lut, lv, first, t, since, stamp, sums, ext_old, ext, dirs,
                  hist, chunk_risk, chunk_mask, chunk_next, tiles, cand, cons, ncand, fmap, fired,
                  thr_l, thr_q):
    h, w = frame.shape
    measure(frame, lut, lv, sums)
    ncand[:] = 0
    tiles[:] = 0
    ext[:] = ext_old
    inv = region_inv(lv, h, w)
    ty, tx, lev = region_tiles(lv)
    allr = np.arange(len(inv))
    values = region_signals(sums, inv, allr)
    skip = np.zeros((len(allr), 2), bool)
    if not first:
        for k, (v, thr) in enumerate(zip(values, (thr_l, thr_q))):
            c = at_five(hist, allr, k, since) & (
                (ext[:, k] - v) * dirs[:, k].astype(np.float32) >= thr)
            r = allr[c]
            cand[r, k] = CAND
            skip[r, k] = True
            np.add.at(ncand, (ty[r], lev[r], k), 1)
            tiles[ty[r], tx[r]] = PENDING
    track(lv, first, t, since, values, (thr_l, thr_q), allr, ext, dirs, hist, chunk_risk,
          chunk_mask, skip=skip, backup=stamp)
    keep(frame, keep_px, lv, allr, hist, since + 1)
    if not first:
        mark_fmap(fmap, hist, cand, allr, since)


def area_check(k, fmap, cand, rh, rw, limit, integ, over, tiles, shift, rejected):
    ny, nx = cand.shape[0], cand.shape[1]
    flashing = fmap != 0
    integ[:] = 0
    integ[1:, 1:] = flashing.astype(np.int32).cumsum(0).cumsum(1)
    boxes = integ[rh:, rw:] - integ[:-rh, rw:] - integ[rh:, :-rw] + integ[:-rh, :-rw]
    pny, pnx = ny - rh + 1, nx - rw + 1
    over[:] = 0
    over[1:, 1:] = (boxes > limit).astype(np.int32).cumsum(0).cumsum(1)
    for y, x in zip(*np.nonzero(cand[:, :, k] == CAND)):
        py0, py1 = max(0, y - rh + 1), min(pny - 1, y)
        px0, px1 = max(0, x - rw + 1), min(pnx - 1, x)
        n_over = over[py1 + 1, px1 + 1] - over[py0, px1 + 1] - over[py1 + 1, px0] + over[py0, px0]
        if n_over > 0:
            cand[y, x, k] = REJECT
            tiles[y >> shift, x >> shift] = CAREFUL
        else:
            cand[y, x, k] = ADMIT


def level_check(l, k, lv, fmap, cand, integ, over, tiles, rejected):
    base, ny, nx = (int(lv[l, c]) for c in (LV_BASE, LV_NY, LV_NX))
    rh, rw = int(lv[l, LV_RH]), int(lv[l, LV_RW])
    area_check(k, fmap[k, base:base + ny * nx].reshape(ny, nx),
               cand[base:base + ny * nx].reshape(ny, nx, 2), rh, rw, int(lv[l, LV_LIMIT]),
               np.zeros((ny + 1, nx + 1), np.int32), np.zeros((ny - rh + 2, nx - rw + 2), np.int32),
               tiles, len(lv) - 1 - l, rejected)


def check_candidates(lv, ncand, fmap, cand, integ, over, tiles, rejected):
    for l in range(len(lv)):
        for k in (0, 1):
            if ncand[:, l, k].any():
                level_check(l, k, lv, fmap, cand, integ, over, tiles, rejected)


def settle(frame, keep_px, lv, t, since, stamp, sums, ext_old, ext, dirs, hist, chunk_risk,
           chunk_mask, tiles, cand, careful, thr_l, thr_q):
    h, w = frame.shape
    chunk, _ = region_chunks(lv)
    undo = np.nonzero(in_tiles(lv, tiles == CAREFUL))[0]
    ext[undo] = ext_old[undo]
    for k in (0, 1):
        r = undo[hist[undo, k, H_STAMP] == stamp]
        hist[r, k, :HIST - 1] = hist[r, k, 1:HIST].copy()
        hist[r, k, HIST - 1] = hist[r, k, H_DROP]
        dirs[r, k] = -dirs[r, k]
    settled = np.nonzero(in_tiles(lv, tiles == PENDING))[0]
    inv = region_inv(lv, h, w)
    values = region_signals(sums, inv, settled)
    for k in (0, 1):
        sel = cand[settled, k] == ADMIT
        r = settled[sel]
        record(r, k, t, hist)
        dirs[r, k] = -dirs[r, k]
        ext[r, k] = values[k][sel]
        np.maximum.at(chunk_risk, chunk[r], hist[r, k, H5].astype(np.int64))
    keep(frame, keep_px, lv, settled, hist, since + 1)
    cand[in_tiles(lv, tiles != 0)] = 0
    tiles[tiles == PENDING] = 0
    listed = np.argwhere(tiles == CAREFUL)
    careful[:len(listed)] = listed
    return len(listed)


def _listed(lv, careful, m, l=None):
    mask = np.zeros((int(lv[-1, LV_NY]), int(lv[-1, LV_NX])), bool)
    mask[careful[:m, 0], careful[:m, 1]] = True
    sel = in_tiles(lv, mask)
    if l is not None:
        sel &= region_tiles(lv)[2] == l
    return np.nonzero(sel)[0]


def _tile_number(lv, careful, m):
    num = np.full((int(lv[-1, LV_NY]), int(lv[-1, LV_NX])), -1)
    num[careful[:m, 0], careful[:m, 1]] = np.arange(m)
    ty, tx, _ = region_tiles(lv)
    return num[ty, tx]


def _composite(l, lv, idx, sums, psums, comp, kf, mixed, fresh):
    """Level l's composite over regions `idx` (level 0: from kf, or the input when fresh)."""
    if l == 0:
        if fresh:
            comp[idx] = sums[idx]
            mixed[idx] = 0
            kf[idx] = F1
        else:
            a = kf[idx]
            rest = F1 - a
            blend = a[:, None] * sums[idx] + rest[:, None] * psums[idx]
            comp[idx] = np.where((a >= F1)[:, None], sums[idx],
                                 np.where((a <= F0)[:, None], psums[idx], blend))
            mixed[idx] = ((a > F0) & (a < F1)).astype(np.uint8)
    else:
        tmp_c, tmp_f = comp.copy(), mixed.copy()
        pool(lv, l, tmp_c, tmp_f)
        comp[idx] = tmp_c[idx]
        mixed[idx] = tmp_f[idx]


def classify(l, lv, h, w, since, careful, m, sums, comp, kf, mixed, ext, dirs, hist, five,
             cand, ncand, fmap, thr_l, thr_q):
    idx = _listed(lv, careful, m, l)
    _composite(l, lv, idx, sums, None, comp, kf, mixed, fresh=True)
    inv = region_inv(lv, h, w)
    num = _tile_number(lv, careful, m)
    ncand[:m] = 0
    f = np.zeros(len(idx), np.uint8)
    for k, (v, thr) in enumerate(zip(region_signals(comp, inv, idx), (thr_l, thr_q))):
        a5 = at_five(hist, idx, k, since)
        f |= (a5.astype(np.uint8) << k)
        e, d = ext[idx, k], dirs[idx, k]
        det = np.where(d > 0, e - v >= thr, v - e >= thr)
        c = idx[a5 & det]
        cand[c, k] = CAND
        np.add.at(ncand, (num[c], k), 1)
    five[idx] = f
    mark_fmap(fmap, hist, cand, idx, since)


def _bounds(e, d, thr, margin, top):
    lo, hi = -INF, INF
    if d > 0:
        lo = e - thr + margin
    else:
        hi = e + thr - margin
        if hi >= top:
            hi = INF
    return lo, hi


def band_of(i, cons, ext, dirs, thr_l, thr_q, m):
    lo_l, hi_l, lo_d, hi_d = -INF, INF, -INF, INF
    if cons & 1:
        lo_l, hi_l = _bounds(ext[i, 0], dirs[i, 0], thr_l, m[0], L_CLAMP)
    if cons & 2:
        lo_q, hi_q = _bounds(ext[i, 1], dirs[i, 1], thr_q, m[1], INF)
        if lo_q > 0.0:
            lo_d = lo_q / Q_SCALE
        hi_d = hi_q / Q_SCALE
    return lo_l, hi_l, lo_d, hi_d


def _in_band(lum, dd, lo_l, hi_l, lo_d, hi_d):
    return lum >= lo_l and lum <= hi_l and dd >= lo_d and dd <= hi_d


def _alpha(v_in, v_t, lo, hi):
    a = F0
    if v_in < lo and v_t > v_in:
        a = (lo - v_in) / (v_t - v_in)
    elif v_in > hi and v_t < v_in:
        a = (v_in - hi) / (v_in - v_t)
    return a


def _detects(e, d, v, thr):
    return (e - v >= thr) if d > 0 else (v - e >= thr)


def passes(i, cons, is_mixed, comp, inv, ext, dirs, thr_l, thr_q, m):
    r, g, bl = comp[i, 0] * inv, comp[i, 1] * inv, comp[i, 2] * inv
    if not is_mixed:
        lum = LR * r + LG * g + LB * bl
        lc = min(lum, L_CLAMP)
        q = Q_SCALE * max(F0, r - g - bl)
        if cons & 1 and _detects(ext[i, 0], dirs[i, 0], lc, thr_l):
            return False
        if cons & 2 and _detects(ext[i, 1], dirs[i, 1], q, thr_q):
            return False
        return True
    lo_l, hi_l, lo_d, hi_d = band_of(i, cons, ext, dirs, thr_l, thr_q, m)
    return _in_band(LR * r + LG * g + LB * bl, r - g - bl, lo_l, hi_l, lo_d, hi_d)


def hold_factor(i, cons, is_mixed, comp, psums, inv, ext, dirs, thr_l, thr_q, m_chk, m_aim):
    if passes(i, cons, is_mixed, comp, inv, ext, dirs, thr_l, thr_q, m_chk):
        return F0
    lo_l, hi_l, lo_d, hi_d = band_of(i, cons, ext, dirs, thr_l, thr_q, m_aim)
    pr, pg, pb = psums[i, 0] * inv, psums[i, 1] * inv, psums[i, 2] * inv
    lum_p = LR * pr + LG * pg + LB * pb
    d_p = pr - pg - pb
    if not _in_band(lum_p, d_p, lo_l, hi_l, lo_d, hi_d):
        return F1
    r, g, bl = comp[i, 0] * inv, comp[i, 1] * inv, comp[i, 2] * inv
    beta = max(_alpha(LR * r + LG * g + LB * bl, lum_p, lo_l, hi_l),
               _alpha(r - g - bl, d_p, lo_d, hi_d))
    return min(F1, beta)


def _blocks_under(lv, l, i):
    base, ny, nx = level_slices(lv)[l]
    y, x = divmod(i - base, nx)
    span = int(lv[l, LV_SPAN])
    ny0, nx0 = int(lv[0, LV_NY]), int(lv[0, LV_NX])
    yy, xx = np.mgrid[y * span:min(ny0, y * span + span), x * span:min(nx0, x * span + span)]
    return (yy * nx0 + xx).ravel()


def hold(l, lv, h, w, careful, m, comp, psums, kf, mixed, ext, dirs, five, cand, cons, held,
         thr_l, thr_q, m_chk, m_aim):
    inv = region_inv(lv, h, w)
    num = _tile_number(lv, careful, m)
    held[:m] = 0
    for i in _listed(lv, careful, m, l):
        f = int(five[i])
        if f == 0:
            continue
        c = 0
        if f & 1 and cand[i, 0] != ADMIT:
            c |= 1
        if f & 2 and cand[i, 1] != ADMIT:
            c |= 2
        five[i] = 0
        cand[i] = 0
        cons[i] = c
        if c == 0:
            continue
        beta = hold_factor(i, c, mixed[i] != 0, comp, psums, inv[i], ext, dirs, thr_l, thr_q,
                           m_chk, m_aim)
        if beta <= F0:
            continue
        held[num[i]] += 1
        keep = F1 - beta
        blocks = _blocks_under(lv, l, i)
        kf[blocks] = kf[blocks] * keep
        if beta >= F1:
            comp[i] = psums[i]
            mixed[i] = 0
        else:
            comp[i] = keep * comp[i] + beta * psums[i]
            mixed[i] = 1


def verify(l, lv, h, w, careful, m, sums, psums, comp, kf, mixed, ext, dirs, cons, frozen,
           thr_l, thr_q, m_chk):
    idx = _listed(lv, careful, m, l)
    _composite(l, lv, idx, sums, psums, comp, kf, mixed, fresh=False)
    inv = region_inv(lv, h, w)
    num = _tile_number(lv, careful, m)
    frozen[:m] = 0
    for i in idx[cons[idx] != 0]:
        if passes(i, int(cons[i]), mixed[i] != 0, comp, inv[i], ext, dirs, thr_l, thr_q, m_chk):
            continue
        frozen[num[i]] += 1
        kf[_blocks_under(lv, l, i)] = F0
        comp[i] = psums[i]
        mixed[i] = 0


def encode(v, enc):
    """Array version of the kernel's encode."""
    v = np.asarray(v, np.float32)
    i = np.clip((v * np.float32(ENC_SIZE - 1) + np.float32(0.5)).astype(np.int64), 0, ENC_SIZE - 1)
    return np.where(v <= 0.0, 0, np.where(v >= 1.0, 255, enc[i].astype(np.int64)))


def blend_tile(frame, prev_px, lut, enc, lv, ty, tx, kf):
    h, w = frame.shape
    b = int(lv[0, LV_SIZE])
    nx0 = int(lv[0, LV_NX])
    span = 1 << (len(lv) - 1)
    n = 0
    for by in range(ty * span, min(int(lv[0, LV_NY]), ty * span + span)):
        for bx in range(tx * span, min(nx0, tx * span + span)):
            a = kf[by * nx0 + bx]
            if a >= F1:
                continue
            n += 1
            tile = frame[by * b:min(h, by * b + b), bx * b:min(w, bx * b + b)]
            prev = prev_px[by * b:min(h, by * b + b), bx * b:min(w, bx * b + b)]
            alpha = tile & np.uint32(0xFF000000)
            if a <= F0:
                tile[:] = alpha | (prev & np.uint32(0x00FFFFFF))
                continue
            rest = F1 - a
            codes = []
            for shift in (16, 8, 0):
                lin = lut[(tile >> np.uint32(shift)) & np.uint32(255)]
                plin = lut[(prev >> np.uint32(shift)) & np.uint32(255)]
                codes.append(encode(a * lin + rest * plin, enc).astype(np.uint32))
            tile[:] = alpha | (codes[0] << np.uint32(16)) | (codes[1] << np.uint32(8)) | codes[2]
    return n


def prev_sums(prev_px, lut, lv, careful, m, psums, scratch):
    idx = _listed(lv, careful, m)
    fresh = psums.copy()
    measure(prev_px, lut, lv, fresh)
    psums[idx] = fresh[idx]


def finish(frame, prev_px, keep_px, lut, enc, lv, t, since, careful, m, kf, sums, ext, dirs,
           hist, chunk_risk, chunk_mask, chunk_next, cons, cand, ncand, fmap, tiles, changed,
           crossed, thr_l, thr_q):
    h, w = frame.shape
    inv = region_inv(lv, h, w)
    for n in range(m):
        ty, tx = int(careful[n, 0]), int(careful[n, 1])
        changed[n] = blend_tile(frame, prev_px, lut, enc, lv, ty, tx, kf)
        idx = _listed(lv, careful[n:n + 1], 1)
        if changed[n] > 0:
            fresh = sums.copy()
            measure(frame, lut, lv, fresh)
            sums[idx] = fresh[idx]
        crossed[n] = track(lv, False, t, since, region_signals(sums, inv, idx), (thr_l, thr_q),
                           idx, ext, dirs, hist, chunk_risk, chunk_mask, cons)
        keep(frame, keep_px, lv, idx, hist, since + 1)
        mark_fmap(fmap, hist, cand, idx, since)
        tiles[ty, tx] = 0
