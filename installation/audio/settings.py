"""Settings of the symphony: `[audio]`."""
from __future__ import annotations

import math
from dataclasses import dataclass

from ..config.fields import setting

# The highest pitch a participant's voice can sound (synth.voice_frequency): the top of the
# screen is scale degree round(7 * octaves) and quantising may land two degrees above it
# (music.quantise_degree), in the brightest mode (Lydian: the highest semitone of every degree
# of music.MODES, a test holds the two together), detuned up by the whole tension_cents in a
# surge.
_TOP_SEMITONES = (0, 2, 4, 6, 7, 9, 11)
# The voices are FM (synth.voices_block): the modulator runs at 1 to 1.5 times the note (1.5 in
# a surge), so the strongest partial after the note itself sits at up to 2.5 times it. That
# partial must stay under half the sample rate, or it folds back as an unrelated, inharmonic
# tone (aliasing). The texture's grains (at most ~18 x root_hz, pure sines) and the drone (~6 x)
# stay under it for every allowed root_hz.
FM_TOP_PARTIAL = 2.5
ROOT_HZ_LO = 27.5


def top_voice_hz(root_hz: float, octaves: float, tension_cents: float) -> float:
    """The highest pitch voice_frequency can give for these settings, in Hz."""
    degree = max(1, int(round(7 * octaves))) + 2
    semis = 12 * (degree // 7) + _TOP_SEMITONES[degree % 7]
    return root_hz * 2.0 ** ((semis + tension_cents / 100.0) / 12.0)


def _pitch_problem(s) -> str | None:
    """Why root_hz and octaves alias at this samplerate (one line with the fix), or None."""
    nyquist = s.samplerate / 2.0

    def fits(root: float, octaves: float, rate: float) -> bool:
        return FM_TOP_PARTIAL * top_voice_hz(root, octaves, s.tension_cents) <= rate / 2.0

    if fits(s.root_hz, s.octaves, s.samplerate):
        return None
    top = top_voice_hz(s.root_hz, s.octaves, s.tension_cents)
    lower = []
    root_max = math.floor(10 * s.root_hz * nyquist / (FM_TOP_PARTIAL * top)) / 10
    if root_max >= ROOT_HZ_LO:
        lower.append(f"root_hz to at most {root_max:g}")
    octaves_max = next((k / 10 for k in range(math.floor(s.octaves * 10 + 1e-9), 4, -1)
                        if fits(s.root_hz, k / 10, s.samplerate)), None)
    if octaves_max is not None:
        lower.append(f"octaves to at most {octaves_max:g}")
    fix = "lower " + (" or ".join(lower) if lower else "root_hz and octaves")
    if s.samplerate < 96000 and fits(s.root_hz, s.octaves, 96000):
        fix += ", or set samplerate = 96000"
    return (f"root_hz = {s.root_hz:g} with octaves = {s.octaves:g} puts the highest note at "
            f"{top:.0f} Hz and its FM partial at {FM_TOP_PARTIAL * top:.0f} Hz, above {nyquist:.0f} Hz "
            f"(half the samplerate {s.samplerate}), where it aliases: {fix}")


@dataclass(frozen=True)
class AudioSettings:
    enabled: bool = setting(True, "play sound when an output device exists")
    device: str = setting("", "output device by name or index; empty takes the system default")
    samplerate: int = setting(48000, "sample rate", unit="Hz", choices=(44100, 48000, 96000))
    blocksize: int = setting(256, "frames per callback", unit="frames", lo=32, hi=4096)
    volume: float = setting(0.6, "master volume (the operator's /master/volume)", lo=0.0, hi=1.0)
    ceiling_dbtp: float = setting(-1.0, "true-peak ceiling of the limiter", unit="dBTP", lo=-30.0, hi=0.0)
    # -- the music
    root_hz: float = setting(110.0, "tonic: the lowest note a participant can play; the swarm's drone sits an octave below; with octaves, the highest note x 2.5 (its FM partial) must stay under half the samplerate", unit="Hz", lo=ROOT_HZ_LO, hi=880.0)
    octaves: float = setting(3.0, "pitch range of a touch, bottom of the screen to the top", unit="octaves", lo=0.5, hi=5.0)
    progression: tuple[int, ...] = setting((1, 6, 4, 5), "chords, one per bar, as scale degrees 1..7 (1 = tonic); up to 16", lo=1, hi=7)
    tempo_calm_bpm: float = setting(66.0, "tempo of a calm crowd (arousal 0)", unit="bpm", lo=20.0, hi=240.0)
    tempo_excited_bpm: float = setting(128.0, "tempo of an excited crowd (arousal 1)", unit="bpm", lo=20.0, hi=240.0)
    consonance: float = setting(0.6, "crowd agreement above which voices keep to the chord's tones", lo=0.0, hi=1.0)
    tension_cents: float = setting(30.0, "detuning between voices at full surge tension", unit="cents", lo=0.0, hi=100.0)
    brightness: float = setting(1.0, "FM brightness of the voices (arousal scales it)", lo=0.0, hi=4.0)
    voice_gain: float = setting(0.5, "level of the participants' voices", lo=0.0, hi=2.0)
    texture_gain: float = setting(0.35, "level of the swarm texture (drone and grains)", lo=0.0, hi=2.0)
    hit_gain: float = setting(0.8, "level of the pulse hits", lo=0.0, hi=2.0)
    grain_rate: float = setting(30.0, "grains per second of a dense, fast swarm", unit="1/s", lo=0.0, hi=200.0)
    glide_s: float = setting(0.05, "time constant of every parameter change (no clicks, no zipper noise)", unit="s", lo=0.005, hi=2.0)
    portamento_s: float = setting(0.04, "pitch glide when a touch moves to another note", unit="s", lo=0.001, hi=2.0)
    # -- the master bus
    compressor_threshold_db: float = setting(-18.0, "gentle bus compressor threshold", unit="dBFS", lo=-60.0, hi=0.0)
    compressor_ratio: float = setting(2.0, "bus compressor ratio", lo=1.0, hi=20.0)
    limiter_lookahead_ms: float = setting(1.5, "true-peak limiter look-ahead (adds this much latency)", unit="ms", lo=0.5, hi=10.0)
    limiter_release_ms: float = setting(80.0, "true-peak limiter release", unit="ms", lo=5.0, hi=2000.0)
    # -- loudness limits (audience safety)
    lufs_ceiling: float = setting(-18.0, "short-term loudness ceiling (BS.1770, 3 s), held by slow gain riding", unit="LUFS", lo=-60.0, hi=0.0)
    ride_attack_s: float = setting(0.4, "how fast the loudness rider turns down", unit="s", lo=0.05, hi=10.0)
    ride_release_s: float = setting(6.0, "how fast the loudness rider turns back up", unit="s", lo=0.5, hi=60.0)
    quiet_lufs: float = setting(-30.0, "loudness ceiling at full quiet hours (the schedule is [safety] quiet_hours)", unit="LUFS", lo=-60.0, hi=0.0)

    def __post_init__(self):
        if not 1 <= len(self.progression) <= 16:
            raise ValueError(f"progression = {list(self.progression)!r}: one to sixteen chords")

    def validate(self) -> None:
        """The loader's cross-field check (config/loader.build_section): the pitch range under
        Nyquist. Not in __post_init__: a crossfade blends root_hz and octaves linearly, and a
        blend of two ranges that each pass may not (the frame loop must not raise)."""
        pitch = _pitch_problem(self)
        if pitch:
            raise ValueError(pitch)
