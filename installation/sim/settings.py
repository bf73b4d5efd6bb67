"""Settings of the swarm engine: `[sim]`. Scenes override most of these."""
from __future__ import annotations

from dataclasses import dataclass

from ..config.fields import setting


@dataclass(frozen=True)
class SimSettings:
    particles: int = setting(50000, "number of nanobots in the swarm", unit="count", lo=16, hi=1_000_000)
    species: int = setting(8, "number of species: the tiles of the mosaic, each with a colour and a voice", unit="count", lo=1, hi=16)
    tick_hz: int = setting(60, "fixed simulation rate; replay and export step the same ticks", unit="Hz", lo=10, hi=240)
    seed: int = setting(1, "seed of the initial swarm (positions, velocities, glow, each particle's home in the mosaic), the flow field, the attract crowd and where surge pulses land; the species interaction matrix is matrix_seed's", lo=0, hi=2**31 - 1)
    aspect: float = setting(16 / 9, "world width / height; the world is 1.0 high", lo=0.25, hi=8.0)
    radius: float = setting(0.0105, "interaction radius (neighbour search cell size); ~27 neighbours at 100k particles", unit="world units", lo=0.002, hi=0.2)
    repel: float = setting(0.4, "close-range repulsion zone as a fraction of the radius", lo=0.05, hi=0.9)
    life_strength: float = setting(1.0, "strength of the species-pair particle-life forces", lo=0.0, hi=10.0)
    matrix_seed: int = setting(7, "seed of the asymmetric species-pair attraction matrix", lo=0, hi=2**31 - 1)
    alignment: float = setting(0.15, "boids alignment: pull of a particle's velocity towards its neighbours'", lo=0.0, hi=5.0)
    flow_strength: float = setting(0.25, "strength of the evolving curl-noise flow", lo=0.0, hi=10.0)
    flow_scale: float = setting(3.0, "spatial frequency of the flow", unit="1/world", lo=0.1, hi=50.0)
    flow_speed: float = setting(0.1, "how fast the flow evolves", unit="1/s", lo=0.0, hi=10.0)
    mosaic_pull: float = setting(0.0, "base pull towards the mosaic layout; the crowd's agreement adds to it", lo=0.0, hi=20.0)
    mosaic_tiles: int = setting(8, "mosaic layout: tiles per row (species tiles repeat across the grid)", unit="count", lo=1, hi=32)
    touch_strength: float = setting(1.5, "attraction of a participant's touch on their species", lo=0.0, hi=50.0)
    touch_radius: float = setting(0.18, "reach of a touch", unit="world units", lo=0.01, hi=2.0)
    pulse_strength: float = setting(2.0, "outward kick of a pulse shock-wave at full strength", lo=0.0, hi=50.0)
    pulse_speed: float = setting(0.9, "speed of a pulse's ring", unit="world/s", lo=0.05, hi=10.0)
    pulse_width: float = setting(0.06, "thickness of a pulse's ring", unit="world units", lo=0.005, hi=1.0)
    friction: float = setting(2.0, "velocity damping", unit="1/s", lo=0.0, hi=100.0)
    max_speed: float = setting(0.35, "speed limit", unit="world/s", lo=0.01, hi=10.0)
    boundary: str = setting("wrap", "what happens at the edges", choices=("wrap", "walls"))
    energy_decay: float = setting(0.8, "how fast a particle's glow (energy from touches and pulses) fades", unit="1/s", lo=0.0, hi=20.0)
    touch_others: float = setting(0.2, "pull of a touch on the other species, relative to the toucher's own", lo=0.0, hi=1.0)
