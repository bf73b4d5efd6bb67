"""Every audio kernel against its plain NumPy twin (installation/audio/reference.py), seeded."""
from __future__ import annotations

import math

import numpy as np

from installation.audio import params as P
from installation.audio.engine import Engine
from installation.audio.jitcache import ensure_fresh_cache
from installation.audio.loudness import (kweight_coefficients, kweight_power, lufs_of, tp_push,
                                         true_peak_filter, window_leaving, window_push)
from installation.audio.master import (MS_SIZE, compressor_block, dc_volume_block, limiter_block,
                                       limiter_sizes, ride_gain)
from installation.audio.params import AudioParams, sanitize_into
from installation.audio.reference import (compressor_ref, dc_volume_ref, kweight_ref, limiter_ref,
                                          render_ref, ride_gain_ref, sanitize_ref, true_peak_ref)
from installation.audio.settings import AudioSettings

ensure_fresh_cache()
SR = 48000


def test_sanitize_matches_twin_and_counts_non_finite():
    rng = np.random.default_rng(1)
    proto = AudioParams()
    src = (rng.standard_normal(P.SIZE) * 3).astype(np.float32)
    src[rng.integers(0, P.SIZE, 20)] = np.nan
    src[rng.integers(0, P.SIZE, 5)] = np.inf
    dst = np.zeros(P.SIZE, np.float32)
    bad = sanitize_into(src, dst, proto.lo, proto.hi, proto.default)
    want, want_bad = sanitize_ref(src, proto.lo, proto.hi, proto.default)
    assert bad == want_bad and bad > 0
    np.testing.assert_array_equal(dst, want)


