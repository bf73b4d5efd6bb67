"""The one engine both drivers run: state allocated once, one nogil kernel call per block.

`Engine.render(targets, out)` turns a copy of the published parameters into `out`
((frames, 2) float32), in chunks of `blocksize` frames so the real-time stream and the
offline renderer make the same samples whenever they are handed the same blocks. Every
chunk is checked for non-finite samples by plain (non-fastmath) code; a bad chunk is
replaced by silence, all synth state is reset and the event is counted.
"""
from __future__ import annotations

import dataclasses
import math

import numpy as np
from numba import njit

from . import params as P
from .loudness import (SHORT_TERM_S, kweight_coefficients, kweight_power, lufs_of, tp_push,
                       true_peak_filter, window_push)
from .master import (MS_BSUM, MS_CEIL, MS_COMP_GR_DB, MS_GUARD, MS_INIT, MS_LIM_E, MS_LIM_MIN,
                     MS_RIDE_DB, MS_RIDE_G, MS_SIZE, LIMIT_MARGIN_DB, compressor_block,
                     dc_volume_block, limiter_block, limiter_sizes, rider_block)
from .settings import AudioSettings
from .synth import (CF_BLOCK, CF_BRIGHT, CF_CEIL_DBTP, CF_COMP_RATIO, CF_COMP_THR, CF_CONSONANCE,
                    CF_GLIDE, CF_GRATE, CF_HGAIN, CF_LIM_LOOKAHEAD, CF_LIM_RELEASE, CF_LUFS,
                    CF_NPROG, CF_PORTA, CF_PROG, CF_QUIET_LUFS, CF_RIDE_ATT, CF_RIDE_REL, CF_ROOT,
                    CF_SIZE, CF_SR, CF_STEPS, CF_TEMPO_HI, CF_TEMPO_LO, CF_TENSION_CENTS, CF_TGAIN,
                    CF_VGAIN, DN_SIZE, DR_SIZE, DRONE_PARTIALS, GR_SIZE, GS_AGR, GS_ARO, GS_CLU,
                    GS_COUNT, GS_DEN, GS_ENE, GS_HIT_SERIAL, GS_INIT, GS_NACT, GS_QUIET, GS_SIZE,
                    GS_SPD, GS_TENSION, GS_TENSION_T, GS_VAL, GS_VOL, MAX_DRUMS, MAX_GRAINS,
                    MAX_PROG, MAX_TRIG, VS_SIZE, clock_steps, drone_block, drums_block,
                    glide_coef, grains_block, latch_bar, sine_table, start_hit, voices_block)

# counters (int64) and meters (float64) the kernel keeps; the drivers report them
C_CALLBACKS, C_UNDERFLOWS, C_CHUNKS, C_NONFINITE, C_HITS_DROPPED, C_GUARD, C_SAMPLES = range(7)
C_SIZE = 8
(M_LUFS, M_TRUE_PEAK_DB, M_TRUE_PEAK_MAX_DB, M_RIDE_DB, M_COMP_DB, M_LIMIT_DB, M_CEILING_LUFS,
 M_TP_HOLD, M_TP_HOLD_AGE) = range(9)
M_SIZE = 12

TENSION_DECAY_S = 2.5
TENSION_GLIDE_S = 0.08
SEED = 0x2545F491


