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

At coarser scales too, not only at 0.1°. Counting only 0.1° points lets a quarter of a
field's points flash wherever they lie: scattered through the field, one point in four, they
make the whole field flicker at a quarter of the contrast, and a slightly coarser look (2 x 2
points, still well under 1°) sees nearly all of it flash. Points that each stay under the
limit can likewise add up: two neighbours flashing in turn flicker twice as often together.
So the guard measures the output at `LEVELS` scales, regions of 1, 2, 4 and 8 blocks per side
pooled 2 x 2 from the blocks (0.1° to 0.8° at 1920 px across 60°), and holds the same rule
at each, on the grid an observer or a checker averaging b * 2**l pixel squares from the
top-left corner uses. (Other square sizes are not measured, so not promised: a 3-block
square straddling the grid can still see more.) Coarser than 8 blocks a region is a large
share of a field, and a small flashing spot, which WCAG allows, could not be told from a
flashing area.

How it keeps that promise, per frame (kernels in `flash_kernels.py`):

1. One pass over the pixels sums the linear colour of every block, pools the blocks into the
   regions of every level and runs every region's transition detectors. A region with 5
   transitions in the trailing window whose 6th is coming is a candidate: it waits.
2. A candidate may complete its 6th transition only if, counting it, no field rectangle of
   its level holds more than 25% flashing regions (rectangles are region-aligned and one
   region larger than the field, so they cover every pixel-aligned field). Candidates that
   pass are recorded, and that is all: the output is the input (calm content, and even
   busy twinkling content, never gets further).
3. A tile (one region of the coarsest level with everything under it) with a refused
   candidate is limited: its detectors go back to where the frame found them, and level by
   level from the finest, every region with 5 transitions that may not complete a 6th is
   held: if its mean colour (with what finer levels decided) would complete a transition,
   its blocks are blended toward their previous output, per pixel in linear light, by the
   least fraction that keeps its luminance and red value inside the band that does not
   transition. The blend is linear, so the mean of every region under it moves on a
   straight line toward its own previous output, which is inside its own band: holding a
   coarse region never breaks a finer one.
4. The blends are then checked once more, from the finest level up, on the exact composite;
   a part-blended region must keep a margin from the band's edges larger than 8-bit rounding
   moves a mean. A region that fails becomes an exact copy of its previous output pixels
   (kept for every region at risk), which no detector can count as a transition. The true
   output is measured again and fed to the detectors of every level.

