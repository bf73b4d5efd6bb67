"""The instruments: participants' voices, the swarm's texture, the pulses' hits.

Each kernel adds one chunk (n <= blocksize samples) of stereo sound into float64 buses and
advances its own state arrays. Nothing here allocates; every decision that looks random
comes from a seeded xorshift or a fixed hash, so the same inputs give the same samples.

Parameters arrive as one-chunk targets: amplitudes, pans and pitches ramp linearly across the
chunk from where they were to where the one-pole glide puts them, so a jump in the
published parameters is never a jump in the waveform.
"""
from __future__ import annotations

import math

import numpy as np
from numba import njit

from .settings import FM_TOP_PARTIAL
from .music import degree_semitones, hash01, is_chord_tone, mode_index, quantise_degree
from .params import (V_ACTIVE, V_AROUSAL, V_ENERGY, V_PAN, V_SPECIES, V_X, V_Y, VOICE_FIELDS)

TABLE_N = 4096
TWO_PI = 2.0 * math.pi

# -- config array (float64), written once from AudioSettings by engine.make_config
(CF_SR, CF_ROOT, CF_STEPS, CF_TEMPO_LO, CF_TEMPO_HI, CF_CONSONANCE, CF_TENSION_CENTS, CF_BRIGHT,
 CF_VGAIN, CF_TGAIN, CF_HGAIN, CF_GRATE, CF_GLIDE, CF_PORTA, CF_COMP_THR, CF_COMP_RATIO,
 CF_LIM_LOOKAHEAD, CF_LIM_RELEASE, CF_CEIL_DBTP, CF_LUFS, CF_QUIET_LUFS, CF_RIDE_ATT, CF_RIDE_REL,
 CF_BLOCK, CF_NPROG) = range(25)
CF_PROG = 32
MAX_PROG = 16
CF_SIZE = CF_PROG + MAX_PROG

# -- per-voice state (float64, MAX_VOICES x VS_SIZE)
(VS_PC, VS_PM, VS_ENV, VS_STAGE, VS_FREQ, VS_AMP, VS_PANL, VS_PANR, VS_INDEX, VS_AROUSAL,
 VS_DEGREE, VS_ACTIVE, VS_ENERGY, VS_X) = range(14)
VS_SIZE = 16
STAGE_OFF, STAGE_ATTACK, STAGE_SUSTAIN, STAGE_RELEASE = 0, 1, 2, 3

# -- global synth state (float64)
(GS_INIT, GS_STEP_FRAC, GS_STEP, GS_MODE, GS_CHORD, GS_TENSION, GS_VAL, GS_ARO, GS_AGR, GS_ENE,
 GS_DEN, GS_SPD, GS_CLU, GS_VOL, GS_QUIET, GS_NACT, GS_HIT_SERIAL, GS_DRONE_F, GS_DRONE_AMP,
 GS_TREM, GS_GRAIN_ACC, GS_COUNT, GS_TENSION_T, GS_TREM_DEPTH) = range(24)
GS_SIZE = 32
DRONE_PARTIALS = 7          # six stretched harmonics and a tritone that only sounds in surges
DN_PH, DN_WEIGHT, DN_PAN = 0, 1, 2   # drone state columns
DN_SIZE = 4

MAX_GRAINS = 24
(GR_PH, GR_INC, GR_T, GR_LEN, GR_AMP, GR_PANL, GR_PANR, GR_ON, GR_START) = range(9)
GR_SIZE = 10

MAX_DRUMS = 8
(DR_PH, DR_F, DR_FEND, DR_ENV, DR_NENV, DR_AMP, DR_PANL, DR_PANR, DR_ON, DR_PREV, DR_DEC,
 DR_NDEC, DR_FCOEF, DR_T, DR_E0, DR_N0) = range(16)
DR_SIZE = 16

MAX_TRIG = 8                # 16th-note steps starting inside one chunk (4096 frames at 240 bpm: 6)


def sine_table() -> np.ndarray:
    return np.sin(TWO_PI * np.arange(TABLE_N + 1) / TABLE_N)


@njit(nogil=True, cache=True)
def table_sin(table, phase):
    """sin(2 pi phase) for phase in [0, 1), linear interpolation in a 4096-point table."""
    x = phase * TABLE_N
    i = int(x)
    if i >= TABLE_N:
        i = TABLE_N - 1
    f = x - i
    return table[i] + f * (table[i + 1] - table[i])


