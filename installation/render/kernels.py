"""Numba kernels of the CPU renderer, in the order a frame runs them.

    species_colours  palette + warmth + per-species gain → linear colour per species
    particle_light   particles → pixel position, light, first rows touched
    bloom_rows       particles → the low-resolution bloom source (with its own trail) → light
                     above the threshold → blurred along the rows
    bloom_cols       → blurred along the columns → rows widened to the full width (the rows are
                     few; the full-resolution pass interpolates between them)
    splat_compose    per band of rows: the trail's decay, particles → full-resolution HDR trail,
                     then HDR + bloom → exposure → tone curve → encode → BGRA

Each kernel is a few row-level steps fused: a frame makes four parallel calls and crosses
the large buffers once; every parallel region also costs a wake-up of the other threads.

The bloom source is splatted, not downsampled: a box-downsampled trail equals a trail of
downsampled splats (both are linear), and splatting 60k particles costs far less than
reading the full-resolution buffer once more per frame.

Determinism: the splats add to each pixel in particle order (bands of rows, not slices of
particles, are what runs in parallel); every other parallel kernel writes each output element
from a fixed sequence of reads. A frame is bit-identical whatever the numba thread count.
HDR values are finite and >= 0 by construction (`particle_light` rejects non-finite
particles; colours and gains are >= 0), so no NaN reaches the per-pixel passes.

Constants that shape the image come in as arguments, not module globals: numba's cache
would keep a global's old value after an edit of another module.

Indexing note: an index numba cannot prove non-negative gets a wraparound check per access,
which stops the loop from vectorising; the shifted reads below go through slices indexed
from 0, and index arrays are unsigned.
"""
from __future__ import annotations

import numpy as np
from numba import njit, prange

ALPHA = np.uint32(0xFF000000)
# Decayed trail light below this is set to zero. It is far below one 8-bit level at any
# exposure the settings allow, and it keeps decaying values from turning subnormal, which
# would make every multiply on them many times slower.
FLUSH = np.float32(1e-6)


@njit(nogil=True, cache=True)
def species_colours(base, k, warmth, warm_tint, luma, gains, out):
    """out[s] = base[s] tinted by warmth at constant luminance, times the species gain 0..1."""
    one = np.float32(1.0)
    for s in range(k):
        g = gains[s] if s < gains.shape[0] else one
        if not g > 0.0:          # also NaN: a broken gain darkens its tile, never the frame
            g = np.float32(0.0)
        g = min(g, one)
        lum0 = np.float32(0.0)
        lum1 = np.float32(0.0)
        for c in range(3):
            lum0 += luma[c] * base[s, c]
            lum1 += luma[c] * base[s, c] * (one + warm_tint[c] * warmth)
        keep = lum0 / lum1 if lum1 > 1e-9 else np.float32(0.0)
        for c in range(3):
            out[s, c] = base[s, c] * (one + warm_tint[c] * warmth) * keep * g


@njit(nogil=True, cache=True, inline="always")
def _tap1(buf, i, j, r, g, b, rlo, rhi):
    if i >= 0 and i < buf.shape[2] and j >= rlo and j < rhi:
        buf[0, j, i] += r
        buf[1, j, i] += g
        buf[2, j, i] += b


@njit(nogil=True, cache=True, inline="always")
def _tap4(buf, u, v, r, g, b, rlo, rhi):
    """Add (r, g, b) at continuous pixel position (u, v) with bilinear weights, into the rows
    rlo <= j < rhi of `buf` only (the caller's band; taps elsewhere are dropped)."""
    w = buf.shape[2]
    fu = np.floor(u)
    fv = np.floor(v)
    i0 = np.int64(fu)
    j0 = np.int64(fv)
    ax = u - fu
    ay = v - fv
    one = np.float32(1.0)
    w00 = (one - ax) * (one - ay)
    w01 = ax * (one - ay)
    w10 = (one - ax) * ay
    w11 = ax * ay
    if i0 >= 0 and i0 < w - 1 and j0 >= rlo and j0 < rhi - 1:
        # the common case, straight-line code: all four taps inside
        i1 = i0 + 1
        j1 = j0 + 1
        buf[0, j0, i0] += r * w00
        buf[0, j0, i1] += r * w01
        buf[0, j1, i0] += r * w10
        buf[0, j1, i1] += r * w11
        buf[1, j0, i0] += g * w00
        buf[1, j0, i1] += g * w01
        buf[1, j1, i0] += g * w10
        buf[1, j1, i1] += g * w11
        buf[2, j0, i0] += b * w00
        buf[2, j0, i1] += b * w01
        buf[2, j1, i0] += b * w10
        buf[2, j1, i1] += b * w11
    else:
        # on a border of the frame or the band: the taps outside are dropped
        _tap1(buf, i0, j0, r * w00, g * w00, b * w00, rlo, rhi)
        _tap1(buf, i0 + 1, j0, r * w01, g * w01, b * w01, rlo, rhi)
        _tap1(buf, i0, j0 + 1, r * w10, g * w10, b * w10, rlo, rhi)
        _tap1(buf, i0 + 1, j0 + 1, r * w11, g * w11, b * w11, rlo, rhi)


