"""Session recording off the frame loop: a writer thread that owns the file.

The frame loop calls `Recorder.write(tick, event)`, which only puts a reference on a queue (the
event is immutable, so no copy is needed). The writer thread serialises, writes and flushes a
batch about every 20 ms and fsyncs about every `sync_s`; a `kill -9` of the process loses only
what is still in the queue (the OS keeps what was flushed), a power cut at most ~`sync_s`.

A write error (disk full, file too large, media removed) is logged once, counted in `errors`,
and stops this recording; the installation keeps running. Rotation by size or duration opens
numbered files, see `format.py` for the names.

`SessionManager` serves the operator's /record/start [name] and /record/stop: it only ever
writes bare names into the configured folder.
"""
from __future__ import annotations

import datetime as _dt
import logging
import os
import queue
import re
import threading
import time
import unicodedata
from pathlib import Path
from typing import Callable

from ..events import InputEvent
from .errors import SessionError
from .format import FORMAT, SUFFIX, VERSION, end_line, event_line, free_path, header_line, part_path
from .settings import SessionSettings

log = logging.getLogger("installation.session")

_BATCH_S = 0.02          # how long the writer gathers events before one write+flush
_MIB = 1024 * 1024
_CLOSE = object()        # queue sentinel


def now_iso() -> str:
    return _dt.datetime.now(_dt.timezone.utc).astimezone().isoformat(timespec="seconds")


class Recorder:
    """Writes one recording (possibly rotated into several files) on its own thread.

    Call `write` and `close` from one thread (the frame loop). `header` holds the contract's
    keys (seed, tick_hz, config; `format`, `version`, `created` are filled in if missing).
    Opening the file and writing the header happen here, once, so a bad path fails at once
    with a SessionError; everything after that is on the writer thread.
    """

    def __init__(self, path: str | os.PathLike, header: dict, settings: SessionSettings | None = None):
        self.settings = settings or SessionSettings()
        self.path = Path(path)
        self.header = {"format": FORMAT, "version": VERSION, "created": now_iso(), **header}
        self.header.setdefault("part", 0)
        self.written = 0          # events on disk (flushed)
        self._dropped_caller = 0  # refused by write(): queue full, or recording stopped/closed
        self._dropped_writer = 0  # queued but never written because a write error stopped it
        self.errors = 0           # write errors (the first one stops the recording)
        self.unwritable = 0       # events whose arguments JSON cannot hold (also in dropped)
        self.syncs = 0            # fsync calls
        self.rotations = 0
        self.files: list[Path] = []
        self.failed = False
        self._put = 0             # only the caller's thread writes this ...
        self._taken = 0           # ... and only the writer thread this: pending = _put - _taken
        self._last_tick = 0
        self._closed = False
        self._q: queue.SimpleQueue = queue.SimpleQueue()
        self._part = 0
        self._file = self._open(self.path)
        self._thread = threading.Thread(target=self._run, name="session-recorder", daemon=True)
        self._thread.start()

    # ---- caller's thread -------------------------------------------------------------
    def write(self, tick: int, event: InputEvent) -> bool:
        """Queue one accepted event for the file; never blocks. False if it was dropped."""
        if self._closed or self.failed or self._put - self._taken >= self.settings.queue_max:
            self._dropped_caller += 1
            return False
        self._put += 1
        self._last_tick = tick
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
        return not self._closed and not self.failed

    def stats(self) -> dict:
        return {"path": str(self.path), "files": [str(p) for p in self.files], "written": self.written,
                "dropped": self.dropped, "errors": self.errors, "syncs": self.syncs,
                "rotations": self.rotations, "failed": self.failed}

    # ---- writer thread ---------------------------------------------------------------
    def _open(self, path: Path):
        try:
            f = open(path, "w", encoding="utf-8", newline="\n")
        except OSError as e:
            raise SessionError(f"{path}: cannot create the session file: {e.strerror or e}") from None
        try:
            f.write(header_line(self.header))
            f.flush()
        except OSError as e:
            f.close()
            raise SessionError(f"{path}: cannot write the session header: {e.strerror or e}") from None
        self.files.append(path)
        self._opened_at = time.monotonic()
        self._bytes = f.tell()
        return f

    def _rotate_due(self) -> bool:
        s = self.settings
        if s.rotate_mb > 0 and self._bytes >= s.rotate_mb * _MIB:
            return True
        return s.rotate_minutes > 0 and time.monotonic() - self._opened_at >= s.rotate_minutes * 60.0

    def _rotate(self, tick: int) -> None:
        nxt = part_path(self.path, self._part + 1)
        self._file.write(end_line(tick, next_name=nxt.name))
        self._file.flush()
        os.fsync(self._file.fileno())
        self._file.close()
        self._part += 1
        self.header = {**self.header, "part": self._part, "created": now_iso()}
        try:
            self._file = self._open(nxt)
        except SessionError as e:
            self._file = None
            raise OSError(str(e)) from None
        self.rotations += 1

    def _run(self) -> None:
        try:
            self._loop()
        except Exception as e:  # a bug must not kill the recording silently
            log.exception("recorder thread crashed")
            self._fail(OSError(str(e)))

    def _loop(self) -> None:
        last_sync = time.monotonic()
        dirty = False
        while True:
            try:
                item = self._q.get(timeout=self.settings.sync_s)
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
                    self._dropped_writer += len(lines) - (self.written - before)
                    self._fail(e)
            elif lines:
                self._dropped_writer += len(lines)
            now = time.monotonic()
            if dirty and not self.failed and (now - last_sync >= self.settings.sync_s or close_ticks is not None):
                try:
                    os.fsync(self._file.fileno())
                    self.syncs += 1
                except OSError as e:
                    self._fail(e)
                last_sync, dirty = now, False
            if close_ticks is not None:
                self._finish(close_ticks)
                return

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
        if chunk:
            self._flush_chunk(chunk)

    def _flush_chunk(self, chunk: list[str]) -> None:
        self._file.write("".join(chunk))
        self._file.flush()
        self.written += len(chunk)

    def _fail(self, e: OSError) -> None:
        self.errors += 1
        self.failed = True
        where = self.files[-1] if self.files else self.path
        log.error("recording stopped: cannot write %s: %s (the installation keeps running)",
                  where, e.strerror or e)
        try:
            if self._file is not None:
                self._file.close()
        except OSError:
            pass  # the file is already broken; the error above is the one to report

    def _finish(self, ticks: int) -> None:
        if self.failed or self._file is None:
            return
        try:
            self._file.write(end_line(ticks))
            self._file.flush()
            os.fsync(self._file.fileno())
            self.syncs += 1
            self._file.close()
        except OSError as e:
            self._fail(e)


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