def make_config(s: AudioSettings, samplerate: int) -> np.ndarray:
    cfg = np.zeros(CF_SIZE, np.float64)
    cfg[CF_SR] = samplerate
    cfg[CF_ROOT] = s.root_hz
    cfg[CF_STEPS] = max(1, int(round(7 * s.octaves)))
    cfg[CF_TEMPO_LO] = s.tempo_calm_bpm
    cfg[CF_TEMPO_HI] = s.tempo_excited_bpm
    cfg[CF_CONSONANCE] = s.consonance
    cfg[CF_TENSION_CENTS] = s.tension_cents
    cfg[CF_BRIGHT] = s.brightness
    cfg[CF_VGAIN] = s.voice_gain
    cfg[CF_TGAIN] = s.texture_gain
    cfg[CF_HGAIN] = s.hit_gain
    cfg[CF_GRATE] = s.grain_rate
    cfg[CF_GLIDE] = s.glide_s
    cfg[CF_PORTA] = s.portamento_s
    cfg[CF_COMP_THR] = s.compressor_threshold_db
    cfg[CF_COMP_RATIO] = s.compressor_ratio
    cfg[CF_LIM_LOOKAHEAD] = s.limiter_lookahead_ms
    cfg[CF_LIM_RELEASE] = s.limiter_release_ms
    cfg[CF_CEIL_DBTP] = s.ceiling_dbtp
    cfg[CF_LUFS] = s.lufs_ceiling
    cfg[CF_QUIET_LUFS] = s.quiet_lufs
    cfg[CF_RIDE_ATT] = s.ride_attack_s
    cfg[CF_RIDE_REL] = s.ride_release_s
    cfg[CF_BLOCK] = s.blocksize
    prog = s.progression[:MAX_PROG]
    cfg[CF_NPROG] = len(prog)
    cfg[CF_PROG:CF_PROG + len(prog)] = prog
    return cfg


@njit(nogil=True, cache=True)
def update_globals(target, gs, drums, cfg, counters, n):
    """Glide the crowd's mood and the swarm's texture; play new hits; move surge tension."""
    sr = cfg[CF_SR]
    if gs[GS_INIT] < 0.5:
        a = 1.0
    else:
        a = glide_coef(n, cfg[CF_GLIDE], sr)
    gs[GS_VAL] += (target[P.VALENCE] - gs[GS_VAL]) * a
    gs[GS_ARO] += (target[P.AROUSAL] - gs[GS_ARO]) * a
    gs[GS_AGR] += (target[P.AGREEMENT] - gs[GS_AGR]) * a
    gs[GS_ENE] += (target[P.ENERGY] - gs[GS_ENE]) * a
    gs[GS_COUNT] += (target[P.COUNT] - gs[GS_COUNT]) * a
    gs[GS_DEN] += (target[P.DENSITY] - gs[GS_DEN]) * a
    gs[GS_SPD] += (target[P.SPEED] - gs[GS_SPD]) * a
    gs[GS_CLU] += (target[P.CLUSTERING] - gs[GS_CLU]) * a
    gs[GS_VOL] += (target[P.VOLUME] - gs[GS_VOL]) * a
    gs[GS_QUIET] += (target[P.QUIET] - gs[GS_QUIET]) * a
    active = 0.0                     # voices present, a fading one counting in part
    for v in range(P.MAX_VOICES):
        active += target[P.VOICES + v * P.VOICE_FIELDS + P.V_ACTIVE]
    gs[GS_NACT] += (active - gs[GS_NACT]) * (1.0 if gs[GS_INIT] < 0.5 else glide_coef(n, 0.25, sr))
    if gs[GS_INIT] < 0.5:
        latch_bar(gs, cfg, 0)
        gs[GS_INIT] = 1.0

    serial = int(target[P.HIT_SERIAL])
    pending = (serial - int(gs[GS_HIT_SERIAL])) % P.HIT_SERIAL_MOD
    if pending > P.HIT_SERIAL_MOD // 2:
        pending = 0                  # the numbering went backwards (a fresh AudioParams): resync
    if pending > P.HIT_SLOTS:
        counters[C_HITS_DROPPED] += pending - P.HIT_SLOTS
        pending = P.HIT_SLOTS
    for k in range(pending):
        idx = (serial - pending + 1 + k) % P.HIT_SERIAL_MOD
        b = P.HITS + (idx % P.HIT_SLOTS) * P.HIT_FIELDS
        strength = target[b]
        if strength > 0.0:
            start_hit(drums, cfg, strength, target[b + 1])
            gs[GS_TENSION_T] = min(1.0, gs[GS_TENSION_T] + 0.5 * strength)
    gs[GS_HIT_SERIAL] = serial

    surge = min(max((gs[GS_ARO] * gs[GS_ENE] - 0.45) * 2.5, 0.0), 1.0)
    tt = gs[GS_TENSION_T] * math.exp(-n / (TENSION_DECAY_S * sr))
    gs[GS_TENSION_T] = max(tt, surge)
    gs[GS_TENSION] += (gs[GS_TENSION_T] - gs[GS_TENSION]) * glide_coef(n, TENSION_GLIDE_S, sr)


