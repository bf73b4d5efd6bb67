"""The master bus: DC blocker, volume, gentle compressor, loudness rider, true-peak limiter.

All kernels work in place on the two float64 buses of one chunk. Order and why:
volume first, so the compressor and the rider see the level that will be heard; the rider
(slow, BS.1770 loudness) before the limiter (fast, true peak), so the limiter only ever has
the last word on peaks.
"""
from __future__ import annotations

import math

from numba import njit

from .loudness import LOUDNESS_OFFSET, TP_HALF, kweight_power, tp_push, window_leaving, window_push

# -- master state (float64)
(MS_DC_XL, MS_DC_XR, MS_DC_YL, MS_DC_YR, MS_VOL, MS_COMP_ENV, MS_COMP_GR_DB, MS_RIDE_DB,
 MS_RIDE_G, MS_DET, MS_CEIL, MS_LIM_E, MS_LIM_MIN, MS_TP_POS, MS_DPOS, MS_BPOS, MS_BSUM,
 MS_QHEAD, MS_QTAIL, MS_N, MS_GUARD, MS_INIT, MS_CATCH) = range(23)
MS_SIZE = 32

DC_HZ = 10.0
COMP_ATTACK_S = 0.010
COMP_RELEASE_S = 0.250
COMP_KNEE_DB = 6.0
DETECTOR_S = 0.4          # the rider listens over about a momentary-loudness window
DETECTOR_RISE_S = 0.12    # ... but hears a rise within about a tenth of a second
FAST_OVER_DB = 3.0        # beyond this far over, the rider's attack speeds up
CATCH_S = 0.025           # a fast detector beside it: a jump is heard within a few blocks ...
CATCH_OVER_DB = 6.0       # ... and turned down at once when this far over the ceiling
RIDE_MARGIN_DB = 1.0      # the rider aims this far under the ceiling ...
GUARD_MARGIN_DB = 0.1     # ... and the guard never lets the 3 s window past this
GUARD_SPREAD_S = 0.5      # ... spending its headroom over about this long, not in one chunk
CEILING_SLEW_DB_S = 1.0   # quiet hours come in at most this fast, so nothing ducks
LIMIT_MARGIN_DB = 0.1     # internal true-peak target under the ceiling (gain ramps across
                          # the interpolator's support make estimates slightly optimistic)


def limiter_sizes(lookahead_ms: float, samplerate: float) -> tuple[int, int, int]:
    """(box length L, min-hold length H, audio delay D) in samples.

    A peak estimated at sample p lies in [p - T, p - T + 1] (T = TP_HALF), and reconstructing
    it uses the input within T samples either side. The held minimum covers r[p] for H
    samples, the box averages L of them, so the gain is <= r[p] from p + L - 1 to p + H - 1;
    delaying the audio by D = L - 1 + 2T puts that whole stretch, T samples either side of
    the peak, inside it when H = L + 2T + 1."""
    box = max(1, int(round(lookahead_ms * 1e-3 * samplerate)))
    hold = box + 2 * TP_HALF + 1
    delay = box - 1 + 2 * TP_HALF
    return box, hold, delay


@njit(nogil=True, cache=True)
def dc_volume_block(ms, vol_target, glide_a, sr, n, bus_l, bus_r):
    """One-pole DC blocker (10 Hz), then the master volume ramped across the chunk."""
    r = math.exp(-2.0 * math.pi * DC_HZ / sr)
    xl, xr, yl, yr = ms[MS_DC_XL], ms[MS_DC_XR], ms[MS_DC_YL], ms[MS_DC_YR]
    v0 = ms[MS_VOL]
    v1 = v0 + (vol_target - v0) * glide_a
    for i in range(n):
        w = (i + 1) / n
        v = v0 + (v1 - v0) * w
        a = bus_l[i]
        yl = a - xl + r * yl
        xl = a
        b = bus_r[i]
        yr = b - xr + r * yr
        xr = b
        bus_l[i] = yl * v
        bus_r[i] = yr * v
    ms[MS_DC_XL] = xl
    ms[MS_DC_XR] = xr
    ms[MS_DC_YL] = yl if abs(yl) > 1e-30 else 0.0
    ms[MS_DC_YR] = yr if abs(yr) > 1e-30 else 0.0
    ms[MS_VOL] = v1