@njit(nogil=True, cache=True)
def wrap01(x):
    return x - math.floor(x)


@njit(nogil=True, cache=True)
def xorshift(rng):
    """Next of a 32-bit xorshift held in rng[0]; returns a float in [0, 1)."""
    x = rng[0]
    x ^= (x << 13) & 0xFFFFFFFF
    x ^= x >> 17
    x ^= (x << 5) & 0xFFFFFFFF
    rng[0] = x
    return x / 4294967296.0


@njit(nogil=True, cache=True)
def pan_gains(pan):
    """Equal-power pan, -1 left .. 1 right."""
    a = (min(max(pan, -1.0), 1.0) + 1.0) * 0.25 * math.pi
    return math.cos(a), math.sin(a)


@njit(nogil=True, cache=True)
def glide_coef(n, seconds, sr):
    return 1.0 - math.exp(-n / (seconds * sr))


@njit(nogil=True, cache=True)
def voice_frequency(cfg, degree, mode, voice, tension):
    semis = degree_semitones(degree, mode)
    # in a surge neighbouring voices drift apart in opposite directions: audible beating
    sign = 1.0 if voice % 2 == 0 else -1.0
    cents = sign * tension * cfg[CF_TENSION_CENTS] * (0.5 + 0.5 * hash01(voice + 7919))
    f = cfg[CF_ROOT] * 2.0 ** ((semis + cents / 100.0) / 12.0)
    # The config refuses a pitch range whose top aliases; a crossfade or /param between two
    # ranges can still pass through one. A note whose FM partial would fold back over Nyquist
    # drops by octaves instead: the same pitch class, never an inharmonic alias.
    top = cfg[CF_SR] * (0.5 / FM_TOP_PARTIAL)
    while f > top:
        f *= 0.5
    return f


@njit(nogil=True, cache=True)
def clock_steps(gs, cfg, n, trig_off, trig_step):
    """Advance the 16th-note clock over n samples; fill the offsets of steps starting here.
    Returns how many; a new bar latches the mode (from valence) and the bar's chord."""
    sr = cfg[CF_SR]
    bpm = cfg[CF_TEMPO_LO] + (cfg[CF_TEMPO_HI] - cfg[CF_TEMPO_LO]) * gs[GS_ARO]
    inc = bpm / 60.0 * 4.0 / sr
    frac = gs[GS_STEP_FRAC]
    step = int(gs[GS_STEP])
    count = 0
    for s in range(n):
        frac += inc
        if frac >= 1.0:
            frac -= 1.0
            step += 1
            if count < MAX_TRIG:
                trig_off[count] = s
                trig_step[count] = step
                count += 1
            if step % 16 == 0:
                latch_bar(gs, cfg, step)
    gs[GS_STEP_FRAC] = frac
    gs[GS_STEP] = step
    return count


@njit(nogil=True, cache=True)
def latch_bar(gs, cfg, step):
    nprog = int(cfg[CF_NPROG])
    bar = step // 16
    gs[GS_MODE] = mode_index(gs[GS_VAL])
    gs[GS_CHORD] = int(cfg[CF_PROG + bar % nprog]) - 1


@njit(nogil=True, cache=True)
def voice_fires(voice, species, x, arousal, energy, step):
    """Does this participant play a note on this 16th step? A fixed motif per participant
    (repeating every bar), denser with their energy, finer-grained with their arousal."""
    s16 = step % 16
    sub = 4 if arousal < 0.33 else (2 if arousal < 0.66 else 1)
    if s16 % sub != 0:
        return False
    rot = int(min(max(x, 0.0), 0.999) * 16.0)
    local = (s16 - rot) % 16
    if local == 0:
        return True
    density = 0.2 + 0.6 * energy
    return hash01(voice * 131 + int(species) * 17 + local) < density


