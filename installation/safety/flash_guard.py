"""The flash guard: keeps every output frame sequence under WCAG 2.3.1 / ITU-R BT.1702.

It sees the final frame (pulses, scene cuts, blackout, brightness: all of it) and changes it
only when a region would flash too often:

* general flash: a pair of opposing changes in relative luminance of >= 0.1 where the
  darker state is < 0.8; red flash: a pair of opposing changes in 320 * (R - G - B) of
  more than 20 involving a saturated red (R / (R + G + B) >= 0.8), on linear sRGB.
* content fails when, in any one-second window, more than three flashes (7 or more
  transitions) occur over more than 25% of any 10° field of view. Flashes are counted per
  point (a block of 0.1°) and the area rule applies to the points that flash more than
  three times; sub-areas that each stay at three flashes or fewer are not added together.

How it keeps that promise, per frame (kernels in `flash_kernels.py`):

1. One fused pass over the pixels gives the mean linear colour of every block of 0.1° (WCAG
   exempts finer patterns) and runs a transition detector per block on the output signals.
2. A block may complete its 6th transition in the trailing window only if, counting it,
   no field rectangle holds more than 25% flashing blocks. Rectangles are block-aligned
   and one block larger than the field, so they cover every pixel-aligned field.
3. A block that may not transition is blended toward its previous output colour, in
   linear light, just enough that its luminance and red value stay inside the band that
   does not complete a transition (with a margin for 8-bit rounding). Then its true
   output is measured again and fed to the detectors.

A window shows at most one transition more than the detections inside it (a swing that began
before the window), so no block that an exact checker would count as flashing (7 or more
transitions in a window) escapes step 2. The price of that margin: over more than a quarter
of a field the guard lets through 5 transitions a second, where the standard allows 6.
Calm content never has a quarter of a field making 6 transitions a second: it is never
touched, and a small twinkling spot is left alone too.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from ..config import ConfigError
from . import flash_kernels
from .settings import OVERRIDE_PHRASE, SafetySettings

FIELD_DEG = 10.0        # the visual field of the WCAG area rule
FINE_DEG = 0.1          # patterns finer than this are exempt (WCAG 2.3.1 note)
FIELD_ASPECT = 256.0 / 341.0   # the reference 341 x 256 field on a 1024 x 768 screen
AREA_FRACTION = 0.25

# Thresholds the detectors use: a hair inside the WCAG values so float32 sums never miss.
THR_LUM = np.float32(0.1 - 1e-4)
THR_RED = np.float32(20.0 - 1e-2)
# Limited blocks are kept this far inside the band (luminance, red value). 8-bit rounding of
# a blend moves a block's mean linear channel by < 0.0045, so luminance by < 0.0045 and
# R - G - B by < 0.0135 (4.4 in red value).
MARGIN_ALPHA = np.array([0.006, 5.0], np.float32)
MARGIN_TARGET = np.array([0.012, 10.0], np.float32)


@dataclass(frozen=True)
class FlashGeometry:
    block: int      # px per side of a measuring block (0.1°, at least 1)
    field_w: int    # px of a 10° field, clamped to the image
    field_h: int


def flash_geometry(width: int, height: int, image_width_deg: float) -> FlashGeometry:
    """Block and field sizes in pixels for an image `image_width_deg` degrees wide.

    Rounded down, so the field is never larger (never more lenient) than the true one.
    """
    px_per_deg = width / float(image_width_deg)
    fw = max(1, min(width, int(math.floor(FIELD_DEG * px_per_deg))))
    fh = max(1, min(height, int(math.floor(FIELD_DEG * px_per_deg * FIELD_ASPECT))))
    block = max(1, int(math.floor(FINE_DEG * px_per_deg)))
    return FlashGeometry(block, fw, fh)


def check_flash_settings(settings: SafetySettings) -> str | None:
    """None when the guard is on; the start-up warning when it is validly off.

    Raises ConfigError when `flash_guard = false` comes without the override phrase.
    """
    if settings.flash_guard:
        return None
    if settings.flash_guard_override.strip() == OVERRIDE_PHRASE:
        return ("WARNING: the flash guard is OFF ([safety] flash_guard = false). Output may flash "
                "beyond WCAG 2.3.1 and can trigger seizures in photosensitive visitors.")
    raise ConfigError(
        "[safety] flash_guard = false is refused: it can trigger photosensitive seizures; "
        f"to allow it also set flash_guard_override = \"{OVERRIDE_PHRASE}\"")


def srgb_to_linear_lut() -> np.ndarray:
    x = np.arange(256, dtype=np.float64) / 255.0
    return np.where(x <= 0.04045, x / 12.92, ((x + 0.055) / 1.055) ** 2.4).astype(np.float32)


def linear_to_srgb_table(lut: np.ndarray) -> np.ndarray:
    """table[i] = the byte whose linear value is nearest to i / (size - 1) (ties: lower)."""
    grid = np.arange(flash_kernels.ENC_SIZE, dtype=np.float64) / (flash_kernels.ENC_SIZE - 1)
    lin = lut.astype(np.float64)
    hi = np.clip(np.searchsorted(lin, grid), 1, 255)
    lo = hi - 1
    return np.where(lin[hi] - grid < grid - lin[lo], hi, lo).astype(np.uint8)


class FlashGuard:
    """Limits flashes in the final frames, in place. `process(frame)` → True if it changed it.

    `frame` is the output frame: a C-contiguous (height, width) uint32 array of 0xAARRGGBB
    pixels (bytes B, G, R, A); alpha is kept. The one-second window is `fps` steps of the
    clock given to `process(frame, tick)`: pass the simulation tick and its rate, and the
    window is one second however many frames were rendered in it. Without a tick each
    frame is one step, so `fps` must then be the rate frames reach the screen (if fewer
    arrive, the window only gets longer: safe, but stricter than needed).
    """

    def __init__(self, settings: SafetySettings, width: int, height: int, fps: float, *,
                 kernels=None):
        self.warning = check_flash_settings(settings)
        self.enabled = bool(settings.flash_guard)
        if not (isinstance(width, (int, np.integer)) and isinstance(height, (int, np.integer))
                and width > 0 and height > 0):
            raise ValueError(f"flash guard: frame size must be positive integers, got {width}x{height}")
        if not (math.isfinite(fps) and fps >= 1.0):
            raise ValueError(f"flash guard: fps must be a finite number >= 1, got {fps!r}")
        self.width = int(width)
        self.height = int(height)
        self.fps = float(fps)
        self.geometry = flash_geometry(self.width, self.height, settings.image_width_deg)
        self._k = kernels if kernels is not None else flash_kernels
        g = self.geometry
        b = g.block
        nby = -(-self.height // b)
        nbx = -(-self.width // b)
        self.blocks = (nby, nbx)
        # A one-second window holds floor(fps) + 1 frames, so its transitions happen on the
        # floor(fps) frames after its first: that is the window of detections.
        self.window = int(math.floor(self.fps + 1e-9))
        self._rh = min(nby, (g.field_h - 1) // b + 2)
        self._rw = min(nbx, (g.field_w - 1) // b + 2)
        self._limit = int(math.floor(AREA_FRACTION * g.field_w * g.field_h / (b * b)))
        self._lut = srgb_to_linear_lut()
        self._enc = linear_to_srgb_table(self._lut)
        f32 = np.float32
        self._rgb = np.zeros((3, nby, nbx), f32)
        self._prev = np.zeros((3, nby, nbx), f32)
        self._ext = np.zeros((2, nby, nbx), f32)
        self._dirs = np.ones((2, nby, nbx), np.int8)
        self._hist = np.full((2, nby, nbx, flash_kernels.HIST), flash_kernels.NEVER, np.int32)
        self._pend = np.zeros((nby, nbx), np.uint8)
        self._pend_row = np.zeros(nby, np.int64)
        self._cand = np.zeros((2, nby, nbx), np.uint8)
        self._cand_row = np.zeros((2, nby), np.int64)
        self._integ = np.zeros((nby + 1, nbx + 1), np.int32)
        self._over = np.zeros((nby - self._rh + 2, nbx - self._rw + 2), np.int32)
        self._plan = np.zeros((4, nby, nbx), f32)
        self._row_missed = np.zeros(nby, np.int64)
        self._row_crossed = np.zeros(nby, np.int64)
        self.limited_frames = 0
        self.limited_blocks = 0     # block-frames changed, summed
        self.missed_plans = 0       # limited blocks where no target colour fit (frozen instead)
        self.crossings = 0          # constrained blocks that still transitioned (should stay 0)
        self.reset()

    def reset(self) -> None:
        """Forget all history and counters: the next frame is the first."""
        self._origin = 0
        self._last_tick = -1
        self._first = True
        self._hist.fill(flash_kernels.NEVER)
        self._cand.fill(0)
        self._pend.fill(0)
        self.limited_frames = 0
        self.limited_blocks = 0
        self.missed_plans = 0
        self.crossings = 0

    def _check_frame(self, frame) -> None:
        if not isinstance(frame, np.ndarray) or frame.dtype != np.uint32 or frame.ndim != 2:
            raise ValueError("flash guard: the frame must be a (height, width) uint32 array of 0xAARRGGBB pixels")
        if frame.shape != (self.height, self.width):
            raise ValueError(f"flash guard: frame is {frame.shape[1]}x{frame.shape[0]}, "
                             f"the guard was built for {self.width}x{self.height}")
        if not frame.flags.c_contiguous or not frame.flags.writeable:
            raise ValueError("flash guard: the frame must be C-contiguous and writeable (it is changed in place)")

    def process(self, frame: np.ndarray, tick: int | None = None) -> bool:
        """Limit `frame` in place if it would flash; True when it was changed.

        `tick`: the frame's time in steps of 1/fps (never decreasing); None = previous + 1.
        """
        if not self.enabled:
            return False
        self._check_frame(frame)
        if tick is None:
            tick = self._last_tick + 1
        elif not isinstance(tick, (int, np.integer)) or (not self._first and tick < self._last_tick):
            raise ValueError(f"flash guard: tick must be a whole number that never decreases "
                             f"(got {tick!r} after {self._last_tick}); call reset() to start over")
        tick = int(tick)
        if self._first:
            self._origin = tick
        self._last_tick = tick
        k = self._k
        t = tick - self._origin
        since = t - self.window
        b = self.geometry.block
        k.measure_track(frame, self._lut, b, self._first, t, since, self._rgb, self._ext,
                        self._dirs, self._hist, self._pend, self._pend_row, self._cand,
                        self._cand_row, THR_LUM, THR_RED)
        limited = False
        if self._pend_row.any():   # some block is about to start flashing
            for kind in (0, 1):
                if self._cand_row[kind].any():
                    k.area_check(kind, since, self._hist, self._cand, self._rh, self._rw,
                                 self._limit, self._integ, self._over)
            k.settle(t, since, self._pend, self._pend_row, self._rgb, self._ext, self._dirs,
                     self._hist, self._cand, THR_LUM, THR_RED)
            n_lim = int(self._pend_row.sum())
            if n_lim:
                k.apply_limits(frame, self._lut, self._enc, b, t, self._pend, self._pend_row,
                               self._rgb, self._prev, self._ext, self._dirs, self._hist,
                               THR_LUM, THR_RED, MARGIN_TARGET, MARGIN_ALPHA, self._plan,
                               self._row_missed, self._row_crossed)
                self.limited_blocks += n_lim
                self.missed_plans += int(self._row_missed.sum())
                self.crossings += int(self._row_crossed.sum())
                limited = True
        self._rgb, self._prev = self._prev, self._rgb
        self._first = False
        if t >= 1 << 30:  # keep the history in int32 range (after ~52 days at 240 Hz)
            shift = 1 << 29
            self._origin += shift
            np.maximum(self._hist - shift, flash_kernels.NEVER, out=self._hist)
        if limited:
            self.limited_frames += 1
        return limited
