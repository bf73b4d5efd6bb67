"""`replay --send HOST:PORT`: re-send a session's OSC over UDP with its original timing.

Each event goes out at its recorded arrival time `t` (relative to the first event, divided by
`speed`). The wait is a coarse `sleep` to ~2 ms before the deadline and a spin for the rest,
so messages leave within a fraction of a millisecond of their schedule on an idle machine.
"""
from __future__ import annotations

import socket
import threading
import time
import zlib
from collections import Counter

from pythonosc.osc_message_builder import OscMessageBuilder

from ..osc.validate import Validator
from .errors import SessionError

_SPIN_S = 0.002          # sleep() can overshoot by ~1 ms; spin the last stretch
MAX_SOCKETS = 512        # sockets --send opens at most (one per recorded sender)


def encode_message(addr: str, types: str, args: tuple) -> bytes | None:
    """The OSC datagram for one recorded event, or None if it cannot be encoded."""
    b = OscMessageBuilder(address=addr)
    k = 0
    try:
        for t in types:
            if t in "[]I":
                continue            # arrays are flattened in events; python-osc drops Infinitum
            v = args[k]
            k += 1
            if t in "TF":
                b.add_arg(bool(v), "T" if v else "F")
            elif t == "N":
                b.add_arg(None, "N")
            elif t in "ih":
                b.add_arg(int(v), t)
            elif t in "fd":
                b.add_arg(float(v), t)
            elif t in "sS":
                b.add_arg(str(v), "s")
            elif t == "m" and len(v) == 4:
                b.add_arg(tuple(int(x) for x in v), "m")
            elif t == "b" and isinstance(v, (bytes, bytearray)):
                b.add_arg(bytes(v), "b")
            else:
                return None
        if k != len(args):
            return None
        return b.build().dgram
    except (ValueError, TypeError, IndexError, OverflowError, AttributeError):
        return None


def parse_target(text: str) -> tuple[str, int]:
    """'host:port' or '[v6]:port' -> (host, port); SessionError with a one-line reason."""
    host, sep, port = text.strip().rpartition(":")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    if not sep or not host or not port.isdigit() or not 1 <= int(port) <= 65535:
        raise SessionError(f"--send {text!r}: expected HOST:PORT, e.g. 127.0.0.1:9001")
    return host, int(port)


def send_session(session, host: str, port: int, speed: float = 1.0, *,
                 stop: threading.Event | None = None, clock=time.perf_counter) -> dict:
    """Send every event of `session` to host:port; returns counts and timing.

    {"sent", "skipped" (not encodable, or at an address no listener takes), "errors" (send failed), "late_ms_max", "late_ms_p50",
    "duration_s"}. `stop` ends early (Ctrl-C from the caller's thread).
    """
    if not speed > 0:
        raise SessionError(f"--speed {speed}: must be above 0")
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_DGRAM)
    except socket.gaierror as e:
        raise SessionError(f"--send {host}:{port}: cannot resolve the host: {e.strerror}") from None
    family, _, _, _, addr = infos[0]
    sent = errors = skipped = 0
    late = Lateness()
    # One socket per original sender, as each phone had its own: the receiver's per-sender
    # limits (rate, crowd.max_per_sender) and its sender-derived ids see the crowd as it was.
    # Beyond MAX_SOCKETS senders share them, each always the same one.
    socks: dict[str, socket.socket] = {}
    pool: list[socket.socket] = []

    def sock_for(src: str) -> socket.socket:
        s = socks.get(src)
        if s is None:
            if len(pool) < MAX_SOCKETS:
                s = socket.socket(family, socket.SOCK_DGRAM)
                pool.append(s)
            else:
                s = pool[zlib.crc32(src.encode("utf-8", "replace")) % MAX_SOCKETS]
            socks[src] = s
        return s
    start = t_first = None
    duration = 0.0
    try:
        # each message is read and encoded before its wait: the reading overlaps the waiting
        for te in session.events:
            ev = te.event
            # an address no listener takes (the installation's own quiet hours) counts as skipped
            data = None if Validator.route(ev.addr) is None else encode_message(ev.addr, ev.types, tuple(ev.args))
            if data is None:
                skipped += 1
                continue
            if start is None:
                t_first, start = ev.t, clock()
            due = start + (ev.t - t_first) / speed
            while True:
                left = due - clock()
                if left <= 0:
                    break
                if stop is not None and stop.is_set():
                    break
                if left > _SPIN_S:
                    time.sleep(min(left - _SPIN_S, 0.1))
                else:
                    time.sleep(0)       # spin, but let other threads of the replay have the GIL
            if stop is not None and stop.is_set():
                break
            try:
                sock_for(ev.src).sendto(data, addr)
                sent += 1
            except OSError:
                errors += 1         # e.g. ICMP port unreachable from a previous datagram
            late.add(clock() - due)
        duration = clock() - start if start is not None else 0.0
    finally:
        for s in pool:
            s.close()
    return {"sent": sent, "skipped": skipped, "errors": errors,
            "late_ms_max": late.max_ms(), "late_ms_p50": late.median_ms(),
            "duration_s": round(duration, 4)}


class Lateness:
    """How late the messages left: a count per microsecond of delay (per millisecond past
    10 ms) rather than a list, since a day's session sends tens of millions."""

    def __init__(self):
        self._counts: Counter[int] = Counter()
        self._n = 0
        self._max = 0.0

    def add(self, seconds: float) -> None:
        us = round(seconds * 1e6)
        self._counts[us if abs(us) < 10_000 else round(us, -3)] += 1
        self._max = seconds if not self._n else max(self._max, seconds)
        self._n += 1

    def max_ms(self) -> float:
        return round(1000 * self._max, 3)

    def median_ms(self) -> float:
        """The upper median, as late[len(late) // 2] of the sorted list was."""
        seen = 0
        for us in sorted(self._counts):
            seen += self._counts[us]
            if seen > self._n // 2:
                return us / 1000
        return 0.0

