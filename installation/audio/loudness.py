"""Meters of the master bus: BS.1770 K-weighting, short-term loudness, true peak.

K-weighting is the two biquads of ITU-R BS.1770-4 (a +4 dB high shelf for the head, then a
38 Hz high-pass), designed for any sample rate from the standard's analogue parameters (the
way libebur128 does), so 44.1 and 96 kHz measure like 48 kHz.

True peak is estimated by oversampling with the same polyphase interpolator as SciPy's
`resample_poly(x, up, 1)` (a Kaiser-windowed sinc, beta 5, 10 zero crossings each side):
a standard, well-understood 4x oversampler the tests check the limiter against.
"""
from __future__ import annotations

import math

import numpy as np
from numba import njit

SHORT_TERM_S = 3.0
# LUFS = LOUDNESS_OFFSET + 10 log10(sum of channel mean squares of the K-weighted signal)
LOUDNESS_OFFSET = -0.691


def kweight_coefficients(samplerate: float) -> np.ndarray:
    """(2, 5) float64: [b0, b1, b2, a1, a2] of the shelf and the high-pass (a0 = 1)."""
    fs = float(samplerate)
    out = np.zeros((2, 5), np.float64)
    # stage 1: high shelf
    f0, gain_db, q = 1681.974450955533, 3.999843853973347, 0.7071752369554196
    k = math.tan(math.pi * f0 / fs)
    vh = 10.0 ** (gain_db / 20.0)
    vb = vh ** 0.4996667741545416
    a0 = 1.0 + k / q + k * k
    out[0] = [(vh + vb * k / q + k * k) / a0, 2.0 * (k * k - vh) / a0, (vh - vb * k / q + k * k) / a0,
              2.0 * (k * k - 1.0) / a0, (1.0 - k / q + k * k) / a0]
    # stage 2: high-pass (the RLB curve)
    f0, q = 38.13547087602444, 0.5003270373238773
    k = math.tan(math.pi * f0 / fs)
    a0 = 1.0 + k / q + k * k
    out[1] = [1.0, -2.0, 1.0, 2.0 * (k * k - 1.0) / a0, (1.0 - k / q + k * k) / a0]
    return out


TP_FACTOR = 4          # oversampling of every true-peak estimate (BS.1770 asks for >= 4x at 48 kHz)
TP_HALF = 10           # the interpolator reaches this many input samples either side


def true_peak_filter(factor: int = TP_FACTOR) -> np.ndarray:
    """(factor, taps) float64 polyphase interpolator, SciPy's resample_poly design.

    Fed x[n] (newest) back to x[n - taps + 1], row k gives the signal at n - TP_HALF + k/factor:
    together the rows cover the interval [n - TP_HALF, n - TP_HALF + 1)."""
    half = TP_HALF * factor
    n = 2 * half + 1
    m = np.arange(n) - half
    cutoff = 1.0 / factor
    h = cutoff * np.sinc(cutoff * m) * np.kaiser(n, 5.0)
    h = h / h.sum() * factor
    taps = -(-n // factor)
    phases = np.zeros((factor, taps), np.float64)
    for k in range(factor):
        sub = h[k::factor]
        phases[k, :sub.size] = sub
    return phases


@njit(nogil=True, cache=True)
def kweight_power(xl, xr, n, coef, state, power):
    """K-weight a stereo block and write per-sample power (yl^2 + yr^2) into power[:n].

    state[ch, stage, 0..3] = x1, x2, y1, y2 of each biquad (direct form I, float64)."""
    for ch in range(2):
        x = xl if ch == 0 else xr
        s1x1, s1x2, s1y1, s1y2 = state[ch, 0, 0], state[ch, 0, 1], state[ch, 0, 2], state[ch, 0, 3]
        s2x1, s2x2, s2y1, s2y2 = state[ch, 1, 0], state[ch, 1, 1], state[ch, 1, 2], state[ch, 1, 3]
        for i in range(n):
            v = float(x[i])
            y1 = coef[0, 0] * v + coef[0, 1] * s1x1 + coef[0, 2] * s1x2 - coef[0, 3] * s1y1 - coef[0, 4] * s1y2
            s1x2, s1x1, s1y2, s1y1 = s1x1, v, s1y1, y1
            y2 = coef[1, 0] * y1 + coef[1, 1] * s2x1 + coef[1, 2] * s2x2 - coef[1, 3] * s2y1 - coef[1, 4] * s2y2
            s2x2, s2x1, s2y2, s2y1 = s2x1, y1, s2y1, y2
            if ch == 0:
                power[i] = y2 * y2
            else:
                power[i] += y2 * y2
        # flush denormals: a decaying IIR state below this is inaudible and slow on x86
        st = (s1x1, s1x2, s1y1, s1y2, s2x1, s2x2, s2y1, s2y2)
        for j in range(8):
            v = st[j]
            if abs(v) < 1e-30:
                v = 0.0
            state[ch, j // 4, j % 4] = v


@njit(nogil=True, cache=True)
def window_push(power, n, ring, acc):
    """Slide the short-term window over n new power samples.

    acc[0] = running sum, acc[1] = write position. The running sum is rebuilt from the ring
    each time the position wraps, so rounding never accumulates."""
    size = ring.shape[0]
    s = acc[0]
    pos = int(acc[1])
    for i in range(n):
        p = power[i]
        s += p - ring[pos]
        ring[pos] = p
        pos += 1
        if pos == size:
            pos = 0
            s = 0.0
            for j in range(size):
                s += ring[j]
    acc[0] = max(s, 0.0)
    acc[1] = pos


@njit(nogil=True, cache=True)
def window_leaving(n, ring, acc) -> float:
    """Sum of the n oldest powers: what leaves the window when n new samples arrive."""
    size = ring.shape[0]
    pos = int(acc[1])
    s = 0.0
    for i in range(min(n, size)):
        s += ring[(pos + i) % size]
    return s


@njit(nogil=True, cache=True)
def lufs_of(sum_power: float, samples: int) -> float:
    ms = sum_power / samples
    if ms <= 1e-20:
        return -200.0
    return LOUDNESS_OFFSET + 10.0 * math.log10(ms)


@njit(nogil=True, cache=True)
def tp_push(x, hist, pos, phases):
    """Push one sample into an interpolator history and return the largest |value| over all
    phases for the newest interval (see true_peak_filter).

    hist holds 2 * taps values: each sample is written at pos and pos + taps, so the last
    `taps` samples always sit contiguously in hist[pos + 1 : pos + taps + 1]. The caller
    advances pos (0..taps-1) after each call."""
    taps = phases.shape[1]
    hist[pos] = x
    hist[pos + taps] = x
    best = 0.0
    for k in range(phases.shape[0]):
        acc = 0.0
        # newest sample is at pos (+taps); tap j multiplies the sample j steps older
        for j in range(taps):
            acc += phases[k, j] * hist[pos + taps - j]
        if abs(acc) > best:
            best = abs(acc)
    return best
