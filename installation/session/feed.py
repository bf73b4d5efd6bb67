"""`TickFeed`: a replay's input tick by tick, read from disk ahead of the frame loop.

A day's session is far too big to hold, so a replay reads it as it plays. A thread of its own
walks the events and hands them over in chunks through a short queue: the frame loop takes what
is ready and waits on the disk only when it runs faster than the file can be read (a headless
replay, which is waiting on work either way). The queue bounds what is held: CHUNKS_AHEAD
chunks of about CHUNK_EVENTS events (a tick's events are never split).

Asking for an earlier tick than the last one starts the walk over from the session's start: a
seek back replays from tick 0 on a new pipeline.
"""
from __future__ import annotations

import queue
import threading
from collections import deque
from typing import Callable, Iterable

CHUNK_EVENTS = 256
CHUNKS_AHEAD = 8
_END = object()


class TickFeed:
    def __init__(self, walk: Callable[[], Iterable[tuple[int, object]]], *,
                 chunk_events: int = CHUNK_EVENTS, chunks_ahead: int = CHUNKS_AHEAD,
                 stopped: Callable[[], bool] | None = None):
        """`walk()` gives (tick, event) with ticks that never go back, from the start each time.
        `stopped()`: the replay is ending (a signal, a window closed): a wait on the disk then
        gives up at once with no events, where a long one (an out-of-order log's index pass at
        a seek back) left Ctrl-C unanswered."""
        self._walk = walk
        self._stopped = stopped
        self._chunk_events = chunk_events
        self._chunks_ahead = chunks_ahead
        self._thread = None
        self._start()

    def __call__(self, tick: int) -> list:
        """The events of `tick`: the ticks asked for go up one at a time, or back to restart."""
        if tick == self._asked:
            return self._events
        if tick < self._asked:
            self.close()
            self._start()
        self._asked = tick
        pending = self._pending
        while True:
            while pending and pending[0][0] < tick:
                pending.popleft()
            if pending or self._done:
                break
            try:
                item = self._queue.get(timeout=0.1)
            except queue.Empty:
                if self._stopped is not None and self._stopped():
                    return []       # not this tick's events: the caller is ending the replay
                continue
            if item is _END:
                self._done = True
            elif isinstance(item, BaseException):
                self._done = True
                raise item
            else:
                pending.extend(item)
        self._events = pending.popleft()[1] if pending and pending[0][0] == tick else []
        return self._events

    def close(self) -> None:
        """Let the reading thread go: it ends at its next hand-over, with nothing held."""
        if self._thread is not None:
            self._stop.set()
            self._thread = None

    def __enter__(self) -> "TickFeed":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def _start(self) -> None:
        self._queue: queue.Queue = queue.Queue(maxsize=self._chunks_ahead)
        self._stop = threading.Event()
        self._pending: deque = deque()
        self._done = False
        self._asked = -1
        self._events: list = []
        self._thread = threading.Thread(target=self._read, args=(self._queue, self._stop),
                                        name="replay-feed", daemon=True)
        self._thread.start()

    def _read(self, q: queue.Queue, stop: threading.Event) -> None:
        chunk: list = []           # [(tick, [events])]
        try:
            n = 0
            for tick, ev in self._walk():
                if chunk and chunk[-1][0] == tick:
                    chunk[-1][1].append(ev)
                else:
                    if n >= self._chunk_events:
                        if not _put(q, stop, chunk):
                            return
                        chunk, n = [], 0
                    chunk.append((tick, [ev]))
                n += 1
            end = _END
        except BaseException as exc:        # said on the frame loop's thread, where it ends the replay
            end = exc
        if not chunk or _put(q, stop, chunk):
            _put(q, stop, end)


def _put(q: queue.Queue, stop: threading.Event, item) -> bool:
    """Wait for room in the queue, but not once the feed is closed."""
    while not stop.is_set():
        try:
            q.put(item, timeout=0.1)
            return True
        except queue.Full:
            continue
    return False
