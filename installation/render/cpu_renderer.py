"""The numba CPU renderer: particles → HDR trails → bloom → tone-map → packed BGRA pixels.

Every buffer is allocated here, once; a frame only runs the kernels of `kernels.py` over them.
"""
from __future__ import annotations

import hashlib
import logging
import math
import time

import numba
import numpy as np

from ..parallel import in_pieces
from . import kernels
from .look import MAX_SPECIES, LookParams
from .plan import (LUMA, TONE_MAPS, WARM_TINT, bloom_plan, column_taps, curve_params, framing,
                   palette_linear, particle_gain, splat_footprint)
from .settings import RenderSettings

log = logging.getLogger(__name__)

_LOG_EVERY_S = 10.0
# Particles per chunk of the splat's skip test: small enough that a chunk of cell-ordered
# particles spans a few rows, large enough that the test costs little.
CHUNK = 128
# Bytes of HDR rows per band of the full-resolution pass: about a core's L2 cache (measured
# best at 1080p on a 1 MiB L2; smaller bands re-walk more particles, larger ones spill).
_BAND_BYTES = 768 * 1024


def _num(value, lo: float, hi: float, fallback: float) -> float:
    """A look value made safe: NaN or junk → fallback, anything else clamped into [lo, hi]."""
    try:
        v = float(value)
    except (TypeError, ValueError):
        return fallback
    if math.isnan(v):
        return fallback
    return min(max(v, lo), hi)


