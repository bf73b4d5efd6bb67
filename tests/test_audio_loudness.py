"""Loudness limits (issue 6): the BS.1770 meter agrees with pyloudnorm, the LUFS ceiling and
the true-peak ceiling hold on adversarial states, quiet hours lower the ceiling smoothly."""
from __future__ import annotations

import datetime as dt

import numpy as np
import pyloudnorm as pyln
import pytest
from scipy import signal

from installation.audio.jitcache import ensure_fresh_cache
from installation.audio.loudness import (kweight_coefficients, kweight_power, lufs_of, tp_push,
                                         true_peak_filter, window_push)
from installation.audio.offline import OfflineAudio
from installation.audio.params import AudioParams
from installation.audio.settings import AudioSettings
from installation.config import ConfigError, load_config

ensure_fresh_cache()
SR = 48000


def pink_noise(n: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    spec = np.fft.rfft(rng.standard_normal(n))
    f = np.fft.rfftfreq(n)
    spec[1:] /= np.sqrt(f[1:])
    spec[0] = 0
    x = np.fft.irfft(spec, n)
    return x / np.abs(x).max()


def my_short_term(x: np.ndarray, sr: int) -> float:
    """The engine's meter kernels over x, in blocks, as the engine runs them."""
    coef = kweight_coefficients(sr)
    state = np.zeros((2, 2, 4))
    ring = np.zeros(int(round(3 * sr)))
    acc = np.zeros(2)
    power = np.zeros(512)
    x2 = x if x.ndim == 2 else np.stack([x, np.zeros_like(x)], 1)
    for i in range(0, len(x2), 512):
        blk = x2[i:i + 512]
        kweight_power(blk[:, 0].astype(np.float64), blk[:, 1].astype(np.float64), len(blk), coef, state, power)
        window_push(power, len(blk), ring, acc)
    return lufs_of(acc[0], ring.shape[0])


def checker_short_term(y: np.ndarray, sr: int, hop_s: float = 0.1) -> np.ndarray:
    """Ungated short-term loudness (3 s window, every hop) with pyloudnorm's K-weighting
    filters and plain NumPy sums: independent of the engine's code."""
    meter = pyln.Meter(sr)
    z = y.astype(np.float64).copy()
    for stage in meter._filters.values():
        for ch in range(z.shape[1]):
            z[:, ch] = stage.apply_filter(z[:, ch])
    power = np.concatenate([[0.0], np.cumsum((z * z).sum(axis=1))])
    w = int(3 * sr)
    ends = np.arange(w, len(z) + 1, int(hop_s * sr))
    ms = (power[ends] - power[ends - w]) / w
    return -0.691 + 10 * np.log10(np.maximum(ms, 1e-20))


@pytest.mark.parametrize("sr", [44100, 48000, 96000])
@pytest.mark.parametrize("kind", ["sine1k", "sine100", "sine8k", "pink", "pink-left"])
def test_meter_matches_pyloudnorm(kind, sr):
    n = 3 * sr
    t = np.arange(n) / sr
    if kind.startswith("sine"):
        f = {"sine1k": 1000, "sine100": 100, "sine8k": 8000}[kind]
        mono = 10 ** (-20 / 20) * np.sin(2 * np.pi * f * t)
        x = np.stack([mono, mono], 1)
    else:
        x = 0.3 * np.stack([pink_noise(n, 1), pink_noise(n, 2)], 1)
        if kind == "pink-left":
            x[:, 1] = 0
    want = pyln.Meter(sr).integrated_loudness(x)
    assert abs(my_short_term(x, sr) - want) < 0.5, (my_short_term(x, sr), want)
    assert abs(my_short_term(x, sr) - want) < 0.05       # in fact it agrees far better


def test_a_full_scale_1k_sine_reads_minus_3_lufs_per_channel_pair():
    # BS.1770's calibration: a 0 dBFS 997 Hz sine in one channel reads -3.01 LUFS
    t = np.arange(3 * SR) / SR
    x = np.stack([np.sin(2 * np.pi * 997 * t), np.zeros_like(t)], 1)
    assert abs(my_short_term(x, SR) - (-3.01)) < 0.05


def test_true_peak_meter_sees_inter_sample_peaks():
    # fs/4 at 45 degrees: every sample is +-0.5, the waveform peaks at 0.707 (-3 dBTP)
    n = 4800
    x = 0.5 * np.sqrt(2) * np.sin(2 * np.pi * 0.25 * np.arange(n) + np.pi / 4)
    assert abs(np.abs(x).max() - 0.5) < 1e-9
    phases = true_peak_filter(4)
    hist = np.zeros(2 * phases.shape[1])
    peak = 0.0
    for i, v in enumerate(x):
        p = tp_push(v, hist, i % phases.shape[1], phases)
        if i >= 100:                   # past the switch-on transient, which really overshoots
            peak = max(peak, p)
    assert abs(20 * np.log10(peak) - 20 * np.log10(0.5 * np.sqrt(2))) < 0.05


def loud_state(p: AudioParams) -> None:
    """The loudest thing the crowd can ask for: 64 excited voices, a dense fast swarm."""
    p.set_mood(1.0, 1.0, 0.0, 1.0, 64)
    p.set_texture(1.0, 1.0, 0.0)
    for i in range(64):
        p.set_voice(i, True, (i * 13 % 64) / 64, (i * 29 % 64) / 64, 1.0, 1.0, 1.0, i % 16, (i % 2) * 2 - 1.0)


def render_session(s: AudioSettings, seconds: float, loud_from: float = 1.0, hit_every: int = 3,
                   quiet_from: float | None = None) -> tuple[np.ndarray, OfflineAudio]:
    audio = OfflineAudio(s)
    p = AudioParams(1.0)
    p.set_mood(0.0, 0.1, 0.5, 0.1, 1)
    out = []
    for tick in range(int(seconds * 60)):
        if tick == int(loud_from * 60):
            loud_state(p)
        if tick >= loud_from * 60 and hit_every and tick % hit_every == 0:
            p.hit(1.0, 0.0)
        if quiet_from is not None:
            p.quiet = 1.0 if tick >= quiet_from * 60 else 0.0
        audio.publish(p)
        out.append(audio.render_to_tick(tick, 60))
    return np.concatenate(out), audio


@pytest.mark.parametrize("ceiling,tp", [(-18.0, -1.0), (-30.0, -1.0), (-12.0, -3.0)])
def test_lufs_and_true_peak_ceilings_hold_on_an_adversarial_state(ceiling, tp):
    s = AudioSettings(volume=1.0, lufs_ceiling=ceiling, ceiling_dbtp=tp)
    y, audio = render_session(s, 9.0)
    short = checker_short_term(y, SR)
    assert short.max() <= ceiling + 0.1, short.max()
    assert short[-10:].min() > ceiling - 4.0          # held near the ceiling, not muted
    peak = max(np.abs(signal.resample_poly(y[:, c].astype(np.float64), 4, 1)).max() for c in range(2))
    assert 20 * np.log10(peak) <= tp
    st = audio.stats()
    assert abs(st["lufs"] - short[-1]) < 0.2
    assert st["true_peak_max_db"] <= tp


def test_without_the_ceilings_the_same_state_is_far_louder():
    """The test above can fail: unguarded, the adversarial state breaks every ceiling it uses."""
    free, _ = render_session(AudioSettings(volume=1.0, lufs_ceiling=0.0, compressor_ratio=1.0, ceiling_dbtp=0.0), 5.0)
    assert checker_short_term(free, SR).max() > -12.0 + 3


def test_the_guard_holds_the_ceiling_even_when_the_rider_is_slow():
    s = AudioSettings(volume=1.0, lufs_ceiling=-24.0, ride_attack_s=10.0)
    y, audio = render_session(s, 10.0)
    assert checker_short_term(y, SR).max() <= -24.0 + 0.1
    assert audio.stats()["loudness_guard_chunks"] > 0


@pytest.mark.parametrize("ceiling", [-30.0, -24.0])
def test_a_jump_far_over_the_ceiling_is_turned_down_not_silenced(ceiling):
    """A jump 14 dB over a -30 LUFS ceiling used to leave the guard only silence to give:
    2.5 s of it, the music gone mid-show. The rider now catches such a jump within a few
    blocks, and the guard spends the window's headroom over half a second, not in one chunk."""
    s = AudioSettings(volume=1.0, lufs_ceiling=ceiling)
    y, _ = render_session(s, 9.0)
    assert checker_short_term(y, SR).max() <= ceiling + 0.1
    block = SR // 10
    after = y[int(1.1 * SR):]
    rms_db = np.array([10 * np.log10(np.mean(after[i:i + block] ** 2) + 1e-24)
                       for i in range(0, len(after) - block, block)])
    assert rms_db.min() > np.median(rms_db) - 6.0, np.round(rms_db, 1)     # no drop-out


def test_quiet_hours_lower_the_ceiling_smoothly():
    s = AudioSettings(volume=1.0, lufs_ceiling=-16.0, quiet_lufs=-28.0)
    y, audio = render_session(s, 24.0, loud_from=0.5, hit_every=0, quiet_from=6.0)
    short = checker_short_term(y, SR)
    assert short[-20:].max() <= -28.0 + 0.1           # night: under the quiet ceiling
    assert short[:30].max() > -22.0                   # day: well above it
    # no sudden drop at any 100 ms step of the night coming in (the loud state's onset at
    # 0.5 s is 6+ dB over the ceiling: that jump is caught at once, as it should be)
    assert np.diff(short[15:]).min() > -1.0
    assert audio.stats()["loudness_ceiling_lufs"] == pytest.approx(-28.0)


@pytest.mark.parametrize("bad", ['["22-07"]', '["25:00-07:00"]', '["22:00-22:00"]', '["22:00"]'])
def test_bad_quiet_hours_are_a_config_error_naming_the_key(bad):
    with pytest.raises(ConfigError, match="quiet_hours"):
        load_config(sets=[f"safety.quiet_hours={bad}"])
