"""How the parallel kernels split their loops, and the line that names the threading layer."""
from __future__ import annotations

import numba
import numpy as np

from installation.parallel import PIECES, in_pieces, kernel_threads, stealable_chunk
from installation.sim.grid import assign_cells


def test_loops_come_in_about_pieces_chunks():
    for n in (1, 31, 32, 33, 95, 360, 10_000):
        chunk = stealable_chunk(n)
        assert chunk >= 1
        assert -(-n // chunk) <= PIECES                 # never more pieces than asked
        assert chunk == 1 or -(-n // (chunk - 1)) > PIECES   # and as small as that allows
    assert stealable_chunk(0) == 1


def test_in_pieces_nests_and_restores_what_it_found():
    # numba's own parallel_chunksize keeps what to restore on one shared object: nested, the
    # outer `with` restored the inner value, and every later parallel loop ran in tiny chunks
    before = numba.get_parallel_chunksize()
    with in_pieces(95):
        outer = numba.get_parallel_chunksize()
        with in_pieces(10_000):
            assert numba.get_parallel_chunksize() == stealable_chunk(10_000)
        assert numba.get_parallel_chunksize() == outer == stealable_chunk(95)
    assert numba.get_parallel_chunksize() == before


def test_a_swarm_tick_leaves_the_chunk_size_as_it_found_it():
    import dataclasses

    from installation.sim.params import StepParams
    from installation.sim.settings import SimSettings
    from installation.sim.swarm import Swarm
    settings = dataclasses.replace(SimSettings(), particles=25_000)   # parallel, flow on
    swarm = Swarm(settings)
    numba.set_parallel_chunksize(0)     # numba's default: each loop split between the threads
    swarm.step(StepParams.from_settings(settings))
    assert numba.get_parallel_chunksize() == 0


def test_the_start_up_line_names_threads_and_layer():
    x = np.random.default_rng(0).random(1000).astype(np.float32)
    cell = np.zeros(1000, np.int32)
    assign_cells(x, x, 8, 8, np.float32(8.0), np.float32(8.0), cell)   # a parallel kernel has run
    text = kernel_threads()
    threads, layer = text.split(", ")
    assert threads == f"{numba.get_num_threads()} threads"
    assert layer in ("tbb", "omp", "workqueue")
    if _installed("tbb") and numba.config.THREADING_LAYER == "default":
        # where the wheel is installed (a dependency on x86-64) numba must be using it: a
        # broken or mismatched TBB would silently fall back to OpenMP's fixed split
        assert layer == "tbb"


def _installed(dist: str) -> bool:
    import importlib.metadata
    try:
        importlib.metadata.version(dist)
        return True
    except importlib.metadata.PackageNotFoundError:
        return False
