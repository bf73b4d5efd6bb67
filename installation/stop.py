"""The flag that ends a run: set by SIGINT, SIGTERM or SIGHUP, or a window's quit key.

Its own small module, so the CLI can install it before the imports and the config load that
take the first second of a start: a stop in that second ends the run as one later does.
"""
from __future__ import annotations

import signal
import threading


class StopFlag:
    """Set by SIGINT/SIGTERM/SIGHUP or a window close; the loop checks it once per frame."""

    def __init__(self):
        self.event = threading.Event()
        self.reason = ""

    def set(self, reason: str) -> None:
        if not self.event.is_set():
            self.reason = reason
            self.event.set()

    def install_signals(self) -> None:
        if threading.current_thread() is not threading.main_thread():
            return
        # SIGHUP: the terminal went away (a technician's ssh session dropped): end as cleanly
        for sig in (signal.SIGINT, signal.SIGTERM, getattr(signal, "SIGHUP", None)):
            if sig is None:
                continue
            if sig != signal.SIGINT and signal.getsignal(sig) is signal.SIG_IGN:
                continue        # `nohup` asked for it to outlive the terminal: keep that
            signal.signal(sig, self._on_signal)

    def _on_signal(self, signum, frame) -> None:
        if signum == signal.SIGINT and self.event.is_set():
            # a second Ctrl-C: the first asked for a clean end (which waits for the start-up to
            # finish, a cold compile can take half a minute); this one does not wait
            raise KeyboardInterrupt
        self.set(signal.Signals(signum).name)
