"""Frames drawn one tick behind the simulation, on a thread of their own: for replays that no
window shows live, exports above all.

An export has no screen to keep up with, only throughput to win. Drawn in line, each tick's
simulation, drawing and flash guard share every core in turn, and each parallel kernel ends
waiting for its slowest thread: with ffmpeg's encoder on the same two cores, a worker thread
often waits for a core while the other sits idle at the join. Here the simulation (on the
caller's thread) and the drawing (on this one) each get half the cores and run side by side,
with the encoder in the gaps. On the 2-core test machine a 722-tick session of the default
scene at 1280x720 exported at 0.99-1.07x real time this way against 0.89-0.96x drawn in line
(four alternating pairs), and its system time (mostly TBB's yielding) fell from 2.4-3.0 s
to 0.9-1.2 s.

The frames are the same bits: every kernel gives the same result whatever its thread count,
and `Pipeline.render_input` draws each tick's copied state in tick order. A live window
does not use this: it would show every frame a tick late.
"""
from __future__ import annotations

import queue
import threading
from typing import Callable

import numba
import numpy as np

from .pipeline import Pipeline

DEPTH = 4   # ticks simulated ahead of the frame being drawn: absorbs either side's jitter


class FrameWorker:
    """`submit()` after each tick queues the pipeline's state for drawing; `sink(frame)` gets
    every guarded frame, in tick order, on the worker thread. `close()` draws what is queued
    and stops the thread; `abort()` drops it. An exception of the drawing or of `sink` is
    raised again by the next `submit()` or `close()`.

    The caller's thread runs its parallel kernels on half the numba threads until `close()`
    or `abort()`, the worker on the rest (one each on two cores).
    """

    def __init__(self, pipeline: Pipeline, sink: Callable[[np.ndarray], None], *, depth: int = DEPTH):
        self.pipeline = pipeline
        self.sink = sink
        self.frames = 0                 # frames handed to `sink`
        self._error: BaseException | None = None    # the worker's, until raised in the caller
        self._drawing = True            # False once aborted or failed: queued frames are dropped
        self._free: queue.SimpleQueue = queue.SimpleQueue()
        self._full: queue.SimpleQueue = queue.SimpleQueue()
        for _ in range(max(1, depth)):
            self._free.put(None)        # a buffer, allocated by its first use
        total = numba.get_num_threads()
        self._caller_threads = total
        mine = max(1, total // 2)
        self._worker_threads = max(1, total - mine)
        numba.set_num_threads(mine)     # this thread's setting only
        self._thread = threading.Thread(target=self._run, name="frame-worker", daemon=True)
        self._thread.start()
        self._open = True

    def submit(self) -> None:
        """Queue the state after the tick just simulated; waits only while DEPTH frames are
        still to be drawn."""
        self._raise()
        if not self._open:
            raise RuntimeError("frame worker: submit after close")
        buf = self._free.get()
        try:
            fi = self.pipeline.frame_input(buf)
        except BaseException:
            self._free.put(buf)
            raise
        self._full.put(fi)

    @property
    def open(self) -> bool:
        """Neither closed nor aborted yet."""
        return self._open

    def close(self) -> None:
        """Draw every queued frame, stop the thread, raise what went wrong in it."""
        self._stop(drain=True)
        self._raise()

    def abort(self) -> None:
        """Stop without drawing what is queued (an error or an interrupt elsewhere)."""
        self._stop(drain=False)

    def _stop(self, drain: bool) -> None:
        if not self._open:
            return
        self._open = False
        if not drain:
            self._drawing = False
        self._full.put(_END)
        self._thread.join()
        numba.set_num_threads(self._caller_threads)

    def _raise(self) -> None:
        if self._error is not None:
            err, self._error = self._error, None
            raise err

    def _run(self) -> None:
        numba.set_num_threads(self._worker_threads)
        while True:
            fi = self._full.get()
            if fi is _END:
                return
            if self._drawing:
                try:
                    self.sink(self.pipeline.render_input(fi))
                    self.frames += 1
                except BaseException as e:      # handed to the caller's thread
                    self._drawing = False
                    self._error = e
            self._free.put(fi)      # after an error too: the caller must never wait forever


_END = object()     # the end of the queue
