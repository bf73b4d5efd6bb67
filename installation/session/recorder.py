"""Session recording off the frame loop: a writer thread that owns the file.

The frame loop calls `Recorder.write(tick, event)`, which only puts a reference on a queue (the
event is immutable, so no copy is needed). The writer thread serialises, writes and flushes a
batch about every 20 ms and fsyncs about every `sync_s`; a `kill -9` of the process loses only
what is still in the queue (the OS keeps what was flushed), a power cut at most ~`sync_s`.
Rotation by size or duration opens numbered files, see `format.py` for the names.

A write error (disk full, file too large, media removed) never stops the installation and
never stops a recording for good: it is logged once, counted in `errors`, and the recording
pauses (events offered meanwhile are dropped and counted). At most every `retry_s` (RETRY_S,
60 s) the writer thread tries again: it closes the part that broke at its last whole line with
an end marker naming a NEW part, and opens that part with a full header, so the chain still
replays; the new part's header and the log say what was lost (`resumed`: ticks and events).
A file whose header could not be written is removed: no empty or headerless file is left.

With `[session] keep_gb` or `keep_days` set, the writer thread deletes the oldest sessions of
the recording's folder beyond them (see `retention.py`): once as the recording starts, at each
rotation before the next part opens, and before each try to resume after a write error.

`SessionManager` serves the operator's /record/start [name] and /record/stop: it only ever
writes bare names into the configured folder.
"""
from __future__ import annotations

import datetime as _dt
import errno
import logging
import os
import queue
import re
import shutil
import threading
import time
import unicodedata
from pathlib import Path
from typing import Callable

from ..events import InputEvent
from . import retention
from .errors import SessionError
from .format import FORMAT, SUFFIX, VERSION, end_line, event_line, free_path, header_line, part_path
from .settings import SessionSettings

log = logging.getLogger("installation.session")

_BATCH_S = 0.02          # how long the writer gathers events before one write+flush
_MIB = 1024 * 1024
# Below this much free space on a recording's disk each new part says so, with the hours left
# at the rate so far: weeks of recording fill a disk, and the technician should hear it first.
LOW_SPACE_BYTES = 2 * 1024 * _MIB
_CLOSE = object()        # queue sentinel
RETRY_S = 60.0           # after a write error, how often a new part is tried

# Errors of opening a file that are the path's fault, not the disk's: a user can fix them, and
# waiting will not (a missing or unwritable folder, a folder given as the file, ...).
_PATH_ERRNOS = frozenset(getattr(errno, n) for n in (
    "ENOENT", "ENOTDIR", "EISDIR", "EACCES", "EPERM", "EROFS", "ENAMETOOLONG", "ELOOP", "EINVAL")
    if hasattr(errno, n))


def now_iso() -> str:
    return _dt.datetime.now(_dt.timezone.utc).astimezone().isoformat(timespec="seconds")


def _why(e: BaseException) -> str:
    return getattr(e, "strerror", None) or str(e) or type(e).__name__


class _HeaderError(OSError):
    """The file was created but its header could not be written (it has been removed)."""


