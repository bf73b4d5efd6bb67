"""The offline driver: the stream's engine, run by whoever asks for samples.

Used by --headless (called at the frame loop's pace), replay export (--wav) and tests. It
renders in whole blocks of `blocksize`, reading the mailbox before each block exactly as the
stream's callback does, so the same publishes between the same blocks give the same samples.
Frames rendered beyond what was asked wait in a carry buffer for the next call.
"""
from __future__ import annotations

import numpy as np

from .engine import Engine
from .params import SIZE, AudioParams, Mailbox
from .settings import AudioSettings


class OfflineAudio:
    backend = "offline"

    def __init__(self, settings: AudioSettings, samplerate: int | None = None):
        self.settings = settings
        self.engine = Engine(settings, samplerate)
        self.samplerate = self.engine.samplerate
        self._box = Mailbox(settings.volume)
        self._staging = np.zeros(SIZE, np.float32)
        self._target = self._box.initial()
        self._block = np.zeros((settings.blocksize, 2), np.float32)
        self._carry = 0          # frames of _block not handed out yet (at its end)
        self.frames_out = 0

    def publish(self, params: AudioParams) -> None:
        self._box.publish(params)

    def apply_settings(self, settings: AudioSettings) -> None:
        """A scene's [audio] values from the next block on (rate and sizes stay as opened)."""
        self.engine.set_settings(settings)

    def _next_block(self) -> None:
        if self._box.read_into(self._staging):
            self._staging, self._target = self._target, self._staging
        self.engine.render(self._target, self._block)
        self._carry = self._block.shape[0]

    def render_into(self, out: np.ndarray) -> None:
        """Fill out ((n, 2) float32) with the next n frames."""
        n = out.shape[0]
        done = 0
        block = self._block.shape[0]
        while done < n:
            if self._carry == 0:
                self._next_block()
            take = min(self._carry, n - done)
            start = block - self._carry
            out[done:done + take] = self._block[start:start + take]
            self._carry -= take
            done += take
        self.frames_out += n

    def render(self, n_frames: int) -> np.ndarray:
        """The next n_frames as a new (n, 2) float32 array."""
        out = np.empty((int(n_frames), 2), np.float32)
        self.render_into(out)
        return out

    def frames_due(self, tick: int, tick_hz: int) -> int:
        """Frames still to render so that audio reaches the end of `tick` (exact integers, so
        a long run never drifts from the tick clock)."""
        return max(0, (int(tick) + 1) * self.samplerate // int(tick_hz) - self.frames_out)

    def render_to_tick(self, tick: int, tick_hz: int) -> np.ndarray:
        return self.render(self.frames_due(tick, tick_hz))

    def stats(self) -> dict:
        out = self.engine.stats()
        out["audio_backend"] = self.backend
        out["audio_errors"] = 0
        out["audio_bad_params"] = self._box.bad_values
        return out

    def start(self) -> "OfflineAudio":
        return self

    def close(self) -> None:
        pass
