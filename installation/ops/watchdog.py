"""A heartbeat watchdog: a stalled frame loop ends the process so a supervisor restarts it.

The frame loop calls `beat()` once a frame (an integer bump, no lock, no syscall). A thread
checks that the counter moves. When it has not moved for `timeout_s` the watchdog logs
it, calls `on_stall()` (the recording is flushed so the session is whole up to the stall)
with at most `flush_s` to finish, and exits with status 3 through `os._exit`: a stalled
main thread would never run atexit handlers or let `sys.exit` from another thread work.

It also feeds systemd's watchdog (`WatchdogSec=`) while the beats advance, so systemd
sees the same liveness the frame loop does and the frame loop never makes that syscall.

The watchdog arms at the first beat: start-up (a cold numba compile can take a minute)
is systemd's `TimeoutStartSec` to judge, not the frame watchdog.
"""
from __future__ import annotations

import logging
import os
import threading
import time
from typing import Callable

from .sdnotify import SdNotifier

log = logging.getLogger(__name__)

STALL_EXIT_CODE = 3


class Watchdog:
    def __init__(self, timeout_s: float, on_stall: Callable[[], None] | None = None, *,
                 flush_s: float = 3.0, notifier: SdNotifier | None = None,
                 clock: Callable[[], float] = time.monotonic,
                 exit: Callable[[int], None] = os._exit):
        self.timeout_s = max(0.0, float(timeout_s))
        self.on_stall = on_stall
        self.flush_s = float(flush_s)
        self.notifier = notifier
        self._clock = clock
        self._exit = exit
        self._beats = 0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        # Feed systemd often (a datagram a second is nothing): its deadline then falls at least
        # WatchdogSec - 1 s after a stall, later than ours, so our flush gets to run first.
        self.feed_s = min(1.0, notifier.watchdog_s / 4) if notifier is not None and notifier.watchdog_s > 0 else 0.0
        checks = [x for x in (self.timeout_s / 4, self.feed_s) if x > 0]
        self.poll_s = min([0.5] + checks)
        self.stalled = False

    @property
    def active(self) -> bool:
        return self.timeout_s > 0 or (self.notifier is not None and self.notifier.watchdog_s > 0)

    def beat(self) -> None:
        self._beats += 1

    def start(self) -> "Watchdog":
        if self.active and self._thread is None:
            self._thread = threading.Thread(target=self._run, name="watchdog", daemon=True)
            self._thread.start()
        return self

    def stop(self) -> None:
        """Disarm (a clean shutdown may legitimately stop beating)."""
        self._stop.set()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout=2.0)
        self._thread = None

    def _run(self) -> None:
        seen = self._beats
        last_change = self._clock()
        armed = seen > 0
        last_feed = 0.0
        feed_every = self.feed_s
        while not self._stop.wait(self.poll_s):
            now = self._clock()
            beats = self._beats
            if beats != seen:
                seen, last_change, armed = beats, now, True
                if feed_every > 0 and now - last_feed >= feed_every:
                    self.notifier.watchdog()
                    last_feed = now
                continue
            if armed and self.timeout_s > 0 and now - last_change > self.timeout_s:
                self._stall(now - last_change)
                return

    def _stall(self, for_s: float) -> None:
        self.stalled = True
        log.critical("frame loop stalled for %.1f s (limit %.1f s): flushing the recording and "
                     "exiting with status %d so the supervisor restarts it",
                     for_s, self.timeout_s, STALL_EXIT_CODE)
        if self.notifier is not None:
            # We are ending the process ourselves within flush_s: one last feed keeps systemd
            # from killing it mid-flush (its kill would cut the recording short).
            self.notifier.watchdog()
        if self.on_stall is not None:
            # on_stall may itself block on what stalled the loop; never let it keep us alive.
            t = threading.Thread(target=self._flush, name="watchdog-flush", daemon=True)
            t.start()
            t.join(self.flush_s)
            if t.is_alive():
                log.error("flushing the recording did not finish within %.1f s; exiting anyway", self.flush_s)
        if self.notifier is not None:
            self.notifier.status(f"stalled for {for_s:.1f} s; exiting")
        for h in logging.getLogger("installation").handlers:
            try:
                h.flush()
            except Exception:  # noqa: BLE001 - a broken handler must not block the exit
                pass
        self._exit(STALL_EXIT_CODE)

    def _flush(self) -> None:
        try:
            self.on_stall()
        except Exception:  # noqa: BLE001 - we are exiting anyway; say what went wrong
            log.exception("flushing the recording on stall failed")
