"""What the control side hands the renderer every frame, beside the swarm itself."""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .settings import RenderSettings

MAX_SPECIES = 16


@dataclass
class LookParams:
    brightness: float = 1.0      # master brightness 0..1 (operator, quiet hours)
    warmth: float = 0.0          # -1 cool .. 1 warm palette shift (valence)
    exposure: float = 1.2
    bloom: float = 0.6
    trail_decay: float = 0.82
    blackout: bool = False
    # per-species light weight 0..1: a leaving participant's tile fades out through this
    species_gain: np.ndarray = field(default_factory=lambda: np.ones(MAX_SPECIES, np.float32))

    @classmethod
    def from_settings(cls, s: RenderSettings) -> "LookParams":
        return cls(brightness=s.brightness, warmth=s.warmth, exposure=s.exposure, bloom=s.bloom,
                   trail_decay=s.trail_decay)
