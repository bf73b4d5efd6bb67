"""Keeping the newest recordings within the technician's limits (`[session] keep_gb`, `keep_days`).

What is a recording here: a file in the recording's own folder with the format's suffix whose
first line is a valid session header of this format (the reader's check). Nothing else is ever
deleted: a curator's notes, exports, a .toml, an oscdump log, a symlink, a session of a newer
format. A rotated recording's parts (`night.jsonl`, `night.001.jsonl`, ...: a part's header
says its number and its name repeats it) are one recording and go together.

Their age is the headers' `created`, not the files' mtimes: it is what this program wrote when
it recorded, in ISO-8601 with the zone, and it survives a copy of the folder to another disk
or a backup restored without times, either of which makes every mtime "now" (or worse, makes
the newest look oldest). The mtime is used only for a header without a readable `created`.
Oldest first means the recording that began first; `keep_days` deletes a recording once even
its last part began more than `keep_days` ago.

Never the recording being written: every Recorder of this process registers each part it
opens (`hold`) until its writer thread ends (`release`), and a recording with any live part
is skipped whole, though its bytes count toward `keep_gb`.

Runs on the recorder's writer thread only (at the start of a recording, at each rotation and
before a resume after a write error), never on the frame loop or the OSC thread. It never
raises: an error deleting is logged once per recording and counted, and the recording goes on.
"""
from __future__ import annotations

import datetime as _dt
import json
import logging
import os
import re
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from .errors import SessionError
from .format import SUFFIX

try:
    import fcntl
except ImportError:         # Windows has none: there, this process's own set alone holds a recording
    fcntl = None

log = logging.getLogger("installation.session")

GB = 1_000_000_000       # decimal, as disks are sold and as the low-space warning counts
_DAY_S = 86400.0
_HEADER_MAX = 16 * 1024 * 1024      # a first line longer than this is no header of ours
_PART_NAME = re.compile(r"^(.*)\.(\d{3,})" + re.escape(SUFFIX) + r"$", re.DOTALL)

_live: set[str] = set()
_live_lock = threading.Lock()


def _key(path: str | os.PathLike) -> str:
    return os.path.normcase(os.path.realpath(path))


