"""The swarm: particle state, allocated once, stepped one fixed tick at a time.

    swarm = Swarm(settings)
    swarm.step(step_params)        # one tick: sort by cell, forces, integrate; no allocation
    swarm.x, swarm.y, swarm.energy, swarm.species ...   # read-only for renderers
    swarm.stats[STAT_SPEED] ...    # a few numbers for the audio texture
    swarm.state_hash()

Everything that changes the state comes from (settings, StepParams per tick), so the same seed
and the same parameters at the same ticks give the same bits whatever the thread count.
Particles are reordered by grid cell every tick: an index names a slot, not a particle.
"""
from __future__ import annotations

import hashlib
import logging
import math

import numba
import numpy as np

from ..parallel import in_pieces
from . import forces as F
from .flow import FlowLattice, field_blocks, flow_field
from . import touch_field
from .forces import bin_touches, count_bad_rows, reduce_blocks, step_particles, touch_near
from .neighbours import LANES, neighbour_pass, neighbour_pass_min_image
from .grid import GridSpec, assign_cells, counting_sort, expected_neighbours, gather_state
from .layout import interaction_factors, mosaic_grid, mosaic_homes
from .params import StepParams
from .settings import SimSettings

log = logging.getLogger(__name__)

# indices of Swarm.stats (float64), refreshed every tick
STAT_SPEED = 0        # mean speed, world/s
STAT_ENERGY = 1       # mean energy, 0..1
STAT_CLUSTER = 2      # mean neighbour count / what a uniform spread would give (1 = uniform)
STAT_NEIGHBOURS = 3   # mean number of neighbours within the radius
STAT_RESETS = 4       # particles reset this tick because their motion went non-finite (expect 0)
STAT_HOME = 5         # mean distance to the mosaic home, world units (small = coalesced)
N_STATS = 6

# species_stats[s] = (mean energy, mean speed) of species s: one voice per species
SPECIES_ENERGY = 0
SPECIES_SPEED = 1

TOUCH_BINS_MAX = 64   # near-map bins per axis at most (a bin is at least a touch's reach)
# Below this many particles a tick runs on one thread: starting and joining the threads of four
# parallel kernels costs more than it saves, and a thread that has to wait for a busy core
# stalls the whole tick. The bits are the same either way.
SERIAL_BELOW = 20_000

# Sane ranges for the per-tick scalars. The settings' ranges are narrower; the mood mapping
# may add to them, so only physical nonsense is clamped here. Non-finite values fall back to
# the setting and are counted in bad_params.
_LIMITS = {
    "life_strength": (0.0, 100.0), "alignment": (0.0, 50.0), "flow_strength": (0.0, 100.0),
    "flow_scale": (0.1, 50.0), "flow_speed": (0.0, 100.0), "mosaic_pull": (0.0, 200.0),
    "friction": (0.0, 1000.0), "max_speed": (1e-3, 50.0), "touch_strength": (0.0, 500.0),
    "touch_radius": (1e-3, 4.0), "pulse_strength": (0.0, 500.0), "pulse_speed": (1e-3, 50.0),
    "pulse_width": (1e-3, 4.0),
}


