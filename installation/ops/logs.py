"""Logging for weeks of unattended running: console plus a size-capped rotating file.

Everything in the package logs through `logging.getLogger(__name__)`, i.e. below the
"installation" logger, which is the one configured here. Every record is one line (a
traceback is folded onto it) so the file stays greppable and `tail -f` readable. A log file
on a full disk costs one line on the console per failure streak (`LogFileHandler`).
`RateLimitedLog` keeps a flood (bad OSC packets, audio underflows) to one line a second.
"""
from __future__ import annotations

import logging
import logging.handlers
import os
import sys
import threading
import time
from pathlib import Path
from typing import Callable

from ..config.loader import ConfigError
from .settings import LogSettings

ROOT_LOGGER = "installation"
_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
_MIB = 1024 * 1024


class OneLineFormatter(logging.Formatter):
    """Folds multi-line messages and tracebacks onto one line, joined by ' | '."""

    def format(self, record: logging.LogRecord) -> str:
        text = super().format(record)
        return text.replace("\r", "").replace("\n", " | ") if "\n" in text or "\r" in text else text


class LogFileHandler(logging.handlers.RotatingFileHandler):
    """The rotating file, for a disk that can fill up over weeks.

    A record that cannot be written (disk full, file too large, the media gone) is counted in
    `write_errors`, and the first of a streak is reported as one line on `report` (the
    console) — never the standard library's "--- Logging error ---" traceback per record. The
    file is closed and tried again with the next record; the first line that gets through says
    how many were lost. An error that is not the file's (a bad format string) is reported as the
    standard library does.
    """

    def __init__(self, *args, report=None, **kwargs):
        self.write_errors = 0       # records lost, in all
        self.lost = 0               # records lost in the current streak
        self.streaks = 0
        self._report = report
        self._since = ""
        self._error: OSError | None = None
        super().__init__(*args, **kwargs)       # opens the file

    def emit(self, record: logging.LogRecord) -> None:
        if self.lost:
            # the file again? Its first line says what is missing above it
            note = logging.LogRecord(__name__, logging.WARNING, __file__, 0,
                                     "%d log lines could not be written to this file since %s (%s)",
                                     (self.lost, self._since, self._why()), None)
            if not self._try(note):
                self._lost_one()
                return
            self.lost = 0
        if not self._try(record):
            self._lost_one()

    def _open(self):
        stream = super()._open()
        if self.lost and not self._ends_a_line():
            stream.write("\n")         # the line the error cut off ends here, not mid-next-line
        return stream

    def _ends_a_line(self) -> bool:
        try:
            with open(self.baseFilename, "rb") as f:
                f.seek(0, os.SEEK_END)
                if f.tell() == 0:
                    return True
                f.seek(-1, os.SEEK_END)
                return f.read(1) == b"\n"
        except OSError:
            return True

    def _try(self, record: logging.LogRecord) -> bool:
        self._error = None
        super().emit(record)            # calls handleError on a failure
        return self._error is None

    def _why(self) -> str:
        e = self._error
        return (e.strerror or str(e)) if e is not None else "write error"

    def _lost_one(self) -> None:
        self.write_errors += 1
        self.lost += 1
        if self.lost == 1:
            self.streaks += 1
            self._since = time.strftime("%Y-%m-%d %H:%M:%S")
            out = self._report if self._report is not None else sys.stderr
            line = logging.LogRecord(__name__, logging.ERROR, __file__, 0,
                                     "cannot write the log file %s: %s; its lines are lost until it "
                                     "can be written again (this console log goes on)",
                                     (self.baseFilename, self._why()), None)
            try:
                out.write((self.formatter or OneLineFormatter(_FORMAT)).format(line) + "\n")
                out.flush()
            except Exception:  # noqa: BLE001 - no console either: nothing left to tell
                pass

    def handleError(self, record: logging.LogRecord) -> None:
        exc = sys.exc_info()[1]
        if not isinstance(exc, OSError):
            super().handleError(record)     # a bug (a bad format string): the stdlib's report
            return
        self._error = exc
        # drop the stream (and what it buffered): the next record opens the file afresh
        stream, self.stream = self.stream, None
        if stream is not None:
            try:
                stream.close()
            except OSError:
                pass

    def close(self) -> None:
        try:
            super().close()
        except OSError:
            pass    # its last lines could not be flushed: nothing more to do at the end


