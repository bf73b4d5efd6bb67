"""The renderer interface: what the loop, the display and video export rely on.

A backend turns the swarm and the frame's look into finished pixels. The CPU backend
(`cpu_renderer.CpuRenderer`) is the reference; a GL backend with the shaders in `shaders/`
implements the same interface and the same look settings.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol, runtime_checkable

import numpy as np

from .look import LookParams
from .settings import RenderSettings


@runtime_checkable
class SwarmView(Protocol):
    """What a renderer reads from the swarm (duck-typed; the renderer never writes to it).

    World coordinates: x in [0, aspect), y in [0, 1), y grows downwards on screen.
    Arrays hold at least `n` entries; only the first `n` are drawn.
    """
    n: int
    species_count: int
    aspect: float
    x: np.ndarray        # float32
    y: np.ndarray        # float32
    vx: np.ndarray       # float32, world units per second
    vy: np.ndarray       # float32
    energy: np.ndarray   # float32, 0 calm .. ~1 excited (pulses, touches)
    species: np.ndarray  # int32, 0 .. species_count - 1


@dataclass
class Particles:
    """A SwarmView of plain arrays: a copy of the swarm's (an export draws from one while the
    next tick runs) or a stand-in for it (`synthetic.py`)."""
    n: int
    species_count: int
    aspect: float
    x: np.ndarray
    y: np.ndarray
    vx: np.ndarray
    vy: np.ndarray
    energy: np.ndarray
    species: np.ndarray


@runtime_checkable
class Renderer(Protocol):
    width: int
    height: int

    def render(self, swarm: SwarmView, look: LookParams) -> np.ndarray:
        """The finished frame: (height, width) uint32 pixels 0xAARRGGBB.

        In memory the bytes are B, G, R, A (little-endian), so pygame-ce's
        `pygame.image.frombuffer(frame, (w, h), "BGRA")` and ffmpeg's `-pix_fmt bgra` read it
        without a copy. The array is the renderer's own buffer, overwritten by the next call:
        copy it to keep it.
        """
        ...

    def frame_hash(self) -> str:
        """sha256 hex digest of the last frame's bytes."""
        ...

    def reset(self) -> None:
        """Forget the trails (scene cut): the next frame starts from black."""
        ...


def create_renderer(settings: RenderSettings, species_count: int, aspect: float,
                    width: int | None = None, height: int | None = None) -> Renderer:
    """The backend the settings name, at the settings' render size unless overridden."""
    if settings.backend == "cpu":
        # imported here: numba's start-up cost is paid only by a caller that renders
        from .cpu_renderer import CpuRenderer
        return CpuRenderer(settings, species_count, aspect, width, height)
    raise ValueError(f"render.backend = {settings.backend!r}: no such renderer (choose 'cpu')")