@njit(nogil=True, cache=True)
def voices_block(target, off_voices, vs, gs, cfg, table, n, trig_off, trig_step, ntrig, bus_l, bus_r):
    """Add every participant's voice for this chunk into the buses."""
    sr = cfg[CF_SR]
    a = glide_coef(n, cfg[CF_GLIDE], sr)
    porta = glide_coef(n, cfg[CF_PORTA], sr)
    steps = int(cfg[CF_STEPS])
    consonant = gs[GS_AGR] >= cfg[CF_CONSONANCE]
    chord = int(gs[GS_CHORD])
    mode = int(gs[GS_MODE])
    tension = gs[GS_TENSION]
    ratio = 1.0 + 0.5 * tension          # harmonic FM when calm, clangorous in a surge
    norm = cfg[CF_VGAIN] / math.sqrt(max(gs[GS_NACT], 1.0))
    nv = vs.shape[0]
    for v in range(nv):
        b = off_voices + v * VOICE_FIELDS
        presence = target[b + V_ACTIVE]
        active = presence > 0.0
        was = vs[v, VS_ACTIVE] > 0.5
        stage = int(vs[v, VS_STAGE])
        if not active and stage == STAGE_OFF:
            vs[v, VS_ACTIVE] = 0.0
            continue
        x = target[b + V_X]
        y = target[b + V_Y]
        aro_t = target[b + V_AROUSAL]
        ene_t = target[b + V_ENERGY]
        species = target[b + V_SPECIES]
        pan_t = target[b + V_PAN]
        if active and not was:
            # a new touch sounds at once (input-to-sound: one tick plus one block)
            deg = quantise_degree(y * steps, steps, chord, consonant, -1)
            vs[v, VS_DEGREE] = deg
            f_new = voice_frequency(cfg, deg, mode, v, tension)
            if stage == STAGE_OFF:
                vs[v, VS_FREQ] = f_new
                vs[v, VS_AROUSAL] = aro_t
                vs[v, VS_ENERGY] = ene_t
                gl, gr = pan_gains(pan_t)
                vs[v, VS_PANL] = gl
                vs[v, VS_PANR] = gr
                # the envelope ramps from zero, so the level can start where it belongs
                vs[v, VS_AMP] = norm * presence * (0.35 + 0.65 * ene_t)
                vs[v, VS_INDEX] = cfg[CF_BRIGHT] * (0.15 + 2.6 * aro_t)
                vs[v, VS_PC] = 0.0
                vs[v, VS_PM] = 0.0
            stage = STAGE_ATTACK
        elif was and not active:
            stage = STAGE_RELEASE
        vs[v, VS_ACTIVE] = 1.0 if active else 0.0
        vs[v, VS_X] = x

        # glide the voice's parameters toward this tick's targets
        aro = vs[v, VS_AROUSAL] + (aro_t - vs[v, VS_AROUSAL]) * a
        ene = vs[v, VS_ENERGY] + (ene_t - vs[v, VS_ENERGY]) * a
        vs[v, VS_AROUSAL] = aro
        vs[v, VS_ENERGY] = ene
        amp0 = vs[v, VS_AMP]
        amp1 = amp0 + (norm * presence * (0.35 + 0.65 * ene) - amp0) * a
        gl_t, gr_t = pan_gains(pan_t)
        gl0, gr0 = vs[v, VS_PANL], vs[v, VS_PANR]
        gl1 = gl0 + (gl_t - gl0) * a
        gr1 = gr0 + (gr_t - gr0) * a
        # the FM index is a phase offset: ramp it, or a change would step the waveform
        index0 = vs[v, VS_INDEX]
        index1 = cfg[CF_BRIGHT] * (0.15 + 2.6 * aro)

        f0 = vs[v, VS_FREQ]
        if active:
            deg = quantise_degree(y * steps, steps, chord, consonant, int(vs[v, VS_DEGREE]))
            vs[v, VS_DEGREE] = deg
            ft = voice_frequency(cfg, deg, mode, v, tension)
        else:
            ft = f0
        f1 = f0 * (ft / f0) ** porta if f0 > 0.0 else ft

        # calm: slow swells that sustain; excited: short plucks
        attack_s = 0.25 + (0.004 - 0.25) * aro
        decay_s = 1.5 + (0.12 - 1.5) * aro
        sustain = 0.7 + (0.15 - 0.7) * aro
        release_t60 = 2.5 + (0.6 - 2.5) * aro      # seconds to fade 60 dB once let go
        att_inc = 1.0 / (attack_s * sr)
        dec = math.exp(-1.0 / (decay_s * sr))
        rel = math.exp(-6.907755 / (release_t60 * sr))

        # which of this chunk's steps retrigger this voice
        t_next = 0
        next_off = n
        if active:
            while t_next < ntrig:
                if voice_fires(v, species, x, aro, ene, trig_step[t_next]):
                    next_off = trig_off[t_next]
                    break
                t_next += 1

        env = vs[v, VS_ENV]
        pc = vs[v, VS_PC]
        pm = vs[v, VS_PM]
        inv_n = 1.0 / n
        for s in range(n):
            if s == next_off:
                stage = STAGE_ATTACK
                t_next += 1
                next_off = n
                while t_next < ntrig:
                    if voice_fires(v, species, x, aro, ene, trig_step[t_next]):
                        next_off = trig_off[t_next]
                        break
                    t_next += 1
            if stage == STAGE_ATTACK:
                env += att_inc
                if env >= 1.0:
                    env = 1.0
                    stage = STAGE_SUSTAIN
            elif stage == STAGE_SUSTAIN:
                env = sustain + (env - sustain) * dec
            elif stage == STAGE_RELEASE:
                env *= rel
                if env < 1e-5:
                    env = 0.0
                    stage = STAGE_OFF
            w = (s + 1) * inv_n
            f = f0 + (f1 - f0) * w
            inc = f / sr
            pc += inc
            if pc >= 1.0:
                pc -= 1.0
            pm += inc * ratio
            if pm >= 1.0:
                pm -= math.floor(pm)
            mod = table_sin(table, pm) * (index0 + (index1 - index0) * w) * (0.4 + 0.6 * env) / TWO_PI
            val = table_sin(table, wrap01(pc + mod)) * env * (amp0 + (amp1 - amp0) * w)
            bus_l[s] += val * (gl0 + (gl1 - gl0) * w)
            bus_r[s] += val * (gr0 + (gr1 - gr0) * w)
        vs[v, VS_ENV] = env
        vs[v, VS_STAGE] = stage
        vs[v, VS_PC] = pc
        vs[v, VS_PM] = pm
        vs[v, VS_FREQ] = f1
        vs[v, VS_AMP] = amp1
        vs[v, VS_PANL] = gl1
        vs[v, VS_PANR] = gr1
        vs[v, VS_INDEX] = index1


