"""The walk over the lines of a session file or an oscdump log, shared by the reader's check
and by every later read of the same file, so that both see exactly the same lines."""
from __future__ import annotations

import os
from array import array
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable, Iterator

import numpy as np

from ..events import TickedEvent
from .errors import SessionError


@dataclass
class Tally:
    """What a walk over one file found besides its events."""
    truncated: bool = False
    zeros: bool = False     # ... and what was cut is a power cut's zero bytes, nothing else
    skipped: int = 0
    notes: list[str] = field(default_factory=list)
    end: int = 0        # the byte just past the last line taken: later walks stop there


def open_file(p: Path):
    try:
        return open(p, "rb")
    except OSError as e:
        raise SessionError(f"{p}: cannot open the session: {e.strerror or e}") from None


def identity(f) -> tuple[int, int]:
    """Which file `f` is (device, inode): a later read makes sure it is still the one checked."""
    st = os.fstat(f.fileno())
    return st.st_dev, st.st_ino


def open_again(p: Path, ident: tuple[int, int], limit: int):
    """The checked file for another walk: the same file, not one put in its place, and no
    shorter than what was checked. A replay of a file that changed would silently not be the
    recording (a retention pass in the show may delete the oldest session as it is exported)."""
    try:
        f = open(p, "rb")
    except FileNotFoundError:
        raise SessionError(f"{p}: deleted or moved since it was checked (a [session] keep_gb or "
                           f"keep_days pass of a running installation?): copy the session elsewhere first") from None
    except OSError as e:
        raise SessionError(f"{p}: cannot open the session: {e.strerror or e}") from None
    st = os.fstat(f.fileno())
    if (st.st_dev, st.st_ino) != ident or st.st_size < limit:
        f.close()
        raise changed(p)
    return f


def changed(p: Path) -> SessionError:
    return SessionError(f"{p}: the file changed since it was checked: its replay would not be the recording")


def raw_lines(f, limit: int | None = None):
    """(lineno, start, end, bytes, whole) per line of the binary file f, read from its start.

    A line with no newline (the last) loses the zeros a power cut leaves past the last write.
    With `limit`, what lies past it is not seen: the file may have grown since it was checked
    (a session is readable while it is being written), and a replay is of what was checked."""
    pos = 0
    for lineno, raw in _numbered(f):
        start, pos = pos, pos + len(raw)
        if limit is not None:
            if start >= limit:
                return
            raw = raw[: limit - start]
        whole = raw.endswith(b"\n")
        if not whole:
            raw = raw.rstrip(b"\x00")
        yield lineno, start, pos if limit is None else min(pos, limit), raw, whole


def _numbered(f):
    """enumerate(f, 1), with a read error (EIO, a network share gone stale) said as the
    session's: an OSError here would be taken for a failed write of what is being made."""
    lineno = 0
    while True:
        try:
            raw = f.readline()
        except OSError as e:
            raise SessionError(f"{getattr(f, 'name', 'the session')}: cannot read the session: "
                               f"{e.strerror or e}") from None
        if not raw:
            return
        lineno += 1
        yield lineno, raw


def in_tick_order(p: Path, limit: int, in_file_order: Callable[[], Iterable[tuple[int, TickedEvent]]],
                  read_at: Callable[[bytes, int, float], TickedEvent],
                  ident: tuple[int, int] | None = None) -> Iterator[TickedEvent]:
    """The events of a file whose ticks go back somewhere (hand-edited, or an oscdump log of
    bundles), sorted by tick with the file's order kept within a tick, without holding them:
    an index of 24 bytes an event (offset, tick, time), then each line read again where it
    lies. `read_at(line, tick, t)` makes its event. Sessions the recorder writes never need it."""
    offsets, ticks, times = array("q"), array("q"), array("d")
    for offset, te in in_file_order():
        offsets.append(offset)
        ticks.append(te.tick)
        times.append(te.event.t)
    order = np.argsort(np.frombuffer(ticks, dtype=np.int64), kind="stable") if ticks else np.zeros(0, np.int64)
    with (open_file(p) if ident is None else open_again(p, ident, limit)) as f:
        for k in order:         # numpy scalars one at a time: a list of the order would be objects
            k = int(k)
            f.seek(offsets[k])
            raw = f.readline()[: limit - offsets[k]]
            if not raw.endswith(b"\n"):
                raw = raw.rstrip(b"\x00")
            try:
                yield read_at(raw, ticks[k], times[k])
            except ValueError:
                raise changed(p) from None


def walk_of(p: Path, limit: int, ordered: bool, in_file_order: Callable[[], Iterable[tuple[int, TickedEvent]]],
            read_at: Callable[[bytes, int, float], TickedEvent],
            ident: tuple[int, int] | None = None) -> Callable[[], Iterator[TickedEvent]]:
    """How to read a checked file's events again: in its own order, or sorted when it had none.
    `in_file_order()` gives (offset, event); `read_at` as for `in_tick_order`."""
    if ordered:
        return lambda: (te for _, te in in_file_order())
    return lambda: in_tick_order(p, limit, in_file_order, read_at, ident)