def hold(path: str | os.PathLike, f=None) -> None:
    """A part of a recording being written: never deleted while held. With its open file `f`,
    also an advisory lock on it, which a pass of another process (or a name this one spells
    differently: a case-insensitive disk) finds taken (`_in_use`); closing the file frees it."""
    with _live_lock:
        _live.add(_key(path))
    if f is not None and fcntl is not None:
        try:
            fcntl.flock(f.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            pass        # a disk without locks: this process's own set still holds it


def _in_use(path: Path) -> bool:
    """Whether some recording (of any process) holds `path` open under its lock."""
    if fcntl is None:
        return False
    try:
        with open(path, "rb") as f:
            try:
                fcntl.flock(f.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                return True
            except OSError:
                return False
            fcntl.flock(f.fileno(), fcntl.LOCK_UN)
    except OSError:
        return False
    return False


def release(paths) -> None:
    with _live_lock:
        _live.difference_update(_key(p) for p in paths)


@dataclass
class Stored:
    """One recording on disk: all of its parts that are there."""
    name: str                        # its first part's file name (even if that part is gone)
    files: list[Path] = field(default_factory=list)
    sizes: list[int] = field(default_factory=list)
    began: float = float("inf")      # epoch seconds: its earliest part's `created`
    last: float = float("-inf")      # ... its latest part's

    def add(self, path: Path, size: int, created: float) -> None:
        self.files.append(path)
        self.sizes.append(size)
        self.began = min(self.began, created)
        self.last = max(self.last, created)

    @property
    def size(self) -> int:
        return sum(self.sizes)


def _size(n: int) -> str:
    return f"{n / GB:.2f} GB" if n >= GB // 10 else f"{n / 1e6:.1f} MB"


def _created(header: dict, mtime: float) -> float:
    c = header.get("created")
    if isinstance(c, str):
        try:
            return _dt.datetime.fromisoformat(c).timestamp()   # a naive time is local time
        except (ValueError, OverflowError, OSError):
            pass
    return mtime


def _header(path: Path) -> dict | None:
    """The file's first line if it is a valid session header of this format, else None."""
    from .reader import _check_header     # the one definition of a valid header
    try:
        with open(path, "rb") as f:
            line = f.readline(_HEADER_MAX)
        if not line.endswith(b"\n"):
            return None
        return _check_header(path, 1, json.loads(line.decode("utf-8")))
    except (OSError, ValueError, SessionError):
        return None


# What a header said, by path: (device, inode, size, mtime, ctime) and then (part number,
# created) or None for no session of ours. A file unchanged since is not read again, so a
# folder of thousands of sessions costs its first pass only; only these two numbers are kept
# (a header holds the whole config), and a folder's entries are those of its latest pass.
# Writer threads only.
_seen: dict[str, dict[str, tuple]] = {}
_YIELD_EVERY = 20        # header reads between short sleeps: the frame loop gets the GIL back


def stored_sessions(folder: str | os.PathLike) -> list[Stored]:
    """The recordings of this format in `folder`, oldest first. OSError if it cannot be listed."""
    folder = Path(folder)
    found: dict[str, Stored] = {}
    with os.scandir(folder) as it:
        entries = [e for e in it if e.name.endswith(SUFFIX)]
    reads = 0
    before = _seen.get(_key(folder), {})
    now: dict[str, tuple] = {}
    for e in entries:
        try:
            if not e.is_file(follow_symlinks=False):
                continue
            st = e.stat(follow_symlinks=False)
        except OSError:
            continue
        path = folder / e.name
        stamp = (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)
        known = before.get(e.name)
        if known is not None and known[0] == stamp:
            said = known[1]
        else:
            header = _header(path)
            said = None if header is None else (header.get("part", 0), _created(header, st.st_mtime))
            reads += 1
            if reads % _YIELD_EVERY == 0:
                time.sleep(0.001)
        now[e.name] = (stamp, said)
        if said is None:
            continue
        part, created = said
        name = e.name
        m = _PART_NAME.match(name)
        if m and isinstance(part, int) and not isinstance(part, bool) and part > 0 and int(m.group(2)) == part:
            name = m.group(1) + SUFFIX
        found.setdefault(name, Stored(name)).add(path, st.st_size, created)
    _seen[_key(folder)] = now
    return sorted(found.values(), key=lambda s: (s.began, s.name))


class Retention:
    """The limits of one recording and what applying them did (for its stats)."""

    def __init__(self, keep_gb: float = 0.0, keep_days: float = 0.0, reserve_bytes: int = 0):
        self.keep_bytes = int(keep_gb * GB)
        self.keep_days = float(keep_days)
        self.reserve = int(reserve_bytes)      # the part about to grow: counted as full
        self._said_live = False   # the live recording alone over keep_gb: said once
        self.deleted = 0          # recordings deleted
        self.deleted_bytes = 0
        self.errors = 0

    @property
    def enabled(self) -> bool:
        return self.keep_bytes > 0 or self.keep_days > 0

    def apply(self, folder: str | os.PathLike, now: float | None = None) -> None:
        """Delete the oldest recordings in `folder` beyond the limits. Never raises."""
        if not self.enabled:
            return
        try:
            self._apply(Path(folder), time.time() if now is None else now)
        except Exception as e:   # a bug here must not stop a recording
            self._error(f"cannot apply the session limits in {folder}: {e}")

    def _apply(self, folder: Path, now: float) -> None:
        sessions = stored_sessions(folder)
        with _live_lock:
            live = set(_live)
        stored = sum(s.size for s in sessions)
        held = {id(s) for s in sessions if any(_key(p) in live for p in s.files)}
        writing = sum(s.size for s in sessions if id(s) in held)
        if self.keep_bytes > 0 and writing + self.reserve > self.keep_bytes and not self._said_live:
            self._said_live = True
            log.warning("the recordings being written in %s take %s, over [session] keep_gb = %g: they are "
                        "never deleted while written, so the limit holds again only once they end (a "
                        "/record/stop and /record/start, or a restart, begins a new one)", folder.resolve(),
                        _size(writing), self.keep_bytes / GB)
        for s in sessions:
            if id(s) in held:
                continue
            if self.keep_days > 0 and now - s.last > self.keep_days * _DAY_S:
                why = f"older than [session] keep_days = {self.keep_days:g}"
            elif self.keep_bytes > 0 and stored + self.reserve > self.keep_bytes:
                room = f" and room for the part being written, {_size(self.reserve)}" if self.reserve else ""
                why = (f"the recordings in {folder.resolve()} take {_size(stored)}{room}, over "
                       f"[session] keep_gb = {self.keep_bytes / GB:g}")
            else:
                continue
            if any(_in_use(p) for p in s.files):     # being written by another process
                continue
            stored -= self._delete(s, why)

    def _delete(self, s: Stored, why: str) -> int:
        """Delete every part of `s`; the bytes freed (a part that vanished meanwhile counts)."""
        freed = gone = 0
        for p, size in zip(s.files, s.sizes):
            try:
                os.unlink(p)
            except FileNotFoundError:
                pass                # gone already (another recording's pass): no error
            except OSError as e:
                self._error(f"cannot delete old session {p}: {getattr(e, 'strerror', None) or e}")
                continue            # still there: its bytes still count
            else:
                gone += 1
            freed += size
        if gone:
            self.deleted += 1
            self.deleted_bytes += freed
            began = _dt.datetime.fromtimestamp(s.began).astimezone().isoformat(timespec="seconds")
            log.info("deleted old session %s (%d of %d file%s, %.1f MB, begun %s): %s", s.name, gone,
                     len(s.files), "s" if len(s.files) > 1 else "", freed / 1e6, began, why)
        return freed

    def _error(self, msg: str) -> None:
        self.errors += 1
        if self.errors == 1:
            log.warning("%s (said once for this recording; the recording goes on)", msg)

