"""Numba kernels of the flash guard. Plain NumPy twins live in `reference.py`.

Regions. The frame is cut into square blocks of `b` pixels (0.1° of visual angle: finer
patterns are exempt under WCAG 2.3.1): the regions of level 0. Level l + 1 pools the regions
of level l 2 x 2, so a region of level l is a square of b * 2**l pixels on the grid that
starts at the top-left pixel (edge regions keep the pixels they have). `lv` describes the
levels, one row each (columns LV_*). A tile is one region of the top level with every region
under it: tiles share no pixel and no region, so each is limited on its own.

Signals. Every region of every level follows two signals of the *output*, from its mean
linear colour:

* general: relative luminance clamped at 0.9. Clamping turns WCAG's "the darker state is
  below 0.8" into a plain amplitude test: a change of >= 0.1 whose darker end is < 0.8 is
  a change of >= 0.1 after the clamp, and a change between two states >= 0.8 is not.
* red: 320 * max(0, R - G - B) (the saturation condition is ignored here, which only makes
  the guard count more, never less).

Each signal runs a zig-zag transition detector (state: running extreme `ext`, direction
`dir`), and each detection's frame index goes into a short history (6 newest, newest
first). With it, in the same 32-byte record (a region's two signals fill one cache line, all
a detection touches), what the frame's detection dropped from the history and the frame's
stamp: enough to undo the frame (H_* below).

Chunks. A chunk is the part of one row of regions inside one tile (8 regions at level 0, 1
at the top level). After a frame, `chunk_mask` has a bit for every region of the chunk with
5 or more detections in the window, and `chunk_risk` is the latest 5th-newest detection
among them (NEVER if none), and `chunk_next` the first frame at which one of them changes
state without a new detection (a detection leaving the window). The passes that look for
such regions (candidates, pixels to keep, flashing regions) visit only the flagged regions,
and the detector pass only those of chunks whose `chunk_next` has come: usually a small
part of the image. Before it, one branch-free sweep over each row (`sweep_row`, which LLVM
vectorises) moves every detector's extreme and marks the regions that fire; only chunks
with a mark (or a flagged region whose state changes) are visited one region at a time, and
the history records of the marked regions are prefetched first.

Layout. Per-region arrays are flat over all levels, level 0 first: region (Y, X) of level l
is row `lv[l, LV_BASE] + Y * nx + X` of `sums` (n, 3: linear R, G, B summed over its
pixels), `ext` (n, 2), `dirs` (n, 2) and `hist` (n, 2, H_LEN). A level-0 row is also the
block's index in per-block arrays such as `kf`. Chunk (Y, tx) of level l is entry
`lv[l, LV_CBASE] + Y * ntx + tx` of `chunk_risk` and `chunk_mask` (ntx: tiles across); bit
X - (tx << (top - l)) of the mask is region (Y, X).

Parallel work goes by bands (rows of tiles) or by lists of tiles; each region sums its
pixels and children in a fixed order, so nothing depends on the thread count. The twin
repeats that arithmetic operation for operation and gives bit-identical results; no fastmath.
"""
from __future__ import annotations

import numpy as np
from numba import njit, prange

from ..prefetch import prefetch

LR = np.float32(0.2126)
LG = np.float32(0.7152)
LB = np.float32(0.0722)
L_CLAMP = np.float32(0.9)
Q_SCALE = np.float32(320.0)
HIST = 6                 # detections remembered per region and signal
FLAG_AT = 6              # a region with this many detections in the window counts as flashing
H_STAMP = HIST           # in a history record, after the detections: the stamp of the last
H_DROP = HIST + 1        # frame that detected, and the detection that frame dropped
H_LEN = HIST + 2
NEVER = -(1 << 30)       # "no detection" in the history
LATER = 1 << 62          # `chunk_next` of a chunk with nothing flagged
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
LV_CBASE = 8             # first entry of the level in `chunk_risk`
LV_COLS = 9

# codes in the candidate map
CAND = 1
ADMIT = 2
REJECT = 3
# codes in the tile map
PENDING = 1              # measured; some region is about to complete its FLAG_AT-th transition
CAREFUL = 2              # ... and the area check refused one: the tile goes through the limiter
ENC_SIZE = 65536         # entries of the linear → sRGB byte table


@njit(nogil=True, cache=True, inline="always")
def signals(r, g, b):
    """Clamped luminance and red value of one linear colour (float32 in, float32 out)."""
    lum = LR * r + LG * g + LB * b
    lc = lum if lum < L_CLAMP else L_CLAMP     # selects, not min/max: these vectorise
    d = r - g - b
    q = Q_SCALE * (d if d > F0 else F0)
    return lc, q


@njit(nogil=True, cache=True, inline="always")
def would_detect(ext, d, v, thr):
    if d > 0:
        return ext - v >= thr
    return v - ext >= thr


@njit(nogil=True, cache=True)
def _px(p, lut, sr, sg, sb):
    """Add one pixel's linear R, G, B to running sums."""
    return sr + lut[(p >> 16) & 255], sg + lut[(p >> 8) & 255], sb + lut[p & 255]


@njit(nogil=True, cache=True)
def _put(sums, i, s):
    sums[i, 0] = s[0]
    sums[i, 1] = s[1]
    sums[i, 2] = s[2]


