"""The master bus keeps its promises: the true-peak ceiling under any input, no clicks when
parameters jump, silence (and a count) instead of NaN, no subnormal state."""
from __future__ import annotations

import math

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from scipy import signal

from installation.audio import synth as S
from installation.audio.engine import C_NONFINITE, Engine
from installation.audio.jitcache import ensure_fresh_cache
from installation.audio.master import LIMIT_MARGIN_DB, limiter_block
from installation.audio.offline import OfflineAudio
from installation.audio.params import AudioParams
from installation.audio.settings import AudioSettings

ensure_fresh_cache()
SR = 48000


def oversampled_peak(y: np.ndarray) -> float:
    """The checker: SciPy's 4x polyphase resampler, not the limiter's own code path."""
    return max(float(np.abs(signal.resample_poly(y[:, c].astype(np.float64), 4, 1)).max()) for c in range(y.shape[1]))


def run_limiter(x: np.ndarray, s: AudioSettings, chunks: list[int]) -> np.ndarray:
    e = Engine(s, warm=False)
    ms, _, _, _, _, phases, hl, hr, qv, qi, box, dl, dr = e.master
    ceiling = 10 ** (s.ceiling_dbtp / 20)
    target = 10 ** ((s.ceiling_dbtp - LIMIT_MARGIN_DB) / 20)
    rel = 1 - math.exp(-1 / (s.limiter_release_ms * 1e-3 * SR))
    x = np.concatenate([x, np.zeros((dl.shape[0] + 64, 2))])      # flush the look-ahead delay
    l, r = x[:, 0].copy(), x[:, 1].copy()
    i = k = 0
    while i < len(l):
        n = min(chunks[k % len(chunks)], len(l) - i)
        limiter_block(ms, target, ceiling, rel, phases, hl, hr, qv, qi, box, dl, dr, n, l[i:i + n], r[i:i + n])
        i += n
        k += 1
    return np.stack([l, r], 1)


