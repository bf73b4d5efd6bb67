"""The heartbeat watchdog: a stalled loop flushes, then exits non-zero; a live one is left alone."""
from __future__ import annotations

import os
import socket
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import pytest

from installation.ops.sdnotify import SdNotifier
from installation.ops.watchdog import STALL_EXIT_CODE, Watchdog

ROOT = Path(__file__).resolve().parents[1]

STALLING_LOOP = textwrap.dedent("""
    import sys, time, pathlib
    from installation.ops.watchdog import Watchdog
    flag, mode = pathlib.Path(sys.argv[1]), sys.argv[2]
    def flush():
        if mode == "hang":
            time.sleep(60)
        flag.write_text("flushed")
    w = Watchdog(0.3, flush, flush_s=0.3).start()
    for _ in range(15):          # a healthy loop for a while
        w.beat(); time.sleep(0.02)
    time.sleep(20)               # then it stalls
    print("the watchdog did not fire")
""")


def run_stalling(tmp_path: Path, mode: str) -> tuple[subprocess.CompletedProcess, float]:
    env = dict(os.environ, PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    t0 = time.monotonic()
    proc = subprocess.run([sys.executable, "-c", STALLING_LOOP, str(tmp_path / "flag"), mode],
                          capture_output=True, text=True, timeout=30, env=env)
    return proc, time.monotonic() - t0


def test_stall_flushes_then_exits_non_zero(tmp_path):
    proc, wall = run_stalling(tmp_path, "ok")
    assert proc.returncode == STALL_EXIT_CODE, proc.stderr
    assert (tmp_path / "flag").read_text() == "flushed"
    assert "frame loop stalled" in proc.stderr and "did not fire" not in proc.stdout
    assert wall < 15


def test_a_hanging_flush_does_not_keep_the_process_alive(tmp_path):
    proc, wall = run_stalling(tmp_path, "hang")
    assert proc.returncode == STALL_EXIT_CODE, proc.stderr
    assert "did not finish" in proc.stderr
    assert not (tmp_path / "flag").exists()
    assert wall < 15


class FakeExit:
    def __init__(self):
        self.codes: list[int] = []
        self.done = threading.Event()

    def __call__(self, code: int) -> None:
        self.codes.append(code)
        self.done.set()


def test_a_beating_loop_is_left_alone_and_start_up_is_not_a_stall():
    exit_ = FakeExit()
    w = Watchdog(0.3, exit=exit_).start()
    time.sleep(0.6)                      # no beat yet: start-up (compiling) is not judged
    t_end = time.monotonic() + 0.5
    while time.monotonic() < t_end:
        w.beat()
        time.sleep(0.01)
    w.stop()                             # a clean shutdown stops beating without a stall
    time.sleep(0.3)
    assert exit_.codes == [] and not w.stalled


def test_in_process_stall_calls_on_stall_once():
    exit_, calls = FakeExit(), []
    w = Watchdog(0.1, lambda: calls.append(1), exit=exit_).start()
    w.beat()
    assert exit_.done.wait(3.0)
    assert exit_.codes == [STALL_EXIT_CODE] and calls == [1] and w.stalled


def test_disabled_watchdog_starts_no_thread():
    w = Watchdog(0.0).start()
    assert not w.active and w._thread is None


@pytest.mark.skipif(not hasattr(socket, "AF_UNIX"), reason="sd_notify is a Unix protocol")
def test_systemd_is_fed_while_beats_advance_and_starved_when_they_stop(tmp_path):
    path = str(tmp_path / "notify")
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(path)
    sock.settimeout(0.5)
    notifier = SdNotifier({"NOTIFY_SOCKET": path, "WATCHDOG_USEC": "100000"})
    w = Watchdog(0.0, notifier=notifier).start()  # no self-exit: systemd's watchdog alone
    try:
        t_end = time.monotonic() + 0.5
        while time.monotonic() < t_end:
            w.beat()
            time.sleep(0.01)
        fed = 0
        try:
            while True:
                assert sock.recv(100) == b"WATCHDOG=1"
                fed += 1
        except socket.timeout:
            pass
        assert fed >= 8                  # every ~25 ms (a quarter of WatchdogSec) for 0.5 s
        time.sleep(0.3)                  # stalled: nothing more reaches systemd
        sock.settimeout(0.05)
        with pytest.raises(socket.timeout):
            sock.recv(100)
    finally:
        w.stop()
        notifier.close()
        sock.close()


@pytest.mark.skipif(not hasattr(socket, "AF_UNIX"), reason="sd_notify is a Unix protocol")
def test_a_stall_feeds_systemd_once_more_so_the_flush_is_not_killed(tmp_path):
    path = str(tmp_path / "notify")
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(path)
    sock.settimeout(2.0)
    notifier = SdNotifier({"NOTIFY_SOCKET": path, "WATCHDOG_USEC": "10000000"})
    exit_, order = FakeExit(), []
    w = Watchdog(0.1, lambda: order.append("flush"), notifier=notifier, exit=exit_).start()
    try:
        w.beat()
        assert exit_.done.wait(3.0)
        got = []
        sock.settimeout(0.2)
        try:
            while True:
                got.append(sock.recv(200).decode())
        except socket.timeout:
            pass
    finally:
        notifier.close()
        sock.close()
    assert got[-2:] == ["WATCHDOG=1", "STATUS=stalled for " + got[-1].split("stalled for ")[1]]
    assert got[-1].endswith("exiting") and order == ["flush"] and exit_.codes == [STALL_EXIT_CODE]
