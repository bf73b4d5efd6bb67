"""sd_notify(3) with the standard library: tell systemd we are ready, alive, or stopping.

Under a `Type=notify` unit systemd sets $NOTIFY_SOCKET (a filesystem path, or an abstract
socket name written with a leading '@') and, with `WatchdogSec=`, $WATCHDOG_USEC. Outside
systemd every call is a cheap no-op, so the program never needs to know where it runs.
Send failures are counted, never raised: a supervisor hiccup must not stop the exhibit.
"""
from __future__ import annotations

import os
import socket
import threading
from typing import Mapping


class SdNotifier:
    def __init__(self, env: Mapping[str, str] | None = None):
        env = os.environ if env is None else env
        addr = env.get("NOTIFY_SOCKET", "")
        # '@name' is Linux's abstract namespace: the kernel wants a leading NUL byte instead.
        self._addr = ("\0" + addr[1:]) if addr.startswith("@") else addr
        self._sock: socket.socket | None = None
        self._lock = threading.Lock()
        self.sent = 0
        self.errors = 0
        usec = env.get("WATCHDOG_USEC", "")
        pid = env.get("WATCHDOG_PID", "")
        # WATCHDOG_PID names the process the watchdog is meant for; a child must not feed it.
        mine = not pid or (pid.isdigit() and int(pid) == os.getpid())
        self.watchdog_s = int(usec) / 1e6 if usec.isdigit() and int(usec) > 0 and mine else 0.0

    @property
    def enabled(self) -> bool:
        return bool(self._addr) and hasattr(socket, "AF_UNIX")

    def notify(self, state: str) -> bool:
        """Send one state string ("READY=1", "WATCHDOG=1", ...); True if it went out."""
        if not self.enabled:
            return False
        data = state.encode("utf-8", "replace")
        with self._lock:
            try:
                if self._sock is None:
                    self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
                    self._sock.setblocking(False)
                self._sock.sendto(data, self._addr)
            except OSError:
                self.errors += 1
                return False
            self.sent += 1
            return True

    def ready(self, status: str = "") -> bool:
        return self.notify("READY=1" + (f"\nSTATUS={_one_line(status)}" if status else ""))

    def watchdog(self) -> bool:
        return self.notify("WATCHDOG=1")

    def stopping(self) -> bool:
        return self.notify("STOPPING=1")

    def status(self, text: str) -> bool:
        return self.notify(f"STATUS={_one_line(text)}")

    def close(self) -> None:
        with self._lock:
            if self._sock is not None:
                self._sock.close()
                self._sock = None


def _one_line(text: str) -> str:
    # A newline would start a new KEY=VALUE assignment in the message.
    return " ".join(text.split())


def notify(state: str, env: Mapping[str, str] | None = None) -> bool:
    """One-shot sd_notify; False (and nothing sent) without $NOTIFY_SOCKET."""
    n = SdNotifier(env)
    try:
        return n.notify(state)
    finally:
        n.close()