def adversarial(kind: int, n: int, level_db: float, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    a = 10 ** (level_db / 20)
    t = np.arange(n)
    if kind == 0:      # white noise
        x = rng.standard_normal((n, 2))
    elif kind == 1:    # full-scale square-ish sequences: the classic inter-sample overs
        x = np.sign(rng.standard_normal((n, 2)))
    elif kind == 2:    # near-Nyquist sines at a bad phase
        f = rng.uniform(0.2, 0.499)
        ph = rng.uniform(0, 2 * np.pi)
        x = np.stack([np.sin(2 * np.pi * f * t + ph), np.sin(2 * np.pi * f * t + ph + 1.3)], 1)
    elif kind == 3:    # sparse spikes on silence
        x = np.zeros((n, 2))
        x[rng.integers(0, n, 12)] = rng.standard_normal((12, 2)) * 30
    elif kind == 4:    # bursts whose level jumps by 40 dB every few samples
        x = rng.standard_normal((n, 2)) * np.repeat(10 ** rng.uniform(-2, 0, n // 7 + 1), 7)[:n, None]
    else:              # [1, 1, -1, -1] at fs/4, the +3 dB worst case, with sign flips
        x = np.tile([[1.0, 1.0], [1.0, 1.0], [-1.0, -1.0], [-1.0, -1.0]], (n // 4 + 1, 1))[:n]
        x[rng.integers(0, n, n // 20)] *= -1
    return x * a


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(kind=st.integers(0, 5), n=st.integers(16, 2500), level_db=st.floats(-20, 60),
       seed=st.integers(0, 2**31 - 1), ceiling=st.sampled_from([-1.0, -0.1, -6.0, -20.0]),
       chunk=st.lists(st.integers(1, 512), min_size=1, max_size=4))
def test_limiter_never_lets_an_oversampled_sample_over_the_ceiling(kind, n, level_db, seed, ceiling, chunk):
    s = AudioSettings(ceiling_dbtp=ceiling)
    x = adversarial(kind, n, level_db, seed)
    y = run_limiter(x, s, chunk)
    c = 10 ** (ceiling / 20)
    assert np.isfinite(y).all()
    assert np.abs(y).max() <= c
    assert oversampled_peak(y) <= c * (1 + 1e-9)


@settings(max_examples=25, deadline=None)
@given(values=st.lists(st.floats(-1e6, 1e6, allow_nan=False), min_size=8, max_size=600))
def test_limiter_holds_for_arbitrary_sample_values(values):
    x = np.repeat(np.asarray(values, np.float64)[:, None], 2, axis=1)
    x[:, 1] *= -0.5
    y = run_limiter(x, AudioSettings(), [256])
    assert oversampled_peak(y) <= 10 ** (-1 / 20) * (1 + 1e-9)


def test_limiter_leaves_quiet_signals_alone_apart_from_the_delay():
    t = np.arange(4800)
    x = 0.3 * np.stack([np.sin(2 * np.pi * 440 * t / SR)] * 2, 1)
    y = run_limiter(x, AudioSettings(), [256])
    d = np.argmax(np.abs(y[:, 0]) > 0)
    first = np.argmax(np.abs(x[:, 0]) > 0)
    np.testing.assert_allclose(y[d:d + 4000], x[first:first + 4000], atol=1e-12)


def test_the_check_can_fail_without_the_limiter():
    x = adversarial(5, 2000, 0.0, 1) * 10 ** (-1 / 20)       # sample peaks at the ceiling exactly
    assert oversampled_peak(x) > 10 ** (-1 / 20) * 1.2         # ... inter-sample peaks well over it


def _steps(x: np.ndarray) -> float:
    return float(np.abs(np.diff(x, axis=0)).max())


def render_states(a: AudioParams, b: AudioParams, s: AudioSettings, before=1.0, after=1.5):
    audio = OfflineAudio(s)
    audio.publish(a)
    first = audio.render(int(before * SR))
    audio.publish(b)
    return first, audio.render(int(after * SR))


def _state(volume, pan, y, arousal, valence=0.5, density=0.0):
    p = AudioParams(volume)
    p.set_mood(valence, 0.0, 0.0, 0.0, 1)
    p.set_texture(density, 0.2, 0.5)
    p.set_voice(0, True, 0.1, y, 0.0, arousal, 0.5, 0, pan)
    return p


def test_parameter_jumps_do_not_click():
    """Volume x10, hard-left to hard-right, two octaves up, another mode, texture on: the
    largest sample-to-sample step around the jump stays within what the steady sound of
    either state has anyway."""
    s = AudioSettings(texture_gain=0.3, lufs_ceiling=0.0, compressor_threshold_db=0.0)
    a = _state(0.1, -1.0, 0.1, 0.0, valence=-1.0)
    b = _state(1.0, 1.0, 0.75, 0.0, valence=1.0, density=1.0)
    first, second = render_states(a, b, s)
    steady_a = _steps(first[-SR // 4:])
    steady_b = _steps(second[-SR // 2:])
    jump = _steps(np.concatenate([first[-64:], second[:SR // 10]]))
    assert jump <= 1.25 * max(steady_a, steady_b), (jump, steady_a, steady_b)
    # the test can fail: cutting from one steady sound to the other is a click
    cut = _steps(np.concatenate([first[-64:], second[-SR // 2:]]))
    assert cut > 1.25 * max(steady_a, steady_b)


def test_a_voice_appearing_and_leaving_does_not_click():
    s = AudioSettings(texture_gain=0.0)
    silent = AudioParams(1.0)
    silent.set_mood(0.5, 0.2, 0.5, 0.3, 0)
    on = _state(1.0, 0.0, 0.5, 0.2)
    first, second = render_states(silent, on, s, before=0.2, after=1.0)
    steady = _steps(second[-SR // 4:])
    assert _steps(second[:SR // 10]) <= 1.25 * steady
    first, second = render_states(on, silent, s, before=1.0, after=4.5)
    assert _steps(second[:SR // 2]) <= 1.25 * _steps(first[-SR // 4:])
    assert np.abs(second[-SR // 10:]).max() < 1e-3 * np.abs(first).max()   # released to silence


def test_a_hit_ramps_in():
    s = AudioSettings(texture_gain=0.0)
    p = AudioParams(1.0)
    audio = OfflineAudio(s)
    audio.publish(p)
    audio.render(SR // 10)
    p.hit(1.0, 0.0)
    audio.publish(p)
    y = audio.render(SR // 2)
    peak = np.abs(y).max()
    assert peak > 0.1
    onset = int(np.argmax(np.abs(y[:, 0]) > 1e-5))
    # the level ramps up over 3 ms: half a millisecond in, it is still far from the peak
    assert np.abs(y[onset:onset + SR // 2000]).max() < 0.25 * peak


def test_nan_becomes_silence_counted_and_the_engine_recovers():
    s = AudioSettings()
    e = Engine(s)
    p = _state(1.0, 0.0, 0.5, 0.5)
    out = np.zeros((256, 2), np.float32)
    for _ in range(40):
        e.render(p.data, out)
    assert np.abs(out).max() > 0.01
    e.synth[0][0, S.VS_PC] = np.nan          # a voice's phase goes bad (a bug, a bit flip)
    e.render(p.data, out)
    assert (out == 0).all()
    assert e.counters[C_NONFINITE] == 1 and e.stats()["nonfinite_blocks"] == 1
    for _ in range(80):
        e.render(p.data, out)
    assert np.isfinite(out).all() and np.abs(out).max() > 0.01     # sound is back, state reset
    assert e.counters[C_NONFINITE] == 1


def test_nan_published_by_the_main_loop_is_cleaned_and_counted():
    s = AudioSettings()
    audio = OfflineAudio(s)
    p = _state(1.0, 0.0, 0.5, 0.5)
    p.set_voice(1, True, float("nan"), float("inf"), 0, float("-inf"), 1, 3, float("nan"))
    p.set_mood(float("nan"), 0.5, 0.5, 0.5, 2)
    audio.publish(p)
    y = audio.render(SR // 2)
    assert np.isfinite(y).all() and np.abs(y).max() > 0.01
    stats = audio.stats()
    assert stats["audio_bad_params"] == 5 and stats["nonfinite_blocks"] == 0


def test_no_subnormal_numbers_survive_in_the_state():
    s = AudioSettings()
    e = Engine(s)
    loud = _state(1.0, 0.0, 0.5, 0.5, density=1.0)
    loud.hit(1.0)
    out = np.zeros((256, 2), np.float32)
    for _ in range(50):
        e.render(loud.data, out)
    quiet = AudioParams(1.0)
    quiet.set_texture(0.0, 0.0, 0.0)
    gs = e.synth[1]
    gs[S.GS_TENSION_T] = gs[S.GS_TENSION] = 1e-31     # decaying scalars about to go subnormal
    e.render(quiet.data, out)
    assert gs[S.GS_TENSION_T] == 0 and gs[S.GS_TENSION] == 0
    for _ in range(3000):                      # 16 s of fading out
        e.render(quiet.data, out)
    for arr in list(e.synth[:5]) + list(e.master[:5]) + list(e.meter):
        a = np.asarray(arr, np.float64).ravel()
        assert not ((a != 0) & (np.abs(a) < np.finfo(np.float64).tiny)).any()
    assert not ((out != 0) & (np.abs(out) < np.finfo(np.float32).tiny)).any()
