"""The harmony: modes follow valence, touches land on scale notes, agreement on chord tones.

Pitches are measured by FFT on offline renders and compared with frequencies computed here
in closed form from the modes' interval patterns (rotations of the major scale)."""
from __future__ import annotations

import numpy as np
import pytest

from installation.audio.jitcache import ensure_fresh_cache
from installation.audio.music import (MODE_NAMES, MODES, degree_semitones, hash01, is_chord_tone,
                                      mode_index, quantise_degree)
from installation.audio.offline import OfflineAudio
from installation.audio.params import AudioParams
from installation.audio.reference import (degree_semitones_ref, hash01_ref, mode_index_ref,
                                          quantise_degree_ref)
from installation.audio.settings import AudioSettings

ensure_fresh_cache()
SR = 48000
MAJOR_STEPS = [2, 2, 1, 2, 2, 2, 1]
# the church modes as rotations of the major scale's steps: ionian starts at 0, dorian at 1...
ROTATION = {"ionian": 0, "dorian": 1, "phrygian": 2, "lydian": 3, "mixolydian": 4, "aeolian": 5}


def mode_scale(name: str) -> list[int]:
    r = ROTATION[name]
    steps = MAJOR_STEPS[r:] + MAJOR_STEPS[:r]
    return [0] + list(np.cumsum(steps)[:-1])


def expected_freq(root: float, degree: int, mode: str) -> float:
    scale = mode_scale(mode)
    return root * 2 ** ((12 * (degree // 7) + scale[degree % 7]) / 12)


def measure_pitch(x: np.ndarray) -> float:
    """Strongest spectral peak, refined by parabolic interpolation of the log magnitude."""
    w = np.hanning(len(x))
    mag = np.abs(np.fft.rfft(x * w))
    k = int(np.argmax(mag[5:])) + 5
    a, b, c = np.log(mag[k - 1:k + 2] + 1e-30)
    d = 0.5 * (a - c) / (a - 2 * b + c)
    return (k + d) * SR / len(x)


def render_voice(valence: float, y: float, agreement: float = 0.0, seconds: float = 1.5, **settings) -> np.ndarray:
    s = AudioSettings(texture_gain=0.0, volume=1.0, **settings)
    audio = OfflineAudio(s)
    p = AudioParams(1.0)
    p.set_mood(valence, 0.0, agreement, 0.0, 1)
    p.set_voice(0, True, 0.3, y, valence, 0.0, 0.5, 0, 0.0)
    audio.publish(p)
    out = audio.render(int(seconds * SR))
    return out[int(0.5 * SR):, 0].astype(np.float64)


def test_modes_are_the_rotations_of_the_major_scale():
    for i, name in enumerate(MODE_NAMES):
        assert list(MODES[i]) == mode_scale(name), name


def test_valence_orders_modes_dark_to_bright():
    brightness = [sum(mode_scale(MODE_NAMES[int(mode_index(v))])) for v in np.linspace(-1, 1, 41)]
    assert brightness == sorted(brightness)
    assert MODE_NAMES[mode_index(-1.0)] == "phrygian" and MODE_NAMES[mode_index(1.0)] == "lydian"


@pytest.mark.parametrize("valence,mode", [(-1.0, "phrygian"), (-0.6, "aeolian"), (-0.2, "dorian"),
                                          (0.2, "mixolydian"), (0.6, "ionian"), (1.0, "lydian")])
@pytest.mark.parametrize("y", [0.07, 0.33, 0.52, 0.9])
def test_voice_pitch_is_the_touch_height_quantised_to_the_mode(valence, mode, y):
    steps = 21                                        # 3 octaves x 7 degrees (the default)
    degree = int(np.floor(y * steps + 0.5))           # nearest degree (no ties at these heights)
    f = measure_pitch(render_voice(valence, y))
    want = expected_freq(110.0, degree, mode)
    assert abs(1200 * np.log2(f / want)) < 3.0, (f, want)


def test_agreement_keeps_voices_on_the_chord_tones():
    # bar 0 plays chord 1 (the tonic triad): degrees 0, 2, 4 (+ octaves) only
    chord_freqs = [expected_freq(110.0, d, "ionian") for d in range(0, 24) if d % 7 in (0, 2, 4)]
    for y in np.linspace(0.03, 0.97, 9):
        f = measure_pitch(render_voice(0.6, float(y), agreement=1.0))
        cents = min(abs(1200 * np.log2(f / c)) for c in chord_freqs)
        assert cents < 3.0, (y, f)
    # ...and without agreement a non-chord degree sounds where the finger is
    y = 1 / 21 + 0.005                                  # degree 1: the second, not in the triad
    f = measure_pitch(render_voice(0.6, y, agreement=0.0))
    assert abs(1200 * np.log2(f / expected_freq(110.0, 1, "ionian"))) < 3.0


def test_root_and_range_are_tunable():
    f = measure_pitch(render_voice(0.6, 1.0, root_hz=220.0, octaves=2.0))
    assert abs(1200 * np.log2(f / 880.0)) < 3.0


def test_music_kernels_match_their_twins():
    rng = np.random.default_rng(11)
    for v in rng.uniform(-1.5, 1.5, 200):
        assert mode_index(v) == mode_index_ref(v)
    for _ in range(2000):
        steps = int(rng.integers(3, 35))
        pos = float(rng.uniform(-2, steps + 2))
        chord = int(rng.integers(0, 7))
        consonant = bool(rng.integers(0, 2))
        current = int(rng.integers(-1, steps + 2))
        assert quantise_degree(pos, steps, chord, consonant, current) == quantise_degree_ref(pos, steps, chord, consonant, current)
    for d in range(40):
        for m in range(6):
            assert degree_semitones(d, m) == degree_semitones_ref(d, m)
        assert is_chord_tone(d, 3) == ((d - 3) % 7 in (0, 2, 4))
    for n in rng.integers(0, 10**6, 500):
        assert hash01(int(n)) == hash01_ref(int(n))


def test_a_resting_finger_does_not_warble_between_two_notes():
    # exactly between degrees 10 and 11: whichever is chosen first stays
    first = quantise_degree(10.5, 21, 0, False, -1)
    for wobble in np.linspace(-0.14, 0.14, 15):
        assert quantise_degree(10.5 + wobble, 21, 0, False, first) == first
    assert quantise_degree(10.5 + 0.7, 21, 0, False, first) == 11


def test_a_note_that_would_alias_drops_by_octaves_instead():
    """A crossfade or /param can pass through a pitch range whose top aliases (the config
    refuses only the ends): such a note folds down whole octaves, same pitch class, and its
    FM partial stays under Nyquist. The NumPy twin does the same."""
    import math

    from installation.audio import reference as R
    from installation.audio import synth as S
    from installation.audio.engine import make_config
    from installation.audio.music import MODES
    from installation.audio.settings import FM_TOP_PARTIAL, AudioSettings
    sr = 48000
    cfg = make_config(AudioSettings(root_hz=880.0, octaves=5.0, tension_cents=0.0), sr)
    folded = 0
    for d in range(int(cfg[S.CF_STEPS]) + 3):
        for m in range(len(MODES)):
            f = S.voice_frequency(cfg, d, m, 0, 0.0)
            assert f == R.voice_frequency_ref(cfg, d, m, 0, 0.0)
            assert FM_TOP_PARTIAL * f <= sr / 2
            plain = 880.0 * 2.0 ** (S.degree_semitones(d, m) / 12.0)
            octaves = math.log2(plain / f)
            assert abs(octaves - round(octaves)) < 1e-9
            folded += round(octaves) > 0
    assert folded > 0
