"""Plain NumPy twins of the CPU renderer's kernels: the test oracle, not a fallback.

Each public kernel of `kernels.py` has a namesake here with its signature and in-place
outputs, so `ReferenceRenderer` runs a whole frame through the twins and tests compare whole
frames too. The fused kernels are written as their steps one after the other (splat_low,
bright_pass, blur_rows, blur_cols, upsample_rows, decay, compose), each the obvious way
(np.add.at, padded convolution, the curves in float64), not the fast way.
"""
from __future__ import annotations

import sys

import numpy as np

from .cpu_renderer import CpuRenderer
from .plan import TONE_CURVES, encode, tone_curve

ALPHA = np.uint32(0xFF000000)
FLUSH = np.float32(1e-6)


def species_colours(base, k, warmth, warm_tint, luma, gains, out):
    g = np.ones(k, np.float64)
    m = min(k, len(gains))
    g[:m] = np.nan_to_num(np.asarray(gains[:m], np.float64), nan=0.0)
    g = np.clip(g, 0.0, 1.0)
    tint = 1.0 + np.asarray(warm_tint, np.float64) * float(warmth)
    col = np.asarray(base[:k], np.float64)
    lum0 = col @ np.asarray(luma, np.float64)
    lum1 = (col * tint) @ np.asarray(luma, np.float64)
    keep = np.divide(lum0, lum1, out=np.zeros_like(lum0), where=lum1 > 1e-9)
    out[:k] = (col * tint * (keep * g)[:, None]).astype(np.float32)