@njit(nogil=True, cache=True)
def sum_blocks(frame, lut, b, by, bx0, bx1, sums, i0):
    """Sums of linear R, G, B of level-0 blocks bx0..bx1-1 of block row `by`, into
    sums[i0 + bx]. Each block adds its pixels row by row, left to right, from zero. The
    usual block sizes get unrolled loops: short variable-length loops would cost more than
    the pixels."""
    h, w = frame.shape
    y0 = by * b
    y1 = min(h, y0 + b)
    full = min(bx1, w // b)
    start = bx0
    if b == 1:
        r0 = frame[y0]
        for bx in range(bx0, bx1):
            _put(sums, i0 + bx, _px(r0[bx], lut, F0, F0, F0))
        return
    if y1 - y0 == b and b == 2:
        r0 = frame[y0]
        r1 = frame[y0 + 1]
        for bx in range(bx0, full):
            x = 2 * bx
            s = _px(r0[x], lut, F0, F0, F0)
            s = _px(r0[x + 1], lut, s[0], s[1], s[2])
            s = _px(r1[x], lut, s[0], s[1], s[2])
            _put(sums, i0 + bx, _px(r1[x + 1], lut, s[0], s[1], s[2]))
        start = max(bx0, full)
    elif y1 - y0 == b and b == 3:
        r0 = frame[y0]
        r1 = frame[y0 + 1]
        r2 = frame[y0 + 2]
        for bx in range(bx0, full):
            x = 3 * bx
            s = _px(r0[x], lut, F0, F0, F0)
            s = _px(r0[x + 1], lut, s[0], s[1], s[2])
            s = _px(r0[x + 2], lut, s[0], s[1], s[2])
            s = _px(r1[x], lut, s[0], s[1], s[2])
            s = _px(r1[x + 1], lut, s[0], s[1], s[2])
            s = _px(r1[x + 2], lut, s[0], s[1], s[2])
            s = _px(r2[x], lut, s[0], s[1], s[2])
            s = _px(r2[x + 1], lut, s[0], s[1], s[2])
            _put(sums, i0 + bx, _px(r2[x + 2], lut, s[0], s[1], s[2]))
        start = max(bx0, full)
    elif y1 - y0 == b and b == 4:
        for bx in range(bx0, full):
            x = 4 * bx
            s = (F0, F0, F0)
            for y in range(y0, y1):
                r = frame[y]
                s = _px(r[x], lut, s[0], s[1], s[2])
                s = _px(r[x + 1], lut, s[0], s[1], s[2])
                s = _px(r[x + 2], lut, s[0], s[1], s[2])
                s = _px(r[x + 3], lut, s[0], s[1], s[2])
            _put(sums, i0 + bx, s)
        start = max(bx0, full)
    for bx in range(start, bx1):
        s = (F0, F0, F0)
        for y in range(y0, y1):
            r = frame[y]
            for x in range(bx * b, min(w, bx * b + b)):
                s = _px(r[x], lut, s[0], s[1], s[2])
        _put(sums, i0 + bx, s)


@njit(nogil=True, cache=True)
def pool_row(lv, l, Y, X0, X1, sums, flags, use_flags):
    """Regions X0..X1-1 of row Y of level l >= 1 from their children: their sums, added
    top-left, top-right, bottom-left, bottom-right, and with `use_flags` their flags ORed."""
    cb = lv[l - 1, LV_BASE]
    cny = lv[l - 1, LV_NY]
    cnx = lv[l - 1, LV_NX]
    two_rows = 2 * Y + 1 < cny
    i0 = lv[l, LV_BASE] + Y * lv[l, LV_NX]
    for X in range(X0, X1):
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
        sums[i0 + X, 0] = sr
        sums[i0 + X, 1] = sg
        sums[i0 + X, 2] = sb
        if use_flags:
            flags[i0 + X] = f


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


@njit(nogil=True, cache=True)
def tile_span(lv, l, ty, tx):
    """Rows Y0..Y1-1 and columns X0..X1-1 of level l inside tile (ty, tx)."""
    sh = lv.shape[0] - 1 - l
    return (ty << sh, min(lv[l, LV_NY], (ty + 1) << sh),
            tx << sh, min(lv[l, LV_NX], (tx + 1) << sh))


@njit(nogil=True, cache=True)
def at_five(hist, i, k, since):
    """Signal k of region i has exactly FLAG_AT - 1 detections after frame `since`."""
    return hist[i, k, FLAG_AT - 2] > since and hist[i, k, FLAG_AT - 1] <= since


@njit(nogil=True, cache=True)
def record(i, k, v, t, ext, dirs, hist):
    """A detection of signal k of region i at frame t, value v."""
    for m in range(HIST - 1, 0, -1):
        hist[i, k, m] = hist[i, k, m - 1]
    hist[i, k, 0] = t
    dirs[i, k] = -dirs[i, k]
    ext[i, k] = v


@njit(nogil=True, cache=True)
def chunk_of(lv, l, Y, tx, ntx):
    return lv[l, LV_CBASE] + Y * ntx + tx


@njit(nogil=True, cache=True)
def keep_chunk(frame, keep_px, s, Y, x0, x1):
    """Copy the output pixels of regions x0..x1-1 of row Y (s px per side) for the next
    frame's limiter: a whole chunk at once, row segment by row segment (pixels kept beyond
    the regions at risk are the output all the same)."""
    h, w = frame.shape
    for y in range(Y * s, min(h, Y * s + s)):
        keep_px[y, x0 * s:min(w, x1 * s)] = frame[y, x0 * s:min(w, x1 * s)]


@njit(nogil=True, cache=True)
def at_risk_next(hist, i, since_next):
    """Region i may be limited in the next frame (FLAG_AT - 1 detections will still be in
    its window): the limiter would blend it toward this frame's output."""
    return hist[i, 0, FLAG_AT - 2] > since_next or hist[i, 1, FLAG_AT - 2] > since_next


@njit(nogil=True, cache=True, inline="always")
def _prefetch_history(flat_hist, i):
    """Start loading region i's history record (both signals, 2 * H_LEN int32: one cache
    line, two where it straddles) from `hist` seen flat."""
    rec = 2 * H_LEN
    prefetch(flat_hist, i * rec)
    prefetch(flat_hist, i * rec + rec - 1)


@njit(nogil=True, cache=True)
def sweep_row(sums, ext_old, ext, dirs, i0, n, inv, thr_l, thr_q, fired):
    """Regions i0..i0+n-1 of one row (`inv`: 1 / their pixels), as if none of them
    detected: their extremes follow the signal into `ext`, and fired[X] = 1 where either
    detector would fire (`track_span` takes those through its full path, which writes
    their extremes anew). The arrays are flat views, and the loop has no branch, so LLVM
    vectorises it: a 1080p frame has 300k regions, and a region at a time this was the
    guard's largest cost."""
    s = sums[3 * i0:3 * (i0 + n)]
    eo = ext_old[2 * i0:2 * (i0 + n)]
    en = ext[2 * i0:2 * (i0 + n)]
    dd = dirs[2 * i0:2 * (i0 + n)]
    for X in range(n):
        lc, q = signals(s[3 * X] * inv, s[3 * X + 1] * inv, s[3 * X + 2] * inv)
        el = eo[2 * X]
        sl = np.float32(dd[2 * X])
        eq = eo[2 * X + 1]
        sq = np.float32(dd[2 * X + 1])
        en[2 * X] = lc if (lc - el) * sl > 0 else el
        en[2 * X + 1] = q if (q - eq) * sq > 0 else eq
        fired[X] = np.uint8(((el - lc) * sl >= thr_l) | ((eq - q) * sq >= thr_q))


@njit(nogil=True, cache=True)
def track_span(frame, keep_px, lv, l, Y, tx0, tx1, tiles_row, careful, first, t, since, stamp,
               sums, ext_old, ext, dirs, hist, chunk_risk, chunk_mask, chunk_next, cons, cand,
               ncand, fmap, fired, thr_l, thr_q):
    """Feed the regions of row Y of level l in tiles tx0..tx1-1 to their detectors (extremes
    read from `ext_old`, written to `ext`); refresh each chunk's mask and risk, mark `fmap`
    (flashing or candidate, for the area check), and keep in `keep_px` the pixels of the
    regions at risk next frame.

    A flagged region that detects nothing keeps its flag, its `fmap` marks and its risk until
    the window's start passes one of its detections: `chunk_next` holds the first frame that
    happens for any of the chunk's flagged regions. Until then they are carried over as they
    are and take the quick path, like the unflagged ones (visiting each of them every frame
    cost the guard a third of its time on busy content). What `settle` records after this
    only moves those frames later (`chunk_next` stays early: safe), and the limiter's careful
    pass, which undoes and redoes a tile's frame, visits every region and sets it anew.

    Every frame (not `careful`): a signal with FLAG_AT - 1 detections in the window that
    would complete another transition is a candidate (CAND in `cand`, counted in
    ncand[l, k], its tile PENDING in `tiles_row`) and is left alone for the area check;
    every detection stamps its history record with `stamp` and what it drops, so that
    `settle` can undo the frame in a tile the limiter takes over. With `careful` (a
    limited tile's true output, `ext_old` is `ext`), returns the detections of signals
    `cons` marks as constrained (should be none) and clears `cons`.

    One call per row, its chunk loop written out: a call per chunk, with this many array
    arguments, would cost more than the work."""
    h, w = frame.shape
    nx = lv[l, LV_NX]
    s = lv[l, LV_SIZE]
    sh = lv.shape[0] - 1 - l
    side = 1 << sh
    i0 = lv[l, LV_BASE] + Y * nx
    c0 = lv[l, LV_CBASE] + Y * tiles_row.shape[0]
    full, inv_full, inv_edge = row_scale(h, w, s, Y, nx)
    crossed = 0
    swept = not careful and not first
    fired8 = fired.view(np.uint64) if swept and side == 8 else None
    if swept:
        xa = tx0 << sh
        xb = min(nx, tx1 << sh)
        xf = max(xa, min(full, xb))
        flat_s = sums.reshape(sums.size)
        flat_o = ext_old.reshape(ext_old.size)
        flat_e = ext.reshape(ext.size)
        flat_d = dirs.reshape(dirs.size)
        sweep_row(flat_s, flat_o, flat_e, flat_d, i0 + xa, xf - xa, inv_full, thr_l, thr_q,
                  fired[xa:xf])
        sweep_row(flat_s, flat_o, flat_e, flat_d, i0 + xf, xb - xf, inv_edge, thr_l, thr_q,
                  fired[xf:xb])
        # the regions that fired touch their history records below: scattered over 20 MB
        # at 1080p, each a trip to memory. Asking for all of them now overlaps the trips.
        flat_h = hist.reshape(hist.size)
        for X in range(xa, xb):
            if fired[X]:
                _prefetch_history(flat_h, i0 + X)
        # and so do the flagged regions of chunks that are due
        for tx in range(tx0, tx1):
            old = chunk_mask[c0 + tx]
            if old and since >= chunk_next[c0 + tx]:
                for X in range(tx << sh, min(nx, (tx + 1) << sh)):
                    if old & (1 << (X - (tx << sh))):
                        _prefetch_history(flat_h, i0 + X)
    for tx in range(tx0, tx1):
        c = c0 + tx
        old = chunk_mask[c]     # exact for the last frame: a superset for this one
        due = careful or since >= chunk_next[c]   # some flagged region's state changes now
        mask = 0
        risk = NEVER
        keep = False
        nxt = LATER
        carried = 0
        x0 = tx << sh
        x1 = min(nx, x0 + side)
        xv = x1     # regions to visit: x0..xv-1
        if swept and not (old and due):
            xv = x0
            if side == 8:
                # a whole level-0 chunk's marks in one load (rows are padded to 8 with zeros)
                if fired8[x0 >> 3]:
                    xv = x1
            else:
                for X in range(x0, x1):
                    if fired[X]:
                        xv = x1
                        break
            if xv == x0:
                # the usual chunk: nothing fired, and its flagged regions (if any) are
                # carried over as they are
                carried = old
        for X in range(x0, xv):
            i = i0 + X
            inv = inv_full if X < full else inv_edge
            lc, q = signals(sums[i, 0] * inv, sums[i, 1] * inv, sums[i, 2] * inv)
            if first:
                ext[i, 0] = lc
                ext[i, 1] = q
                dirs[i, 0] = 1
                dirs[i, 1] = 1
                continue
            bit = 1 << (X - x0)
            # the detectors, written out (this loop is the guard's hottest): dir is +1
            # (watching for a fall from the running maximum) or -1 (a rise from the
            # minimum); multiplying by it is exact and saves a branch
            el = ext_old[i, 0]
            sl = np.float32(dirs[i, 0])
            eq = ext_old[i, 1]
            sq = np.float32(dirs[i, 1])
            if swept and not (old & bit and due) and not fired[X]:
                # no transition, and not flagged or flagged as before: the sweep has moved
                # the extremes
                carried |= old & bit
                continue
            flags = 0
            if careful:
                flags = cons[i]
                cons[i] = 0
            five0 = False
            five1 = False
            cand0 = False   # a candidate made here (`cand` is clear when the frame starts)
            cand1 = False
            if old & bit and not careful:
                five0 = at_five(hist, i, 0, since)
                five1 = at_five(hist, i, 1, since)
            r = NEVER
            if (el - lc) * sl >= thr_l:
                if five0:
                    cand[i, 0] = CAND
                    cand0 = True
                    ncand[l, 0] += 1
                    tiles_row[tx] = PENDING
                    ext[i, 0] = el
                else:
                    if not careful:
                        hist[i, 0, H_DROP] = hist[i, 0, HIST - 1]
                        hist[i, 0, H_STAMP] = stamp
                    record(i, 0, lc, t, ext, dirs, hist)
                    r = hist[i, 0, FLAG_AT - 2]
                    crossed += flags & 1
            else:
                ext[i, 0] = lc if (lc - el) * sl > 0 else el
            if (eq - q) * sq >= thr_q:
                if five1:
                    cand[i, 1] = CAND
                    cand1 = True
                    ncand[l, 1] += 1
                    tiles_row[tx] = PENDING
                    ext[i, 1] = eq
                else:
                    if not careful:
                        hist[i, 1, H_DROP] = hist[i, 1, HIST - 1]
                        hist[i, 1, H_STAMP] = stamp
                    record(i, 1, q, t, ext, dirs, hist)
                    r = max(r, hist[i, 1, FLAG_AT - 2])
                    crossed += (flags >> 1) & 1
            else:
                ext[i, 1] = q if (q - eq) * sq > 0 else eq
            if r > since or old & bit:
                # `fmap` is non-zero only under flagged regions: only these need writing
                f0 = 0
                f1 = 0
                r5 = max(hist[i, 0, FLAG_AT - 2], hist[i, 1, FLAG_AT - 2])
                if r5 > since:
                    mask |= bit
                    risk = max(risk, r5)
                    nxt = min(nxt, r5 - 1)      # its last frame to keep, then unflagged
                    h6 = hist[i, 0, FLAG_AT - 1]
                    if h6 > since:
                        f0 = 1
                        nxt = min(nxt, h6)
                    elif cand0 or (careful and cand[i, 0] == CAND):
                        f0 = 1
                    h6 = hist[i, 1, FLAG_AT - 1]
                    if h6 > since:
                        f1 = 1
                        nxt = min(nxt, h6)
                    elif cand1 or (careful and cand[i, 1] == CAND):
                        f1 = 1
                    if r5 > since + 1:
                        keep = True
                fmap[0, i] = f0
                fmap[1, i] = f1
        if carried:
            # flagged as they were: no detection of theirs has left the window (not `due`),
            # so their risk is still in last frame's and every one is still kept
            mask |= carried
            risk = max(risk, chunk_risk[c])
            nxt = min(nxt, chunk_next[c])
            keep = True
        chunk_mask[c] = mask
        chunk_risk[c] = risk
        chunk_next[c] = nxt
        if keep:
            keep_chunk(frame, keep_px, s, Y, x0, x1)
    return crossed


@njit(nogil=True, cache=True, parallel=True)
def measure_track(frame, keep_px, lut, lv, first, t, since, stamp, sums, ext_old, ext, dirs,
                  hist, chunk_risk, chunk_mask, chunk_next, tiles, cand, cons, ncand, fmap, fired,
                  thr_l, thr_q):
    """Every frame: region sums of every level, in one pass over the pixels, then every
    region's detectors (`track_span`), which leave candidates for the area check. Rows are
    walked whole, band by band (a band: a row of tiles): memory streams, and a band stays
    in cache between the steps. `ncand[band, level, k]` counts the candidates."""
    top = lv.shape[0] - 1
    b = lv[0, LV_SIZE]
    ntx = tiles.shape[1]
    for j in prange(tiles.shape[0]):
        tiles[j, :] = 0
        ncand[j, :, :] = 0
        for l in range(top + 1):
            ny = lv[l, LV_NY]
            nx = lv[l, LV_NX]
            for Y in range(j << (top - l), min(ny, (j + 1) << (top - l))):
                if l == 0:
                    sum_blocks(frame, lut, b, Y, 0, nx, sums, lv[l, LV_BASE] + Y * nx)
                else:
                    pool_row(lv, l, Y, 0, nx, sums, cons, False)
                track_span(frame, keep_px, lv, l, Y, 0, ntx, tiles[j], False, first, t, since,
                           stamp, sums, ext_old, ext, dirs, hist, chunk_risk, chunk_mask,
                           chunk_next, cons, cand, ncand[j], fmap, fired[j], thr_l, thr_q)


COLUMN_BLOCK = 64     # columns per parallel task when summing down the columns


@njit(nogil=True, cache=True, parallel=True)
def _sum_down(a, rows, cols):
    """a[y, x] += a[y - 1, x] for y = 1..rows-1, x < cols: column prefix sums, in parallel
    over blocks of columns (integers: exact in any order)."""
    for cb in prange(-(-cols // COLUMN_BLOCK)):
        x0 = cb * COLUMN_BLOCK
        x1 = min(cols, x0 + COLUMN_BLOCK)
        for y in range(1, rows):
            for x in range(x0, x1):
                a[y, x] += a[y - 1, x]


@njit(nogil=True, cache=True, parallel=True)
def _row_sums(fmap, integ):
    """integ[y + 1, x + 1] = fmap[y, 0..x] summed; row 0 and column 0 are zero."""
    ny, nx = fmap.shape
    for x in range(nx + 1):
        integ[0, x] = 0
    for y in prange(ny):
        integ[y + 1, 0] = 0
        run = 0
        for x in range(nx):
            run += fmap[y, x]
            integ[y + 1, x + 1] = run


@njit(nogil=True, cache=True, parallel=True)
def _over_rows(integ, rh, rw, limit, over):
    """over[py + 1, px + 1] = rectangles (rh x rw regions, top-left at (py, 0..px)) holding
    more than `limit`, counted along the row."""
    pny = over.shape[0] - 1
    pnx = over.shape[1] - 1
    for px in range(pnx + 1):
        over[0, px] = 0
    for py in prange(pny):
        over[py + 1, 0] = 0
        run = 0
        for px in range(pnx):
            n = (integ[py + rh, px + rw] - integ[py, px + rw]
                 - integ[py + rh, px] + integ[py, px])
            if n > limit:
                run += 1
            over[py + 1, px + 1] = run


@njit(nogil=True, cache=True, parallel=True)
def _judge(k, cand, rh, rw, over, rejected):
    """ADMIT or REJECT every candidate of signal k; `rejected[y]`: rejections in row y."""
    ny = cand.shape[0]
    nx = cand.shape[1]
    pny = over.shape[0] - 1
    pnx = over.shape[1] - 1
    for yy in prange(ny):
        y = np.int64(yy)        # a prange index may be unsigned: keep the arithmetic signed
        n_rej = 0
        for x in range(nx):
            if cand[y, x, k] != CAND:
                continue
            py0 = max(0, y - rh + 1)
            py1 = min(pny - 1, y)
            px0 = max(0, x - rw + 1)
            px1 = min(pnx - 1, x)
            n_over = (over[py1 + 1, px1 + 1] - over[py0, px1 + 1]
                      - over[py1 + 1, px0] + over[py0, px0])
            if n_over > 0:
                cand[y, x, k] = REJECT
                n_rej += 1
            else:
                cand[y, x, k] = ADMIT
        rejected[y] = n_rej


COARSE = 16     # regions per side of a cell of the area check's quick bound


@njit(nogil=True, cache=True)
def _cell_counts(fmap, sat):
    """sat[j + 1, i + 1] = marks of `fmap` (ny, nx) in cell (j, i) (COARSE regions per side;
    row and column 0 zero). Each band of COARSE rows is first added down into a column
    count (a loop across the row, which LLVM vectorises: a byte at a time across the cells,
    this pass was most of the check's cost), kept in row cy + 1 of `sat` where it has one."""
    ny, nx = fmap.shape
    cy = -(-ny // COARSE)
    cx = -(-nx // COARSE)
    for j in range(cy + 1):
        for i in range(cx + 1):
            sat[j, i] = 0
    if cy + 1 < sat.shape[0] and nx <= sat.shape[1]:
        # marks are 0 or 1 and a band has COARSE rows: a column's count fits in a byte
        spare = sat[cy + 1]
        acc = spare.view(np.uint8)
        for j in range(cy):
            for x in range(nx):
                acc[x] = 0
            for y in range(j * COARSE, min(ny, j * COARSE + COARSE)):
                row = fmap[y]
                for x in range(nx):
                    acc[x] += row[x]
            for i in range(cx):
                n = np.int32(0)
                for x in range(i * COARSE, min(nx, i * COARSE + COARSE)):
                    n += np.int32(acc[x])
                sat[j + 1, i + 1] = n
        for x in range(spare.shape[0]):
            spare[x] = 0
    else:   # a single row of regions: no spare row, and nothing to add down
        for y in range(ny):
            row = fmap[y]
            for x in range(nx):
                sat[y // COARSE + 1, x // COARSE + 1] += np.int32(row[x])


@njit(nogil=True, cache=True)
def _admit_by_bound(k, fmap, cand, rh, rw, limit, sat, rejected, tiles, shift):
    """Admit the candidates of signal k that no over rectangle can hold, by an upper bound;
    True when that was all of them (`rejected` is then zeroed). Every rectangle holding
    candidate (y, x) lies in the window of rows y - rh + 1 .. y + rh - 1 and columns
    x - rw + 1 .. x + rw - 1, and the COARSE-sided cells that window touches hold at least as
    many marked regions as the rectangle does. `sat` (scratch, (ny + 1, nx + 1)): the
    cells' summed-area table. Candidates are looked for only in the tiles marked in `tiles`
    (2**shift regions per side), the tiles their marking left non-zero."""
    ny, nx = fmap.shape
    cy = -(-ny // COARSE)
    cx = -(-nx // COARSE)
    _cell_counts(fmap, sat)
    for j in range(1, cy + 1):
        for i in range(1, cx + 1):
            sat[j, i] += sat[j - 1, i] + sat[j, i - 1] - sat[j - 1, i - 1]
    quiet = sat[cy, cx] <= limit    # the level holds no more than one rectangle may
    left = False
    side = 1 << shift
    for ty in range(tiles.shape[0]):
        for tx in range(tiles.shape[1]):
            if tiles[ty, tx] == 0:
                continue    # no candidate in this tile
            for y in range(ty * side, min(ny, ty * side + side)):
                y0 = max(0, y - rh + 1) // COARSE
                y1 = min(ny - 1, y + rh - 1) // COARSE + 1
                for x in range(tx * side, min(nx, tx * side + side)):
                    if cand[y, x, k] != CAND:
                        continue
                    if not quiet:
                        x0 = max(0, x - rw + 1) // COARSE
                        x1 = min(nx - 1, x + rw - 1) // COARSE + 1
                        if sat[y1, x1] - sat[y0, x1] - sat[y1, x0] + sat[y0, x0] > limit:
                            left = True
                            continue
                    cand[y, x, k] = ADMIT
    if left:
        return False
    for y in range(ny):
        rejected[y] = 0
    return True


@njit(nogil=True, cache=True)
def area_check(k, fmap, cand, rh, rw, limit, integ, over, tiles, shift, rejected):
    """Admit or reject signal k's candidates of one level so that no field holds too many
    flashing regions. `fmap` (ny, nx): flashing or candidate (marked by `track_span` and
    `classify`); `cand` (ny, nx, 2): the level's rows of the candidate map. A rejection
    marks its tile CAREFUL in `tiles` (a tile is 2**shift regions of this level per side);
    every candidate's tile must be non-zero there already (measuring marks it PENDING): only
    those tiles are searched. `integ`, `over`, `rejected` (ny): scratch.

    With all candidates counted as flashing, every field rectangle (rh x rw regions,
    region-aligned: it covers any pixel-aligned 10° field) holding more than `limit` is
    "over"; candidates inside any over rectangle are rejected, the rest admitted. Admitted
    regions only lie in rectangles that stay within the limit, and a rectangle without
    admitted regions gains no flashing region, so the limit holds after every frame.
    Summed-area tables, of the map and of the over rectangles, answer each in O(1).

    Usually a coarse count shows that no rectangle around a candidate can be over (calm and
    twinkling content: flashing regions are few or far apart): such candidates are admitted
    at once, as the tables would admit them, and the tables are built only for the rest.
    """
    ny = cand.shape[0]
    nx = cand.shape[1]
    if _admit_by_bound(k, fmap, cand, rh, rw, limit, integ, rejected, tiles, shift):
        return
    _row_sums(fmap, integ)
    _sum_down(integ, ny + 1, nx + 1)
    _over_rows(integ, rh, rw, limit, over)
    _sum_down(over, over.shape[0], over.shape[1])
    _judge(k, cand, rh, rw, over, rejected)
    for y in range(ny):
        if rejected[y] == 0:
            continue
        for x in range(nx):
            if cand[y, x, k] == REJECT:
                tiles[y >> shift, x >> shift] = CAREFUL


@njit(nogil=True, cache=True)
def level_check(l, k, lv, fmap, cand, integ, over, tiles, rejected):
    """`area_check` of signal k's candidates at level l, on the level's rows of the flat
    maps (`fmap` (2, n), `cand` (n, 2)) and on flat scratch (`integ`, `over`: at least
    (ny + 1) * (nx + 1) entries of the largest level)."""
    base = lv[l, LV_BASE]
    ny = lv[l, LV_NY]
    nx = lv[l, LV_NX]
    rh = lv[l, LV_RH]
    rw = lv[l, LV_RW]
    n = ny * nx
    area_check(k, fmap[k, base:base + n].reshape(ny, nx), cand[base:base + n].reshape(ny, nx, 2),
               rh, rw, lv[l, LV_LIMIT], integ[:(ny + 1) * (nx + 1)].reshape(ny + 1, nx + 1),
               over[:(ny - rh + 2) * (nx - rw + 2)].reshape(ny - rh + 2, nx - rw + 2), tiles,
               lv.shape[0] - 1 - l, rejected)


@njit(nogil=True, cache=True)
def check_candidates(lv, ncand, fmap, cand, integ, over, tiles, rejected):
    """The area check of every level and signal with candidates (`ncand[band, l, k]`), in
    one call: from Python, a call per level and signal cost more than most checks."""
    for l in range(lv.shape[0]):
        for k in range(2):
            found = False
            for j in range(ncand.shape[0]):
                if ncand[j, l, k]:
                    found = True
                    break
            if found:
                level_check(l, k, lv, fmap, cand, integ, over, tiles, rejected)


@njit(nogil=True, cache=True, parallel=True)
def settle(frame, keep_px, lv, t, since, stamp, sums, ext_old, ext, dirs, hist, chunk_risk,
           chunk_mask, tiles, cand, careful, thr_l, thr_q):
    """After the area check. A PENDING tile whose candidates were all admitted: record them
    (its output is its input) and keep their pixels if at risk next frame. A CAREFUL one:
    undo what `track_span` did to its detectors this frame, and list it in `careful`
    (m, 2) for the limiter. Candidate marks are cleared. Returns the number listed."""
    h, w = frame.shape
    top = lv.shape[0] - 1
    nty = tiles.shape[0]
    ntx = tiles.shape[1]
    for j in prange(nty):
        for tx in range(ntx):
            st = tiles[j, tx]
            if st == 0:
                continue
            for l in range(top + 1):
                base = lv[l, LV_BASE]
                nx = lv[l, LV_NX]
                s = lv[l, LV_SIZE]
                Y0, Y1, X0, X1 = tile_span(lv, l, j, tx)
                for Y in range(Y0, Y1):
                    c = chunk_of(lv, l, Y, tx, ntx)
                    if st == CAREFUL:
                        for i in range(base + Y * nx + X0, base + Y * nx + X1):
                            ext[i, 0] = ext_old[i, 0]
                            ext[i, 1] = ext_old[i, 1]
                            for k in range(2):
                                if hist[i, k, H_STAMP] == stamp:
                                    for m in range(HIST - 1):
                                        hist[i, k, m] = hist[i, k, m + 1]
                                    hist[i, k, HIST - 1] = hist[i, k, H_DROP]
                                    dirs[i, k] = -dirs[i, k]
                            cand[i, 0] = 0
                            cand[i, 1] = 0
                        continue
                    # candidates are flagged in their chunk's mask
                    mask = chunk_mask[c]
                    risk = chunk_risk[c]
                    keep = False
                    full, inv_full, inv_edge = row_scale(h, w, s, Y, nx)
                    for X in range(X0, X1):
                        i = base + Y * nx + X
                        if not ((mask >> (X - X0)) & 1 and (cand[i, 0] or cand[i, 1])):
                            continue
                        inv = inv_full if X < full else inv_edge
                        lc, q = signals(sums[i, 0] * inv, sums[i, 1] * inv, sums[i, 2] * inv)
                        if cand[i, 0] == ADMIT:
                            record(i, 0, lc, t, ext, dirs, hist)
                            risk = max(risk, hist[i, 0, FLAG_AT - 2])
                        if cand[i, 1] == ADMIT:
                            record(i, 1, q, t, ext, dirs, hist)
                            risk = max(risk, hist[i, 1, FLAG_AT - 2])
                        cand[i, 0] = 0
                        cand[i, 1] = 0
                        keep |= at_risk_next(hist, i, since + 1)
                    chunk_risk[c] = risk
                    if keep:
                        keep_chunk(frame, keep_px, s, Y, X0, X1)
            if st == PENDING:
                tiles[j, tx] = 0
    m = 0
    for j in range(nty):
        for tx in range(ntx):
            if tiles[j, tx] == CAREFUL:
                careful[m, 0] = j
                careful[m, 1] = tx
                m += 1
    return m


@njit(nogil=True, cache=True, parallel=True)
def classify(l, lv, h, w, since, careful, m, sums, comp, kf, mixed, ext, dirs, hist, five,
             cand, ncand, fmap, thr_l, thr_q):
    """Level l of the careful tiles, given what finer levels decided: the composite sums
    (`comp`: level 0 starts from the input with `kf` = 1; coarser levels pool their
    children, `mixed` = some block under it is part blended), then per signal: FLAG_AT - 1
    detections in the window → a bit in `five`; if the composite would complete another
    transition, a candidate (CAND), marked in `fmap`. `ncand[n, k]` counts them per listed
    tile."""
    base = lv[l, LV_BASE]
    nx = lv[l, LV_NX]
    s = lv[l, LV_SIZE]
    for n in prange(m):
        n0 = 0
        n1 = 0
        Y0, Y1, X0, X1 = tile_span(lv, l, careful[n, 0], careful[n, 1])
        for Y in range(Y0, Y1):
            full, inv_full, inv_edge = row_scale(h, w, s, Y, nx)
            if l > 0:
                pool_row(lv, l, Y, X0, X1, comp, mixed, True)
            for X in range(X0, X1):
                i = base + Y * nx + X
                if l == 0:
                    comp[i, 0] = sums[i, 0]
                    comp[i, 1] = sums[i, 1]
                    comp[i, 2] = sums[i, 2]
                    mixed[i] = 0
                    kf[i] = F1
                inv = inv_full if X < full else inv_edge
                lc, q = signals(comp[i, 0] * inv, comp[i, 1] * inv, comp[i, 2] * inv)
                f = 0
                if at_five(hist, i, 0, since):
                    f |= 1
                    if would_detect(ext[i, 0], dirs[i, 0], lc, thr_l):
                        cand[i, 0] = CAND
                        n0 += 1
                if at_five(hist, i, 1, since):
                    f |= 2
                    if would_detect(ext[i, 1], dirs[i, 1], q, thr_q):
                        cand[i, 1] = CAND
                        n1 += 1
                five[i] = f
                for k in range(2):
                    fmap[k, i] = 1 if hist[i, k, FLAG_AT - 1] > since or cand[i, k] == CAND else 0
        ncand[n, 0] = n0
        ncand[n, 1] = n1


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


@njit(nogil=True, cache=True)
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


@njit(nogil=True, cache=True)
def passes(i, cons, is_mixed, comp, inv, ext, dirs, thr_l, thr_q, m):
    """Will the region's constrained signals stay without a transition? A region whose
    blocks are all untouched or all copied measures exactly as its composite: the
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


@njit(nogil=True, cache=True)
def hold_factor(i, cons, is_mixed, comp, psums, inv, ext, dirs, thr_l, thr_q, m_chk, m_aim):
    """How far to blend a region toward its previous output: 0 (it passes as it is), 1
    (copy the previous output: exact, and inside the band by construction) or the least
    fraction that brings it `m_aim` inside the band (linear in the mean colour)."""
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


@njit(nogil=True, cache=True)
def scale_blocks(lv, l, Y, X, keep, kf):
    """Multiply the input share `kf` of every level-0 block under region (Y, X) of level l."""
    span = lv[l, LV_SPAN]
    ny0 = lv[0, LV_NY]
    nx0 = lv[0, LV_NX]
    for by in range(Y * span, min(ny0, Y * span + span)):
        for bx in range(X * span, min(nx0, X * span + span)):
            kf[by * nx0 + bx] = kf[by * nx0 + bx] * keep


@njit(nogil=True, cache=True, parallel=True)
def hold(l, lv, h, w, careful, m, comp, psums, kf, mixed, ext, dirs, five, cand, cons, held,
         thr_l, thr_q, m_chk, m_aim):
    """Level l of the careful tiles, after its area check: every signal with FLAG_AT - 1
    detections that was not admitted is constrained (`cons`); a region whose constrained
    signals would transition is blended toward its previous output (`kf` of its blocks
    scaled; its composite follows). `held[n]` counts the regions blended per listed tile."""
    base = lv[l, LV_BASE]
    nx = lv[l, LV_NX]
    s = lv[l, LV_SIZE]
    for n in prange(m):
        count = 0
        Y0, Y1, X0, X1 = tile_span(lv, l, careful[n, 0], careful[n, 1])
        for Y in range(Y0, Y1):
            full, inv_full, inv_edge = row_scale(h, w, s, Y, nx)
            for X in range(X0, X1):
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
                count += 1
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
        held[n] = count


@njit(nogil=True, cache=True, parallel=True)
def verify(l, lv, h, w, careful, m, sums, psums, comp, kf, mixed, ext, dirs, cons, frozen,
           thr_l, thr_q, m_chk):
    """Level l of the careful tiles, with the blends of every level decided: the composite
    again, exactly as the blended output will measure before rounding (level 0 from `kf`,
    coarser levels pooled); a constrained region that no longer passes (a coarser blend
    drew it toward a previous output near an edge, or a finer copy moved it) becomes an
    exact copy of its previous output. Run from level 0 up, so a copy only changes the
    levels still to check. `frozen[n]` counts them per listed tile."""
    base = lv[l, LV_BASE]
    nx = lv[l, LV_NX]
    s = lv[l, LV_SIZE]
    for n in prange(m):
        count = 0
        Y0, Y1, X0, X1 = tile_span(lv, l, careful[n, 0], careful[n, 1])
        for Y in range(Y0, Y1):
            full, inv_full, inv_edge = row_scale(h, w, s, Y, nx)
            if l > 0:
                pool_row(lv, l, Y, X0, X1, comp, mixed, True)
            for X in range(X0, X1):
                i = base + Y * nx + X
                if l == 0:
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
                c = cons[i]
                if c == 0:
                    continue
                inv = inv_full if X < full else inv_edge
                if passes(i, c, mixed[i] != 0, comp, inv, ext, dirs, thr_l, thr_q, m_chk):
                    continue
                count += 1
                scale_blocks(lv, l, Y, X, F0, kf)
                comp[i, 0] = psums[i, 0]
                comp[i, 1] = psums[i, 1]
                comp[i, 2] = psums[i, 2]
                mixed[i] = 0
        frozen[n] = count


@njit(nogil=True, cache=True)
def encode(v, enc):
    """Linear value → the sRGB byte nearest in linear light (`enc` samples it finely)."""
    if v <= 0.0:
        return 0
    if v >= 1.0:
        return 255
    return enc[int(v * np.float32(ENC_SIZE - 1) + np.float32(0.5))]


@njit(nogil=True, cache=True)
def blend_tile(frame, prev_px, lut, enc, lv, ty, tx, kf):
    """Every level-0 block of the tile with `kf` < 1 becomes, pixel by pixel in linear
    light, kf * input + (1 - kf) * previous output (kf = 0: the previous pixels, exactly);
    alpha is kept. Returns the number of blocks changed."""
    h, w = frame.shape
    b = lv[0, LV_SIZE]
    nx0 = lv[0, LV_NX]
    alpha = np.uint32(0xFF000000)
    colour = np.uint32(0x00FFFFFF)
    n = 0
    Y0, Y1, X0, X1 = tile_span(lv, 0, ty, tx)
    for by in range(Y0, Y1):
        y0 = by * b
        y1 = min(h, y0 + b)
        for bx in range(X0, X1):
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
                        rgb = (int(er) << 16) | (int(eg) << 8) | int(eb)
                        last_out = (p & alpha) | np.uint32(rgb)
                        last_p = p
                        last_q = q
                        memo = True
                    frame[y, x] = last_out
    return n


@njit(nogil=True, cache=True, parallel=True)
def prev_sums(prev_px, lut, lv, careful, m, psums, scratch):
    """Sums of the previous output over the regions of the careful tiles, measured as the
    previous frame measured them (so they are bit-identical where its pixels were kept:
    under every region that can be held)."""
    top = lv.shape[0] - 1
    b = lv[0, LV_SIZE]
    for n in prange(m):
        ty = careful[n, 0]
        tx = careful[n, 1]
        for l in range(top + 1):
            Y0, Y1, X0, X1 = tile_span(lv, l, ty, tx)
            for Y in range(Y0, Y1):
                if l == 0:
                    sum_blocks(prev_px, lut, b, Y, X0, X1, psums, Y * lv[0, LV_NX])
                else:
                    pool_row(lv, l, Y, X0, X1, psums, scratch, False)


@njit(nogil=True, cache=True, parallel=True)
def finish(frame, prev_px, keep_px, lut, enc, lv, t, since, careful, m, kf, sums, ext, dirs,
           hist, chunk_risk, chunk_mask, chunk_next, cons, cand, ncand, fmap, tiles, changed,
           crossed, thr_l, thr_q):
    """The careful tiles: blend toward `prev_px`, measure the true output again, feed it to
    the detectors of every level (`crossed[n]`: constrained signals that still transitioned,
    should be 0), and keep what the next frame may need. `changed[n]`: blocks changed."""
    top = lv.shape[0] - 1
    b = lv[0, LV_SIZE]
    for n in prange(m):
        ty = careful[n, 0]
        tx = careful[n, 1]
        changed[n] = blend_tile(frame, prev_px, lut, enc, lv, ty, tx, kf)
        count = 0
        for l in range(top + 1):
            Y0, Y1, X0, X1 = tile_span(lv, l, ty, tx)
            for Y in range(Y0, Y1):
                if changed[n] > 0:
                    if l == 0:
                        sum_blocks(frame, lut, b, Y, X0, X1, sums, Y * lv[0, LV_NX])
                    else:
                        pool_row(lv, l, Y, X0, X1, sums, cons, False)
                count += track_span(frame, keep_px, lv, l, Y, tx, tx + 1, tiles[ty], True, False,
                                    t, since, 0, sums, ext, ext, dirs, hist, chunk_risk,
                                    chunk_mask, chunk_next, cons, cand, ncand[ty], fmap,
                                    cons, thr_l, thr_q)     # (careful: no sweep, `fired` unused)
        crossed[n] = count
        tiles[ty, tx] = 0
