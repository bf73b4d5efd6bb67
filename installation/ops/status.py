"""Status over OSC: once a second the latest snapshot goes to every monitoring host.

The frame loop hands a snapshot dict to `publish()` (a one-slot mailbox: a reference
swap, no I/O, never blocks); this thread owns the UDP socket and sends the latest one.
Messages, one per datagram (what TouchOSC, TouchDesigner and oscdump handle best):

    /status/fps           f  frames per second now (over the last ~2 s, not the whole run)
    /status/participants  i  real participants now
    /status/mood          f f f f  valence arousal agreement energy
    /status/scene         s  scene name (the one fading in during a crossfade)
    /status/osc           i i  messages received, rejected (totals)
    /status/audio         i  audio underflows (total)
    /status/flash         i  frames the flash guard limited (total)

Snapshot keys (missing ones send 0 / ""): fps, participants, valence, arousal, agreement,
energy, scene, osc_received, osc_rejected, audio_underflows, flash_limited_frames.
"""
from __future__ import annotations

import logging
import math
import socket
import threading
from typing import Mapping

from pythonosc.osc_message_builder import OscMessageBuilder

from .logs import RateLimitedLog
from .settings import split_target

log = logging.getLogger(__name__)

_I32 = 2**31 - 1


def _f(snapshot: Mapping, key: str) -> float:
    v = snapshot.get(key, 0.0)
    try:
        v = float(v)
    except (TypeError, ValueError):
        return 0.0
    return v if math.isfinite(v) else 0.0


def _i(snapshot: Mapping, key: str) -> int:
    v = snapshot.get(key, 0)
    try:
        v = int(v)
    except (TypeError, ValueError, OverflowError):
        return 0
    return max(-_I32 - 1, min(_I32, v))


def _msg(addr: str, *args: tuple[str, object]) -> bytes:
    b = OscMessageBuilder(address=addr)
    for kind, value in args:
        b.add_arg(value, kind)
    return b.build().dgram


def build_messages(snapshot: Mapping) -> list[bytes]:
    """The datagrams for one snapshot (pure: tested without a socket)."""
    F, I, S = OscMessageBuilder.ARG_TYPE_FLOAT, OscMessageBuilder.ARG_TYPE_INT, OscMessageBuilder.ARG_TYPE_STRING
    return [
        _msg("/status/fps", (F, _f(snapshot, "fps"))),
        _msg("/status/participants", (I, _i(snapshot, "participants"))),
        _msg("/status/mood", (F, _f(snapshot, "valence")), (F, _f(snapshot, "arousal")),
             (F, _f(snapshot, "agreement")), (F, _f(snapshot, "energy"))),
        _msg("/status/scene", (S, str(snapshot.get("scene", "") or ""))),
        _msg("/status/osc", (I, _i(snapshot, "osc_received")), (I, _i(snapshot, "osc_rejected"))),
        _msg("/status/audio", (I, _i(snapshot, "audio_underflows"))),
        _msg("/status/flash", (I, _i(snapshot, "flash_limited_frames"))),
    ]


FAILURE_LOG_S = 60.0   # at most one line per target and interval while it fails


class StatusSender:
    def __init__(self, targets: tuple[str, ...], interval_s: float = 1.0):
        # Bad targets are caught when the settings load; this re-check keeps direct use honest.
        self.targets = tuple(split_target(t) for t in targets)
        self.interval_s = max(0.01, float(interval_s))
        self._latest: dict | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._sockets: dict[int, socket.socket] = {}
        self._addr_cache: dict[tuple[str, int], tuple] = {}
        # a target that stays unreachable fails every beat: one line a minute (with the count
        # held back) tells the operator without filling a day's log with 86,400 lines
        self._limited = RateLimitedLog(log, interval_s=FAILURE_LOG_S)
        self.sent = 0
        self.errors = 0

    @property
    def enabled(self) -> bool:
        return bool(self.targets)

    def publish(self, snapshot: Mapping) -> None:
        """Called by the frame loop; the thread sends the latest snapshot at its next beat."""
        self._latest = dict(snapshot)

    def start(self) -> "StatusSender":
        if self.enabled and self._thread is None:
            self._stop.clear()
            self._thread = threading.Thread(target=self._run, name="status-sender", daemon=True)
            self._thread.start()
        return self

    def close(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=2.0)
            self._thread = None
        for s in self._sockets.values():
            s.close()
        self._sockets.clear()

    def _run(self) -> None:
        while not self._stop.wait(self.interval_s):
            snapshot = self._latest
            if snapshot is not None:
                self.send_now(snapshot)

    def send_now(self, snapshot: Mapping) -> int:
        """Send one snapshot to every target; returns the datagrams sent (errors are counted)."""
        datagrams = build_messages(snapshot)
        n = 0
        for host, port in self.targets:
            try:
                family, addr = self._resolve(host, port)
                sock = self._socket(family)
                for d in datagrams:
                    sock.sendto(d, addr)
                    n += 1
            except OSError as exc:
                self.errors += 1
                # A host that left the network must not be looked up again every second forever
                # without a chance of coming back: forget it, retry next beat.
                self._addr_cache.pop((host, port), None)
                self._limited.warning(f"status:{host}:{port}", "status to %s:%d failed: %s", host, port,
                                      exc.strerror or exc)
        self.sent += n
        return n

    def _resolve(self, host: str, port: int):
        key = (host, port)
        hit = self._addr_cache.get(key)
        if hit is None:
            info = socket.getaddrinfo(host, port, type=socket.SOCK_DGRAM)[0]
            hit = (info[0], info[4])
            self._addr_cache[key] = hit
        return hit

    def _socket(self, family: int) -> socket.socket:
        s = self._sockets.get(family)
        if s is None:
            s = socket.socket(family, socket.SOCK_DGRAM)
            self._sockets[family] = s
        return s