def particle_light(x, y, vx, vy, energy, species, n, colours, k, scale, ox, oy, gain,
                   energy_gain, speed_gain, inv_f, px, py, light, row, low_row, chunk, spans, foot=1):
    x, y = np.asarray(x[:n], np.float32), np.asarray(y[:n], np.float32)
    vx, vy, e = (np.asarray(a[:n], np.float64) for a in (vx, vy, energy))
    s = np.asarray(species[:n], np.int64)
    # positions in float32, as the kernel computes them, so rows agree to the pixel
    qx = (x * np.float32(scale) + np.float32(ox)).astype(np.float64)
    qy = (y * np.float32(scale) + np.float32(oy)).astype(np.float64)
    sp = np.hypot(vx, vy)
    with np.errstate(invalid="ignore"):
        ok = ((s >= 0) & (s < k) & (np.abs(qx) < 1e7) & (np.abs(qy) < 1e7)
              & (np.abs(e) < 1e7) & (sp < 1e7))
    a = float(gain) * (1.0 + float(energy_gain) * np.clip(np.nan_to_num(e), 0.0, 8.0)
                       + float(speed_gain) * np.minimum(np.nan_to_num(sp), 8.0))
    rgb = np.asarray(colours, np.float64)[np.where(ok, s, 0)] * a[:, None]
    px[:n] = np.where(ok, qx, 0.0)
    py[:n] = np.where(ok, qy, 0.0)
    light[:, :n] = np.where(ok, rgb.T, 0.0)
    row[:n] = np.where(ok, np.floor(py[:n] - np.float32(0.5)) - (foot - 1), -(2 ** 30))
    low_row[:n] = np.where(ok, np.floor(py[:n] * np.float32(inv_f) - np.float32(0.5)), -(2 ** 30))
    for c in range(-(-n // chunk)):
        sel = slice(c * chunk, min(n, (c + 1) * chunk))
        good = ok[sel]
        r, rl = row[sel][good], low_row[sel][good]
        spans[c] = (r.min(), r.max(), rl.min(), rl.max()) if good.any() else (2 ** 30, -(2 ** 30)) * 2
    return int(n - ok.sum())


def _add_bilinear(buf, u, v, rgb):
    """np.add.at of each particle's light onto its four nearest pixels; taps outside dropped."""
    _, h, w = buf.shape
    i0 = np.floor(u).astype(np.int64)
    j0 = np.floor(v).astype(np.int64)
    ax = (u - np.floor(u)).astype(np.float64)
    ay = (v - np.floor(v)).astype(np.float64)
    for di, dj, wt in ((0, 0, (1 - ax) * (1 - ay)), (1, 0, ax * (1 - ay)),
                       (0, 1, (1 - ax) * ay), (1, 1, ax * ay)):
        i = i0 + di
        j = j0 + dj
        inside = (i >= 0) & (i < w) & (j >= 0) & (j < h)
        for c in range(3):
            np.add.at(buf[c], (j[inside], i[inside]), (rgb[inside, c] * wt[inside]).astype(np.float32))


def _add_tent(buf, u, v, rgb, foot):
    """np.add.at of each particle's light onto the (2·foot)² pixels around it, weighted by a
    tent (1 − |d|/foot)/foot per axis; taps outside dropped. foot = 1 is the bilinear splat."""
    _, h, w = buf.shape
    i0 = np.floor(u).astype(np.int64) - (foot - 1)
    j0 = np.floor(v).astype(np.int64) - (foot - 1)
    for dj in range(2 * foot):
        j = j0 + dj
        wy = np.maximum(0.0, 1.0 - np.abs(j - v) / foot) / foot
        for di in range(2 * foot):
            i = i0 + di
            wx = np.maximum(0.0, 1.0 - np.abs(i - u) / foot) / foot
            inside = (i >= 0) & (i < w) & (j >= 0) & (j < h)
            for c in range(3):
                np.add.at(buf[c], (j[inside], i[inside]), (rgb[inside, c] * (wx * wy)[inside]).astype(np.float32))


def _valid(row, n):
    return row[:n] > -(2 ** 30)


def splat_low(px, py, light, low_row, n, chunk, spans, low, inv_f, band_rows):
    """All particles at once with np.add.at (no bands or chunks: the result may not depend
    on them)."""
    ok = _valid(low_row, n)
    f = float(inv_f)
    rgb = light[:, :n][:, ok].T.astype(np.float64)
    _add_bilinear(low, px[:n][ok] * f - 0.5, py[:n][ok] * f - 0.5, rgb * f * f)


def decay(buf, factor):
    """buf *= factor, with light below FLUSH set to zero."""
    d = buf * np.float32(factor)
    d[d < FLUSH] = 0.0
    buf[...] = d


def bright_pass(low, bright, threshold, decay_factor):
    m = low.max(axis=0)
    t = float(threshold)
    kk = np.divide(m - t, m, out=np.zeros_like(m), where=m > t)
    bright[...] = low * kk[None]
    decay(low, decay_factor)


def blur_rows(src, dst, weights):
    r = (len(weights) - 1) // 2
    padded = np.pad(src, ((0, 0), (0, 0), (r, r)), mode="edge").astype(np.float64)
    w = src.shape[2]
    dst[...] = sum(float(weights[t]) * padded[:, :, t:t + w] for t in range(len(weights)))


def blur_cols(src, dst, weights):
    r = (len(weights) - 1) // 2
    padded = np.pad(src, ((0, 0), (r, r), (0, 0)), mode="edge").astype(np.float64)
    h = src.shape[1]
    dst[...] = sum(float(weights[t]) * padded[:, t:t + h, :] for t in range(len(weights)))


def upsample_rows(bloom, up, ix0, ix1, wx, strength):
    b = bloom.astype(np.float64)
    wx = wx.astype(np.float64)
    up[...] = float(strength) * (b[:, :, ix0] * (1.0 - wx) + b[:, :, ix1] * wx)


def bloom_rows(px, py, light, low_row, n, chunk, spans, low, bright, blurred, inv_f, threshold,
               decay_factor, weights, band_rows):
    splat_low(px, py, light, low_row, n, chunk, spans, low, inv_f, band_rows)
    bright_pass(low, bright, threshold, decay_factor)
    blur_rows(bright, blurred, weights)


def bloom_cols(blurred, tmp, up, weights, ix0, ix1, wx, strength):
    blur_cols(blurred, tmp, weights)
    upsample_rows(tmp, up, ix0, ix1, wx, strength)


def _tone_name(curve) -> str:
    for name, coeffs in TONE_CURVES.items():
        if np.allclose(np.asarray(curve[1:6], np.float64), coeffs, atol=1e-6):
            return name
    raise ValueError(f"unknown tone curve coefficients {curve[1:6]}")


def _compose(hdr, up, inv_f, curve, out):
    _, h, w = hdr.shape
    hl = up.shape[1]
    v = (np.arange(h) + 0.5) * float(inv_f) - 0.5
    j0 = np.floor(v)
    wy = np.where((v < 0) | (j0 >= hl - 1), 0.0, v - j0)
    j0 = np.clip(j0, 0, hl - 1).astype(np.int64)
    j1 = np.clip(j0 + 1, 0, hl - 1)
    u = up.astype(np.float64)
    bloom = u[:, j0, :] * (1.0 - wy)[None, :, None] + u[:, j1, :] * wy[None, :, None]
    exposed = (hdr.astype(np.float64) + bloom) * float(curve[0])
    t = tone_curve(exposed, _tone_name(curve)) * float(curve[6])
    level = np.floor(encode(t) * 255.0 + 0.5).astype(np.uint32)
    out[...] = ALPHA | (level[0] << 16) | (level[1] << 8) | level[2]


def splat_compose(px, py, light, row, n, chunk, spans, hdr, up, inv_f, curve, decay_factor, out,
                  band_rows, foot=1):
    decay(hdr, decay_factor)
    ok = _valid(row, n)
    rgb = light[:, :n][:, ok].T.astype(np.float64)
    u, v = px[:n][ok].astype(np.float64) - 0.5, py[:n][ok].astype(np.float64) - 0.5
    if foot == 1:
        _add_bilinear(hdr, u, v, rgb)
    else:
        _add_tent(hdr, u, v, rgb, foot)
    _compose(hdr, up, inv_f, curve, out)


def mean_span(spans, chunks):
    s = np.asarray(spans[:chunks], np.int64)
    width = s[:, 1] - s[:, 0] + 1
    return float(np.where(width > 0, width, 0).sum() / max(chunks, 1))


class ReferenceRenderer(CpuRenderer):
    """The CPU renderer's frame, computed by the twins (this module)."""
    kernels = sys.modules[__name__]
