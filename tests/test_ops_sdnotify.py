"""sd_notify against a real AF_UNIX datagram socket, as systemd listens."""
from __future__ import annotations

import os
import socket
import sys

import pytest

from installation.ops.sdnotify import SdNotifier, notify

pytestmark = pytest.mark.skipif(not hasattr(socket, "AF_UNIX"), reason="sd_notify is a Unix protocol")


@pytest.fixture
def systemd_socket(tmp_path):
    path = str(tmp_path / "notify")
    s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    s.bind(path)
    s.settimeout(2.0)
    yield path, s
    s.close()


def test_ready_watchdog_status_stopping(systemd_socket):
    path, sock = systemd_socket
    n = SdNotifier({"NOTIFY_SOCKET": path})
    assert n.enabled
    assert n.ready("60000 particles\nscene living-mosaic")
    assert n.watchdog() and n.status("fps 60") and n.stopping()
    got = [sock.recv(4096).decode() for _ in range(4)]
    n.close()
    assert got == ["READY=1\nSTATUS=60000 particles scene living-mosaic", "WATCHDOG=1", "STATUS=fps 60",
                   "STOPPING=1"]
    assert n.sent == 4 and n.errors == 0


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="abstract sockets are Linux-only")
def test_abstract_socket_name():
    name = f"living-mosaic-test-{os.getpid()}"
    s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    s.bind("\0" + name)
    s.settimeout(2.0)
    try:
        assert notify("READY=1", {"NOTIFY_SOCKET": "@" + name})
        assert s.recv(100) == b"READY=1"
    finally:
        s.close()


def test_without_systemd_every_call_is_a_no_op():
    n = SdNotifier({})
    assert not n.enabled and n.watchdog_s == 0.0
    assert n.ready() is False and n.watchdog() is False and n.sent == 0 and n.errors == 0


def test_a_vanished_socket_is_counted_not_raised(tmp_path):
    n = SdNotifier({"NOTIFY_SOCKET": str(tmp_path / "gone")})
    assert n.ready() is False and n.errors == 1
    n.close()


def test_watchdog_interval_is_for_this_process_only():
    assert SdNotifier({"WATCHDOG_USEC": "10000000"}).watchdog_s == 10.0
    assert SdNotifier({"WATCHDOG_USEC": "10000000", "WATCHDOG_PID": str(os.getpid())}).watchdog_s == 10.0
    assert SdNotifier({"WATCHDOG_USEC": "10000000", "WATCHDOG_PID": "1"}).watchdog_s == 0.0
    assert SdNotifier({"WATCHDOG_USEC": "junk"}).watchdog_s == 0.0