@njit(nogil=True, cache=True)
def all_finite(bus_l, bus_r, n) -> bool:
    # Deliberately plain code (no fastmath anywhere on this path): under fastmath the
    # compiler may assume NaN cannot exist and delete exactly this check.
    for i in range(n):
        if not (math.isfinite(bus_l[i]) and math.isfinite(bus_r[i])):
            return False
    return True


@njit(nogil=True, cache=True)
def flush_denormals(state):
    """Slowly decaying scalars (levels, detectors, tension) end up subnormal, and x86 runs
    subnormal arithmetic up to a hundred times slower; numba sets no flush-to-zero mode."""
    for i in range(state.shape[0]):
        if abs(state[i]) < 1e-30:
            state[i] = 0.0


@njit(nogil=True, cache=True)
def reset_state(cfg, synth, master, meter):
    """Back to silence after a non-finite chunk. The hit serial is kept (old hits must not
    replay) and so are the counters."""
    vs, gs, drone, grains, drums, rng, bus_l, bus_r, power, trig_off, trig_step = synth
    ms, kcoef, kstate_pre, ring_rider, acc_rider, phases, hist_l, hist_r, qv, qi, box, delay_l, delay_r = master
    kstate_out, ring_out, acc_out, mhist_l, mhist_r, mstate = meter
    serial = gs[GS_HIT_SERIAL]
    vs[:] = 0.0
    gs[:] = 0.0
    gs[GS_HIT_SERIAL] = serial
    drone[:] = 0.0
    grains[:] = 0.0
    drums[:] = 0.0
    rng[0] = 0x2545F491
    ms[:] = 0.0
    ms[MS_RIDE_G] = 1.0
    ms[MS_LIM_E] = 1.0
    ms[MS_LIM_MIN] = 1.0
    ms[MS_BSUM] = box.shape[0]
    box[:] = 1.0
    for arr in (kstate_pre, kstate_out):
        arr[:] = 0.0
    for arr in (ring_rider, acc_rider, ring_out, acc_out, hist_l, hist_r, mhist_l, mhist_r, delay_l, delay_r, mstate):
        arr[:] = 0.0
    qv[:] = 1.0
    qi[:] = 0


