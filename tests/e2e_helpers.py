"""Running the real CLI from tests: free ports, summaries, a run in the background."""
from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
from pathlib import Path

from conftest import ROOT

CLI = [sys.executable, str(ROOT / "run_installation.py")]


def free_udp_port() -> int:
    """A UDP port free on every interface, IPv4 and IPv6 (the installation listens on "::").
    Bind your own sockets before asking: a socket bound to port 0 afterwards could be handed
    this one."""
    try:
        with socket.socket(socket.AF_INET6, socket.SOCK_DGRAM) as s:
            s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
            s.bind(("::", 0))
            return s.getsockname()[1]
    except OSError:         # no IPv6 here: the installation falls back to IPv4 as well
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.bind(("0.0.0.0", 0))
            return s.getsockname()[1]


def cli(args, env, timeout=240, check=True) -> subprocess.CompletedProcess:
    r = subprocess.run(CLI + list(args), capture_output=True, text=True, env=env, timeout=timeout)
    if check:
        assert r.returncode == 0, r.stderr[-3000:]
    return r


def start(args, env, own_group: bool = False) -> subprocess.Popen:
    """The CLI running (`own_group`: in a process group of its own, as a terminal's foreground
    job is, so a test can signal the group as Ctrl-C does)."""
    return subprocess.Popen(CLI + list(args), env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=own_group)


def wait_for_first_frame(proc: subprocess.Popen, timeout=180) -> list[str]:
    """Read the run's log until it says its first frame is out (numba may compile first)."""
    lines = []
    deadline = time.time() + timeout
    while time.time() < deadline:
        line = proc.stderr.readline()
        if not line:
            if proc.poll() is not None:
                raise AssertionError("the run ended before its first frame:\n" + "".join(lines))
            continue
        lines.append(line)
        if "first frame" in line:
            return lines
    raise AssertionError("no first frame in time:\n" + "".join(lines))


def finish(proc: subprocess.Popen, timeout=180) -> str:
    _, err = proc.communicate(timeout=timeout)
    assert proc.returncode == 0, err[-3000:]
    return err


def summary(path: Path) -> dict:
    return json.loads(Path(path).read_text())