class Recorder:
    """Writes one recording (possibly rotated into several files) on its own thread.

    Call `write` and `close` from one thread (the frame loop). `header` holds the contract's
    keys (seed, tick_hz, config; `format`, `version`, `created` are filled in if missing).
    The first file is opened and its header written here, once: a path the user can fix (a
    missing folder, a folder, no permission) is a SessionError at once. A disk that cannot
    take the header (full, file too large, I/O error) is a SessionError too, unless
    `pause_at_start`: then that is logged, the recording starts paused and the writer thread
    tries again every `retry_s`, as after any later write error. Everything after the
    constructor is on the writer thread.
    """

    def __init__(self, path: str | os.PathLike, header: dict, settings: SessionSettings | None = None,
                 *, retry_s: float = RETRY_S, pause_at_start: bool = False):
        self.settings = settings or SessionSettings()
        self.path = Path(path)
        self.header = {"format": FORMAT, "version": VERSION, "created": now_iso(), **header}
        self.header.setdefault("part", 0)
        self.retry_s = float(retry_s)
        self.written = 0          # events on disk (flushed)
        self._dropped_caller = 0  # refused by write(): queue full, or recording paused/closed
        self._dropped_writer = 0  # queued but never written because a write error paused it
        self.errors = 0           # failed writes and failed tries to resume
        self.unwritable = 0       # events whose arguments JSON cannot hold (also in dropped)
        self.syncs = 0            # fsync calls
        self.rotations = 0
        self.retries = 0          # tries to resume after a write error
        self.resumes = 0          # ... that worked: a new part was opened
        self.lost_ticks = 0       # ticks of the gaps between a write error and its resume
        s = self.settings
        self.retention = retention.Retention(s.keep_gb, s.keep_days, reserve_bytes=int(s.rotate_mb * _MIB))
        self.files: list[Path] = []
        self.failed = False       # paused by a write error (until a retry works)
        self._put = 0             # only the caller's thread writes this ...
        self._taken = 0           # ... and only the writer thread this: pending = _put - _taken
        self._last_tick = 0       # the latest tick the caller offered (written or not)
        self._closed = False
        self._q: queue.SimpleQueue = queue.SimpleQueue()
        self._part = 0            # the part being written (or the last one that was)
        self._file = None
        self._good = 0            # bytes of the current part known to be on disk: whole lines
        self._bytes = 0
        self._opened_at = self._began = time.monotonic()
        self._bytes_total = 0     # bytes of every part so far (the rate for the low-space word)
        self._broken: tuple[Path, int] | None = None   # a part cut by a write error: (path, good bytes)
        self._failed_at = 0.0
        self._streak: dict | None = None                # the current failure: since when, what
        try:
            self._file = self._open(self.path, self.header)
        except _HeaderError as e:
            if not pause_at_start:
                raise SessionError(f"{self.path}: cannot write the session header: {_why(e)}") from None
            self._fail(e, 0, what="the session header of")
        except OSError as e:
            if e.errno in _PATH_ERRNOS or not pause_at_start:
                raise SessionError(f"{self.path}: cannot create the session file: {_why(e)}") from None
            self._fail(e, 0, what="the session file")
        self._thread = threading.Thread(target=self._run, name="session-recorder", daemon=True)
        self._thread.start()

    # ---- caller's thread -------------------------------------------------------------
    def write(self, tick: int, event: InputEvent) -> bool:
        """Queue one accepted event for the file; never blocks. False if it was dropped."""
        self._last_tick = tick
        if self._closed or self.failed or self._put - self._taken >= self.settings.queue_max:
            self._dropped_caller += 1
            return False
        self._put += 1
        self._q.put((tick, event))
        return True

    def close(self, ticks: int) -> None:
        """Write the end marker `{"end": true, "ticks": ticks}`, sync, close and join."""
        if self._closed:
            return
        self._closed = True
        self._q.put((_CLOSE, int(ticks)))
        self._thread.join()

    @property
    def dropped(self) -> int:
        return self._dropped_caller + self._dropped_writer

    @property
    def pending(self) -> int:
        return max(0, self._put - self._taken)

    @property
    def active(self) -> bool:
        """Recording now: neither closed nor paused by a write error."""
        return not self._closed and not self.failed

    def stats(self) -> dict:
        return {"path": str(self.path), "files": [str(p) for p in self.files], "written": self.written,
                "dropped": self.dropped, "errors": self.errors, "syncs": self.syncs,
                "rotations": self.rotations, "failed": self.failed, "retries": self.retries,
                "resumes": self.resumes, "lost_ticks": self.lost_ticks,
                "deleted_sessions": self.retention.deleted, "delete_errors": self.retention.errors}

    # ---- writer thread ---------------------------------------------------------------
    def _open(self, path: Path, header: dict):
        """A new part with its header on disk; OSError if not (a headerless file is removed)."""
        f = open(path, "wb")
        try:
            data = header_line(header).encode("utf-8")
            f.write(data)
            f.flush()
        except OSError as e:
            try:
                f.close()
            except OSError:
                pass    # the write error is the one to report
            try:
                os.unlink(path)
            except OSError:
                pass
            raise _HeaderError(e.errno, _why(e)) from None
        self.files.append(path)
        retention.hold(path, f)
        self._opened_at = time.monotonic()
        self._good = self._bytes = len(data)
        self._bytes_total += len(data)
        self._say_if_low(path)
        return f

    def _say_if_low(self, path: Path) -> None:
        try:
            free = shutil.disk_usage(path.parent).free
        except OSError:
            return
        if free >= LOW_SPACE_BYTES:
            return
        elapsed = time.monotonic() - self._began
        rate = self._bytes_total / elapsed if elapsed > 60.0 else 0.0
        left = f", about {free / rate / 3600:.1f} h at this recording's rate" if rate > 0 else ""
        log.warning("recording to %s: only %.2f GB free on its disk%s; move or delete old sessions, or "
                    "set [session] keep_gb (if it fills, the recording pauses and the show goes on)",
                    path, free / 1e9, left)

    def _put_bytes(self, data: bytes) -> None:
        self._file.write(data)
        self._file.flush()
        self._good += len(data)

    def _rotate_due(self) -> bool:
        s = self.settings
        if s.rotate_mb > 0 and self._bytes >= s.rotate_mb * _MIB:
            return True
        return s.rotate_minutes > 0 and time.monotonic() - self._opened_at >= s.rotate_minutes * 60.0

    def _rotate(self, tick: int) -> None:
        nxt = part_path(self.path, self._part + 1)
        good = self._good
        try:
            self._put_bytes(end_line(tick, next_name=nxt.name).encode("utf-8"))
            os.fsync(self._file.fileno())
            self._file.close()
        except OSError:
            self._good = good           # mended later without this half-sure end marker
            raise
        self._file = None               # closed whole: nothing to mend if the next one fails
        self._keep()
        self._file = self._open(nxt, self._part_header(self._part + 1))
        self._part += 1
        self.rotations += 1

    def _part_header(self, part: int, **extra) -> dict:
        return {**self.header, "part": part, "created": now_iso(), **extra}

    def _keep(self) -> None:
        """Delete the oldest sessions of this recording's folder beyond the limits (never this one)."""
        self.retention.apply(self.path.parent)

    def _run(self) -> None:
        try:
            self._keep()
            self._loop()
        except Exception as e:  # a bug must not kill the recording silently
            log.exception("recorder thread crashed")
            self._fail(OSError(str(e)), self._last_tick)
        finally:
            retention.release(self.files)

    def _wait_s(self) -> float:
        if not self.failed or self.retry_s <= 0:
            return self.settings.sync_s
        return max(0.01, min(self.settings.sync_s, self._failed_at + self.retry_s - time.monotonic()))

    def _loop(self) -> None:
        last_sync = time.monotonic()
        dirty = False
        while True:
            try:
                item = self._q.get(timeout=self._wait_s())
            except queue.Empty:
                item = None
            if item is not None and item[0] is not _CLOSE:
                # Let a batch gather: one write+flush per ~tick instead of per event.
                time.sleep(_BATCH_S)
            batch = [] if item is None else [item]
            while True:
                try:
                    batch.append(self._q.get_nowait())
                except queue.Empty:
                    break
            close_ticks = None
            lines = []
            for tick, ev in batch:
                if tick is _CLOSE:
                    close_ticks = ev
                    continue
                try:
                    lines.append((tick, event_line(tick, ev)))
                except (TypeError, ValueError):
                    # An argument JSON cannot hold (bytes from a blob): skip it, keep recording.
                    self._dropped_writer += 1
                    if not self.unwritable:
                        log.warning("recording: event %s with arguments %r cannot be written as JSON; "
                                    "skipped (counted in dropped)", ev.addr, ev.args)
                    self.unwritable += 1
            self._taken += len(batch) - (close_ticks is not None)
            if lines and not self.failed:
                before = self.written
                try:
                    self._write_lines(lines)
                    dirty = True
                except OSError as e:
                    unwritten = len(lines) - (self.written - before)
                    self._fail(e, lines[len(lines) - unwritten][0], lost=unwritten)
            elif lines:
                self._dropped_writer += len(lines)
            now = time.monotonic()
            if dirty and not self.failed and (now - last_sync >= self.settings.sync_s or close_ticks is not None):
                try:
                    os.fsync(self._file.fileno())
                    self.syncs += 1
                except OSError as e:
                    self._fail(e, self._last_tick)
                last_sync, dirty = now, False
            if close_ticks is not None:
                self._finish(close_ticks)
                return
            if self.failed and self.retry_s > 0 and now - self._failed_at >= self.retry_s:
                self._resume(self._last_tick)

    def _write_lines(self, lines: list[tuple[int, str]]) -> None:
        chunk = []
        for tick, line in lines:
            # Checked per line, so a flood cannot overshoot a part's size by much.
            if self._rotate_due():
                if chunk:
                    self._flush_chunk(chunk)
                    chunk = []
                self._rotate(tick)
            chunk.append(line)
            self._bytes += len(line)   # characters, not bytes: close enough for a size limit
            self._bytes_total += len(line)
        if chunk:
            self._flush_chunk(chunk)

    def _flush_chunk(self, chunk: list[str]) -> None:
        self._put_bytes("".join(chunk).encode("utf-8"))
        self.written += len(chunk)

    def _fail(self, e: BaseException, tick: int, *, lost: int = 0, what: str = "") -> None:
        """A write error: pause (the first error of a streak is logged), drop `lost` lines."""
        self.errors += 1
        self._failed_at = time.monotonic()
        if self._file is not None:
            # A part cut short: closed at its last whole line when a retry works.
            self._broken = (self.files[-1], self._good)
            try:
                self._file.close()
            except OSError:
                pass  # the file is already broken; the error above is the one to report
            self._file = None
        if not self.failed:
            self.failed = True
            self._streak = {"tick": int(tick), "dropped": self.dropped, "since": self._failed_at}
            where = self.files[-1] if self.files else self.path
            again = (f"trying again every {self.retry_s:g} s" if self.retry_s > 0
                     else "not trying again")
            log.error("recording paused: cannot write %s%s: %s; %s (the installation keeps running)",
                      f"{what} " if what else "", where, _why(e), again)
        self._dropped_writer += lost

    def _resume(self, tick: int) -> None:
        """After a write error: close the broken part, open a new one. Quiet if it fails."""
        self.retries += 1
        part = self._part + 1 if self.files else 0
        nxt = part_path(self.path, part)
        streak = self._streak or {"tick": tick, "dropped": self.dropped, "since": self._failed_at}
        lost = {"from_tick": streak["tick"], "to_tick": int(tick),
                "events": self.dropped - streak["dropped"]}
        self._keep()                    # a full disk: the limits may make the room
        try:
            if self._broken is not None:
                self._mend(*self._broken, tick, nxt.name)
                self._broken = None
            header = self._part_header(part, resumed=lost) if part else {**self.header, "resumed": lost}
            self._file = self._open(nxt, header)
        except OSError:
            self.errors += 1
            self._failed_at = time.monotonic()
            return          # logged once when the streak began; the counters keep the rest
        self._part = part
        self.failed = False
        self._streak = None
        self.resumes += 1
        self.lost_ticks += max(0, lost["to_tick"] - lost["from_tick"])
        log.warning("recording resumed in %s after %.0f s: %d events of ticks %d..%d were lost",
                    nxt, time.monotonic() - streak["since"], lost["events"], lost["from_tick"], lost["to_tick"])

    def _mend(self, path: Path, good: int, tick: int, next_name: str) -> None:
        """End a part cut by a write error at its last whole line, naming its successor. A part
        someone removed or emptied to make room is left as it is: there is nothing to end."""
        try:
            f = open(path, "r+b")
        except FileNotFoundError:
            return
        with f:
            f.seek(0, os.SEEK_END)
            cut = min(good, f.tell())           # never past its end (truncate would pad zeros)
            f.seek(max(0, cut - 65536))
            tail = f.read(cut - max(0, cut - 65536))
            if not tail.endswith(b"\n") and b"\n" in tail:
                cut -= len(tail) - tail.rindex(b"\n") - 1
            if cut == 0:
                return
            f.truncate(cut)
            f.seek(cut)
            f.write(end_line(tick, next_name=next_name).encode("utf-8"))
            f.flush()
            os.fsync(f.fileno())
        self.syncs += 1

    def _finish(self, ticks: int) -> None:
        if self.failed or self._file is None:
            if self.failed and self._streak is not None:
                self.lost_ticks += max(0, int(ticks) - self._streak["tick"])
                log.warning("recording %s ended paused: %d events of ticks %d..%d were never written",
                            self.path, self.dropped - self._streak["dropped"], self._streak["tick"], ticks)
            return
        try:
            self._put_bytes(end_line(ticks).encode("utf-8"))
            os.fsync(self._file.fileno())
            self.syncs += 1
            self._file.close()
            self._file = None
        except OSError as e:
            self.retry_s = 0.0      # the end: nothing will try again
            self._fail(e, ticks)


