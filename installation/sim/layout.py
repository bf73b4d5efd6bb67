"""What the seeds decide once: the species-pair matrix, the mosaic tiles and every particle's home."""
from __future__ import annotations

import numpy as np


MATRIX_RANK = 3


def interaction_factors(species: int, matrix_seed: int) -> tuple[np.ndarray, np.ndarray]:
    """The asymmetric K×K particle-life matrix m = u @ v.T (K×3 each): m[a, b] is how much
    species a is drawn to species b, in −1..1.

    Species sit on a circle like hues (angle θ); a looks for the species at θ_a + δ_a, so pairs
    chase each other when δ ≠ 0, and a third, random kinship term breaks the circle's symmetry.
    The diagonal stays positive (|δ| < 1 rad, small kinship), so each species holds together as
    a patch of one colour, which is what a mosaic tile is made of. The rank-3 form is what makes
    the force loop fast: a neighbour's part of m is three numbers stored beside its position,
    read in a straight line instead of looked up by species.
    """
    rng = np.random.default_rng(matrix_seed)
    k = species
    theta = 2.0 * np.pi * np.arange(k) / k + rng.uniform(-0.3, 0.3, k)
    delta = rng.uniform(-1.0, 1.0, k)
    amp = rng.uniform(0.6, 1.0, k)
    kin = np.where(rng.random(k) < 0.5, -1.0, 1.0)
    kin_gain = rng.uniform(-0.25, 0.25, k)
    u = np.stack([amp * np.cos(theta + delta), amp * np.sin(theta + delta), kin_gain], axis=1)
    v = np.stack([np.cos(theta), np.sin(theta), kin], axis=1)
    scale = np.abs(u @ v.T).max()
    return u / scale, v


def interaction_matrix(species: int, matrix_seed: int) -> np.ndarray:
    u, v = interaction_factors(species, matrix_seed)
    return u @ v.T


def mosaic_grid(species: int, aspect: float, columns: int) -> tuple[int, int]:
    """(columns, rows) of roughly square tiles over the aspect×1 world, at least one per species."""
    columns = max(1, int(columns))
    rows = max(1, int(round(columns / aspect)))
    if rows * columns < species:
        rows = -(-species // columns)
    return columns, rows


def tile_species(species: int, columns: int, rows: int) -> np.ndarray:
    """rows×columns species index per tile: round-robin, each row staggered by half a turn
    when the plain order would stack the same species into vertical stripes."""
    stagger = species // 2 if species > 1 and columns % species == 0 else 0
    r, c = np.mgrid[0:rows, 0:columns]
    return ((r * columns + c + r * stagger) % species).astype(np.int32)


def mosaic_homes(species_of: np.ndarray, species: int, aspect: float, columns: int,
                 rng: np.random.Generator, inset: float = 0.1) -> tuple[np.ndarray, np.ndarray]:
    """Each particle's home: one of its species' tiles (in turn), spread uniformly inside it.

    `inset` (a fraction of the tile) leaves a dark seam between tiles, so the mosaic reads as tiles.
    """
    cols, rows = mosaic_grid(species, aspect, columns)
    # every species owns at least one tile: rows × cols ≥ species and the order is round-robin
    owner = tile_species(species, cols, rows).ravel()
    tw, th = aspect / cols, 1.0 / rows
    hx = np.empty(species_of.shape[0], np.float64)
    hy = np.empty(species_of.shape[0], np.float64)
    u = rng.uniform(inset, 1.0 - inset, (species_of.shape[0], 2))
    for s in range(species):
        members = np.flatnonzero(species_of == s)
        tiles = np.flatnonzero(owner == s)
        if members.size == 0:
            continue
        t = tiles[np.arange(members.size) % tiles.size]
        hx[members] = (t % cols + u[members, 0]) * tw
        hy[members] = (t // cols + u[members, 1]) * th
    return hx.astype(np.float32), hy.astype(np.float32)
