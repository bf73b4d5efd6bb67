"""Logging for weeks of unattended running: console plus a size-capped rotating file.

Everything in the package logs through `logging.getLogger(__name__)`, i.e. below the
"installation" logger, which is the one configured here. Every record is one line (a
traceback is folded onto it) so the file stays greppable and `tail -f` readable.
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
    console = _tagged(logging.StreamHandler(sys.stderr if stream is None else stream))
    console.setFormatter(fmt)
    logger.addHandler(console)
    if settings.file:
        path = Path(settings.file).expanduser()
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            handler = logging.handlers.RotatingFileHandler(
                path, maxBytes=max(1024, int(settings.max_mb * _MIB)), backupCount=settings.keep,
                encoding="utf-8")
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