@njit(nogil=True, cache=True)
def drone_block(gs, cfg, table, drone, n, bus_l, bus_r):
    """The swarm's bed: stretched harmonics on the bar's chord root, an octave below the
    voices. Density sets its level, speed its brightness and shimmer, dispersion (1 -
    clustering) its width and inharmonicity; surge tension adds a tritone. Every level and
    pan ramps from the last chunk's value."""
    sr = cfg[CF_SR]
    a = glide_coef(n, cfg[CF_GLIDE], sr)
    semis = degree_semitones(int(gs[GS_CHORD]), int(gs[GS_MODE]))
    ft = 0.5 * cfg[CF_ROOT] * 2.0 ** (semis / 12.0)
    f0 = gs[GS_DRONE_F]
    if f0 <= 0.0:
        f0 = ft
    f1 = f0 * (ft / f0) ** glide_coef(n, 0.3, sr)
    gs[GS_DRONE_F] = f1
    den, spd, clu = gs[GS_DEN], gs[GS_SPD], gs[GS_CLU]
    amp0 = gs[GS_DRONE_AMP]
    amp1 = amp0 + (cfg[CF_TGAIN] * (0.12 + 0.88 * den) - amp0) * a
    gs[GS_DRONE_AMP] = amp1
    tilt = 1.6 - 0.9 * spd
    spread = (1.0 - clu) * 0.0025
    width = 0.6 * (1.0 - clu)
    trem_rate = (0.3 + 5.0 * spd) / sr
    depth0 = gs[GS_TREM_DEPTH]
    depth1 = 0.35 * spd
    gs[GS_TREM_DEPTH] = depth1
    tension = gs[GS_TENSION]
    trem0 = gs[GS_TREM]
    for k in range(DRONE_PARTIALS):
        if k < DRONE_PARTIALS - 1:
            h = k + 1.0
            ratio = h * (1.0 + spread * (h * h - 1.0))
            weight1 = 1.0 / h ** tilt
            pan1 = width if k % 2 == 0 else -width
        else:
            ratio = 2.0 * math.sqrt(2.0)
            weight1 = 0.3 * tension
            pan1 = 0.0
        weight0 = drone[k, DN_WEIGHT]
        pan0 = drone[k, DN_PAN]
        drone[k, DN_WEIGHT] = weight1
        drone[k, DN_PAN] = pan1
        if weight0 < 1e-5 and weight1 < 1e-5:
            continue
        gl0, gr0 = pan_gains(pan0)
        gl1, gr1 = pan_gains(pan1)
        ph = drone[k, DN_PH]
        trem = trem0
        for s in range(n):
            w = (s + 1) / n
            f = f0 + (f1 - f0) * w
            ph += f * ratio / sr
            if ph >= 1.0:
                ph -= math.floor(ph)
            trem += trem_rate
            if trem >= 1.0:
                trem -= 1.0
            depth = depth0 + (depth1 - depth0) * w
            level = ((amp0 + (amp1 - amp0) * w) * (weight0 + (weight1 - weight0) * w)
                     * (1.0 - depth * (0.5 + 0.5 * table_sin(table, trem))))
            val = table_sin(table, ph) * level
            bus_l[s] += val * (gl0 + (gl1 - gl0) * w)
            bus_r[s] += val * (gr0 + (gr1 - gr0) * w)
        drone[k, DN_PH] = ph
    gs[GS_TREM] = wrap01(trem0 + trem_rate * n)