@njit(nogil=True, cache=True, inline="always")
def _tap_tent(buf, u, v, r, g, b, rlo, rhi, foot):
    """Add (r, g, b) at continuous pixel position (u, v) spread by a tent `foot` pixels wide
    each way: (2·foot)² taps whose weights, (1 − |d|/foot)/foot per axis, sum to one. Taps
    outside the frame or the band rows rlo <= j < rhi are dropped. foot = 1 is _tap4's splat;
    _tap4 stays for it, as straight-line code."""
    w = buf.shape[2]
    one = np.float32(1.0)
    zero = np.float32(0.0)
    inv = one / np.float32(foot)
    i0 = np.int64(np.floor(u)) - (foot - 1)
    j0 = np.int64(np.floor(v)) - (foot - 1)
    ia = max(i0, 0)
    ib = min(i0 + 2 * foot, w)
    for j in range(max(j0, rlo), min(j0 + 2 * foot, rhi)):
        wy = max(zero, one - abs(np.float32(j) - v) * inv) * inv
        pr = buf[0, j]
        pg = buf[1, j]
        pb = buf[2, j]
        for i in range(ia, ib):
            wt = max(zero, one - abs(np.float32(i) - u) * inv) * inv * wy
            pr[i] += r * wt
            pg[i] += g * wt
            pb[i] += b * wt


