"""A seeded stand-in for the swarm, so the renderer is tested and timed without the engine.

It has the attributes a renderer reads (`base.SwarmView`). Particles gather in clusters, as
particle-life swarms do, and are ordered by grid cell, as the engine reorders them each tick:
the renderer's memory access then matches a real run.
"""
from __future__ import annotations

import numpy as np

from .base import Particles


class SyntheticSwarm(Particles):
    def drift(self, dt: float = 1 / 60) -> None:
        """Move every particle by its velocity, wrapping at the edges (for trail tests)."""
        self.x[:] = np.mod(self.x + self.vx * np.float32(dt), np.float32(self.aspect))
        self.y[:] = np.mod(self.y + self.vy * np.float32(dt), np.float32(1.0))
        # float32 rounding can land exactly on the upper edge
        self.x[self.x >= self.aspect] = 0.0
        self.y[self.y >= 1.0] = 0.0


def make_swarm(n: int, species_count: int = 8, aspect: float = 16 / 9, seed: int = 0,
               clusters: int = 40, spread: float = 0.03, cell: float = 0.014,
               only_species: int | None = None) -> SyntheticSwarm:
    rng = np.random.default_rng(seed)
    centres = rng.random((clusters, 2)) * (aspect, 1.0)
    which = rng.integers(0, clusters, n)
    x = np.mod(centres[which, 0] + rng.normal(0.0, spread, n), aspect)
    y = np.mod(centres[which, 1] + rng.normal(0.0, spread, n), 1.0)
    x = np.minimum(x, np.nextafter(aspect, 0))
    y = np.minimum(y, np.nextafter(1.0, 0))
    if only_species is None:
        species = (which % species_count).astype(np.int32)
    else:
        species = np.full(n, only_species, np.int32)
    speed = rng.gamma(2.0, 0.05, n)
    angle = rng.random(n) * 2 * np.pi
    energy = rng.random(n) ** 3
    cols = int(np.ceil(aspect / cell))
    order = np.argsort((y // cell).astype(np.int64) * cols + (x // cell).astype(np.int64), kind="stable")
    f32 = np.float32
    return SyntheticSwarm(n, species_count, aspect, x[order].astype(f32), y[order].astype(f32),
                          (speed * np.cos(angle))[order].astype(f32),
                          (speed * np.sin(angle))[order].astype(f32), energy[order].astype(f32),
                          species[order])