class Swarm:
    """The swarm of `settings.particles` particles in the aspect × 1 world.

    Public, read-only between ticks (float32 unless said): x, y (world units), vx, vy (world/s),
    energy (0..1), species (int32), target_x, target_y (each particle's mosaic home); n,
    species_count, aspect, radius, dt, tick; matrix (K×K float64, m[a, b]: pull of a towards b);
    mosaic_shape (columns, rows of the mosaic tiles); stats (STAT_* indices) and species_stats
    (K×2: SPECIES_ENERGY, SPECIES_SPEED means), refreshed every tick; bad_params and resets,
    counters of bad input. All arrays keep their identity for the swarm's life.
    """

    def __init__(self, settings: SimSettings):
        s = settings
        self.settings = s
        self.n = n = int(s.particles)
        self.species_count = k = int(s.species)
        self.aspect = float(s.aspect)
        self.radius = float(s.radius)
        self.wrap = s.boundary == "wrap"
        self.tick = 0
        # The flow's phase is summed tick by tick, not computed as 2π·speed·t: with t the
        # uptime, a change of speed (a crossfade, a /param glide) would jump the phase by
        # 2π·Δspeed·t, which after an hour is a new random swirl every tick of the fade.
        # float64: after a year at the top speed its rounding is still ~1e-8 rad.
        self.flow_phase = 0.0
        self.dt = 1.0 / s.tick_hz
        self.bad_params = 0          # non-finite StepParams scalars (replaced) and rows (skipped)
        self.resets = 0              # particles reset by the non-finite guard, all ticks
        self.matrix_u, self.matrix_v = interaction_factors(k, s.matrix_seed)
        self.matrix = self.matrix_u @ self.matrix_v.T      # K×K, m[a, b]: pull of a towards b
        self._kin = self.matrix_v.astype(np.float32)
        self.mosaic_shape = mosaic_grid(k, self.aspect, s.mosaic_tiles)   # (columns, rows)

        rng = np.random.default_rng(s.seed)
        species = (np.arange(n) % k).astype(np.int32)
        self.target_x, self.target_y = mosaic_homes(species, k, self.aspect, s.mosaic_tiles, rng)
        self.x = rng.uniform(0.0, self.aspect, n).astype(np.float32)
        self.y = rng.uniform(0.0, 1.0, n).astype(np.float32)
        self.vx = (rng.standard_normal(n) * 0.02).astype(np.float32)
        self.vy = (rng.standard_normal(n) * 0.02).astype(np.float32)
        self.energy = rng.uniform(0.0, 0.2, n).astype(np.float32)
        self.species = species
        self.flow = FlowLattice(self.aspect, rng)

        # the previous state in cell order, read by the kernels; what the neighbour loop reads is
        # padded (neighbours.LANES) and the padding stays zero
        pad = n + LANES
        self._xs = np.zeros(pad, np.float32)
        self._ys = np.zeros(pad, np.float32)
        self._vxs = np.zeros(pad, np.float32)
        self._vys = np.zeros(pad, np.float32)
        self._kins = np.zeros((3, pad), np.float32)
        self._k0, self._k1, self._k2 = self._kins        # views, made once
        self._es = np.empty(n, np.float32)
        self._sps = np.empty(n, np.int32)
        self._hxs = np.empty(n, np.float32)
        self._hys = np.empty(n, np.float32)
        # the neighbour pass's results, per particle in cell order
        self._nfx = np.empty(n, np.float32)
        self._nfy = np.empty(n, np.float32)
        self._nsvx = np.empty(n, np.float32)
        self._nsvy = np.empty(n, np.float32)
        self._nnb = np.empty(n, np.int32)
        # the flow at each particle, in its own pass before step_particles: there it vectorises
        self._flow_u = np.empty(n, np.float64)
        self._flow_v = np.empty(n, np.float64)
        self._xs_n = self._xs[:n]       # the particles without the padding, views made once
        self._ys_n = self._ys[:n]

        self.grid = GridSpec.for_world(self.aspect, self.radius)
        self._cell = np.empty(n, np.int32)
        self._perm = np.empty(n, np.int32)
        self._cell_start = np.zeros(self.grid.cells + 1, np.int32)
        self._cursor = np.zeros(self.grid.cells, np.int32)

        self._tnear = np.zeros((F.NEAR_SUB * TOUCH_BINS_MAX) ** 2, np.uint8)
        self._tfield = touch_field.allocate(self.aspect, k)
        # the exact path, for reaches too small for the grid: touches binned by bins >= a reach
        self._tbin_start = np.zeros(TOUCH_BINS_MAX * TOUCH_BINS_MAX + 1, np.int32)
        self._tbin_items = np.zeros(0, np.int32)
        self._tcell = np.zeros(0, np.int32)

        # one block of work per row of cells: its candidate runs and its partial statistics
        gy = self.grid.gy
        self._nblocks = gy
        self._runs = np.zeros((gy, 6, 2), np.int64)
        self._shifts = np.zeros((gy, 6, 2), np.float64)
        self._block_stats = np.zeros((gy, F.N_BLOCK_STATS), np.float64)
        self._block_species = np.zeros((gy, k, 2), np.float64)
        self._sums = np.zeros(F.N_BLOCK_STATS, np.float64)
        self._species_sums = np.zeros((k, 2), np.float64)
        self._species_n = np.maximum(np.bincount(species, minlength=k), 1).astype(np.float64)[:, None]
        self.stats = np.zeros(N_STATS, np.float64)
        self.species_stats = np.zeros((k, 2), np.float64)
        # neighbours a particle would have if the swarm were spread uniformly
        self.expected_neighbours = expected_neighbours(n, self.radius, self.aspect)

        self._prm = np.zeros(F.N_PRM, np.float64)
        self._iprm = np.zeros(F.N_IPRM, np.int64)
        self._fixed_prm()

    # what a running swarm cannot change: its arrays and grid are sized by these
    FIXED = ("particles", "species", "tick_hz", "seed", "aspect", "radius")

    def apply_settings(self, settings: SimSettings) -> None:
        """Take a scene's new [sim] settings while running (between ticks). The per-tick scalars
        come through StepParams; this applies the rest: repel, energy_decay, touch_others,
        boundary, matrix_seed (a new species matrix) and mosaic_tiles (new homes). A change to
        one of FIXED is a programming error: the caller must build a new Swarm."""
        old = self.settings
        changed = [k for k in self.FIXED if getattr(settings, k) != getattr(old, k)]
        if changed:
            raise ValueError(f"a running swarm cannot change {', '.join(changed)}: build a new Swarm")
        self.settings = settings
        self.wrap = settings.boundary == "wrap"
        if settings.matrix_seed != old.matrix_seed:
            self.matrix_u, self.matrix_v = interaction_factors(self.species_count, settings.matrix_seed)
            self.matrix = self.matrix_u @ self.matrix_v.T
            self._kin[:] = self.matrix_v
        if settings.mosaic_tiles != old.mosaic_tiles:
            # homes for the particles in their current slots, from the seed and the tiling alone
            rng = np.random.default_rng([settings.seed, settings.mosaic_tiles])
            hx, hy = mosaic_homes(self.species, self.species_count, self.aspect, settings.mosaic_tiles, rng)
            self.target_x[:] = hx
            self.target_y[:] = hy
            self.mosaic_shape = mosaic_grid(self.species_count, self.aspect, settings.mosaic_tiles)
        self._fixed_prm()

    def _fixed_prm(self) -> None:
        """The kernel parameters that come from the settings, not from StepParams."""
        s, prm, iprm, g = self.settings, self._prm, self._iprm, self.grid
        prm[F.P_DT] = self.dt
        prm[F.P_RADIUS] = self.radius
        prm[F.P_REPEL] = s.repel
        prm[F.P_W] = self.aspect
        prm[F.P_H] = 1.0
        prm[F.P_INV_CW] = g.inv_cw
        prm[F.P_INV_CH] = g.inv_ch
        prm[F.P_EDECAY] = math.exp(-s.energy_decay * self.dt)
        prm[F.P_TOUCH_OTHERS] = s.touch_others
        prm[F.P_TOUCH_CROWD] = F.TOUCH_CROWD * max(self.expected_neighbours, 1.0)
        prm[F.P_PULSE_RMAX] = 0.5 * math.hypot(self.aspect, 1.0)
        prm[F.P_XTOP] = float(np.nextafter(np.float32(self.aspect), np.float32(0.0)))
        prm[F.P_YTOP] = float(np.nextafter(np.float32(1.0), np.float32(0.0)))
        iprm[F.I_GX] = g.gx
        iprm[F.I_GY] = g.gy
        iprm[F.I_SUB] = g.sub
        iprm[F.I_WRAP] = 1 if self.wrap else 0
        # a wrapped world narrower than a run of columns, or under three rows, needs the nearest
        # image per pair: a slower kernel, kept out of the hot one
        narrow = self.wrap and (g.gx < 2 * g.sub + 1 or g.gy < 3)
        self._neighbour_pass = neighbour_pass_min_image if narrow else neighbour_pass

    def _bad(self, message: str, count: int = 1) -> None:
        before = self.bad_params
        self.bad_params += int(count)
        if before.bit_length() != self.bad_params.bit_length():   # at 1, 2, 4, 8 ...: never a flood
            log.warning("swarm: %s (%d bad inputs so far)", message, self.bad_params)

    def _scalar(self, p: StepParams, name: str) -> float:
        v = float(getattr(p, name))
        if not math.isfinite(v):
            self._bad(f"non-finite {name} = {v!r}, using the setting")
            v = float(getattr(self.settings, name))
        lo, hi = _LIMITS[name]
        return min(max(v, lo), hi)

    def _load(self, p: StepParams) -> None:
        prm, iprm = self._prm, self._iprm
        prm[F.P_LIFE] = self._scalar(p, "life_strength")
        prm[F.P_ALIGN] = self._scalar(p, "alignment")
        prm[F.P_FLOW] = self._scalar(p, "flow_strength")
        prm[F.P_MOSAIC] = self._scalar(p, "mosaic_pull")
        prm[F.P_DAMP] = math.exp(-self._scalar(p, "friction") * self.dt)
        prm[F.P_VMAX] = self._scalar(p, "max_speed")
        prm[F.P_TOUCH] = self._scalar(p, "touch_strength")
        prm[F.P_PULSE] = self._scalar(p, "pulse_strength")
        prm[F.P_PULSE_SPEED] = self._scalar(p, "pulse_speed")
        prm[F.P_PULSE_W] = self._scalar(p, "pulse_width")

        self.flow.update(self.flow_phase, self._scalar(p, "flow_scale"))
        self.flow_phase += 2.0 * math.pi * self._scalar(p, "flow_speed") * self.dt
        iprm[F.I_FLOW_NX] = self.flow.nx
        iprm[F.I_FLOW_NY] = self.flow.ny
        prm[F.P_FLOW_KX] = self.flow.kx
        prm[F.P_FLOW_KY] = self.flow.ky

        touch_r = self._scalar(p, "touch_radius")
        prm[F.P_TOUCH_R] = touch_r
        n_touch = min(max(int(p.n_touches), 0), p.touches.shape[0])
        # the touches as a grid the particles read (touch_field.py): a tick's cost stays
        # bounded however many phones touch at once; a few touches, or a reach too small for the
        # grid, are summed exactly, per particle, over the touches in its 3x3 bins
        grid = touch_field.use_grid(n_touch, touch_r, self.aspect)
        iprm[F.I_TF_GRID] = 1 if grid else 0
        reach = touch_r
        if grid:
            fx, fy = touch_field.field_shape(self.aspect, touch_r)
            iprm[F.I_TF_NX] = fx
            iprm[F.I_TF_NY] = fy
            prm[F.P_TF_INV_HX] = fx / self.aspect
            prm[F.P_TF_INV_HY] = float(fy)
            drawn, any_none, any_species = touch_field.rasterize(p.touches, n_touch, touch_r, self.wrap,
                                                                 self.aspect, 1.0, fx, fy, self._tfield)
            iprm[F.I_NTOUCH] = drawn
            iprm[F.I_TF_NONE] = 1 if any_none else 0
            iprm[F.I_TF_SPECIES] = 1 if any_species else 0
            # where the field can be non-zero: the reach and one cell diagonal (the interpolation)
            reach = touch_field.reach(touch_r, self.aspect, fx, fy)
        bin_w = max(reach, self.aspect / TOUCH_BINS_MAX, 1.0 / TOUCH_BINS_MAX)
        tgx = max(1, min(TOUCH_BINS_MAX, int(self.aspect / bin_w)))
        tgy = max(1, min(TOUCH_BINS_MAX, int(1.0 / bin_w)))
        iprm[F.I_TGX] = tgx
        iprm[F.I_TGY] = tgy
        prm[F.P_TB_INV_W] = tgx / self.aspect
        prm[F.P_TB_INV_H] = float(tgy)
        if not grid:
            if self._tbin_items.shape[0] < p.touches.shape[0]:
                # sized to the StepParams buffer once; a fixed StepParams never grows it again
                self._tbin_items = np.zeros(p.touches.shape[0], np.int32)
                self._tcell = np.zeros(p.touches.shape[0], np.int32)
            iprm[F.I_NTOUCH] = bin_touches(p.touches, n_touch, tgx, tgy, prm[F.P_TB_INV_W], prm[F.P_TB_INV_H],
                                           self._tbin_start, self._tcell, self._tbin_items)
        touch_near(p.touches, n_touch, tgx, tgy, prm[F.P_TB_INV_W], prm[F.P_TB_INV_H], self.wrap,
                   prm[F.P_W], prm[F.P_H], reach, self._tnear)
        n_pulse = min(max(int(p.n_pulses), 0), p.pulses.shape[0])
        iprm[F.I_NPULSE] = n_pulse
        # rows with NaN or infinity are skipped by the kernels; count them like bad scalars
        bad = (n_touch - iprm[F.I_NTOUCH]) + count_bad_rows(p.pulses, n_pulse)
        if bad:
            self._bad(f"{bad} touch or pulse rows with NaN or infinity skipped", bad)

    def step(self, p: StepParams) -> None:
        """One fixed tick of 1/tick_hz seconds: sort by cell, neighbour pass, outside forces and
        integration, statistics. Allocates nothing (after the first call with a given StepParams)."""
        if self.n >= SERIAL_BELOW:
            self._step(p)
            return
        threads = numba.get_num_threads()
        numba.set_num_threads(1)
        try:
            self._step(p)
        finally:
            numba.set_num_threads(threads)

    def _step(self, p: StepParams) -> None:
        self._load(p)
        g = self.grid
        assign_cells(self.x, self.y, g.gx, g.gy, g.inv_cw, g.inv_ch, self._cell)
        counting_sort(self._cell, self._cell_start, self._cursor, self._perm)
        gather_state(self._perm, self.x, self.y, self.vx, self.vy, self.energy, self.species,
                     self.target_x, self.target_y, self._kin, self._xs, self._ys, self._vxs,
                     self._vys, self._es, self._sps, self._hxs, self._hys, self._kins)
        prm = self._prm
        with in_pieces(g.gy):
            self._row_passes(p, g, prm)
        self.tick += 1
        self._update_stats()

    def _row_passes(self, p: StepParams, g, prm) -> None:
        if prm[F.P_FLOW] != 0.0:
            with in_pieces(field_blocks(self.n)):
                flow_field(self._xs_n, self._ys_n, self.flow.gx, self.flow.gy, self.flow.nx, self.flow.ny,
                           prm[F.P_FLOW_KX], prm[F.P_FLOW_KY], self._flow_u, self._flow_v)
        self._neighbour_pass(self._xs, self._ys, self._vxs, self._vys, self._k0, self._k1, self._k2,
                             self._sps, self.matrix_u, self._cell_start, g.gx, g.gy, g.sub, self.wrap,
                             self.aspect, 1.0, self.radius, prm[F.P_REPEL], prm[F.P_LIFE], self._runs,
                             self._shifts, self._nfx, self._nfy, self._nsvx, self._nsvy, self._nnb)
        step_particles(self._xs, self._ys, self._vxs, self._vys, self._es, self._sps, self._hxs, self._hys,
                       self._nfx, self._nfy, self._nsvx, self._nsvy, self._nnb, self._cell_start, prm,
                       self._iprm, self._flow_u, self._flow_v, p.touches, self._tbin_start, self._tbin_items,
                       self._tfield, self._tnear,
                       p.pulses, self.x, self.y, self.vx, self.vy, self.energy, self.species,
                       self.target_x, self.target_y, self._block_stats, self._block_species)

    def _update_stats(self) -> None:
        reduce_blocks(self._block_stats, self._block_species, self._nblocks, self._sums, self._species_sums)
        sums, st, n = self._sums, self.stats, self.n
        st[STAT_SPEED] = sums[F.B_SPEED] / n
        st[STAT_ENERGY] = sums[F.B_ENERGY] / n
        st[STAT_NEIGHBOURS] = sums[F.B_NEIGHBOURS] / n
        st[STAT_CLUSTER] = st[STAT_NEIGHBOURS] / max(self.expected_neighbours, 1e-9)
        st[STAT_RESETS] = sums[F.B_RESETS]
        st[STAT_HOME] = sums[F.B_HOME] / n
        self.resets += int(sums[F.B_RESETS])
        np.divide(self._species_sums, self._species_n, out=self.species_stats)

    def state_hash(self) -> str:
        """sha256 over the tick, the flow phase and every state array, in their current (cell) order."""
        h = hashlib.sha256()
        h.update(np.int64(self.tick).tobytes())
        h.update(np.float64(self.flow_phase).tobytes())
        for a in (self.x, self.y, self.vx, self.vy, self.energy, self.species, self.target_x, self.target_y):
            h.update(a.tobytes())
        return h.hexdigest()
