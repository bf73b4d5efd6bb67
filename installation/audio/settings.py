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