@njit(nogil=True, cache=True, parallel=True)
def particle_light(x, y, vx, vy, energy, species, n, colours, k, scale, ox, oy, gain,
                   energy_gain, speed_gain, inv_f, px, py, light, row, low_row, chunk, spans, foot=1):
    """Per particle: pixel position, light = gain * (1 + energy_gain * energy + speed_gain *
    speed) * its species colour, and the first full- and low-resolution row it touches (the
    full-resolution splat spreads `foot` pixels each way: plan.splat_footprint).

    Per chunk of `chunk` consecutive particles, spans[c] = (first, last) full-resolution row and
    (first, last) low-resolution row they start in, so a band of the splat skips whole chunks
    (the engine keeps particles ordered by grid cell: a chunk covers a few rows).
    A broken particle (non-finite, unknown species) gets rows that no band takes.
    Returns how many were broken."""
    half = np.float32(0.5)
    one = np.float32(1.0)
    cap = np.float32(8.0)
    big = np.float32(1e7)
    far = np.int32(-(2 ** 30))
    bad = 0
    for c in prange((n + chunk - 1) // chunk):
        lo_r = np.int32(2 ** 30)
        hi_r = far
        lo_l = np.int32(2 ** 30)
        hi_l = far
        for i in range(c * chunk, min(n, (c + 1) * chunk)):
            s = species[i]
            qx = x[i] * scale + ox
            qy = y[i] * scale + oy
            e = energy[i]
            sp = np.sqrt(vx[i] * vx[i] + vy[i] * vy[i])
            # comparisons are False for NaN, so this also rejects NaN
            if s >= 0 and s < k and abs(qx) < big and abs(qy) < big and abs(e) < big and sp < big:
                e = min(max(e, np.float32(0.0)), cap)
                sp = min(sp, cap)
                a = gain * (one + energy_gain * e + speed_gain * sp)
                px[i] = qx
                py[i] = qy
                light[0, i] = colours[s, 0] * a
                light[1, i] = colours[s, 1] * a
                light[2, i] = colours[s, 2] * a
                r = np.int32(np.floor(qy - half)) - np.int32(foot - 1)
                rl = np.int32(np.floor(qy * inv_f - half))
                lo_r = min(lo_r, r)
                hi_r = max(hi_r, r)
                lo_l = min(lo_l, rl)
                hi_l = max(hi_l, rl)
            else:
                bad += 1
                r = far
                rl = far
            row[i] = r
            low_row[i] = rl
        spans[c, 0] = lo_r
        spans[c, 1] = hi_r
        spans[c, 2] = lo_l
        spans[c, 3] = hi_l
    return bad


@njit(nogil=True, cache=True, inline="always")
def _splat_rows(px, py, light, row, n, chunk, spans, s0, buf, scale, weight, lo, hi, foot):
    """Add the particles' light (times `weight`, at positions times `scale`, spread `foot`
    pixels each way) to the rows lo <= j < hi of `buf`, in particle order. `row` is each
    particle's first row in `buf`, spans[:, s0:s0 + 2] each chunk's first and last row: chunks
    that miss the rows are skipped."""
    half = np.float32(0.5)
    reach = 2 * foot - 1        # rows a splat covers below its first
    for c in range((n + chunk - 1) // chunk):
        if spans[c, s0 + 1] < lo - reach or spans[c, s0] >= hi:
            continue
        for i in range(c * chunk, min(n, (c + 1) * chunk)):
            j = row[i]
            if j >= lo - reach and j < hi:
                if foot == 1:
                    _tap4(buf, px[i] * scale - half, py[i] * scale - half, light[0, i] * weight,
                          light[1, i] * weight, light[2, i] * weight, lo, hi)
                else:
                    _tap_tent(buf, px[i] * scale - half, py[i] * scale - half, light[0, i] * weight,
                              light[1, i] * weight, light[2, i] * weight, lo, hi, foot)


@njit(nogil=True, cache=True, inline="always")
def _decayed(v, decay):
    d = v * decay
    return d if d >= FLUSH else np.float32(0.0)


@njit(nogil=True, cache=True, inline="always")
def _bright_row(low, bright, j, threshold, decay):
    """bright[:, j] = the light of low[:, j] above the threshold (hue kept); low[:, j] decays."""
    zero = np.float32(0.0)
    l0, l1, l2 = low[0, j], low[1, j], low[2, j]
    b0, b1, b2 = bright[0, j], bright[1, j], bright[2, j]
    for i in range(low.shape[2]):
        r = l0[i]
        g = l1[i]
        b = l2[i]
        m = max(r, max(g, b))
        kk = (m - threshold) / m if m > threshold else zero
        b0[i] = r * kk
        b1[i] = g * kk
        b2[i] = b * kk
        l0[i] = _decayed(r, decay)
        l1[i] = _decayed(g, decay)
        l2[i] = _decayed(b, decay)


@njit(nogil=True, cache=True, inline="always")
def _blur_row(s, d, weights):
    """d = s blurred along its length, edges clamped. Taps outer, pixels inner; the shifted
    reads go through slices indexed from 0 so the loops vectorise, and each output still sums
    its taps in the same order."""
    w = s.shape[0]
    r = (weights.shape[0] - 1) // 2
    for i in range(w):
        d[i] = np.float32(0.0)
    for t in range(weights.shape[0]):
        wt = weights[t]
        off = t - r
        lo = min(max(-off, 0), w)
        hi = max(min(w - off, w), lo)
        edge = s[0]
        for i in range(lo):
            d[i] += wt * edge
        dm = d[lo:hi]
        sm = s[lo + off:hi + off]
        for i in range(hi - lo):
            dm[i] += wt * sm[i]
        edge = s[w - 1]
        de = d[hi:]
        for i in range(w - hi):
            de[i] += wt * edge


@njit(nogil=True, cache=True, parallel=True)
def bloom_rows(px, py, light, low_row, n, chunk, spans, low, bright, blurred, inv_f, threshold,
               decay, weights, band_rows):
    """The first half of the bloom, band by band of low-resolution rows: add every particle's
    light, averaged over factor x factor pixels, to the bloom source `low` (it keeps its own
    trail), take the light above the threshold into `bright`, decay the source, and blur
    `bright` along the rows into `blurred`. Each pixel receives its additions in particle
    order: the result does not depend on the bands or the threads."""
    h = low.shape[1]
    lw = inv_f * inv_f
    for b in prange((h + band_rows - 1) // band_rows):
        lo = b * band_rows
        hi = min(lo + band_rows, h)
        _splat_rows(px, py, light, low_row, n, chunk, spans, 2, low, inv_f, lw, lo, hi, 1)
        for j in range(lo, hi):
            _bright_row(low, bright, j, threshold, decay)
            for c in range(3):
                _blur_row(bright[c, j], blurred[c, j], weights)


@njit(nogil=True, cache=True, parallel=True)
def bloom_cols(blurred, tmp, up, weights, ix0, ix1, wx, strength):
    """The second half of the bloom, row by row: blur `blurred` along the columns (edges
    clamped) into `tmp`, then widen the row to the full width: up[c, j, x] = strength * tmp
    linearly interpolated at full-resolution column x (ix0, ix1: the two low-resolution
    columns, uint32; wx: the weight of the second)."""
    h = blurred.shape[1]
    w = blurred.shape[2]
    width = up.shape[2]
    r = (weights.shape[0] - 1) // 2
    one = np.float32(1.0)
    for j in prange(h):
        for c in range(3):
            d = tmp[c, j]
            for i in range(w):
                d[i] = np.float32(0.0)
            for t in range(weights.shape[0]):
                jj = min(max(j + t - r, 0), h - 1)
                wt = weights[t]
                s = blurred[c, jj]
                for i in range(w):
                    d[i] += wt * s[i]
            u = up[c, j]
            for x in range(width):
                a = wx[x]
                u[x] = strength * (d[ix0[x]] * (one - a) + d[ix1[x]] * a)


@njit(nogil=True, cache=True, inline="always")
def _level(v, ta, tb, tc, td, te, bright, ea, eb, ec, knee, toe):
    """Exposed HDR → 8-bit display level: tone curve, master brightness, encode."""
    one = np.float32(1.0)
    t = min(v * (ta * v + tb) / (v * (tc * v + td) + te), one) * bright
    s = toe * t if t < knee else ea * np.sqrt(t) + eb * t + ec
    # 0 <= s <= 1 (up to rounding, which +0.5 and truncation absorb): no clamp needed
    return np.uint32(s * np.float32(255.0) + np.float32(0.5))


@njit(nogil=True, cache=True, inline="always")
def _compose_row(hdr, up, inv_f, curve, out, y):
    """Row y: HDR + bloom → display levels → BGRA."""
    hl = up.shape[1]
    one = np.float32(1.0)
    # scalars, not curve[i] in the loop: the stores to hdr and out could alias the array
    # as far as the compiler knows, which would reload them per pixel and block vectorising
    exposure = curve[0]
    ta, tb, tc, td, te = curve[1], curve[2], curve[3], curve[4], curve[5]
    bright = curve[6]
    ea, eb, ec, knee, toe = curve[7], curve[8], curve[9], curve[10], curve[11]
    v = (y + 0.5) * inv_f - 0.5
    fv = np.floor(v)
    j0 = np.int64(fv)
    wy = np.float32(v - fv)
    if j0 < 0:
        j0 = 0
        j1 = 0
    elif j0 >= hl - 1:
        j0 = hl - 1
        j1 = hl - 1
    else:
        j1 = j0 + 1
    w0 = (one - wy) * exposure
    w1 = wy * exposure
    hr = hdr[0, y]
    hg = hdr[1, y]
    hb = hdr[2, y]
    ur0 = up[0, j0]
    ur1 = up[0, j1]
    ug0 = up[1, j0]
    ug1 = up[1, j1]
    ub0 = up[2, j0]
    ub1 = up[2, j1]
    row = out[y]
    for x in range(hdr.shape[2]):
        r = hr[x]
        g = hg[x]
        b = hb[x]
        lr = _level(r * exposure + ur0[x] * w0 + ur1[x] * w1,
                    ta, tb, tc, td, te, bright, ea, eb, ec, knee, toe)
        lg = _level(g * exposure + ug0[x] * w0 + ug1[x] * w1,
                    ta, tb, tc, td, te, bright, ea, eb, ec, knee, toe)
        lb = _level(b * exposure + ub0[x] * w0 + ub1[x] * w1,
                    ta, tb, tc, td, te, bright, ea, eb, ec, knee, toe)
        row[x] = ALPHA | (lr << np.uint32(16)) | (lg << np.uint32(8)) | lb


@njit(nogil=True, cache=True, parallel=True)
def splat_compose(px, py, light, row, n, chunk, spans, hdr, up, inv_f, curve, decay, out,
                  band_rows, foot=1):
    """The full-resolution pass, band by band of rows: decay the band's trail (last frame's
    light times `decay`), add the particles' light (spread `foot` pixels each way:
    plan.splat_footprint), then turn the rows into pixels (HDR + bloom → exposure → tone
    curve → brightness → encode → BGRA).

    The decay is a sequential sweep that the memory prefetcher follows; it leaves the band in
    the core's cache for the scattered additions of the splat and for the compose, so the HDR
    buffer crosses memory once per frame. Each pixel receives its additions in particle
    order: the frame does not depend on the bands or the threads.

    curve (float32): exposure, tone a b c d e, brightness, encode A B C knee toe
    (see plan.curve_params)."""
    height = hdr.shape[1]
    one = np.float32(1.0)
    for b in prange((height + band_rows - 1) // band_rows):
        lo = b * band_rows
        hi = min(lo + band_rows, height)
        for c in range(3):
            for y in range(lo, hi):
                r = hdr[c, y]
                for x in range(r.shape[0]):
                    r[x] = _decayed(r[x], decay)
        _splat_rows(px, py, light, row, n, chunk, spans, 0, hdr, one, one, lo, hi, foot)
        for y in range(lo, hi):
            _compose_row(hdr, up, inv_f, curve, out, y)


@njit(nogil=True, cache=True)
def mean_span(spans, chunks):
    """Mean rows a chunk of particles spans: small when the engine keeps them cell-ordered."""
    total = 0
    for c in range(chunks):
        if spans[c, 1] >= spans[c, 0]:
            total += spans[c, 1] - spans[c, 0] + 1
    return total / max(chunks, 1)