@njit(nogil=True, cache=True)
def render_kernel(target, out, underflow, cfg, table, synth, master, meter, counters, meters):
    """Fill out ((frames, 2) float32) from the targets, chunk by chunk."""
    vs, gs, drone, grains, drums, rng, bus_l, bus_r, power, trig_off, trig_step = synth
    ms, kcoef, kstate_pre, ring_rider, acc_rider, phases, hist_l, hist_r, qv, qi, box, delay_l, delay_r = master
    kstate_out, ring_out, acc_out, mhist_l, mhist_r, mstate = meter
    counters[C_CALLBACKS] += 1
    counters[C_UNDERFLOWS] += underflow
    sr = cfg[CF_SR]
    block = int(cfg[CF_BLOCK])
    total = out.shape[0]
    ceiling = 10.0 ** (cfg[CF_CEIL_DBTP] / 20.0)
    limit_target = 10.0 ** ((cfg[CF_CEIL_DBTP] - LIMIT_MARGIN_DB) / 20.0)
    rel_coef = 1.0 - math.exp(-1.0 / (cfg[CF_LIM_RELEASE] * 1e-3 * sr))
    window = ring_out.shape[0]
    hold_s = SHORT_TERM_S * sr
    start = 0
    while start < total:
        n = min(block, total - start)
        bus_l[:n] = 0.0
        bus_r[:n] = 0.0
        update_globals(target, gs, drums, cfg, counters, n)
        ntrig = clock_steps(gs, cfg, n, trig_off, trig_step)
        voices_block(target, P.VOICES, vs, gs, cfg, table, n, trig_off, trig_step, ntrig, bus_l, bus_r)
        drone_block(gs, cfg, table, drone, n, bus_l, bus_r)
        grains_block(gs, cfg, table, grains, rng, n, bus_l, bus_r)
        drums_block(drums, cfg, table, rng, n, bus_l, bus_r)

        glide_a = 1.0 if ms[MS_INIT] < 0.5 else glide_coef(n, cfg[CF_GLIDE], sr)
        dc_volume_block(ms, target[P.VOLUME], glide_a, sr, n, bus_l, bus_r)
        compressor_block(ms, cfg[CF_COMP_THR], cfg[CF_COMP_RATIO], sr, n, bus_l, bus_r)
        ceiling_lufs = cfg[CF_LUFS] + (cfg[CF_QUIET_LUFS] - cfg[CF_LUFS]) * gs[GS_QUIET]
        rider_block(ms, ceiling_lufs, cfg[CF_RIDE_ATT], cfg[CF_RIDE_REL], kcoef, kstate_pre, power,
                    ring_rider, acc_rider, sr, n, bus_l, bus_r)
        ms[MS_INIT] = 1.0
        limiter_block(ms, limit_target, ceiling, rel_coef, phases, hist_l, hist_r, qv, qi, box,
                      delay_l, delay_r, n, bus_l, bus_r)

        # meters of what leaves the engine
        kweight_power(bus_l, bus_r, n, kcoef, kstate_out, power)
        window_push(power, n, ring_out, acc_out)
        taps = phases.shape[1]
        pos = int(mstate[0])
        peak = 0.0
        for i in range(n):
            p = max(tp_push(bus_l[i], mhist_l, pos, phases), tp_push(bus_r[i], mhist_r, pos, phases))
            if p > peak:
                peak = p
            pos += 1
            if pos == taps:
                pos = 0
        mstate[0] = pos

        if all_finite(bus_l, bus_r, n) and math.isfinite(ms[MS_RIDE_G]) and math.isfinite(ms[MS_BSUM]):
            for i in range(n):
                out[start + i, 0] = bus_l[i]
                out[start + i, 1] = bus_r[i]
            peak_db = 20.0 * math.log10(max(peak, 1e-10))
            if peak_db >= meters[M_TP_HOLD] or meters[M_TP_HOLD_AGE] > hold_s:
                meters[M_TP_HOLD] = peak_db
                meters[M_TP_HOLD_AGE] = 0.0
            else:
                meters[M_TP_HOLD_AGE] += n
            if peak_db > meters[M_TRUE_PEAK_MAX_DB] or counters[C_CHUNKS] == 0:
                meters[M_TRUE_PEAK_MAX_DB] = peak_db
        else:
            for i in range(n):
                out[start + i, 0] = 0.0
                out[start + i, 1] = 0.0
            counters[C_NONFINITE] += 1
            reset_state(cfg, synth, master, meter)
        flush_denormals(gs)
        flush_denormals(ms)
        counters[C_CHUNKS] += 1
        counters[C_SAMPLES] += n
        start += n
    counters[C_GUARD] = int(ms[MS_GUARD])
    meters[M_LUFS] = lufs_of(acc_out[0], window)
    meters[M_TRUE_PEAK_DB] = meters[M_TP_HOLD]
    meters[M_RIDE_DB] = ms[MS_RIDE_DB]
    meters[M_COMP_DB] = ms[MS_COMP_GR_DB]
    meters[M_LIMIT_DB] = 20.0 * math.log10(max(ms[MS_LIM_MIN], 1e-10))
    meters[M_CEILING_LUFS] = ms[MS_CEIL]


