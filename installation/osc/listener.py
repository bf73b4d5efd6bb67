"""The OSC listener: one thread, one plain blocking UDP socket, one bounded queue.

The thread only receives, parses, validates and enqueues; the frame loop calls `drain()`
once per tick and never waits. Nothing here touches simulation state, and the thread
touches nothing but its socket, its queue and its counters.

Why not python-osc's servers: `ThreadingOSCUDPServer` starts a thread per datagram and
loses half of a 20k msg/s stream, and the default `Dispatcher(strict_timing=True)` sleeps
in the server thread until a bundle's timetag: one packet stamped in the future freezes
input. Here a datagram goes through `packets.parse_packet` (python-osc's parser with
strict_timing=False semantics) and `Validator.check`, the same check replay can use.

Counters (read from any thread; a plain int read is atomic):
- `received`: messages that arrived, valid or not. A datagram that cannot be parsed,
  is too big or is refused before parsing (its sender is over its rate) counts as one.
- `rejected`, `rejected_by_kind`: those not accepted, by kind (validate.REJECT_KINDS).
  accepted = received - rejected.
"""
from __future__ import annotations

import collections
import errno
import logging
import os
import socket
import sys
import threading
import time
from typing import Callable

from ..events import InputEvent
from ..ops.logs import RateLimitedLog
from .packets import UnsupportedTypeTag, parse_packet
from .ratelimit import TokenBuckets
from .settings import OscSettings
from .validate import REJECT_KINDS, Validator

log = logging.getLogger(__name__)
_MAX_DATAGRAM = 65535
_POLL_S = 0.5   # the thread re-checks its stop flag at least this often
_SO_RCVBUFFORCE = 33   # Linux; Python's socket module does not name it
_NO_IPV6 = (errno.EAFNOSUPPORT, errno.EADDRNOTAVAIL, errno.EPROTONOSUPPORT)


class OscBindError(OSError):
    """The socket could not be opened or bound. str() is the whole story in one line (naming
    the address, and --osc-port where another port would help); `strerror` the reason alone."""

    def __init__(self, message: str, reason: str | None = None, err: int | None = None):
        super().__init__(err, reason or message)
        self.message = message

    def __str__(self) -> str:
        return self.message


class _Shown:
    """A refused message as its log line shows it (address and first arguments, repr: no
    control characters), formatted only when the rate-limited log writes the line."""
    __slots__ = ("address", "args")

    def __init__(self, address, args):
        self.address = address
        self.args = args

    def __str__(self) -> str:
        text = f"{self.address[:80]!r} {list(self.args[:4])!r}"
        return text if len(text) <= 200 else text[:197] + "..."


def _src(addr) -> str:
    host, port = addr[0], addr[1]
    if ":" in host:
        if host.startswith("::ffff:") and "." in host:  # IPv4 through a dual-stack socket
            host = host[7:]
        else:
            return f"[{host}]:{port}"
    return f"{host}:{port}"