@njit(nogil=True, cache=True)
def grains_block(gs, cfg, table, grains, rng, n, bus_l, bus_r):
    """Sparkle over the bed: short windowed tones at scale (or chord) notes, two octaves up,
    as many as the swarm is dense and fast; clustered swarms sit narrow and consonant."""
    sr = cfg[CF_SR]
    den, spd, clu = gs[GS_DEN], gs[GS_SPD], gs[GS_CLU]
    rate = cfg[CF_GRATE] * den * (0.2 + 0.8 * spd) / sr
    acc = gs[GS_GRAIN_ACC]
    mode = int(gs[GS_MODE])
    chord = int(gs[GS_CHORD])
    consonant = clu > 0.5 or gs[GS_AGR] >= cfg[CF_CONSONANCE]
    for s in range(n):
        acc += rate
        if acc < 1.0:
            continue
        acc -= 1.0
        slot = -1
        for g in range(MAX_GRAINS):
            if grains[g, GR_ON] < 0.5:
                slot = g
                break
        r1 = xorshift(rng)
        r2 = xorshift(rng)
        r3 = xorshift(rng)
        if slot < 0:
            continue
        deg = 7 + int(r1 * 14.0)
        if consonant:
            while not is_chord_tone(deg, chord):
                deg += 1
        freq = cfg[CF_ROOT] * 2.0 * 2.0 ** (degree_semitones(deg, mode) / 12.0)
        gl, gr = pan_gains((r2 * 2.0 - 1.0) * 0.9 * (1.0 - clu))
        grains[slot, GR_PH] = 0.0
        grains[slot, GR_INC] = freq / sr
        grains[slot, GR_T] = 0.0
        grains[slot, GR_LEN] = sr * (0.12 + (0.035 - 0.12) * spd)
        grains[slot, GR_AMP] = cfg[CF_TGAIN] * 0.3 * (0.5 + 0.5 * r3)
        grains[slot, GR_PANL] = gl
        grains[slot, GR_PANR] = gr
        grains[slot, GR_ON] = 1.0
        grains[slot, GR_START] = s
    gs[GS_GRAIN_ACC] = acc
    for g in range(MAX_GRAINS):
        if grains[g, GR_ON] < 0.5:
            continue
        ph = grains[g, GR_PH]
        inc = grains[g, GR_INC]
        t = grains[g, GR_T]
        length = grains[g, GR_LEN]
        amp = grains[g, GR_AMP]
        gl = grains[g, GR_PANL]
        gr = grains[g, GR_PANR]
        for s in range(int(grains[g, GR_START]), n):
            win = table_sin(table, 0.5 * t / length)
            val = table_sin(table, ph) * win * win * amp
            bus_l[s] += val * gl
            bus_r[s] += val * gr
            ph += inc
            if ph >= 1.0:
                ph -= 1.0
            t += 1.0
            if t >= length:
                grains[g, GR_ON] = 0.0
                break
        grains[g, GR_PH] = ph
        grains[g, GR_T] = t
        grains[g, GR_START] = 0.0