A window shows at most one transition more than the detections inside it (a swing that began
before the window), so no region that an exact checker would count as flashing (7 or more
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
from ..parallel import in_pieces
from . import flash_kernels
from .settings import OVERRIDE_PHRASE, SafetySettings

FIELD_DEG = 10.0        # the visual field of the WCAG area rule
LEVELS = 4              # scales checked: regions of 1, 2, 4 and 8 blocks per side
FINE_DEG = 0.1          # patterns finer than this are exempt (WCAG 2.3.1 note)
FIELD_ASPECT = 256.0 / 341.0   # the reference 341 x 256 field on a 1024 x 768 screen
AREA_FRACTION = 0.25

# Thresholds the detectors use: a hair inside the WCAG values so float32 sums never miss.
THR_LUM = np.float32(0.1 - 1e-4)
THR_RED = np.float32(20.0 - 1e-2)
# A part-blended region must stay this far inside its band (luminance, red value): 8-bit
# rounding of a blend moves each pixel's linear channel, so any mean of them, by < 0.0045,
# so luminance by < 0.0045 and R - G - B by < 0.0135 (4.4 in red value). Blends aim a little
# deeper, so float32 rounding of the blend factor never lands them on the edge.
MARGIN_CHECK = np.array([0.006, 5.0], np.float32)
MARGIN_AIM = np.array([0.007, 6.0], np.float32)


@dataclass(frozen=True)
class FlashGeometry:
    block: int      # px per side of a measuring block (0.1°, at least 1)
    field_w: int    # px of a 10° field, clamped to the image
    field_h: int


def flash_levels(width: int, height: int, geometry: FlashGeometry) -> np.ndarray:
    """The level table of `flash_kernels` (one row per level, columns LV_*).

    Levels stop early once a level is a single region: a coarser one would repeat it.
    """
    k = flash_kernels
    if not 1 <= LEVELS <= 4:
        # a chunk (8 regions at level 0 with 4 levels) is flagged in one byte
        raise ValueError(f"flash guard: LEVELS must be 1..4, not {LEVELS}")
    g = geometry
    rows = []
    base = 0
    for level in range(LEVELS):
        s = g.block << level
        ny, nx = -(-height // s), -(-width // s)
        rh = min(ny, (g.field_h - 1) // s + 2)
        rw = min(nx, (g.field_w - 1) // s + 2)
        limit = int(math.floor(AREA_FRACTION * g.field_w * g.field_h / (s * s)))
        row = [0] * k.LV_COLS
        row[k.LV_BASE], row[k.LV_NY], row[k.LV_NX], row[k.LV_SIZE] = base, ny, nx, s
        row[k.LV_SPAN], row[k.LV_RH], row[k.LV_RW], row[k.LV_LIMIT] = 1 << level, rh, rw, limit
        rows.append(row)
        base += ny * nx
        if ny == 1 and nx == 1:
            break
    tiles_across = rows[-1][k.LV_NX]
    chunks = 0
    for row in rows:
        row[k.LV_CBASE] = chunks
        chunks += row[k.LV_NY] * tiles_across
    return np.array(rows, np.int64)


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


def narrow_image_warning(settings: SafetySettings) -> str | None:
    """The start-up warning when the viewing geometry leaves the area rule little to hold.

    An image under two 10° fields wide is mostly inside one field: only flashes over a large
    part of the whole image count, so a wrong (too small) value loosens the guard without the
    override phrase. A true small angle is legitimate (a screen seen from afar): said, not refused."""
    deg = float(settings.image_width_deg)
    if not settings.flash_guard or deg >= 2 * FIELD_DEG:
        return None
    share = min(1.0, FIELD_DEG / deg)
    return (f"[safety] image_width_deg = {deg:g}: a 10-degree field covers {share:.0%} of the image's width, so the "
            f"flash guard limits only flashes over large parts of it; check it is measured from the nearest place "
            f"a visitor can stand (the default, {SafetySettings().image_width_deg:g}, assumes close viewing)")


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

    `scales`: the region sizes in pixels the area rule holds at (`LEVELS` of them at most).
    Counters: `limited_frames`, `limited_blocks` (level-0 blocks changed, summed over
    frames), `held_regions` (regions blended toward their previous output), `frozen_regions`
    (made exact copies of it) and `crossings` (held signals that still transitioned: 0).
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
        K = flash_kernels
        lv = flash_levels(self.width, self.height, self.geometry)
        self._lv = lv
        self.scales = tuple(int(s) for s in lv[:, K.LV_SIZE])
        self.blocks = (int(lv[0, K.LV_NY]), int(lv[0, K.LV_NX]))
        # A one-second window holds floor(fps) + 1 frames, so its transitions happen on the
        # floor(fps) frames after its first: that is the window of detections.
        self.window = int(math.floor(self.fps + 1e-9))
        self._lut = srgb_to_linear_lut()
        self._enc = linear_to_srgb_table(self._lut)
        n = int(lv[-1, K.LV_BASE] + lv[-1, K.LV_NY] * lv[-1, K.LV_NX])
        n0 = self.blocks[0] * self.blocks[1]
        f32 = np.float32
        top = len(lv) - 1
        tiles = (int(lv[top, K.LV_NY]), int(lv[top, K.LV_NX]))
        n_tiles = tiles[0] * tiles[1]
        self._sums = np.zeros((n, 3), f32)      # this frame's region sums (input, then output)
        self._psums = np.zeros((n, 3), f32)     # the previous output's, where it is limited
        self._comp = np.zeros((n, 3), f32)      # what the output will be, while limiting
        self._ext = np.zeros((n, 2), f32)        # detector extremes, written this frame
        self._ext_old = np.zeros((n, 2), f32)    # ... as the frame found them
        self._dirs = np.ones((n, 2), np.int8)
        self._hist = np.full((n, 2, K.H_LEN), K.NEVER, np.int32)
        self._mixed = np.zeros(n, np.uint8)
        self._five = np.zeros(n, np.uint8)
        self._cons = np.zeros(n, np.uint8)
        self._cand = np.zeros((n, 2), np.uint8)
        self._fmap = np.zeros((2, n), np.uint8)  # flashing or candidate, per signal
        self._kf = np.ones(n0, f32)             # share of the input kept, per level-0 block
        # scratch per band: marks of the regions that fire, rows padded to whole 8-byte words
        self._fired = np.zeros((tiles[0], -(-self.blocks[1] // 8) * 8), np.uint8)
        n_chunks = int(lv[:, K.LV_NY].sum()) * tiles[1]
        self._chunk_risk = np.full(n_chunks, K.NEVER, np.int64)
        self._chunk_mask = np.zeros(n_chunks, np.uint8)
        self._chunk_next = np.full(n_chunks, K.NEVER, np.int64)
        self._tiles = np.zeros(tiles, np.uint8)
        self._ncand = np.zeros((tiles[0], len(lv), 2), np.int64)
        self._careful = np.zeros((n_tiles, 2), np.int64)
        self._stamp = 0     # counts frames (ticks may repeat), for `settle` to undo one
        self._tile_cand = np.zeros((n_tiles, 2), np.int64)
        self._tile_count = np.zeros(n_tiles, np.int64)
        self._rejected = np.zeros(self.blocks[0], np.int64)
        self._tile_changed = np.zeros(n_tiles, np.int64)
        self._tile_crossed = np.zeros(n_tiles, np.int64)
        # the last output, kept under the regions at risk of being limited (the limiter
        # blends toward it), and this frame's, as it is kept
        self._prev_px = np.zeros((self.height, self.width), np.uint32)
        self._keep_px = np.zeros((self.height, self.width), np.uint32)
        # the area check's scratch, for one level at a time (level 0 is the largest)
        ny0, nx0 = self.blocks
        self._integ = np.zeros((ny0 + 1) * (nx0 + 1), np.int32)
        self._over = np.zeros((ny0 + 1) * (nx0 + 1), np.int32)
        self.limited_frames = 0
        self.limited_blocks = 0     # block-frames changed, summed
        self.held_regions = 0       # region-frames blended toward their previous output
        self.frozen_regions = 0     # region-frames made exact copies by the final check
        self.crossings = 0          # constrained signals that still transitioned (should stay 0)
        self.reset()

    def reset(self) -> None:
        """Forget all history and counters: the next frame is the first."""
        self._origin = 0
        self._last_tick = -1
        self._first = True
        self._hist.fill(flash_kernels.NEVER)
        self._chunk_risk.fill(flash_kernels.NEVER)
        self._chunk_mask.fill(0)
        self._chunk_next.fill(flash_kernels.NEVER)
        self._tiles.fill(0)
        self._cand.fill(0)
        self._fmap.fill(0)
        self._five.fill(0)
        self._cons.fill(0)
        self.limited_frames = 0
        self.limited_blocks = 0
        self.held_regions = 0
        self.frozen_regions = 0
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
        self._stamp += 1
        if self._stamp >= 1 << 31:      # int32 stamps in the histories: start them over
            self._stamp = 1
            self._hist[..., flash_kernels.H_STAMP] = flash_kernels.NEVER
        self._ext, self._ext_old = self._ext_old, self._ext
        with in_pieces(self._tiles.shape[0]):
            k.measure_track(frame, self._keep_px, self._lut, self._lv, self._first, t, since,
                            self._stamp, self._sums, self._ext_old, self._ext, self._dirs,
                            self._hist, self._chunk_risk, self._chunk_mask, self._chunk_next,
                            self._tiles, self._cand, self._cons, self._ncand, self._fmap,
                            self._fired, THR_LUM, THR_RED)
        limited = False
        if self._ncand.any():    # some region is about to complete its 6th transition
            limited = self._limit(frame, t, since)
        self._prev_px, self._keep_px = self._keep_px, self._prev_px
        self._first = False
        if t >= 1 << 30:  # keep the history in int32 range (after ~52 days at 240 Hz)
            shift = 1 << 29
            self._origin += shift
            times = self._hist[..., :flash_kernels.H_STAMP]     # detections, not stamps
            np.maximum(times - shift, flash_kernels.NEVER, out=times)
            drops = self._hist[..., flash_kernels.H_DROP]
            np.maximum(drops - shift, flash_kernels.NEVER, out=drops)
            np.maximum(self._chunk_risk - shift, flash_kernels.NEVER, out=self._chunk_risk)
            np.maximum(self._chunk_next - shift, flash_kernels.NEVER, out=self._chunk_next)
        if limited:
            self.limited_frames += 1
        return limited

    def _limit(self, frame: np.ndarray, t: int, since: int) -> bool:
        """Area checks of the candidates; tiles with a refused one go through the limiter."""
        k = self._k
        h, w = self.height, self.width
        lv = self._lv
        k.check_candidates(lv, self._ncand, self._fmap, self._cand, self._integ, self._over,
                           self._tiles, self._rejected)
        m = k.settle(frame, self._keep_px, lv, t, since, self._stamp, self._sums,
                     self._ext_old, self._ext, self._dirs, self._hist,
                     self._chunk_risk, self._chunk_mask, self._tiles, self._cand,
                     self._careful, THR_LUM, THR_RED)
        if m == 0:
            return False
        tiles = self._careful
        k.prev_sums(self._prev_px, self._lut, lv, tiles, m, self._psums, self._cons)
        count = self._tile_count[:m]
        for level in range(len(lv)):
            k.classify(level, lv, h, w, since, tiles, m, self._sums, self._comp, self._kf,
                       self._mixed, self._ext, self._dirs, self._hist, self._five,
                       self._cand, self._tile_cand, self._fmap, THR_LUM, THR_RED)
            for kind in (0, 1):
                if self._tile_cand[:m, kind].any():
                    k.level_check(level, kind, lv, self._fmap, self._cand, self._integ,
                                  self._over, self._tiles, self._rejected)
            k.hold(level, lv, h, w, tiles, m, self._comp, self._psums, self._kf, self._mixed,
                   self._ext, self._dirs, self._five, self._cand, self._cons, self._tile_count,
                   THR_LUM, THR_RED, MARGIN_CHECK, MARGIN_AIM)
            self.held_regions += int(count.sum())
        for level in range(len(lv)):
            k.verify(level, lv, h, w, tiles, m, self._sums, self._psums, self._comp, self._kf,
                     self._mixed, self._ext, self._dirs, self._cons, self._tile_count,
                     THR_LUM, THR_RED, MARGIN_CHECK)
            self.frozen_regions += int(count.sum())
        changed = self._tile_changed
        crossed = self._tile_crossed
        k.finish(frame, self._prev_px, self._keep_px, self._lut, self._enc, lv, t, since, tiles,
                 m, self._kf, self._sums, self._ext, self._dirs, self._hist,
                 self._chunk_risk, self._chunk_mask, self._chunk_next, self._cons, self._cand,
                 self._ncand,
                 self._fmap, self._tiles, changed, crossed, THR_LUM, THR_RED)
        self.crossings += int(crossed[:m].sum())
        n_changed = int(changed[:m].sum())
        self.limited_blocks += n_changed
        return n_changed > 0