@njit(nogil=True, cache=True)
def compressor_block(ms, threshold_db, ratio, sr, n, bus_l, bus_r):
    """Stereo-linked feed-forward compressor, soft knee, no make-up gain."""
    att = 1.0 - math.exp(-1.0 / (COMP_ATTACK_S * sr))
    rel = 1.0 - math.exp(-1.0 / (COMP_RELEASE_S * sr))
    slope = 1.0 / ratio - 1.0
    half = COMP_KNEE_DB * 0.5
    env = ms[MS_COMP_ENV]
    gr_db = 0.0
    for i in range(n):
        lvl = max(abs(bus_l[i]), abs(bus_r[i]))
        env += (lvl - env) * (att if lvl > env else rel)
        over = 20.0 * math.log10(max(env, 1e-9)) - threshold_db
        if over <= -half:
            gr_db = 0.0
        elif over < half:
            gr_db = slope * (over + half) * (over + half) / (2.0 * COMP_KNEE_DB)
        else:
            gr_db = slope * over
        g = 10.0 ** (gr_db / 20.0)
        bus_l[i] *= g
        bus_r[i] *= g
    ms[MS_COMP_ENV] = env if env > 1e-30 else 0.0
    ms[MS_COMP_GR_DB] = gr_db


@njit(nogil=True, cache=True)
def ride_gain(g0, g_ride, budget, sum_a, sum_b, sum_c):
    """Largest end gain g1 <= g_ride whose linear ramp g0 -> g1 over the chunk keeps the
    chunk's K-weighted energy within budget: g0^2 A + 2 g0 d B + d^2 C <= budget, d = g1 - g0,
    where A, B, C are the chunk's power summed with weights 1, w, w^2 (w the ramp position)."""
    d = g_ride - g0
    if g0 * g0 * sum_a + 2.0 * g0 * d * sum_b + d * d * sum_c <= budget:
        return g_ride
    if sum_c <= 0.0:
        return g_ride
    disc = g0 * g0 * sum_b * sum_b - sum_c * (g0 * g0 * sum_a - budget)
    if disc < 0.0:
        return 0.0
    d = (-g0 * sum_b + math.sqrt(disc)) / sum_c
    return min(max(g0 + d, 0.0), g_ride)


@njit(nogil=True, cache=True)
def spend_headroom(headroom, n, sr):
    """What of the window's headroom (the energy it can still take under the ceiling) one
    chunk of n samples may use: a share of it, so that a rise the rider has not caught up
    with fills the window gradually. Spent greedily, the headroom went in one loud chunk, and
    the guard then had only silence to give until that chunk left the window (seconds)."""
    if headroom <= 0.0:
        return headroom
    return headroom * min(1.0, n / (GUARD_SPREAD_S * sr))


@njit(nogil=True, cache=True)
def rider_block(ms, ceiling_target, attack_s, release_s, kcoef, kstate, power, ring, acc, sr, n, bus_l, bus_r):
    """Slow loudness riding toward a LUFS ceiling, with a guard that keeps the 3 s window of
    the rider's own output under the ceiling whatever the music does.

    The rider listens to the K-weighted level over ~400 ms and turns down over attack_s, up
    over release_s. The guard knows exactly what the window holds, so for each chunk it
    computes the most gain the window can take and, rarely, clamps the ramp to it."""
    kweight_power(bus_l, bus_r, n, kcoef, kstate, power)
    sum_a = 0.0
    sum_b = 0.0
    sum_c = 0.0
    for i in range(n):
        w = (i + 1) / n
        p = power[i]
        sum_a += p
        sum_b += w * p
        sum_c += w * w * p
    mean = sum_a / n
    # rises fast, falls at the momentary window's pace: a loud onset is heard at once
    a = math.exp(-n / ((DETECTOR_RISE_S if mean > ms[MS_DET] else DETECTOR_S) * sr))
    det = ms[MS_DET] * a + mean * (1.0 - a)
    ms[MS_DET] = det

    ceil = ms[MS_CEIL]
    if ms[MS_INIT] < 0.5:
        ceil = ceiling_target
    step = CEILING_SLEW_DB_S * n / sr
    ceil += min(max(ceiling_target - ceil, -step), step)
    ms[MS_CEIL] = ceil

    level = LOUDNESS_OFFSET + 10.0 * math.log10(max(det, 1e-20))
    want = min(0.0, ceil - RIDE_MARGIN_DB - level)
    ride = ms[MS_RIDE_DB]
    if want < ride:
        # far over the ceiling, turn down faster: every second spent there fills the 3 s
        # window, and a full window leaves the guard only silence to give
        tau = attack_s / (1.0 + max(0.0, ride - want - FAST_OVER_DB) / FAST_OVER_DB * 3.0)
    else:
        tau = release_s
    ride += (want - ride) * (1.0 - math.exp(-n / (tau * sr)))
    # A jump far over the ceiling is caught within a few blocks, then released at the
    # rider's pace. Heard only by the slow detector (a tenth of a second), a jump of +14 dB
    # had already spent the 3 s window's whole budget, and the guard, which keeps that window
    # under the ceiling, then had only silence to give: 2.5 s of it.
    c = math.exp(-n / (CATCH_S * sr))
    fast = ms[MS_CATCH] * c + mean * (1.0 - c)
    ms[MS_CATCH] = fast
    catch = ceil + CATCH_OVER_DB - (LOUDNESS_OFFSET + 10.0 * math.log10(max(fast, 1e-20)))
    if catch < ride:
        ride = catch

    size = ring.shape[0]
    limit_ms = 10.0 ** ((ceil - GUARD_MARGIN_DB - LOUDNESS_OFFSET) / 10.0)
    leaving = window_leaving(n, ring, acc)
    budget = leaving + spend_headroom(limit_ms * size - acc[0], n, sr)
    g0 = ms[MS_RIDE_G]
    g_ride = 10.0 ** (ride / 20.0)
    g1 = ride_gain(g0, g_ride, budget, sum_a, sum_b, sum_c)
    if g1 < g_ride:
        ms[MS_GUARD] += 1.0
    ms[MS_RIDE_DB] = ride
    ms[MS_RIDE_G] = g1
    for i in range(n):
        g = g0 + (g1 - g0) * (i + 1) / n
        bus_l[i] *= g
        bus_r[i] *= g
        power[i] *= g * g
    window_push(power, n, ring, acc)


