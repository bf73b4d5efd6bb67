"""The near map lets particles out of every touch's reach skip the touch search: it must
never leave out a particle a touch can pull."""
from __future__ import annotations

import numpy as np
import pytest

from installation.sim import forces as F
from installation.sim import touch_field as TF


@pytest.mark.parametrize("r", [0.18, 0.03])
@pytest.mark.parametrize("wrap", [True, False])
def test_every_particle_within_reach_of_a_touch_is_in_a_near_cell(wrap, r):
    """Both reaches: the default one (a few large cells), and a small one, whose many cells
    are only searched around each touch."""
    rng = np.random.default_rng(3 + wrap)
    w, h = 16 / 9, 1.0
    tgx, tgy = int(w / r), int(h / r)
    inv_w, inv_h = tgx / w, float(tgy)
    touches = np.zeros((8, 4), np.float32)
    touches[:5, 0] = rng.uniform(0, w, 5)
    touches[:5, 1] = rng.uniform(0, h, 5)
    touches[0, :2] = (0.005, 0.995)           # at a corner: reaches across the wrap
    touches[5, :2] = (np.nan, 0.5)            # skipped, like touch_field.rasterize does
    n = 6
    near = np.zeros((F.NEAR_SUB * tgx) * (F.NEAR_SUB * tgy), np.uint8)
    F.touch_near(touches, n, tgx, tgy, inv_w, inv_h, wrap, w, h, r, near)
    # particles everywhere, walled ones also a little outside the world
    m = 200_000
    lo = 0.0 if wrap else -0.05
    px = rng.uniform(lo, w - lo, m) if wrap else rng.uniform(-0.05, w + 0.05, m)
    py = rng.uniform(lo, h - lo, m) if wrap else rng.uniform(-0.05, h + 0.05, m)
    dx = touches[:5, 0][None, :].astype(np.float64) - px[:, None]
    dy = touches[:5, 1][None, :].astype(np.float64) - py[:, None]
    if wrap:
        dx = dx - w * np.floor(dx / w + 0.5)
        dy = dy - h * np.floor(dy / h + 0.5)
    reached = ((dx * dx + dy * dy) < r * r).any(axis=1)
    nx, ny = F.NEAR_SUB * tgx, F.NEAR_SUB * tgy
    cx = np.clip((px * inv_w * F.NEAR_SUB).astype(np.int64), 0, nx - 1)
    cy = np.clip((py * inv_h * F.NEAR_SUB).astype(np.int64), 0, ny - 1)
    flagged = near[cy * nx + cx] == 1
    assert reached.any()
    assert not (reached & ~flagged).any(), "a particle a touch reaches was left out"
    # and it is worth having: most of the world is out of reach of five touches
    assert flagged.mean() < 0.6
    # the near map is tight: cells far beyond the reach are left out
    assert flagged.mean() < 1.6 * reached.mean() + 0.02


def test_no_touch_no_near_cell():
    near = np.ones(F.NEAR_SUB ** 2 * 9 * 5, np.uint8)
    F.touch_near(np.zeros((4, 4), np.float32), 0, 9, 5, 9 / (16 / 9), 5.0, True, 16 / 9, 1.0, 0.18, near)
    assert not near.any()


@pytest.mark.parametrize("r", [0.18, 0.05])
@pytest.mark.parametrize("boundary", ["wrap", "walls"])
def test_the_swarms_near_map_covers_everything_its_touches_reach(boundary, r):
    """What the swarm actually builds: wherever the touch grid (or the exact sum, for a small
    reach) gives a particle a pull, the near map lets that particle look."""
    from installation.sim import reference as R
    from installation.sim.params import StepParams
    from installation.sim.settings import SimSettings
    from installation.sim.swarm import Swarm
    s = SimSettings(particles=2000, species=4, boundary=boundary, seed=3)
    sw = Swarm(s)
    p = StepParams.from_settings(s)
    rng = np.random.default_rng(9)
    n = TF.GRID_FROM if r > 0.1 else 6         # the grid, and the exact sum
    p.touch_radius = r
    p.n_touches = n
    p.touches[:n, 0] = rng.uniform(0, s.aspect, n)
    p.touches[:n, 1] = rng.uniform(0, 1, n)
    p.touches[0, :2] = (0.004, 0.996)
    p.touches[:n, 2] = 1.0
    p.touches[:n, 3] = np.arange(n) % 5 - 1
    sw._load(p)
    assert sw._iprm[F.I_TF_GRID] == (1 if r > 0.1 else 0)
    px, py = rng.uniform(0, s.aspect, 100_000), rng.uniform(0, 1, 100_000)
    sp = rng.integers(0, 4, px.shape[0])
    _, _, energy = R.touch_ref(px, py, sp, p.touches, n, r, s.touch_others, s.aspect, boundary == "wrap", 4)
    prm, iprm = sw._prm, sw._iprm
    nx, ny = F.NEAR_SUB * iprm[F.I_TGX], F.NEAR_SUB * iprm[F.I_TGY]
    cx = np.clip((px * prm[F.P_TB_INV_W] * F.NEAR_SUB).astype(np.int64), 0, nx - 1)
    cy = np.clip((py * prm[F.P_TB_INV_H] * F.NEAR_SUB).astype(np.int64), 0, ny - 1)
    flagged = sw._tnear[cy * nx + cx] == 1
    assert (energy != 0).any()
    assert not ((energy != 0) & ~flagged).any()