def _tagged(handler: logging.Handler) -> logging.Handler:
    handler._living_mosaic = True  # so a second setup replaces, not doubles, our handlers
    return handler


def close_logging() -> None:
    """Remove and close the handlers `setup_logging` installed."""
    logger = logging.getLogger(ROOT_LOGGER)
    for h in list(logger.handlers):
        if getattr(h, "_living_mosaic", False):
            logger.removeHandler(h)
            h.close()
    logger.propagate = True


def setup_logging(settings: LogSettings, *, stream=None) -> logging.Logger:
    """Configure the package's logger: console (stderr) and, if `settings.file`, a rotating file.

    A log file that cannot be opened is a ConfigError (the operator can fix the path).
    Calling it again replaces the previous handlers.
    """
    close_logging()
    logger = logging.getLogger(ROOT_LOGGER)
    logger.setLevel(settings.level.upper())
    fmt = OneLineFormatter(_FORMAT)
    out = sys.stderr if stream is None else stream
    console = _tagged(logging.StreamHandler(out))
    console.setFormatter(fmt)
    logger.addHandler(console)
    if settings.file:
        path = Path(settings.file).expanduser()
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            handler = LogFileHandler(
                path, maxBytes=max(1024, int(settings.max_mb * _MIB)), backupCount=settings.keep,
                encoding="utf-8", report=out)
        except OSError as exc:
            close_logging()
            raise ConfigError(f"[log] file = {settings.file!r}: cannot open: {exc.strerror or exc}") from None
        handler.setFormatter(fmt)
        logger.addHandler(_tagged(handler))
    # Our handlers are on "installation"; propagating too would print every line twice
    # wherever the root logger also has a handler.
    logger.propagate = False
    return logger


class RateLimitedLog:
    """At most one line per `interval_s` for each kind of event; the rest are counted.

    The next line of a kind says how many were held back, so nothing goes unnoticed.
    Safe to call from any thread (the OSC thread, the audio side, the frame loop).
    """

    def __init__(self, logger: logging.Logger | str, interval_s: float = 1.0,
                 clock: Callable[[], float] = time.monotonic):
        self.logger = logging.getLogger(logger) if isinstance(logger, str) else logger
        self.interval_s = float(interval_s)
        self._clock = clock
        self._lock = threading.Lock()
        self._last: dict[str, float] = {}
        self._held: dict[str, int] = {}

    def log(self, kind: str, level: int, msg: str, *args) -> bool:
        """Log `msg % args` unless `kind` was logged within the interval; True if it was written."""
        now = self._clock()
        with self._lock:
            last = self._last.get(kind)
            if last is not None and now - last < self.interval_s:
                self._held[kind] = self._held.get(kind, 0) + 1
                return False
            self._last[kind] = now
            held = self._held.pop(kind, 0)
        if held:
            msg = f"{msg} (+{held} more like this since the last line)"
        self.logger.log(level, msg, *args)
        return True

    def info(self, kind: str, msg: str, *args) -> bool:
        return self.log(kind, logging.INFO, msg, *args)

    def warning(self, kind: str, msg: str, *args) -> bool:
        return self.log(kind, logging.WARNING, msg, *args)

    def error(self, kind: str, msg: str, *args) -> bool:
        return self.log(kind, logging.ERROR, msg, *args)

    def held(self, kind: str) -> int:
        """Lines of `kind` held back since its last written line."""
        with self._lock:
            return self._held.get(kind, 0)


def log_file_paths(settings: LogSettings) -> list[str]:
    """The file and its rotated siblings, as they exist now (for the HUD or a support bundle)."""
    if not settings.file:
        return []
    base = str(Path(settings.file).expanduser())
    names = [base] + [f"{base}.{i}" for i in range(1, settings.keep + 1)]
    return [n for n in names if os.path.exists(n)]