@njit(nogil=True, cache=True)
def limiter_block(ms, target, ceiling, rel_coef, phases, hist_l, hist_r, qv, qi, box, delay_l, delay_r, n, bus_l, bus_r):
    """Look-ahead true-peak limiter, stereo-linked.

    Per sample: r = the gain that would bring the oversampled peak around this sample to the
    target; held = the minimum r over the last H samples; e = held with a slow release;
    g = the mean of e over the last L samples; out = g * the input delayed. Because every
    value averaged into g is <= r of any peak within reach, the gain reaches r before the
    peak and every sample the interpolator would use around it, and never steps.
    Finally a sample clip at the ceiling, which the gain makes a no-op in practice."""
    taps = phases.shape[1]
    hold = qv.shape[0] - 1
    blen = box.shape[0]
    dlen = delay_l.shape[0]
    pos = int(ms[MS_TP_POS])
    dpos = int(ms[MS_DPOS])
    bpos = int(ms[MS_BPOS])
    bsum = ms[MS_BSUM]
    head = int(ms[MS_QHEAD])
    tail = int(ms[MS_QTAIL])
    count = int(ms[MS_N])
    e = ms[MS_LIM_E]
    gmin = 1.0
    qsize = qv.shape[0]
    for i in range(n):
        xl = bus_l[i]
        xr = bus_r[i]
        peak = max(tp_push(xl, hist_l, pos, phases), tp_push(xr, hist_r, pos, phases))
        pos += 1
        if pos == taps:
            pos = 0
        r = 1.0 if peak <= target else target / peak
        # sliding minimum over the last `hold` samples: a monotonic queue (capacity hold + 1)
        while head != tail and qi[head] <= count - hold:
            head = (head + 1) % qsize
        while head != tail:
            last = (tail - 1) % qsize
            if qv[last] >= r:
                tail = last
            else:
                break
        qv[tail] = r
        qi[tail] = count
        tail = (tail + 1) % qsize
        held = qv[head]
        count += 1
        e = min(held, e + (1.0 - e) * rel_coef)
        bsum += e - box[bpos]
        box[bpos] = e
        bpos += 1
        if bpos == blen:
            bpos = 0
            bsum = 0.0
            for j in range(blen):
                bsum += box[j]
        g = bsum / blen
        if g < gmin:
            gmin = g
        yl = delay_l[dpos] * g
        yr = delay_r[dpos] * g
        delay_l[dpos] = xl
        delay_r[dpos] = xr
        dpos += 1
        if dpos == dlen:
            dpos = 0
        bus_l[i] = min(max(yl, -ceiling), ceiling)
        bus_r[i] = min(max(yr, -ceiling), ceiling)
    ms[MS_TP_POS] = pos
    ms[MS_DPOS] = dpos
    ms[MS_BPOS] = bpos
    ms[MS_BSUM] = bsum
    ms[MS_QHEAD] = head
    ms[MS_QTAIL] = tail
    ms[MS_N] = count
    ms[MS_LIM_E] = e
    ms[MS_LIM_MIN] = gmin