class CpuRenderer:
    """`base.Renderer` on the CPU. `render` returns the same (height, width) uint32 array
    every frame, overwritten by the next call."""

    # The kernel set a frame runs; `reference.ReferenceRenderer` swaps in the NumPy twins.
    kernels = kernels

    def __init__(self, settings: RenderSettings, species_count: int, aspect: float,
                 width: int | None = None, height: int | None = None):
        self.settings = settings
        self.width = int(width if width is not None else settings.width)
        self.height = int(height if height is not None else settings.height)
        if self.width < 1 or self.height < 1:
            raise ValueError(f"render size {self.width}x{self.height}: both sides must be at least 1 pixel")
        if settings.tone_map not in TONE_MAPS:
            raise ValueError(f"render.tone_map = {settings.tone_map!r}: choose one of {', '.join(TONE_MAPS)}")
        self.species_count = max(1, min(int(species_count), MAX_SPECIES))
        if not (aspect > 0 and math.isfinite(aspect)):
            raise ValueError(f"world aspect {aspect!r}: must be a positive number")
        w, h = self.width, self.height
        self._set_aspect(float(aspect))
        self._base = palette_linear(settings.palette, MAX_SPECIES)
        self._colours = np.zeros((MAX_SPECIES, 3), np.float32)
        self._warm = np.array(WARM_TINT, np.float32)
        self._luma = np.array(LUMA, np.float32)
        self._unit_gains = np.ones(MAX_SPECIES, np.float32)

        self._hdr = np.zeros((3, h, w), np.float32)       # full-resolution light, with trails
        self._set_bloom(bloom_plan(w, h, settings.bloom_radius))
        # a band of the full-resolution pass: its three HDR planes stay in a core's cache
        self._cache_rows = max(4, _BAND_BYTES // (12 * w))
        self._curve = np.array(curve_params(settings.tone_map, settings.exposure, settings.brightness),
                               np.float32)
        self._grow(0)
        self._out = np.full((h, w), kernels.ALPHA, np.uint32)
        self.frames = 0
        self.skipped_particles = 0     # broken particles (NaN, unknown species): not drawn
        self._last_warning = -math.inf

    def _set_bloom(self, plan) -> None:
        """The bloom's blur (plan.weights) and its low-resolution buffers, for a new plan.
        The buffers are allocated again only when the plan's scale factor changes (at most a
        few times in a glide of bloom_radius); the bloom's own trails then start afresh."""
        old = getattr(self, "bloom_plan", None)
        self.bloom_plan = plan
        if old is not None and (old.factor, old.low_height, old.low_width) == (plan.factor, plan.low_height,
                                                                                plan.low_width):
            return
        w = self.width
        self._inv_f = np.float32(1.0 / plan.factor)
        hl, wl = plan.low_height, plan.low_width
        self._low = np.zeros((3, hl, wl), np.float32)     # the same light averaged 1/f, with trails
        self._bright = np.zeros((3, hl, wl), np.float32)  # what blooms; then blurred both ways
        self._blurred = np.zeros((3, hl, wl), np.float32)  # blurred along the rows
        self._up = np.zeros((3, hl, w), np.float32)       # bloom rows at full width
        self._ix0, self._ix1, self._wx = column_taps(w, plan.factor, wl)
        # the small bloom source: a few bands per thread
        self._low_band_rows = max(1, -(-hl // (3 * numba.get_num_threads())))

    def set_settings(self, settings: RenderSettings) -> None:
        """A scene's look while running: palette, gains, threshold, tone curve and the bloom's
        radius follow; the render size stays as allocated."""
        if settings.tone_map not in TONE_MAPS:
            raise ValueError(f"render.tone_map = {settings.tone_map!r}: choose one of {', '.join(TONE_MAPS)}")
        if settings.bloom_radius != self.settings.bloom_radius:
            self._set_bloom(bloom_plan(self.width, self.height, settings.bloom_radius))
        self.settings = settings
        self._base = palette_linear(settings.palette, MAX_SPECIES)
        self._curve[:] = curve_params(settings.tone_map, settings.exposure, settings.brightness)
        self._set_aspect(self._aspect)

    def _set_aspect(self, aspect: float) -> None:
        self._aspect = aspect
        fr = framing(aspect, self.width, self.height)
        self._scale = np.float32(fr.scale)
        self._ox = np.float32(fr.ox)
        self._oy = np.float32(fr.oy)
        self._gain = np.float32(particle_gain(self.settings.point_gain, fr.scale))
        self._foot = splat_footprint(fr.scale)

    def _grow(self, n: int) -> None:
        """Per-particle scratch for at least n particles (allocated again only if the swarm
        outgrows it)."""
        cap = max(n, 1024)
        self._px = np.zeros(cap, np.float32)
        self._py = np.zeros(cap, np.float32)
        self._light = np.zeros((3, cap), np.float32)
        self._row = np.zeros(cap, np.int32)
        self._low_row = np.zeros(cap, np.int32)
        self._spans = np.zeros((-(-cap // CHUNK), 4), np.int32)

    def _band_rows(self, n: int) -> int:
        """Rows per band of the full-resolution pass. The frame does not depend on this choice
        (see kernels.splat_compose), only the speed: bands small enough to stay in a core's
        cache, unless the particles come unordered (chunks spanning much of the frame), when
        each band would walk most particles: then a few large bands."""
        chunks = -(-n // CHUNK)
        if chunks and self.kernels.mean_span(self._spans, chunks) > 4 * self._cache_rows:
            return -(-self.height // (3 * numba.get_num_threads()))
        return self._cache_rows

    def render(self, swarm, look: LookParams) -> np.ndarray:
        k_ = self.kernels
        s = self.settings
        aspect = _num(getattr(swarm, "aspect", self._aspect), 1e-3, 1e3, self._aspect)
        if aspect != self._aspect:
            self._set_aspect(aspect)
        x, y, vx, vy, energy = (_f32(swarm.x), _f32(swarm.y), _f32(swarm.vx), _f32(swarm.vy),
                                _f32(swarm.energy))
        species = swarm.species
        if not (isinstance(species, np.ndarray) and species.dtype == np.int32):
            species = np.asarray(species, np.int32)
        n = max(0, min(int(swarm.n), len(x), len(y), len(vx), len(vy), len(energy), len(species)))
        k = max(1, min(int(getattr(swarm, "species_count", self.species_count)), MAX_SPECIES))

        gains = look.species_gain
        if not (isinstance(gains, np.ndarray) and gains.dtype == np.float32 and gains.ndim == 1):
            gains = self._unit_gains if gains is None else np.asarray(gains, np.float32).ravel()
        k_.species_colours(self._base, k, np.float32(_num(look.warmth, -1.0, 1.0, 0.0)), self._warm,
                           self._luma, gains, self._colours)
        if n > len(self._px):
            self._grow(n)
        with in_pieces(-(-n // CHUNK)):
            bad = k_.particle_light(x, y, vx, vy, energy, species, n, self._colours, k, self._scale,
                                    self._ox, self._oy, self._gain, np.float32(s.energy_gain),
                                    np.float32(s.speed_gain), self._inv_f, self._px, self._py,
                                    self._light, self._row, self._low_row, CHUNK, self._spans, self._foot)
        if bad:
            self._count_bad(bad, k)
        decay = np.float32(_num(look.trail_decay, 0.0, 0.999, s.trail_decay))
        k_.bloom_rows(self._px, self._py, self._light, self._low_row, n, CHUNK, self._spans,
                      self._low, self._bright, self._blurred, self._inv_f,
                      np.float32(s.bloom_threshold), decay, self.bloom_plan.weights,
                      self._low_band_rows)
        k_.bloom_cols(self._blurred, self._bright, self._up, self.bloom_plan.weights, self._ix0,
                      self._ix1, self._wx, np.float32(_num(look.bloom, 0.0, 100.0, s.bloom)))
        curve = self._curve
        curve[0] = _num(look.exposure, 0.0, 1000.0, s.exposure)
        # blackout keeps splatting and decaying: the trails are current when the light returns
        curve[6] = 0.0 if look.blackout else _num(look.brightness, 0.0, 1.0, 0.0)
        band_rows = self._band_rows(n)
        with in_pieces(-(-self.height // band_rows)):
            k_.splat_compose(self._px, self._py, self._light, self._row, n, CHUNK, self._spans,
                             self._hdr, self._up, self._inv_f, curve, decay, self._out, band_rows,
                             self._foot)
        self.frames += 1
        return self._out

    def _count_bad(self, bad: int, k: int) -> None:
        self.skipped_particles += bad
        now = time.monotonic()
        if now - self._last_warning >= _LOG_EVERY_S:
            self._last_warning = now
            log.warning("renderer: skipped %d broken particles this frame (non-finite position, "
                        "velocity or energy, or a species outside 0..%d); %d so far",
                        bad, k - 1, self.skipped_particles)

    def frame_hash(self) -> str:
        return hashlib.sha256(self._out.view(np.uint8)).hexdigest()

    def reset(self) -> None:
        self._hdr.fill(0.0)
        self._low.fill(0.0)


def _f32(a) -> np.ndarray:
    # the engine hands float32 already; anything else is converted rather than compiled for
    return a if isinstance(a, np.ndarray) and a.dtype == np.float32 else np.asarray(a, np.float32)
