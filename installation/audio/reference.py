"""Plain NumPy twins of the audio kernels: the tests' oracle, never used at run time.

Each `*_ref` function takes the same state arrays as its kernel (copies, in the tests) and
computes the same thing another way: across voices / partials / grains as NumPy vectors
instead of one at a time, windows and minima by slicing instead of running sums and
queues, filters sample by sample in Python. `render_ref` chains them exactly as the engine
chains the kernels, so a whole block of the symphony can be checked against it.
"""
from __future__ import annotations

import math

import numpy as np

from . import params as P
from . import synth as S
from .loudness import LOUDNESS_OFFSET
from .master import (CATCH_OVER_DB, CATCH_S, CEILING_SLEW_DB_S, COMP_ATTACK_S, COMP_KNEE_DB, COMP_RELEASE_S,
                     DC_HZ, DETECTOR_RISE_S, DETECTOR_S, FAST_OVER_DB, GUARD_MARGIN_DB, GUARD_SPREAD_S, LIMIT_MARGIN_DB,
                     RIDE_MARGIN_DB)
from .music import HYSTERESIS, MODES, N_MODES
from .settings import FM_TOP_PARTIAL

# ---------------------------------------------------------------- music


def mode_index_ref(valence):
    v = np.clip(np.asarray(valence, np.float64), -1.0, 1.0)
    return np.floor((v + 1.0) * 0.5 * (N_MODES - 1) + 0.5).astype(np.int64)


def is_chord_tone_ref(degree, chord_root):
    return np.isin((np.asarray(degree) - chord_root) % 7, (0, 2, 4))


def quantise_degree_ref(position, steps, chord_root, consonant, current):
    p = min(max(float(position), 0.0), float(steps))
    if current >= 0 and abs(p - current) < 0.5 + HYSTERESIS and (not consonant or is_chord_tone_ref(current, chord_root)):
        return int(current)
    cands = np.arange(0, steps + 3)
    if consonant:
        cands = cands[is_chord_tone_ref(cands, chord_root)]
    return int(cands[np.argmin(np.abs(cands - p))])      # argmin: the lower one on a tie