@njit(nogil=True, cache=True)
def start_hit(drums, cfg, strength, pan):
    """Start a pulse's hit in a free slot, or re-strike the quietest one. A re-strike keeps
    its phase and ramps its level up from where it is: no slot ever jumps."""
    slot = 0
    quietest = 1e9
    for d in range(MAX_DRUMS):
        if drums[d, DR_ON] < 0.5:
            slot = d
            break
        level = drums[d, DR_ENV] * drums[d, DR_AMP]
        if level < quietest:
            quietest = level
            slot = d
    sr = cfg[CF_SR]
    s = min(max(strength, 0.0), 1.0)
    amp = cfg[CF_HGAIN] * (0.3 + 0.7 * s)
    if drums[slot, DR_ON] < 0.5:
        drums[slot, DR_PH] = 0.0
        drums[slot, DR_PREV] = 0.0
        drums[slot, DR_E0] = 0.0
        drums[slot, DR_N0] = 0.0
        gl, gr = pan_gains(pan)
        drums[slot, DR_PANL] = gl
        drums[slot, DR_PANR] = gr
    else:
        # keep the old pan and express the old level in the new amplitude's scale
        old = drums[slot, DR_AMP]
        drums[slot, DR_E0] = min(1.0, drums[slot, DR_ENV] * old / max(amp, 1e-9))
        drums[slot, DR_N0] = min(1.0, drums[slot, DR_NENV] * old / max(amp, 1e-9))
        amp = max(amp, old)
    drums[slot, DR_T] = 0.0
    drums[slot, DR_F] = 150.0 * (1.0 + 0.6 * s)
    drums[slot, DR_FEND] = 48.0
    drums[slot, DR_ENV] = 1.0
    drums[slot, DR_NENV] = 1.0
    drums[slot, DR_AMP] = amp
    drums[slot, DR_ON] = 1.0
    drums[slot, DR_DEC] = math.exp(-1.0 / ((0.15 + 0.3 * s) * sr))
    drums[slot, DR_NDEC] = math.exp(-1.0 / (0.025 * sr))
    drums[slot, DR_FCOEF] = math.exp(-1.0 / (0.045 * sr))


@njit(nogil=True, cache=True)
def drums_block(drums, cfg, table, rng, n, bus_l, bus_r):
    """Pulses: a pitched thump falling to 48 Hz with a short noise crack on top, each level
    ramped up over 3 ms from where it was so the onset itself never clicks."""
    sr = cfg[CF_SR]
    attack = 0.003 * sr
    for d in range(MAX_DRUMS):
        if drums[d, DR_ON] < 0.5:
            continue
        ph, f, fend = drums[d, DR_PH], drums[d, DR_F], drums[d, DR_FEND]
        env, nenv, amp = drums[d, DR_ENV], drums[d, DR_NENV], drums[d, DR_AMP]
        gl, gr, prev = drums[d, DR_PANL], drums[d, DR_PANR], drums[d, DR_PREV]
        dec, ndec, fcoef = drums[d, DR_DEC], drums[d, DR_NDEC], drums[d, DR_FCOEF]
        e0, n0 = drums[d, DR_E0], drums[d, DR_N0]
        t = drums[d, DR_T]
        for s in range(n):
            f = fend + (f - fend) * fcoef
            ph += f / sr
            if ph >= 1.0:
                ph -= 1.0
            white = xorshift(rng) * 2.0 - 1.0
            crack = (white - prev) * 0.5
            prev = white
            if t < attack:
                w = (t + 1.0) / attack
                e = e0 + (1.0 - e0) * w
                ne = n0 + (1.0 - n0) * w
            else:
                env *= dec
                nenv *= ndec
                e = env
                ne = nenv
            t += 1.0
            val = (table_sin(table, ph) * e + 0.35 * crack * ne) * amp
            bus_l[s] += val * gl
            bus_r[s] += val * gr
        if t >= attack and env < 2e-4:
            drums[d, DR_ON] = 0.0   # -74 dB: stopping here is inaudible
        drums[d, DR_PH] = ph
        drums[d, DR_F] = f
        drums[d, DR_ENV] = env
        drums[d, DR_NENV] = nenv if nenv > 1e-12 else 0.0
        drums[d, DR_PREV] = prev
        drums[d, DR_T] = min(t, 1e9)