# ---- names from the network ----------------------------------------------------------------

_WINDOWS_RESERVED = {"CON", "PRN", "AUX", "NUL", *(f"COM{i}" for i in range(1, 10)), *(f"LPT{i}" for i in range(1, 10))}
_NAME_CHARS = re.compile(r"^[\w .-]+$", re.UNICODE)


def safe_session_name(name: object) -> str | None:
    """A bare file name from the network, or None: never a path, never hidden, never odd.

    Letters (any script), digits, space, `_`, `-` and `.`; at most 100 characters; not starting
    with `.` or a space; no `..`, `/`, `\\`, `:`, control characters, or Windows device names.
    A trailing `.jsonl` is dropped (the caller adds it)."""
    if not isinstance(name, str):
        return None
    name = unicodedata.normalize("NFC", name).strip(" ")   # spaces only: a newline is refused
    if name.lower().endswith(SUFFIX):
        name = name[: -len(SUFFIX)].rstrip(" ")
    if not name or len(name) > 100 or ".." in name or name[0] in ". " or name[-1] == ".":
        return None
    if any(unicodedata.category(c)[0] == "C" for c in name):
        return None
    if not _NAME_CHARS.match(name) or "/" in name or "\\" in name:
        return None
    if name.split(".")[0].upper() in _WINDOWS_RESERVED:
        return None
    return name


