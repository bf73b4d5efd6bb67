"""How the parallel kernels split their work between threads.

numba hands a parallel loop to its threading layer in as many pieces as there are threads
unless told a chunk size. On a machine shared with other work (an exhibit PC running other
software, an export sharing the cores with the encoder) one thread's piece then waits for a
core while the other thread sits idle at the end. Smaller pieces let TBB's work stealing give
the waiting thread's share to the running one: `bench` measured the whole frame's p99 at
15.0-16.6 ms with row loops cut in ~32 pieces against 17.1-18.9 ms in two. Every loop cut
this way computes each iteration on its own, so the result is the same however it is split.
"""
from __future__ import annotations

from contextlib import contextmanager

import numba

PIECES = 32     # per parallel loop: enough to rebalance, few enough that each is worth a task


def stealable_chunk(iterations: int) -> int:
    """Iterations per chunk so that a loop of `iterations` comes in about PIECES pieces."""
    return max(1, -(-int(iterations) // PIECES))


@contextmanager
def in_pieces(iterations: int):
    """`with in_pieces(n): kernel(...)`: the kernel's parallel loop of n iterations is split
    into about PIECES chunks (numba's setting for the calling thread, restored after).

    Nests: numba's own `parallel_chunksize` keeps the setting to restore on one shared object,
    so an inner `with` made the outer one restore the inner one's value, not its own; every
    parallel loop after the swarm's tick then ran in chunks of 3 (assign_cells took 5 ms
    instead of 0.02)."""
    before = numba.set_parallel_chunksize(stealable_chunk(iterations))
    try:
        yield
    finally:
        numba.set_parallel_chunksize(before)


def kernel_threads() -> str:
    """'2 threads, tbb': how the parallel kernels run (the layer is known once one has run)."""
    try:
        layer = numba.threading_layer()
    except ValueError:
        layer = "not started"
    return f"{numba.get_num_threads()} threads, {layer}"
