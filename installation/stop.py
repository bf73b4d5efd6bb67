"""The flag that ends a run: set by SIGINT, SIGTERM or SIGHUP, or a window's quit key.

Its own small module, so the CLI can install it before the imports and the config load that
take the first second of a start: a stop in that second ends the run as one later does.
"""
from __future__ import annotations

import os
import signal
import sys
import threading


class StopFlag:
    """Set by SIGINT/SIGTERM/SIGHUP or a window close; the loop checks it once per frame."""

    def __init__(self, starting: bool = False):
        self.event = threading.Event()
        self.reason = ""
        # set while a run starts (the CLI's flag, until it opens what it writes to): only then does a
        # second Ctrl-C stop at once; later it must not cut the clean end (summary, recording)
        self.starting = starting

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
        if signum == signal.SIGINT and self.event.is_set() and self.starting:
            # A second Ctrl-C while starting: the first asked for a clean end, which waits for
            # the start-up (a cold compile: half a minute). This one does not wait. An exit here,
            # not an exception: raised inside an import it came out as a traceback, or was lost.
            sys.stderr.write("run stopped during its start-up by a second Ctrl-C: nothing written\n")
            sys.stderr.flush()
            os._exit(1)
        self.set(signal.Signals(signum).name)

    def done(self) -> None:
        """The run's end is written: from here the stop signals are ignored. Else a tap that
        lands while the interpreter shuts down (which gives SIGINT back its default) would kill
        the process and turn the clean end's status 0 into 130."""
        if threading.current_thread() is not threading.main_thread():
            return
        for sig in (signal.SIGINT, signal.SIGTERM, getattr(signal, "SIGHUP", None)):
            if sig is not None:
                signal.signal(sig, signal.SIG_IGN)
