"""Settings of the symphony: `[audio]`."""
from __future__ import annotations

from dataclasses import dataclass

from ..config.fields import setting



@dataclass(frozen=True)
class AudioSettings:
    enabled: bool = setting(True, "play sound when an output device exists")
    device: str = setting("", "output device by name or index; empty takes the system default")
    samplerate: int = setting(48000, "sample rate", unit="Hz", choices=(44100, 48000, 96000))
    blocksize: int = setting(256, "frames per callback", unit="frames", lo=32, hi=4096)
    volume: float = setting(0.6, "master volume (the operator's /master/volume)", lo=0.0, hi=1.0)
    ceiling_dbtp: float = setting(-1.0, "true-peak ceiling of the limiter", unit="dBTP", lo=-30.0, hi=0.0)
    # -- the music
    root_hz: float = setting(110.0, "tonic: the lowest note a participant can play; the swarm's drone sits an octave below", unit="Hz", lo=27.5, hi=880.0)
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
