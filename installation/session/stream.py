"""`SessionEvents`: a session's events in tick order, read from its files again at each walk.

A busy room records about two million events an hour: as Python objects a day's session
would not fit in a curator's memory. So a session keeps only where its events are (one walk
per file, in order) and what the reader learnt while checking them: how many, the first and
the last. Walking it (`for te in session.events`) reads the files as it goes; `len`, `[0]`
and `[-1]` cost nothing; any other index walks up to it. It compares equal to a list of the
same events, so it stands in wherever a list of `TickedEvent` did.
"""
from __future__ import annotations

from itertools import islice
from typing import Callable, Iterable, Iterator

from ..events import TickedEvent

Walk = Callable[[], Iterable[TickedEvent]]


class SessionEvents:
    def __init__(self, walks: list[Walk], count: int, first: TickedEvent | None, last: TickedEvent | None,
                 shift: int = 0):
        self._walks = list(walks)
        self._count = count
        self._first = first
        self._last = last
        self._shift = shift

    def extend(self, more: "SessionEvents") -> None:
        """The events of the next rotated part after these (both not yet shifted)."""
        self._walks += more._walks
        if not self._count:
            self._first = more._first
        if more._count:
            self._last = more._last
        self._count += more._count

    def shifted(self, start: int) -> "SessionEvents":
        """The events of a recording started at tick `start` of its run, moved back by it."""
        return SessionEvents(self._walks, self._count, self._first, self._last, self._shift + start)

    def _moved(self, te: TickedEvent) -> TickedEvent:
        return TickedEvent(max(0, te.tick - self._shift), te.event) if self._shift else te

    def __iter__(self) -> Iterator[TickedEvent]:
        for walk in self._walks:
            for te in walk():
                yield self._moved(te)

    def __len__(self) -> int:
        return self._count

    def __getitem__(self, i: int) -> TickedEvent:
        if not isinstance(i, int):
            raise TypeError("session events are indexed by a whole number (no slices: walk them)")
        k = i + self._count if i < 0 else i
        if not 0 <= k < self._count:
            raise IndexError(f"event {i} of {self._count}")
        if k == 0:
            return self._moved(self._first)
        if k == self._count - 1:
            return self._moved(self._last)
        return next(islice(iter(self), k, None))

    def __eq__(self, other) -> bool:
        if not isinstance(other, (SessionEvents, list, tuple)):
            return NotImplemented
        return len(self) == len(other) and all(a == b for a, b in zip(self, other))

    __hash__ = None

    def __repr__(self) -> str:
        return f"<SessionEvents: {self._count} events in {len(self._walks)} file(s)>"


class Ends:
    """The first and the last event in tick order (a stable sort's), from the events seen one
    at a time in file order: what [0] and [-1] give without walking."""

    def __init__(self):
        self.first: TickedEvent | None = None
        self.last: TickedEvent | None = None

    def see(self, te: TickedEvent) -> None:
        if self.first is None or te.tick < self.first.tick:
            self.first = te
        if self.last is None or te.tick >= self.last.tick:
            self.last = te