def test_kweighting_matches_twin_across_blocks():
    rng = np.random.default_rng(2)
    x = rng.standard_normal((3000, 2)) * 0.3
    coef = kweight_coefficients(SR)
    state = np.zeros((2, 2, 4))
    power = np.zeros(1000)
    got = []
    for i in range(0, 3000, 1000):
        kweight_power(x[i:i + 1000, 0].copy(), x[i:i + 1000, 1].copy(), 1000, coef, state, power)
        got.append(power.copy())
    ref_state = np.zeros((2, 2, 4))
    want = kweight_ref(x, coef, ref_state)
    np.testing.assert_allclose(np.concatenate(got), want, rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(state, ref_state, rtol=1e-12, atol=1e-15)


def test_sliding_window_matches_plain_sums():
    rng = np.random.default_rng(3)
    ring = np.zeros(500)
    acc = np.zeros(2)
    history = []
    for _ in range(40):
        n = int(rng.integers(1, 90))
        p = rng.random(n) ** 3
        leaving = window_leaving(n, ring, acc)
        before = np.concatenate([np.zeros(500)] + history)[-500:]
        assert math.isclose(leaving, before[:n].sum(), rel_tol=1e-12, abs_tol=1e-12)
        window_push(p, n, ring, acc)
        history.append(p)
        want = np.concatenate([np.zeros(500)] + history)[-500:].sum()
        assert math.isclose(acc[0], want, rel_tol=1e-9)
        assert math.isclose(lufs_of(acc[0], 500), -0.691 + 10 * math.log10(want / 500), abs_tol=1e-9)


def test_true_peak_estimator_matches_twin():
    rng = np.random.default_rng(4)
    phases = true_peak_filter(4)
    x = rng.standard_normal(700)
    hist = np.zeros(2 * phases.shape[1])
    got = np.empty(len(x))
    pos = 0
    for i, v in enumerate(x):
        got[i] = tp_push(v, hist, pos, phases)
        pos = (pos + 1) % phases.shape[1]
    np.testing.assert_allclose(got, true_peak_ref(x, phases), rtol=1e-12, atol=1e-12)


def test_true_peak_filter_is_scipys_resample_poly_interpolator():
    from scipy import signal
    phases = true_peak_filter(4)
    h = signal.firwin(2 * 10 * 4 + 1, 1 / 4, window=("kaiser", 5.0)) * 4
    for k in range(4):
        sub = h[k::4]
        np.testing.assert_allclose(phases[k, :sub.size], sub, rtol=1e-12, atol=1e-15)


def test_dc_volume_and_compressor_match_twins():
    rng = np.random.default_rng(5)
    ms = np.zeros(MS_SIZE)
    ms_ref = ms.copy()
    for block in range(6):
        x = rng.standard_normal((256, 2)) * (0.05 + block * 0.2) + 0.1
        l, r = x[:, 0].copy(), x[:, 1].copy()
        vol = float(rng.random())
        dc_volume_block(ms, vol, 0.3, SR, 256, l, r)
        compressor_block(ms, -18.0, 3.0, SR, 256, l, r)
        y = dc_volume_ref(ms_ref, vol, 0.3, SR, x)
        y = compressor_ref(ms_ref, -18.0, 3.0, SR, y)
        np.testing.assert_allclose(np.stack([l, r], 1), y, rtol=1e-10, atol=1e-13)
        np.testing.assert_allclose(ms, ms_ref, rtol=1e-10, atol=1e-13)


def test_ride_gain_solves_the_budget_like_bisection():
    rng = np.random.default_rng(6)
    for _ in range(300):
        n = 256
        power = rng.random(n) ** 2 * rng.uniform(0.01, 10)
        w = np.arange(1, n + 1) / n
        g0 = float(rng.uniform(0, 1))
        g_ride = float(rng.uniform(0, 1))
        budget = float(rng.uniform(-1, 2) * power.sum())
        got = ride_gain(g0, g_ride, budget, power.sum(), (w * power).sum(), (w * w * power).sum())
        want = ride_gain_ref(g0, g_ride, budget, power)
        assert abs(got - want) < 1e-7, (got, want)


def test_limiter_matches_twin():
    rng = np.random.default_rng(7)
    s = AudioSettings()
    e = Engine(s, warm=False)
    ms, _, _, _, _, phases, hl, hr, qv, qi, box, dl, dr = e.master
    x = rng.standard_normal((3000, 2)) * np.repeat(rng.uniform(0.01, 4, 30), 100)[:, None]
    target = 10 ** ((s.ceiling_dbtp - 0.1) / 20)
    ceiling = 10 ** (s.ceiling_dbtp / 20)
    rel = 1 - math.exp(-1 / (s.limiter_release_ms * 1e-3 * SR))
    l, r = x[:, 0].copy(), x[:, 1].copy()
    for i in range(0, 3000, 200):
        limiter_block(ms, target, ceiling, rel, phases, hl, hr, qv, qi, box, dl, dr, 200, l[i:i + 200], r[i:i + 200])
    want, _ = limiter_ref(x, target, ceiling, s.limiter_release_ms, s.limiter_lookahead_ms, SR, phases)
    np.testing.assert_allclose(np.stack([l, r], 1), want, rtol=1e-9, atol=1e-12)
    assert limiter_sizes(s.limiter_lookahead_ms, SR)[2] == dl.shape[0]


def _busy_targets(blocks: int, seed: int) -> list[np.ndarray]:
    """A seeded session in miniature: voices arrive and leave, moods move, pulses hit."""
    rng = np.random.default_rng(seed)
    p = AudioParams(0.8)
    out = []
    for b in range(blocks):
        if b % 7 == 0:
            p.set_mood(*rng.uniform(-1, 1, 1), *rng.random(3), int(rng.integers(0, 64)))
            p.set_texture(*rng.random(3))
            p.clear_voices()
            for i in rng.choice(64, int(rng.integers(0, 64)), replace=False):
                p.set_voice(int(i), True, *rng.random(2), rng.uniform(-1, 1), *rng.random(2), int(rng.integers(0, 16)), rng.uniform(-1, 1))
        if rng.random() < 0.15:
            p.hit(float(rng.random()), float(rng.uniform(-1, 1)))
        out.append(p.data.copy())
    return out


def test_whole_engine_matches_the_twins_block_by_block():
    """Voices, drone, grains, hits, clock, mood glides, DC, volume, compressor, loudness rider
    and limiter: the kernel's samples against the chain of twins."""
    s = AudioSettings(blocksize=128, grain_rate=120.0)
    targets = _busy_targets(40, seed=8)
    engine = Engine(s)
    out = np.zeros((128 * len(targets), 2), np.float32)
    for b, t in enumerate(targets):
        engine.render(t, out[b * 128:(b + 1) * 128])
    want = render_ref(s, targets)
    assert np.abs(out).max() > 0.01
    np.testing.assert_allclose(out, want, rtol=0, atol=2e-6)
