"""BGRA frames to the planar YUV 4:2:0 that H.264 stores (BT.601 matrix, limited range).

Converting here, in one parallel pass, instead of handing ffmpeg BGRA: its swscale took about
a fifth of the encoder's CPU for the conversion, and the pipe carries 1.5 bytes a pixel
instead of 4. The matrix is BT.601, the one ffmpeg's own conversions default to both ways,
and the stream says so (colour primaries BT.709 = sRGB's): players that read the tags and
tools that assume BT.601 both decode the colours the renderer made. (Untagged, an HD player
would guess BT.709 and shift them.) Odd sizes are padded by repeating the last column and row.
"""
from __future__ import annotations

import numpy as np
from numba import njit, prange

# BT.601 luma weights, scaled to the 16..235 / 16..240 ranges of limited-range video
KR = 0.299
KB = 0.114
KG = 1.0 - KR - KB
Y_SCALE = 219.0 / 255.0
C_SCALE = 224.0 / 255.0
CB_R = -KR / (2.0 * (1.0 - KB)) * C_SCALE
CB_G = -KG / (2.0 * (1.0 - KB)) * C_SCALE
CB_B = 0.5 * C_SCALE
CR_R = 0.5 * C_SCALE
CR_G = -KG / (2.0 * (1.0 - KR)) * C_SCALE
CR_B = -KB / (2.0 * (1.0 - KR)) * C_SCALE

# ffmpeg 9 no longer passes -color_primaries / -color_trc to the encoder: say all of it to x264
FFMPEG_TAGS = ("-color_range", "tv", "-colorspace", "smpte170m", "-x264-params",
               "colormatrix=smpte170m:colorprim=bt709:transfer=iec61966-2-1:range=tv")


def padded_size(width: int, height: int) -> tuple[int, int]:
    return width + (width & 1), height + (height & 1)


def frame_bytes(width: int, height: int) -> int:
    """Bytes of one padded 4:2:0 frame: the Y plane, then U, then V."""
    pw, ph = padded_size(width, height)
    return pw * ph + 2 * (pw // 2) * (ph // 2)


@njit(nogil=True, cache=True, inline="always")
def _rgb(p):
    return np.float32((p >> 16) & 255), np.float32((p >> 8) & 255), np.float32(p & 255)


@njit(nogil=True, cache=True, inline="always")
def _luma(r, g, b):
    return np.uint8(np.float32(16.5) + np.float32(Y_SCALE) * (
        np.float32(KR) * r + np.float32(KG) * g + np.float32(KB) * b))


@njit(nogil=True, cache=True)
def _chroma(r, g, b, k0, kr, kg, kb):
    return np.uint8(np.float32(k0) + np.float32(kr) * r + np.float32(kg) * g + np.float32(kb) * b)


@njit(nogil=True, cache=True)
def rows_to_i420(ra, rb, ya, yb, u, v):
    """Frame rows ra, rb (the pair of one chroma row) into luma rows ya, yb and chroma rows
    u, v. Chroma from the mean of each 2 x 2 block of (gamma-encoded) pixels, as encoders
    usually sample it; an odd last column pairs with itself.

    Its own function, not inlined into the frame's loop: here LLVM sees four separate
    outputs, checks once that they do not overlap and vectorises the loop. Inlined, they
    were slices of one buffer, the loop stayed scalar and the frame took 4x as long."""
    w = ra.shape[0]
    quarter = np.float32(0.25)
    for cx in range(w // 2):
        r0, g0, b0 = _rgb(ra[2 * cx])
        r1, g1, b1 = _rgb(ra[2 * cx + 1])
        r2, g2, b2 = _rgb(rb[2 * cx])
        r3, g3, b3 = _rgb(rb[2 * cx + 1])
        ya[2 * cx] = _luma(r0, g0, b0)
        ya[2 * cx + 1] = _luma(r1, g1, b1)
        yb[2 * cx] = _luma(r2, g2, b2)
        yb[2 * cx + 1] = _luma(r3, g3, b3)
        r = (r0 + r1 + r2 + r3) * quarter
        g = (g0 + g1 + g2 + g3) * quarter
        b = (b0 + b1 + b2 + b3) * quarter
        u[cx] = _chroma(r, g, b, 128.5, CB_R, CB_G, CB_B)
        v[cx] = _chroma(r, g, b, 128.5, CR_R, CR_G, CR_B)
    if w & 1:
        x = w - 1
        r0, g0, b0 = _rgb(ra[x])
        r2, g2, b2 = _rgb(rb[x])
        ya[x] = ya[x + 1] = _luma(r0, g0, b0)
        yb[x] = yb[x + 1] = _luma(r2, g2, b2)
        r = (r0 + r0 + r2 + r2) * quarter
        g = (g0 + g0 + g2 + g2) * quarter
        b = (b0 + b0 + b2 + b2) * quarter
        u[x // 2] = _chroma(r, g, b, 128.5, CB_R, CB_G, CB_B)
        v[x // 2] = _chroma(r, g, b, 128.5, CR_R, CR_G, CR_B)


@njit(nogil=True, cache=True, parallel=True)
def bgra_to_i420(frame, out):
    """frame: (h, w) uint32 0xAARRGGBB; out: uint8 of `frame_bytes(w, h)`: the Y plane,
    then U, then V, each padded to even size by repeating the last column and row."""
    h, w = frame.shape
    pw = w + (w & 1)
    ph = h + (h & 1)
    cw = pw // 2
    ch = ph // 2
    u0 = pw * ph
    v0 = u0 + cw * ch
    for cy in prange(ch):
        oa = 2 * cy * pw
        c = cy * cw
        rows_to_i420(frame[min(2 * cy, h - 1)], frame[min(2 * cy + 1, h - 1)],
                     out[oa:oa + pw], out[oa + pw:oa + 2 * pw],
                     out[u0 + c:u0 + c + cw], out[v0 + c:v0 + c + cw])


def bgra_to_i420_reference(frame: np.ndarray) -> np.ndarray:
    """NumPy twin of `bgra_to_i420` (same float32 arithmetic, same rounding)."""
    h, w = frame.shape
    pw, ph = padded_size(w, h)
    rows = np.minimum(np.arange(ph), h - 1)
    cols = np.minimum(np.arange(pw), w - 1)
    px = frame[rows][:, cols]
    f32 = np.float32
    r = ((px >> 16) & 255).astype(f32)
    g = ((px >> 8) & 255).astype(f32)
    b = (px & 255).astype(f32)
    y = (f32(16.5) + f32(Y_SCALE) * (f32(KR) * r + f32(KG) * g + f32(KB) * b)).astype(np.uint8)

    def pooled(c):
        return (c[0::2, 0::2] + c[0::2, 1::2] + c[1::2, 0::2] + c[1::2, 1::2]) * f32(0.25)
    rm, gm, bm = pooled(r), pooled(g), pooled(b)
    u = (f32(128.5) + f32(CB_R) * rm + f32(CB_G) * gm + f32(CB_B) * bm).astype(np.uint8)
    v = (f32(128.5) + f32(CR_R) * rm + f32(CR_G) * gm + f32(CR_B) * bm).astype(np.uint8)
    return np.concatenate([y.ravel(), u.ravel(), v.ravel()])
