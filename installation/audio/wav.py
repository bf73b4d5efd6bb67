"""Writing rendered audio to a WAV file (replay --wav, tests): 16-bit PCM, stereo."""
from __future__ import annotations

import wave
from pathlib import Path

import numpy as np


def to_pcm16(frames: np.ndarray) -> np.ndarray:
    """(n, ch) float in -1..1 -> int16, clipped, rounded to nearest (no dither: the master
    bus never goes near full scale, so the rounding is 90 dB down)."""
    x = np.nan_to_num(np.asarray(frames, np.float64), nan=0.0, posinf=0.0, neginf=0.0)
    return np.clip(np.rint(x * 32767.0), -32768, 32767).astype("<i2")


class WavWriter:
    """Append blocks as they are rendered; `close()` (or a with-block) finishes the header."""

    def __init__(self, path: str | Path, samplerate: int, channels: int = 2):
        self._w = wave.open(str(path), "wb")
        self._w.setnchannels(channels)
        self._w.setsampwidth(2)
        self._w.setframerate(int(samplerate))
        self.frames = 0

    def write(self, frames: np.ndarray) -> None:
        self._w.writeframes(to_pcm16(frames).tobytes())
        self.frames += len(frames)

    def close(self) -> None:
        self._w.close()

    def __enter__(self) -> "WavWriter":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def write_wav(path: str | Path, frames: np.ndarray, samplerate: int) -> None:
    frames = np.asarray(frames)
    if frames.ndim == 1:
        frames = frames[:, None]
    with WavWriter(path, samplerate, frames.shape[1]) as w:
        w.write(frames)