class SessionManager:
    """/record/start [name] and /record/stop, writing into one folder.

    `header_factory()` returns the header of a new recording (seed, tick_hz, config).
    A start while recording closes the current file first. An unsafe name is refused (logged,
    counted); an existing name gets `-2`, `-3`, ... rather than being overwritten.
    """

    def __init__(self, folder: str | os.PathLike, header_factory: Callable[[], dict],
                 settings: SessionSettings | None = None, clock: Callable[[], _dt.datetime] | None = None):
        self.folder = Path(folder)
        self.header_factory = header_factory
        self.settings = settings or SessionSettings()
        self._clock = clock or (lambda: _dt.datetime.now())
        self.recorder: Recorder | None = None
        self.started = 0
        self.rejected_names = 0
        self.errors = 0
        self.finished: list[dict] = []   # stats of closed recordings

    @property
    def active(self) -> bool:
        return self.recorder is not None and self.recorder.active

    def default_name(self) -> str:
        return self._clock().strftime("session-%Y%m%d-%H%M%S")

    def start(self, name: str | None, tick: int) -> Path | None:
        """Start recording at `tick`; the path, or None when refused or the folder is unwritable."""
        if name is None or name == "":
            bare = self.default_name()
        else:
            bare = safe_session_name(name)
            if bare is None:
                self.rejected_names += 1
                log.warning("/record/start %r refused: a session name is a bare file name "
                            "(letters, digits, space, _ - .), never a path", name)
                return None
        self.stop(tick)
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
            path = self._free_path(bare)
            header = {**self.header_factory(), "start_tick": int(tick)}
            self.recorder = Recorder(path, header, self.settings)
        except (OSError, SessionError) as e:
            self.errors += 1
            log.error("/record/start: %s", e)
            return None
        self.started += 1
        log.info("recording session to %s", path.resolve())     # session.folder is relative to the working directory
        return path

    def _free_path(self, bare: str) -> Path:
        return free_path(self.folder / f"{bare}{SUFFIX}")

    def write(self, tick: int, event: InputEvent) -> None:
        if self.recorder is not None:
            self.recorder.write(tick, event)

    def stop(self, ticks: int) -> Path | None:
        """Close the current recording with its end marker; its first file, or None."""
        rec, self.recorder = self.recorder, None
        if rec is None:
            return None
        rec.close(ticks)
        self.finished.append(rec.stats())
        log.info("session %s closed: %d events, %d dropped", rec.path, rec.written, rec.dropped)
        return rec.path

    def stats(self) -> dict:
        cur = self.recorder.stats() if self.recorder is not None else None
        return {"recording": cur, "started": self.started, "rejected_names": self.rejected_names,
                "errors": self.errors, "dropped": sum(s["dropped"] for s in self.finished) + (cur["dropped"] if cur else 0)}