class Engine:
    """The symphony's state and its kernel. Owned by one thread: the audio callback, or the
    offline driver's caller. Other threads read `stats()` (scalars only)."""

    def __init__(self, settings: AudioSettings, samplerate: int | None = None, *, warm: bool = True):
        from .jitcache import ensure_fresh_cache
        ensure_fresh_cache()
        self.settings = settings
        self.samplerate = int(samplerate or settings.samplerate)
        sr = self.samplerate
        block = settings.blocksize
        self.cfg = make_config(settings, sr)
        self.table = sine_table()
        self.synth = (
            np.zeros((P.MAX_VOICES, VS_SIZE)),          # vs
            np.zeros(GS_SIZE),                          # gs
            np.zeros((DRONE_PARTIALS, DN_SIZE)),        # drone
            np.zeros((MAX_GRAINS, GR_SIZE)),            # grains
            np.zeros((MAX_DRUMS, DR_SIZE)),             # drums
            np.zeros(1, np.int64),                      # rng
            np.zeros(block), np.zeros(block),           # buses
            np.zeros(block),                            # power scratch
            np.zeros(MAX_TRIG, np.int64), np.zeros(MAX_TRIG, np.int64),
        )
        phases = true_peak_filter(4)
        taps = phases.shape[1]
        box, hold, delay = limiter_sizes(settings.limiter_lookahead_ms, sr)
        window = int(round(SHORT_TERM_S * sr))
        self.latency_frames = delay
        self.master = (
            np.zeros(MS_SIZE),                          # ms
            kweight_coefficients(sr),
            np.zeros((2, 2, 4)),                        # K-weighting state before the rider
            np.zeros(window), np.zeros(2),              # the rider's 3 s window and its sum
            phases,
            np.zeros(2 * taps), np.zeros(2 * taps),     # limiter's interpolator histories
            np.ones(hold + 1), np.zeros(hold + 1, np.int64),   # min-hold queue
            np.ones(box),                               # gain smoothing box
            np.zeros(delay), np.zeros(delay),           # look-ahead delay
        )
        self.meter = (
            np.zeros((2, 2, 4)),
            np.zeros(window), np.zeros(2),
            np.zeros(2 * taps), np.zeros(2 * taps),
            np.zeros(2),
        )
        self.counters = np.zeros(C_SIZE, np.int64)
        self.meters = np.zeros(M_SIZE)
        self.meters[[M_LUFS, M_TRUE_PEAK_DB, M_TRUE_PEAK_MAX_DB, M_TP_HOLD]] = -200.0
        reset_state(self.cfg, self.synth, self.master, self.meter)
        if warm:
            self._warm_up()

    def _warm_up(self) -> None:
        """Compile (or load from cache) before any real-time thread calls in."""
        scratch = Engine(self.settings, self.samplerate, warm=False)
        scratch.render(P.AudioParams().data, np.zeros((min(64, self.settings.blocksize), 2), np.float32))

    def render(self, target: np.ndarray, out: np.ndarray, underflow: bool = False) -> None:
        """out: (frames, 2) float32, C-contiguous; target: a mailbox copy (params.SIZE float32)."""
        render_kernel(target, out, 1 if underflow else 0, self.cfg, self.table, self.synth,
                      self.master, self.meter, self.counters, self.meters)

    def set_settings(self, settings: AudioSettings) -> None:
        """New music and bus settings from the next block on (a scene change). The sample
        rate, block size and limiter look-ahead stay as opened. The new array replaces the
        old one whole, so the audio thread sees one or the other, never a mix."""
        fixed = dict(samplerate=self.settings.samplerate, blocksize=self.settings.blocksize,
                     limiter_lookahead_ms=self.settings.limiter_lookahead_ms)
        self.settings = dataclasses.replace(settings, **fixed)
        self.cfg = make_config(self.settings, self.samplerate)

    def reset(self) -> None:
        reset_state(self.cfg, self.synth, self.master, self.meter)

    def stats(self) -> dict:
        c, m = self.counters, self.meters
        return {
            "audio_callbacks": int(c[C_CALLBACKS]),
            "audio_underflows": int(c[C_UNDERFLOWS]),
            "nonfinite_blocks": int(c[C_NONFINITE]),
            "audio_hits_dropped": int(c[C_HITS_DROPPED]),
            "loudness_guard_chunks": int(c[C_GUARD]),
            "audio_seconds": float(c[C_SAMPLES]) / self.samplerate,
            "lufs": round(float(m[M_LUFS]), 2),
            "true_peak_db": round(float(m[M_TRUE_PEAK_DB]), 2),
            "true_peak_max_db": round(float(m[M_TRUE_PEAK_MAX_DB]), 2),
            "loudness_ceiling_lufs": round(float(m[M_CEILING_LUFS]), 2),
            "loudness_ride_db": round(float(m[M_RIDE_DB]), 2),
            "compressor_db": round(float(m[M_COMP_DB]), 2),
            "limiter_db": round(float(m[M_LIMIT_DB]), 2),
        }
