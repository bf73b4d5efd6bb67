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


@njit(nogil=True, cache=True, parallel=True)
def bgra_to_i420(frame, out):
    """frame: (h, w) uint32 0xAARRGGBB; out: uint8 of `frame_bytes(w, h)`. Chroma from the
    mean of each 2 x 2 block of (gamma-encoded) pixels, as encoders usually sample it."""
    h, w = frame.shape
    pw = w + (w & 1)
    ph = h + (h & 1)
    cw = pw // 2
    ch = ph // 2
    u0 = pw * ph
    v0 = u0 + cw * ch
    quarter = np.float32(0.25)
    for cy in prange(ch):
        ya = min(2 * cy, h - 1)
        yb = min(2 * cy + 1, h - 1)
        ra = frame[ya]
        rb = frame[yb]
        oa = 2 * cy * pw
        ob = oa + pw
        for cx in range(cw):
            xa = 2 * cx
            xb = min(xa + 1, w - 1)
            r0, g0, b0 = _rgb(ra[xa])
            r1, g1, b1 = _rgb(ra[xb])
            r2, g2, b2 = _rgb(rb[xa])
            r3, g3, b3 = _rgb(rb[xb])
            out[oa + xa] = _luma(r0, g0, b0)
            out[oa + xa + 1] = _luma(r1, g1, b1)
            out[ob + xa] = _luma(r2, g2, b2)
            out[ob + xa + 1] = _luma(r3, g3, b3)
            r = (r0 + r1 + r2 + r3) * quarter
            g = (g0 + g1 + g2 + g3) * quarter
            b = (b0 + b1 + b2 + b3) * quarter
            c = cy * cw + cx
            out[u0 + c] = np.uint8(np.float32(128.5) + np.float32(CB_R) * r
                                   + np.float32(CB_G) * g + np.float32(CB_B) * b)
            out[v0 + c] = np.uint8(np.float32(128.5) + np.float32(CR_R) * r
                                   + np.float32(CR_G) * g + np.float32(CR_B) * b)


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