class OscListener:
    def __init__(self, settings: OscSettings, base_dir: str, clock: Callable[[], float] = time.monotonic):
        self.settings = settings
        self.validator = Validator(settings, base_dir)  # ConfigError on bad alias files
        self._clock = clock
        self._t0 = clock()
        self._queue: collections.deque[InputEvent] = collections.deque()
        self._buckets = TokenBuckets(settings.rate_per_sender, settings.burst_per_sender, settings.senders_max)
        self._by_kind = {k: 0 for k in REJECT_KINDS}
        self._log = RateLimitedLog(log)
        self._stop = threading.Event()
        self._sock: socket.socket | None = None
        self._thread: threading.Thread | None = None
        self.received = 0
        self.rejected = 0
        self.packets = 0
        self.port: int | None = None
        self.rcvbuf_granted = 0
        self.error: str | None = None   # set if the thread died of something unexpected

    # ---- life cycle (main thread) ----
    def start(self) -> "OscListener":
        if self.running:
            return self
        s = self.settings
        host = s.host.strip().strip("[]") or "::"
        try:
            sock = self._bind(host, s.port)
        except OscBindError as exc:
            if host != "::" or exc.errno not in _NO_IPV6:
                raise
            # a machine with IPv6 switched off: IPv4 is all there is to hear
            log.info("OSC: no IPv6 on this machine (%s); listening on IPv4 only", exc.strerror)
            host = "0.0.0.0"
            sock = self._bind(host, s.port)
        sock.settimeout(_POLL_S)
        self._sock = sock
        self.port = sock.getsockname()[1]
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="osc-listener", daemon=True)
        self._thread.start()
        log.info("OSC: listening on UDP %s port %d%s (receive buffer: %d KiB asked, %d KiB granted)",
                 f"[{host}]" if ":" in host else host, self.port,
                 ", IPv4 and IPv6" if host == "::" else "",
                 s.rcvbuf_bytes // 1024, self.rcvbuf_granted // 1024)
        return self

    def _bind(self, host: str, port: int) -> socket.socket:
        """A UDP socket bound to host:port; "::" hears IPv4 and IPv6 (a phone or `oscsend
        localhost` may pick either loopback). OscBindError names the problem and the fix."""
        s = self.settings
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        where = f"UDP [{host}]:{port}" if ":" in host else f"UDP {host}:{port}"    # [::]:9000, not :::9000
        try:
            sock = socket.socket(family, socket.SOCK_DGRAM)
        except OSError as exc:
            why = exc.strerror or str(exc)
            raise OscBindError(f"cannot open an OSC socket for {where}: {why}", why, exc.errno) from None
        try:
            if family == socket.AF_INET6 and host == "::":
                sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)  # hear IPv4 phones too
            self.rcvbuf_granted = self._grow_buffer(sock, s.rcvbuf_bytes)
            sock.bind((host, port))
        except socket.gaierror:
            sock.close()
            why = f"'{host}' is not an address of this machine (set osc.host, e.g. 0.0.0.0 for all interfaces)"
            raise OscBindError(f"cannot listen for OSC on {where}: {why}", why) from None
        except OSError as exc:
            sock.close()
            hint = "; choose another port with --osc-port PORT"
            if exc.errno == errno.EADDRINUSE:
                why = "the port is in use (another copy running?)"
            elif exc.errno == errno.EACCES:
                why = "permission denied (ports below 1024 need privileges)"
            elif exc.errno == errno.EADDRNOTAVAIL:
                why, hint = f"'{host}' is not an address of this machine (set osc.host, e.g. 0.0.0.0)", ""
            else:
                why = exc.strerror or str(exc)
            raise OscBindError(f"cannot listen for OSC on {where}: {why}{hint}", why, exc.errno) from None
        return sock

    @staticmethod
    def _grow_buffer(sock: socket.socket, want: int) -> int:
        """Ask for `want` bytes of receive buffer; return what the kernel gives.

        Linux caps the request at net.core.rmem_max and reports twice the usable size
        (bookkeeping included); we report the usable size. Where the cap is too low and we
        may override it (root, CAP_NET_ADMIN), SO_RCVBUFFORCE does.
        """
        linux = sys.platform.startswith("linux")

        def granted() -> int:
            got = sock.getsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF)
            return got // 2 if linux else got
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, want)
        except OSError:
            pass
        got = granted()
        if got < want and linux:
            try:
                sock.setsockopt(socket.SOL_SOCKET, getattr(socket, "SO_RCVBUFFORCE", _SO_RCVBUFFORCE), want)
                got = granted()
            except OSError:
                pass
        if got < want:
            log.warning("OSC: the receive buffer is %d KiB, not the %d KiB asked; bursts may be lost "
                        "(raise the limit: sysctl -w net.core.rmem_max=%d)", got // 1024, want // 1024, want)
        return got

    def stop(self) -> None:
        self._stop.set()
        sock, thread = self._sock, self._thread
        if sock is not None and thread is not None and thread.is_alive():
            # Wake the blocking recv at once instead of waiting out the poll interval.
            try:
                host, port = sock.getsockname()[:2]
                family = sock.family
                if host in ("0.0.0.0", "::"):
                    host = "127.0.0.1" if family == socket.AF_INET else "::1"
                with socket.socket(family, socket.SOCK_DGRAM) as poke:
                    poke.sendto(b"", (host, port))
            except OSError:
                pass
            thread.join(timeout=2 * _POLL_S + 1.0)
        if sock is not None:
            sock.close()
        self._sock = None
        self._thread = None

    def __enter__(self) -> "OscListener":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    # ---- the frame loop's side ----
    def drain(self) -> list[InputEvent]:
        """Every event queued so far, oldest first; never blocks."""
        q = self._queue
        out = []
        pop = q.popleft
        for _ in range(len(q)):
            out.append(pop())
        return out

    @property
    def pending(self) -> int:
        return len(self._queue)

    @property
    def rejected_by_kind(self) -> dict[str, int]:
        return dict(self._by_kind)

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    @property
    def accepted(self) -> int:
        return self.received - self.rejected

    def kernel_drops(self) -> int | None:
        """Datagrams the kernel dropped for this socket (its buffer was full); Linux only."""
        sock = self._sock
        if sock is None:
            return None
        try:
            inode = os.fstat(sock.fileno()).st_ino
            table = "/proc/net/udp6" if sock.family == socket.AF_INET6 else "/proc/net/udp"
            with open(table) as fh:
                next(fh)
                for line in fh:
                    cols = line.split()
                    if len(cols) >= 13 and cols[9] == str(inode):
                        return int(cols[12])
        except (OSError, ValueError, StopIteration):
            return None
        return None

    # ---- the listener thread ----
    def _reject(self, kind: str, src: str, what: str) -> None:
        self.rejected += 1
        self._by_kind[kind] += 1
        self._log.warning(kind, "OSC rejected (%s) from %s: %s", kind, src, what)

    def _run(self) -> None:
        buf = bytearray(_MAX_DATAGRAM + 1)
        view = memoryview(buf)
        sock = self._sock
        try:
            while not self._stop.is_set():
                try:
                    n, addr = sock.recvfrom_into(buf)
                except socket.timeout:
                    continue
                except OSError as exc:
                    if self._stop.is_set():
                        break
                    # Windows reports an earlier ICMP "port unreachable" here; nothing is lost.
                    self._log.warning("socket", "OSC socket error (ignored): %s", exc)
                    continue
                if self._stop.is_set():
                    break
                try:
                    self._handle(view, n, addr)
                except Exception as exc:  # noqa: BLE001 - nothing may stop the listener
                    self.received += 1
                    self._reject("malformed", str(addr), f"unexpected {type(exc).__name__}")
        except Exception as exc:  # noqa: BLE001 - report, do not vanish silently
            self.error = f"{type(exc).__name__}: {exc}"
            log.error("OSC listener stopped: %s", self.error)

    def _handle(self, view: memoryview, n: int, addr) -> None:
        now = self._clock()
        src = _src(addr)
        self.packets += 1
        if n > self.settings.max_packet_bytes:
            self.received += 1
            self._reject("oversized", src, f"{n} bytes (osc.max_packet_bytes = {self.settings.max_packet_bytes})")
            return
        buckets = self._buckets
        # An empty bucket refuses the datagram before it is parsed: a flood costs the thread
        # as little as possible, so the other senders' datagrams keep being read in time.
        if not buckets.allows(src, now):
            self.received += 1
            self._reject("rate-limited", src, f"over {self.settings.rate_per_sender:g} messages/s")
            return
        data = bytes(view[:n])
        try:
            messages = parse_packet(data)
        except UnsupportedTypeTag as exc:
            self.received += 1
            self._reject("arg-type", src, str(exc))
            return
        except Exception as exc:  # noqa: BLE001 - python-osc raises more than ParseError
            self.received += 1
            self._reject("malformed", src, f"{type(exc).__name__} in a {n}-byte packet")
            return
        if not messages:
            self.received += 1
            self._reject("malformed", src, "an empty bundle")
            return
        t = now - self._t0
        check = self.validator.check
        q = self._queue
        qmax = self.settings.queue_max
        for address, args in messages:
            self.received += 1
            if not buckets.take(src, now):
                self._reject("rate-limited", src, f"over {self.settings.rate_per_sender:g} messages/s")
                continue
            ev = check(address, args, src, t)
            if type(ev) is str:
                self._reject(ev, src, _Shown(address, args))
            elif len(q) >= qmax:
                self._reject("queue-full", src, f"{qmax} events waiting (the frame loop is not draining)")
            else:
                q.append(ev)
