"""What the control side hands the swarm every tick: scalars, touches and pulses.

Preallocated once; the control state overwrites the fields each tick, the engine only reads.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .settings import SimSettings

MAX_TOUCHES = 256   # one live touch per participant, up to the participant cap
MAX_PULSES = 16     # pulse shock-waves alive at once; the oldest is replaced


@dataclass
class StepParams:
    life_strength: float = 1.0
    alignment: float = 0.15
    flow_strength: float = 0.25
    flow_scale: float = 3.0
    flow_speed: float = 0.1
    mosaic_pull: float = 0.0
    friction: float = 2.0
    max_speed: float = 0.35
    touch_strength: float = 1.5
    touch_radius: float = 0.18
    pulse_strength: float = 2.0
    pulse_speed: float = 0.9
    pulse_width: float = 0.06
    # touches[i] = (x 0..aspect, y 0..1, strength 0..1, species as float); rows >= n_touches unused
    touches: np.ndarray = field(default_factory=lambda: np.zeros((MAX_TOUCHES, 4), np.float32))
    n_touches: int = 0
    # pulses[i] = (x, y, age in seconds, strength 0..1); rows >= n_pulses unused
    pulses: np.ndarray = field(default_factory=lambda: np.zeros((MAX_PULSES, 4), np.float32))
    n_pulses: int = 0

    @classmethod
    def from_settings(cls, s: SimSettings) -> "StepParams":
        return cls(life_strength=s.life_strength, alignment=s.alignment, flow_strength=s.flow_strength,
                   flow_scale=s.flow_scale, flow_speed=s.flow_speed, mosaic_pull=s.mosaic_pull,
                   friction=s.friction, max_speed=s.max_speed, touch_strength=s.touch_strength,
                   touch_radius=s.touch_radius, pulse_strength=s.pulse_strength,
                   pulse_speed=s.pulse_speed, pulse_width=s.pulse_width)

    def reset_scalars(self, s: SimSettings) -> None:
        """Back to the scene's base values before the mood mapping adds to them."""
        base = StepParams.from_settings(s)
        for name in _SCALARS:
            setattr(self, name, getattr(base, name))


_SCALARS = ("life_strength", "alignment", "flow_strength", "flow_scale", "flow_speed", "mosaic_pull",
            "friction", "max_speed", "touch_strength", "touch_radius", "pulse_strength", "pulse_speed",
            "pulse_width")
