"""What every backend agrees on to show the same look: framing, a particle's light, the bloom's
size, the tone and display curves, the palette. Used by the CPU renderer, its NumPy twin and
(as uniforms and defines) the GL shaders."""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

# The resolution point_gain is tuned at. The HDR buffer holds light per pixel; a pixel covers
# less of the world at higher resolutions, so a particle's light per pixel grows with the
# pixel density. Dense regions (where the light is) then have the same HDR values, and an
# exported 1080p video looks like the 720p window.
REFERENCE_ROWS = 720.0
# The bloom is blurred on a buffer 1/f of the render size; f is chosen so the blur has at
# least this many low-resolution pixels of sigma (smaller would show the blocks).
MIN_LOW_SIGMA = 1.5
MAX_BLOOM_FACTOR = 16
# Tone curves as one rational form, t = v (a v + b) / (v (c v + d) + e), so one kernel serves
# both: Narkowicz's fit of the ACES filmic curve (soft toe, gentle shoulder) and Reinhard.
TONE_CURVES = {
    "aces": (2.51, 0.03, 2.43, 0.59, 0.14),
    "reinhard": (0.0, 1.0, 0.0, 1.0, 1.0),
}
# The display encoding: sRGB's linear toe, then a*sqrt(t) + b*t + c. Fitted to the sRGB curve
# (within 1.3 of 255 levels everywhere), it costs a square root where sRGB needs a pow or a
# table lookup per channel, the most expensive step of the per-pixel pass.
ENCODE_A = 1.1974365
ENCODE_B = -0.18169773
ENCODE_C = 1.0 - ENCODE_A - ENCODE_B
ENCODE_KNEE = 0.00666325
ENCODE_TOE = (ENCODE_A * ENCODE_KNEE ** 0.5 + ENCODE_B * ENCODE_KNEE + ENCODE_C) / ENCODE_KNEE
TONE_MAPS = tuple(TONE_CURVES)
# Warmth tint per channel at warmth = +1 (cool at -1 is the mirror), before the colour is
# rescaled to keep its luminance: warmth changes the hue, never the brightness.
WARM_TINT = (0.30, 0.06, -0.30)
LUMA = (0.2126, 0.7152, 0.0722)


@dataclass(frozen=True)
class Framing:
    """World → pixel mapping: uniform scale, centred (letterboxed when the aspects differ)."""
    scale: float   # pixels per world unit
    ox: float      # pixel x of world x = 0
    oy: float      # pixel y of world y = 0


def framing(aspect: float, width: int, height: int) -> Framing:
    scale = min(width / aspect, float(height))
    return Framing(scale, 0.5 * (width - aspect * scale), 0.5 * (height - scale))


def particle_gain(point_gain: float, scale: float) -> float:
    """A particle's light in the HDR buffer at this many pixels per world unit."""
    return point_gain * (scale / REFERENCE_ROWS) ** 2


def splat_footprint(scale: float) -> int:
    """How many pixels a particle's light spreads each way from its centre (a tent of this
    half-width, (2·foot)² pixels): 1, the bilinear splat, below twice the reference rows; then
    one more per REFERENCE_ROWS. A lone particle then covers the same share of the picture at
    any size: light squeezed into a third of the area at 4K, nine times as bright per pixel,
    went into the tone curve's shoulder, and a 4K render read a third darker than 720p."""
    # half a pixel of slack: a world aspect written with five decimals (1.77778) frames a 4K
    # picture at 2159.997 pixels per unit, which must not drop a whole step
    return max(1, int((scale + 0.5) / REFERENCE_ROWS))


@dataclass(frozen=True)
class BloomPlan:
    factor: int            # low-resolution buffer is 1/factor of the render size
    low_width: int
    low_height: int
    weights: np.ndarray    # float32 Gaussian taps, length 2*radius + 1, sum 1

    @property
    def radius(self) -> int:
        return (len(self.weights) - 1) // 2


def bloom_plan(width: int, height: int, radius_fraction: float) -> BloomPlan:
    sigma = radius_fraction * height
    f = 1
    while f * 2 <= MAX_BLOOM_FACTOR and sigma / (f * 2) >= MIN_LOW_SIGMA:
        f *= 2
    low_sigma = max(sigma / f, 0.5)
    r = max(1, math.ceil(3.0 * low_sigma))
    t = np.arange(-r, r + 1, dtype=np.float64)
    w = np.exp(-0.5 * (t / low_sigma) ** 2)
    w /= w.sum()
    return BloomPlan(f, -(-width // f), -(-height // f), w.astype(np.float32))


def column_taps(width: int, factor: int, low_width: int):
    """For each full-resolution column: the two low-resolution columns to interpolate
    (uint32) and the weight of the second (float32). Low pixel j is centred on full-resolution
    coordinate (j + 0.5) * factor; beyond the outer centres the edge value is held."""
    u = (np.arange(width) + 0.5) / factor - 0.5
    i0 = np.floor(u)
    wx = np.where((u < 0) | (i0 >= low_width - 1), 0.0, u - i0).astype(np.float32)
    ix0 = np.clip(i0, 0, low_width - 1).astype(np.uint32)
    ix1 = np.clip(i0 + 1, 0, low_width - 1).astype(np.uint32)
    return ix0, ix1, wx


def parse_hex(colour: str) -> tuple[float, float, float]:
    return tuple(int(colour[i:i + 2], 16) / 255.0 for i in (1, 3, 5))


def srgb_to_linear(c: np.ndarray) -> np.ndarray:
    c = np.asarray(c, np.float64)
    return np.where(c <= 0.04045, c / 12.92, ((c + 0.055) / 1.055) ** 2.4)


def linear_to_srgb(c: np.ndarray) -> np.ndarray:
    c = np.clip(np.asarray(c, np.float64), 0.0, 1.0)
    return np.where(c <= 0.0031308, c * 12.92, 1.055 * c ** (1.0 / 2.4) - 0.055)


def palette_linear(palette: tuple[str, ...], count: int) -> np.ndarray:
    """(count, 3) float32 linear-light colours, the palette repeated to cover every species."""
    srgb = np.array([parse_hex(palette[i % len(palette)]) for i in range(count)], np.float64)
    return srgb_to_linear(srgb).astype(np.float32)


def tone_curve(v: np.ndarray, tone: str) -> np.ndarray:
    """HDR (already exposed) → display-linear 0..1."""
    if tone not in TONE_CURVES:
        raise ValueError(f"tone_map = {tone!r}: choose one of {', '.join(TONE_MAPS)}")
    a, b, c, d, e = TONE_CURVES[tone]
    v = np.maximum(np.asarray(v, np.float64), 0.0)
    return np.clip(v * (a * v + b) / (v * (c * v + d) + e), 0.0, 1.0)


def encode(t: np.ndarray) -> np.ndarray:
    """Display-linear 0..1 → display value 0..1 (the renderer's sRGB-like curve)."""
    t = np.clip(np.asarray(t, np.float64), 0.0, 1.0)
    return np.where(t < ENCODE_KNEE, ENCODE_TOE * t, ENCODE_A * np.sqrt(t) + ENCODE_B * t + ENCODE_C)


def curve_params(tone: str, exposure: float, brightness: float) -> tuple[float, ...]:
    """The per-pixel pass's constants, in the order `kernels.compose` reads them."""
    return (exposure, *TONE_CURVES[tone], brightness, ENCODE_A, ENCODE_B, ENCODE_C,
            ENCODE_KNEE, ENCODE_TOE)