def degree_semitones_ref(degree, mode):
    degree = np.asarray(degree)
    return 12 * (degree // 7) + MODES[mode][degree % 7]


def hash01_ref(n: int) -> float:
    x = (int(n) * 0x9E3779B1 + 0x7F4A7C15) & 0xFFFFFFFF
    x ^= x >> 16
    x = (x * 0x85EBCA6B) & 0xFFFFFFFF
    x ^= x >> 13
    x = (x * 0xC2B2AE35) & 0xFFFFFFFF
    x ^= x >> 16
    return x / 4294967296.0


# ---------------------------------------------------------------- params


def sanitize_ref(src, lo, hi, default):
    bad = int(np.count_nonzero(~np.isfinite(src)))
    return np.clip(np.where(np.isfinite(src), src, default), lo, hi).astype(np.float32), bad


# ---------------------------------------------------------------- small pieces


def table_sin_ref(table, phase):
    x = np.asarray(phase, np.float64) * S.TABLE_N
    i = np.minimum(x.astype(np.int64), S.TABLE_N - 1)
    f = x - i
    return table[i] + f * (table[i + 1] - table[i])


def pan_gains_ref(pan):
    a = (np.clip(pan, -1.0, 1.0) + 1.0) * 0.25 * math.pi
    return np.cos(a), np.sin(a)


def xorshift_ref(state: list) -> float:
    x = state[0]
    x ^= (x << 13) & 0xFFFFFFFF
    x ^= x >> 17
    x ^= (x << 5) & 0xFFFFFFFF
    state[0] = x
    return x / 4294967296.0


def glide_ref(n, seconds, sr):
    return 1.0 - math.exp(-n / (seconds * sr))


# ---------------------------------------------------------------- loudness


def kweight_ref(x, coef, state):
    """x: (n, 2). Returns per-sample power sum over channels; advances state like the kernel."""
    x = np.asarray(x, np.float64)
    power = np.zeros(x.shape[0])
    for ch in range(2):
        s = state[ch].reshape(-1).copy()
        y = np.empty(x.shape[0])
        for i, v in enumerate(x[:, ch]):
            y1 = coef[0, 0] * v + coef[0, 1] * s[0] + coef[0, 2] * s[1] - coef[0, 3] * s[2] - coef[0, 4] * s[3]
            s[1], s[0], s[3], s[2] = s[0], v, s[2], y1
            y2 = coef[1, 0] * y1 + coef[1, 1] * s[4] + coef[1, 2] * s[5] - coef[1, 3] * s[6] - coef[1, 4] * s[7]
            s[5], s[4], s[7], s[6] = s[4], y1, s[6], y2
            y[i] = y2
        s[np.abs(s) < 1e-30] = 0.0
        state[ch] = s.reshape(2, 4)
        power += y * y
    return power


def short_term_lufs_ref(x, samplerate, coef):
    """BS.1770 short-term loudness of the last 3 s of x ((n, 2), silence before it)."""
    power = kweight_ref(x, coef, np.zeros((2, 2, 4)))
    w = int(round(3.0 * samplerate))
    ms = power[-w:].sum() / w
    return LOUDNESS_OFFSET + 10 * math.log10(ms) if ms > 1e-20 else -200.0


def true_peak_ref(x, phases):
    """Per input sample n: max over phases of |interpolated value| of the interval the
    streaming estimator reports at n (zero history before the signal)."""
    x = np.asarray(x, np.float64)
    out = np.zeros(len(x))
    for k in range(phases.shape[0]):
        out = np.maximum(out, np.abs(np.convolve(x, phases[k])[:len(x)]))
    return out


# ---------------------------------------------------------------- master bus


def dc_volume_ref(ms, vol_target, glide_a, sr, x):
    from .master import MS_DC_XL, MS_DC_XR, MS_DC_YL, MS_DC_YR, MS_VOL
    r = math.exp(-2.0 * math.pi * DC_HZ / sr)
    n = len(x)
    out = np.empty_like(x, dtype=np.float64)
    prev_x = np.array([ms[MS_DC_XL], ms[MS_DC_XR]])
    prev_y = np.array([ms[MS_DC_YL], ms[MS_DC_YR]])
    v0 = ms[MS_VOL]
    v1 = v0 + (vol_target - v0) * glide_a
    for i in range(n):
        y = x[i] - prev_x + r * prev_y
        prev_x, prev_y = x[i].astype(np.float64), y
        out[i] = y * (v0 + (v1 - v0) * (i + 1) / n)
    ms[MS_DC_XL], ms[MS_DC_XR] = prev_x
    ms[MS_DC_YL], ms[MS_DC_YR] = np.where(np.abs(prev_y) > 1e-30, prev_y, 0.0)
    ms[MS_VOL] = v1
    return out


def compressor_ref(ms, threshold_db, ratio, sr, x):
    from .master import MS_COMP_ENV, MS_COMP_GR_DB
    att = 1.0 - math.exp(-1.0 / (COMP_ATTACK_S * sr))
    rel = 1.0 - math.exp(-1.0 / (COMP_RELEASE_S * sr))
    env = ms[MS_COMP_ENV]
    out = np.empty_like(x, dtype=np.float64)
    gr = 0.0
    for i in range(len(x)):
        lvl = np.abs(x[i]).max()
        env += (lvl - env) * (att if lvl > env else rel)
        over = 20 * math.log10(max(env, 1e-9)) - threshold_db
        # the soft knee written as one expression: 0 below, quadratic inside, linear above
        t = min(max(over + COMP_KNEE_DB / 2, 0.0), COMP_KNEE_DB)
        gr = (1 / ratio - 1) * (t * t / (2 * COMP_KNEE_DB) + max(over - COMP_KNEE_DB / 2, 0.0))
        out[i] = x[i] * 10 ** (gr / 20)
    ms[MS_COMP_ENV] = env if env > 1e-30 else 0.0
    ms[MS_COMP_GR_DB] = gr
    return out


def ride_gain_ref(g0, g_ride, budget, power):
    """Largest g1 <= g_ride whose ramp keeps the chunk's energy within budget: by bisection
    on the energy itself (the kernel solves the quadratic)."""
    n = len(power)
    w = np.arange(1, n + 1) / n

    def energy(g1):
        return float(np.sum((g0 + (g1 - g0) * w) ** 2 * power))

    if energy(g_ride) <= budget:
        return g_ride
    if energy(0.0) > budget:
        return 0.0
    lo, hi = 0.0, g_ride
    for _ in range(80):
        mid = 0.5 * (lo + hi)
        lo, hi = (mid, hi) if energy(mid) <= budget else (lo, mid)
    return lo


def limiter_ref(x, target, ceiling, release_ms, lookahead_ms, sr, phases):
    """The look-ahead true-peak limiter over a whole signal at once, from fresh state:
    minima and means by slicing."""
    from .master import limiter_sizes
    box, hold, delay = limiter_sizes(lookahead_ms, sr)
    peak = np.maximum(true_peak_ref(x[:, 0], phases), true_peak_ref(x[:, 1], phases))
    r = np.where(peak <= target, 1.0, target / np.maximum(peak, 1e-300))
    n = len(x)
    held = np.array([r[max(0, i - hold + 1):i + 1].min() for i in range(n)])
    rel = 1.0 - math.exp(-1.0 / (release_ms * 1e-3 * sr))
    e = np.empty(n)
    prev = 1.0
    for i in range(n):
        prev = min(held[i], prev + (1.0 - prev) * rel)
        e[i] = prev
    padded = np.concatenate([np.ones(box - 1), e])
    g = np.array([padded[i:i + box].mean() for i in range(n)])
    delayed = np.concatenate([np.zeros((delay, 2)), x])[:n]
    return np.clip(delayed * g[:, None], -ceiling, ceiling), g


# ---------------------------------------------------------------- instruments


def clock_ref(gs, cfg, n):
    """Step offsets and numbers in this chunk; latches bars into gs like the kernel."""
    sr = cfg[S.CF_SR]
    bpm = cfg[S.CF_TEMPO_LO] + (cfg[S.CF_TEMPO_HI] - cfg[S.CF_TEMPO_LO]) * gs[S.GS_ARO]
    inc = bpm / 60.0 * 4.0 / sr
    frac, step = gs[S.GS_STEP_FRAC], int(gs[S.GS_STEP])
    offs, steps = [], []
    for s in range(n):
        frac += inc
        if frac >= 1.0:
            frac -= 1.0
            step += 1
            if len(offs) < S.MAX_TRIG:
                offs.append(s)
                steps.append(step)
            if step % 16 == 0:
                latch_ref(gs, cfg, step)
    gs[S.GS_STEP_FRAC], gs[S.GS_STEP] = frac, step
    return offs, steps


def latch_ref(gs, cfg, step):
    nprog = int(cfg[S.CF_NPROG])
    gs[S.GS_MODE] = int(mode_index_ref(gs[S.GS_VAL]))
    gs[S.GS_CHORD] = int(cfg[S.CF_PROG + (step // 16) % nprog]) - 1


def voice_fires_ref(voice, species, x, arousal, energy, step):
    s16 = step % 16
    sub = 4 if arousal < 0.33 else (2 if arousal < 0.66 else 1)
    if s16 % sub:
        return False
    local = (s16 - int(min(max(x, 0.0), 0.999) * 16.0)) % 16
    return local == 0 or hash01_ref(voice * 131 + int(species) * 17 + local) < 0.2 + 0.6 * energy


def voice_frequency_ref(cfg, degree, mode, voice, tension):
    semis = degree_semitones_ref(degree, mode)
    sign = 1.0 if voice % 2 == 0 else -1.0
    cents = sign * tension * cfg[S.CF_TENSION_CENTS] * (0.5 + 0.5 * hash01_ref(voice + 7919))
    f = cfg[S.CF_ROOT] * 2.0 ** ((semis + cents / 100.0) / 12.0)
    top = cfg[S.CF_SR] * (0.5 / FM_TOP_PARTIAL)
    while f > top:
        f *= 0.5
    return f


def voices_ref(target, vs, gs, cfg, table, n, offs, steps):
    """All voices at once: per-voice decisions first, then one loop over samples with the
    voices as a NumPy vector."""
    sr = cfg[S.CF_SR]
    a = glide_ref(n, cfg[S.CF_GLIDE], sr)
    porta = glide_ref(n, cfg[S.CF_PORTA], sr)
    nsteps = int(cfg[S.CF_STEPS])
    consonant = gs[S.GS_AGR] >= cfg[S.CF_CONSONANCE]
    chord, mode, tension = int(gs[S.GS_CHORD]), int(gs[S.GS_MODE]), gs[S.GS_TENSION]
    ratio = 1.0 + 0.5 * tension
    norm = cfg[S.CF_VGAIN] / math.sqrt(max(gs[S.GS_NACT], 1.0))
    tv = target[P.VOICES:].reshape(P.MAX_VOICES, P.VOICE_FIELDS).astype(np.float64)
    presence = tv[:, P.V_ACTIVE]
    active = presence > 0.0
    was = vs[:, S.VS_ACTIVE] > 0.5
    stage = vs[:, S.VS_STAGE].astype(np.int64)
    run = ~(~active & (stage == S.STAGE_OFF))
    vs[~run, S.VS_ACTIVE] = 0.0
    onset = run & active & ~was
    for v in np.flatnonzero(onset):
        deg = quantise_degree_ref(tv[v, P.V_Y] * nsteps, nsteps, chord, consonant, -1)
        vs[v, S.VS_DEGREE] = deg
        if stage[v] == S.STAGE_OFF:
            vs[v, S.VS_FREQ] = voice_frequency_ref(cfg, deg, mode, v, tension)
            vs[v, S.VS_AROUSAL] = tv[v, P.V_AROUSAL]
            vs[v, S.VS_ENERGY] = tv[v, P.V_ENERGY]
            gl, gr = pan_gains_ref(tv[v, P.V_PAN])
            vs[v, S.VS_PANL], vs[v, S.VS_PANR] = gl, gr
            vs[v, S.VS_AMP] = norm * presence[v] * (0.35 + 0.65 * tv[v, P.V_ENERGY])
            vs[v, S.VS_INDEX] = cfg[S.CF_BRIGHT] * (0.15 + 2.6 * tv[v, P.V_AROUSAL])
            vs[v, S.VS_PC] = vs[v, S.VS_PM] = 0.0
    stage = np.where(onset, S.STAGE_ATTACK, np.where(run & was & ~active, S.STAGE_RELEASE, stage))
    vs[run, S.VS_ACTIVE] = active[run].astype(np.float64)
    vs[run, S.VS_X] = tv[run, P.V_X]

    aro = vs[:, S.VS_AROUSAL] + (tv[:, P.V_AROUSAL] - vs[:, S.VS_AROUSAL]) * a
    ene = vs[:, S.VS_ENERGY] + (tv[:, P.V_ENERGY] - vs[:, S.VS_ENERGY]) * a
    amp0 = vs[:, S.VS_AMP].copy()
    amp1 = amp0 + (norm * presence * (0.35 + 0.65 * ene) - amp0) * a
    glt, grt = pan_gains_ref(tv[:, P.V_PAN])
    gl0, gr0 = vs[:, S.VS_PANL].copy(), vs[:, S.VS_PANR].copy()
    gl1, gr1 = gl0 + (glt - gl0) * a, gr0 + (grt - gr0) * a
    index0 = vs[:, S.VS_INDEX].copy()
    index1 = cfg[S.CF_BRIGHT] * (0.15 + 2.6 * aro)
    f0 = vs[:, S.VS_FREQ].copy()
    ft = f0.copy()
    for v in np.flatnonzero(run & active):
        deg = quantise_degree_ref(tv[v, P.V_Y] * nsteps, nsteps, chord, consonant, int(vs[v, S.VS_DEGREE]))
        vs[v, S.VS_DEGREE] = deg
        ft[v] = voice_frequency_ref(cfg, deg, mode, v, tension)
    f1 = np.where(f0 > 0.0, f0 * (ft / np.where(f0 > 0, f0, 1.0)) ** porta, ft)
    sustain = 0.7 + (0.15 - 0.7) * aro
    att_inc = 1.0 / ((0.25 + (0.004 - 0.25) * aro) * sr)
    dec = np.exp(-1.0 / ((1.5 + (0.12 - 1.5) * aro) * sr))
    rel = np.exp(-6.907755 / ((2.5 + (0.6 - 2.5) * aro) * sr))
    # retrigger matrix: which voice restarts its attack at which sample
    trig = np.zeros((n, P.MAX_VOICES), bool)
    for v in np.flatnonzero(run & active):
        for off, st in zip(offs, steps):
            if voice_fires_ref(v, tv[v, P.V_SPECIES], tv[v, P.V_X], aro[v], ene[v], st):
                trig[off, v] = True

    env = vs[:, S.VS_ENV].copy()
    pc, pm = vs[:, S.VS_PC].copy(), vs[:, S.VS_PM].copy()
    out_l = np.zeros(n)
    out_r = np.zeros(n)
    for s in range(n):
        stage = np.where(trig[s], S.STAGE_ATTACK, stage)
        att = stage == S.STAGE_ATTACK
        env = np.where(att, env + att_inc, env)
        done = att & (env >= 1.0)
        env = np.where(done, 1.0, env)
        sus = stage == S.STAGE_SUSTAIN
        env = np.where(sus, sustain + (env - sustain) * dec, env)
        rls = stage == S.STAGE_RELEASE
        env = np.where(rls, env * rel, env)
        off = rls & (env < 1e-5)
        env = np.where(off, 0.0, env)
        stage = np.where(done, S.STAGE_SUSTAIN, np.where(off, S.STAGE_OFF, stage))
        w = (s + 1) * (1.0 / n)
        inc = (f0 + (f1 - f0) * w) / sr
        pc = pc + inc
        pc = np.where(pc >= 1.0, pc - 1.0, pc)
        pm = pm + inc * ratio
        pm = np.where(pm >= 1.0, pm - np.floor(pm), pm)
        mod = table_sin_ref(table, pm) * (index0 + (index1 - index0) * w) * (0.4 + 0.6 * env) / S.TWO_PI
        ph = pc + mod
        val = table_sin_ref(table, ph - np.floor(ph)) * env * (amp0 + (amp1 - amp0) * w)
        val = np.where(run, val, 0.0)
        out_l[s] = np.sum(val * (gl0 + (gl1 - gl0) * w))
        out_r[s] = np.sum(val * (gr0 + (gr1 - gr0) * w))
    for col, arr in ((S.VS_ENV, env), (S.VS_STAGE, stage), (S.VS_PC, pc), (S.VS_PM, pm), (S.VS_FREQ, f1),
                     (S.VS_AMP, amp1), (S.VS_PANL, gl1), (S.VS_PANR, gr1), (S.VS_INDEX, index1),
                     (S.VS_AROUSAL, aro), (S.VS_ENERGY, ene)):
        vs[run, col] = arr[run]
    return out_l, out_r


def drone_ref(gs, cfg, table, drone, n):
    sr = cfg[S.CF_SR]
    a = glide_ref(n, cfg[S.CF_GLIDE], sr)
    ft = 0.5 * cfg[S.CF_ROOT] * 2.0 ** (degree_semitones_ref(int(gs[S.GS_CHORD]), int(gs[S.GS_MODE])) / 12.0)
    f0 = gs[S.GS_DRONE_F] if gs[S.GS_DRONE_F] > 0.0 else ft
    f1 = f0 * (ft / f0) ** glide_ref(n, 0.3, sr)
    gs[S.GS_DRONE_F] = f1
    den, spd, clu = gs[S.GS_DEN], gs[S.GS_SPD], gs[S.GS_CLU]
    amp0 = gs[S.GS_DRONE_AMP]
    amp1 = amp0 + (cfg[S.CF_TGAIN] * (0.12 + 0.88 * den) - amp0) * a
    gs[S.GS_DRONE_AMP] = amp1
    h = np.arange(1, S.DRONE_PARTIALS + 1, dtype=np.float64)
    spread = (1.0 - clu) * 0.0025
    ratio = h * (1.0 + spread * (h * h - 1.0))
    weight1 = 1.0 / h ** (1.6 - 0.9 * spd)
    pan1 = np.where(np.arange(S.DRONE_PARTIALS) % 2 == 0, 1.0, -1.0) * 0.6 * (1.0 - clu)
    ratio[-1], weight1[-1], pan1[-1] = 2.0 * math.sqrt(2.0), 0.3 * gs[S.GS_TENSION], 0.0
    weight0, pan0 = drone[:, S.DN_WEIGHT].copy(), drone[:, S.DN_PAN].copy()
    drone[:, S.DN_WEIGHT], drone[:, S.DN_PAN] = weight1, pan1
    live = ~((weight0 < 1e-5) & (weight1 < 1e-5))
    gl0, gr0 = pan_gains_ref(pan0)
    gl1, gr1 = pan_gains_ref(pan1)
    trem_rate = (0.3 + 5.0 * spd) / sr
    depth0, depth1 = gs[S.GS_TREM_DEPTH], 0.35 * spd
    gs[S.GS_TREM_DEPTH] = depth1
    ph = drone[:, S.DN_PH].copy()
    trem = gs[S.GS_TREM]
    out_l, out_r = np.zeros(n), np.zeros(n)
    for s in range(n):
        w = (s + 1) / n
        ph = ph + (f0 + (f1 - f0) * w) * ratio / sr
        ph = np.where(ph >= 1.0, ph - np.floor(ph), ph)
        trem += trem_rate
        if trem >= 1.0:
            trem -= 1.0
        depth = depth0 + (depth1 - depth0) * w
        level = (amp0 + (amp1 - amp0) * w) * (weight0 + (weight1 - weight0) * w) * (1.0 - depth * (0.5 + 0.5 * table_sin_ref(table, trem)))
        val = np.where(live, table_sin_ref(table, ph) * level, 0.0)
        out_l[s] = np.sum(val * (gl0 + (gl1 - gl0) * w))
        out_r[s] = np.sum(val * (gr0 + (gr1 - gr0) * w))
    drone[live, S.DN_PH] = ph[live]
    t = gs[S.GS_TREM] + trem_rate * n
    gs[S.GS_TREM] = t - math.floor(t)
    return out_l, out_r


def grains_ref(gs, cfg, table, grains, rng, n):
    sr = cfg[S.CF_SR]
    den, spd, clu = gs[S.GS_DEN], gs[S.GS_SPD], gs[S.GS_CLU]
    rate = cfg[S.CF_GRATE] * den * (0.2 + 0.8 * spd) / sr
    mode, chord = int(gs[S.GS_MODE]), int(gs[S.GS_CHORD])
    consonant = clu > 0.5 or gs[S.GS_AGR] >= cfg[S.CF_CONSONANCE]
    state = [int(rng[0])]
    acc = gs[S.GS_GRAIN_ACC]
    for s in range(n):
        acc += rate
        if acc < 1.0:
            continue
        acc -= 1.0
        free = np.flatnonzero(grains[:, S.GR_ON] < 0.5)
        r1, r2, r3 = xorshift_ref(state), xorshift_ref(state), xorshift_ref(state)
        if free.size == 0:
            continue
        g = free[0]
        deg = 7 + int(r1 * 14.0)
        while consonant and not is_chord_tone_ref(deg, chord):
            deg += 1
        gl, gr = pan_gains_ref((r2 * 2.0 - 1.0) * 0.9 * (1.0 - clu))
        grains[g, :S.GR_START + 1] = [0.0, cfg[S.CF_ROOT] * 2.0 * 2.0 ** (degree_semitones_ref(deg, mode) / 12.0) / sr,
                                      0.0, sr * (0.12 + (0.035 - 0.12) * spd), cfg[S.CF_TGAIN] * 0.3 * (0.5 + 0.5 * r3),
                                      gl, gr, 1.0, s]
    rng[0] = state[0]
    gs[S.GS_GRAIN_ACC] = acc
    out_l, out_r = np.zeros(n), np.zeros(n)
    for g in np.flatnonzero(grains[:, S.GR_ON] >= 0.5):
        start = int(grains[g, S.GR_START])
        length = grains[g, S.GR_LEN]
        t0 = grains[g, S.GR_T]
        count = min(n - start, int(math.ceil(length - t0)))
        t = t0 + np.arange(count)
        # phase: the kernel's running sum with wrap, reproduced step by step
        ph = np.empty(count)
        p = grains[g, S.GR_PH]
        for i in range(count):
            ph[i] = p
            p += grains[g, S.GR_INC]
            if p >= 1.0:
                p -= 1.0
        win = table_sin_ref(table, 0.5 * t / length)
        val = table_sin_ref(table, ph) * win * win * grains[g, S.GR_AMP]
        out_l[start:start + count] += val * grains[g, S.GR_PANL]
        out_r[start:start + count] += val * grains[g, S.GR_PANR]
        grains[g, S.GR_PH] = p
        grains[g, S.GR_T] = t0 + count
        if t0 + count >= length:
            grains[g, S.GR_ON] = 0.0
        grains[g, S.GR_START] = 0.0
    return out_l, out_r


def start_hit_ref(drums, cfg, strength, pan):
    free = np.flatnonzero(drums[:, S.DR_ON] < 0.5)
    if free.size:
        slot = free[0]
    else:
        slot = int(np.argmin(drums[:, S.DR_ENV] * drums[:, S.DR_AMP]))
    sr = cfg[S.CF_SR]
    s = min(max(strength, 0.0), 1.0)
    amp = cfg[S.CF_HGAIN] * (0.3 + 0.7 * s)
    d = drums[slot]
    if d[S.DR_ON] < 0.5:
        d[S.DR_PH] = d[S.DR_PREV] = d[S.DR_E0] = d[S.DR_N0] = 0.0
        d[S.DR_PANL], d[S.DR_PANR] = pan_gains_ref(pan)
    else:
        old = d[S.DR_AMP]
        d[S.DR_E0] = min(1.0, d[S.DR_ENV] * old / max(amp, 1e-9))
        d[S.DR_N0] = min(1.0, d[S.DR_NENV] * old / max(amp, 1e-9))
        amp = max(amp, old)
    d[S.DR_T] = 0.0
    d[S.DR_F] = 150.0 * (1.0 + 0.6 * s)
    d[S.DR_FEND] = 48.0
    d[S.DR_ENV] = d[S.DR_NENV] = 1.0
    d[S.DR_AMP] = amp
    d[S.DR_ON] = 1.0
    d[S.DR_DEC] = math.exp(-1.0 / ((0.15 + 0.3 * s) * sr))
    d[S.DR_NDEC] = math.exp(-1.0 / (0.025 * sr))
    d[S.DR_FCOEF] = math.exp(-1.0 / (0.045 * sr))


def drums_ref(drums, cfg, table, rng, n):
    sr = cfg[S.CF_SR]
    attack = 0.003 * sr
    state = [int(rng[0])]
    out_l, out_r = np.zeros(n), np.zeros(n)
    for d in np.flatnonzero(drums[:, S.DR_ON] >= 0.5):
        row = drums[d]
        f, ph, env, nenv, prev, t = row[S.DR_F], row[S.DR_PH], row[S.DR_ENV], row[S.DR_NENV], row[S.DR_PREV], row[S.DR_T]
        for s in range(n):
            f = row[S.DR_FEND] + (f - row[S.DR_FEND]) * row[S.DR_FCOEF]
            ph += f / sr
            if ph >= 1.0:
                ph -= 1.0
            white = xorshift_ref(state) * 2.0 - 1.0
            crack = (white - prev) * 0.5
            prev = white
            if t < attack:
                w = (t + 1.0) / attack
                e = row[S.DR_E0] + (1.0 - row[S.DR_E0]) * w
                ne = row[S.DR_N0] + (1.0 - row[S.DR_N0]) * w
            else:
                env *= row[S.DR_DEC]
                nenv *= row[S.DR_NDEC]
                e, ne = env, nenv
            t += 1.0
            val = (float(table_sin_ref(table, ph)) * e + 0.35 * crack * ne) * row[S.DR_AMP]
            out_l[s] += val * row[S.DR_PANL]
            out_r[s] += val * row[S.DR_PANR]
        if t >= attack and env < 2e-4:
            row[S.DR_ON] = 0.0
        row[S.DR_PH], row[S.DR_F], row[S.DR_ENV] = ph, f, env
        row[S.DR_NENV] = nenv if nenv > 1e-12 else 0.0
        row[S.DR_PREV], row[S.DR_T] = prev, min(t, 1e9)
    rng[0] = state[0]
    return out_l, out_r


# ---------------------------------------------------------------- the whole engine


def update_globals_ref(target, gs, drums, cfg, n):
    """Returns hits dropped."""
    sr = cfg[S.CF_SR]
    first = gs[S.GS_INIT] < 0.5
    a = 1.0 if first else glide_ref(n, cfg[S.CF_GLIDE], sr)
    for g, t in ((S.GS_VAL, P.VALENCE), (S.GS_ARO, P.AROUSAL), (S.GS_AGR, P.AGREEMENT), (S.GS_ENE, P.ENERGY),
                 (S.GS_COUNT, P.COUNT), (S.GS_DEN, P.DENSITY), (S.GS_SPD, P.SPEED), (S.GS_CLU, P.CLUSTERING),
                 (S.GS_VOL, P.VOLUME), (S.GS_QUIET, P.QUIET)):
        gs[g] += (float(target[t]) - gs[g]) * a
    active = float(np.sum(target[P.VOICES + P.V_ACTIVE::P.VOICE_FIELDS].astype(np.float64)))
    gs[S.GS_NACT] += (active - gs[S.GS_NACT]) * (1.0 if first else glide_ref(n, 0.25, sr))
    if first:
        latch_ref(gs, cfg, 0)
        gs[S.GS_INIT] = 1.0
    serial = int(target[P.HIT_SERIAL])
    pending = (serial - int(gs[S.GS_HIT_SERIAL])) % P.HIT_SERIAL_MOD
    if pending > P.HIT_SERIAL_MOD // 2:
        pending = 0
    dropped = max(0, pending - P.HIT_SLOTS)
    pending = min(pending, P.HIT_SLOTS)
    for k in range(pending):
        idx = (serial - pending + 1 + k) % P.HIT_SERIAL_MOD
        b = P.HITS + (idx % P.HIT_SLOTS) * P.HIT_FIELDS
        if float(target[b]) > 0.0:
            start_hit_ref(drums, cfg, float(target[b]), float(target[b + 1]))
            gs[S.GS_TENSION_T] = min(1.0, gs[S.GS_TENSION_T] + 0.5 * float(target[b]))
    gs[S.GS_HIT_SERIAL] = serial
    surge = min(max((gs[S.GS_ARO] * gs[S.GS_ENE] - 0.45) * 2.5, 0.0), 1.0)
    from .engine import TENSION_DECAY_S, TENSION_GLIDE_S
    gs[S.GS_TENSION_T] = max(gs[S.GS_TENSION_T] * math.exp(-n / (TENSION_DECAY_S * sr)), surge)
    gs[S.GS_TENSION] += (gs[S.GS_TENSION_T] - gs[S.GS_TENSION]) * glide_ref(n, TENSION_GLIDE_S, sr)
    return dropped


class RiderRef:
    """The loudness rider with its 3 s window kept as a plain array of past powers."""

    def __init__(self, samplerate, coef):
        self.sr = samplerate
        self.coef = coef
        self.kstate = np.zeros((2, 2, 4))
        self.window = np.zeros(int(round(3.0 * samplerate)))
        self.det = 0.0
        self.fast = 0.0
        self.ceil = None
        self.ride = 0.0
        self.g = 1.0
        self.guarded = 0

    def process(self, x, ceiling_target, attack_s, release_s):
        n = len(x)
        sr = self.sr
        power = kweight_ref(x, self.coef, self.kstate)
        mean = power.sum() / n
        tau = DETECTOR_RISE_S if mean > self.det else DETECTOR_S
        a = math.exp(-n / (tau * sr))
        self.det = self.det * a + mean * (1.0 - a)
        if self.ceil is None:
            self.ceil = ceiling_target
        step = CEILING_SLEW_DB_S * n / sr
        self.ceil += min(max(ceiling_target - self.ceil, -step), step)
        level = LOUDNESS_OFFSET + 10 * math.log10(max(self.det, 1e-20))
        want = min(0.0, self.ceil - RIDE_MARGIN_DB - level)
        if want < self.ride:
            tau = attack_s / (1.0 + max(0.0, self.ride - want - FAST_OVER_DB) / FAST_OVER_DB * 3.0)
        else:
            tau = release_s
        self.ride += (want - self.ride) * (1.0 - math.exp(-n / (tau * sr)))
        c = math.exp(-n / (CATCH_S * sr))       # the fast catch of a jump far over the ceiling
        self.fast = self.fast * c + mean * (1.0 - c)
        self.ride = min(self.ride, self.ceil + CATCH_OVER_DB - (LOUDNESS_OFFSET + 10 * math.log10(max(self.fast, 1e-20))))
        limit = 10 ** ((self.ceil - GUARD_MARGIN_DB - LOUDNESS_OFFSET) / 10) * len(self.window)
        headroom = limit - self.window.sum()
        if headroom > 0:
            headroom *= min(1.0, n / (GUARD_SPREAD_S * sr))
        budget = self.window[:n].sum() + headroom
        g_ride = 10 ** (self.ride / 20)
        g1 = ride_gain_ref(self.g, g_ride, budget, power)
        if g1 < g_ride:
            self.guarded += 1
        g = self.g + (g1 - self.g) * np.arange(1, n + 1) / n
        self.g = g1
        self.window = np.concatenate([self.window[n:], power * g * g])
        # the kernel keeps these in the master state, whose tiny values it flushes
        self.det = 0.0 if abs(self.det) < 1e-30 else self.det
        self.fast = 0.0 if abs(self.fast) < 1e-30 else self.fast
        self.g = 0.0 if abs(self.g) < 1e-30 else self.g
        self.ride = 0.0 if abs(self.ride) < 1e-30 else self.ride
        return x * g[:, None]


def render_ref(settings, targets, samplerate=None):
    """The engine's output for a list of per-block targets (one mailbox copy per block of
    `settings.blocksize` frames), from fresh state, computed by the twins."""
    from .engine import make_config
    from .loudness import kweight_coefficients, true_peak_filter
    sr = int(samplerate or settings.samplerate)
    cfg = make_config(settings, sr)
    table = S.sine_table()
    vs = np.zeros((P.MAX_VOICES, S.VS_SIZE))
    gs = np.zeros(S.GS_SIZE)
    drone = np.zeros((S.DRONE_PARTIALS, S.DN_SIZE))
    grains = np.zeros((S.MAX_GRAINS, S.GR_SIZE))
    drums = np.zeros((S.MAX_DRUMS, S.DR_SIZE))
    rng = np.array([0x2545F491], np.int64)
    from .master import MS_SIZE
    ms = np.zeros(MS_SIZE)
    rider = RiderRef(sr, kweight_coefficients(sr))
    n = settings.blocksize
    pre = []
    first = True
    for target in targets:
        target = np.asarray(target, np.float32)
        update_globals_ref(target, gs, drums, cfg, n)
        offs, steps = clock_ref(gs, cfg, n)
        bus = np.zeros((n, 2))
        for part in (voices_ref(target, vs, gs, cfg, table, n, offs, steps), drone_ref(gs, cfg, table, drone, n),
                     grains_ref(gs, cfg, table, grains, rng, n), drums_ref(drums, cfg, table, rng, n)):
            bus[:, 0] += part[0]
            bus[:, 1] += part[1]
        glide_a = 1.0 if first else glide_ref(n, cfg[S.CF_GLIDE], sr)
        first = False
        bus = dc_volume_ref(ms, float(target[P.VOLUME]), glide_a, sr, bus)
        bus = compressor_ref(ms, cfg[S.CF_COMP_THR], cfg[S.CF_COMP_RATIO], sr, bus)
        ceiling = cfg[S.CF_LUFS] + (cfg[S.CF_QUIET_LUFS] - cfg[S.CF_LUFS]) * gs[S.GS_QUIET]
        pre.append(rider.process(bus, ceiling, cfg[S.CF_RIDE_ATT], cfg[S.CF_RIDE_REL]))
        gs[np.abs(gs) < 1e-30] = 0.0
        ms[np.abs(ms) < 1e-30] = 0.0
    pre = np.concatenate(pre)
    out, _ = limiter_ref(pre, 10 ** ((settings.ceiling_dbtp - LIMIT_MARGIN_DB) / 20), 10 ** (settings.ceiling_dbtp / 20),
                         settings.limiter_release_ms, settings.limiter_lookahead_ms, sr, true_peak_filter(4))
    return out.astype(np.float32)
