"""`--send`: the session's OSC goes out over real UDP with its recorded timing."""
from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
from pythonosc.osc_message import OscMessage

from installation.events import InputEvent, TickedEvent
from installation.session.errors import SessionError
from installation.session.reader import Session
from installation.session.send import encode_message, parse_target, send_session

# A separate process listens, so its timestamps are not delayed by the sender's GIL.
_LISTENER = r"""
import json, socket, sys, time
n = int(sys.argv[1])
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 20)
s.bind(("127.0.0.1", 0))
print(s.getsockname()[1], flush=True)
s.settimeout(20)
got = []
for _ in range(n):
    data, _ = s.recvfrom(65536)
    got.append((time.perf_counter(), data.hex()))
print(json.dumps(got), flush=True)
"""


def session_of(events: list[TickedEvent]) -> Session:
    header = {"format": "living-mosaic-session", "version": 1, "created": "", "seed": 1, "tick_hz": 60, "config": {}}
    return Session("mem", header, events, None, False)


def timed_events(seed: int, n: int) -> list[TickedEvent]:
    rng = np.random.default_rng(seed)
    t = 3.0                                   # the first event's t is the origin, whatever it is
    out = []
    for i in range(n):
        t += float(rng.uniform(0.004, 0.03))
        ev = InputEvent(f"/crowd/p{i % 7}/emotion", "ff",
                        (float(np.float32(rng.uniform(-1, 1))), float(np.float32(rng.random()))), "10.0.0.2:1", t)
        out.append(TickedEvent(int(t * 60), ev))
    return out


def listen(n: int):
    proc = subprocess.Popen([sys.executable, "-c", _LISTENER, str(n)], stdout=subprocess.PIPE, text=True)
    port = int(proc.stdout.readline())
    return proc, port


@pytest.mark.parametrize("speed", [1.0, 2.0])
def test_send_delivers_with_the_recorded_timing(speed):
    events = timed_events(1, 40)
    proc, port = listen(len(events))
    try:
        counts = send_session(session_of(events), "127.0.0.1", port, speed=speed)
        got = json.loads(proc.stdout.readline())
    finally:
        proc.wait(timeout=20)
    assert counts["sent"] == len(events) and counts["skipped"] == counts["errors"] == 0
    msgs = [OscMessage(bytes.fromhex(h)) for _, h in got]
    assert [(m.address, tuple(m.params)) for m in msgs] == [(te.event.addr, te.event.args) for te in events]
    arrival = np.array([t for t, _ in got]) - got[0][0]
    planned = (np.array([te.event.t for te in events]) - events[0].event.t) / speed
    err_ms = np.abs(arrival - planned) * 1000
    # Within a few ms, message by message. The arrival stamps come from a second process: on a
    # busy 2-core VM either process may now and then be woken a few ms late (once 5.5 ms in a
    # CI run), which says nothing of the sender's timing; so a single outlier may reach 20 ms,
    # while a sender that drifted, bunched its messages or slept coarsely fails the rest.
    p90 = np.percentile(err_ms, 90)
    assert np.median(err_ms) < 1.0 and p90 < 3.0 and err_ms.max() < 20.0, \
        f"timing error ms: median {np.median(err_ms):.3f}, p90 {p90:.3f}, max {err_ms.max():.3f}"
    assert abs(counts["duration_s"] - planned[-1]) < 0.02     # (a drift shows in the p90 above)


def test_events_that_cannot_be_encoded_are_counted():
    """... and those at an address no listener takes (the installation's own quiet hours); the
    schedule's switches are OSC a listener takes, and go."""
    events = [TickedEvent(0, InputEvent("/x", "b", (None,), "a:1", 0.0)),
              TickedEvent(0, InputEvent("/x", "f", ("not a number",), "a:1", 0.0)),
              TickedEvent(0, InputEvent("/x", "ff", (0.5,), "a:1", 0.0)),
              TickedEvent(0, InputEvent("/quiet", "f", (0.5,), "clock", 0.0)),
              TickedEvent(0, InputEvent("/scene", "sf", ("night", 2.0), "schedule", 0.0)),
              TickedEvent(1, InputEvent("/crowd/a/leave", "", (), "a:1", 0.01))]
    proc, port = listen(2)
    try:
        counts = send_session(session_of(events), "127.0.0.1", port)
        got = json.loads(proc.stdout.readline())
    finally:
        proc.wait(timeout=20)
    assert counts["sent"] == 2 and counts["skipped"] == 4
    assert [OscMessage(bytes.fromhex(h)).address for _, h in got] == ["/scene", "/crowd/a/leave"]


def test_encode_matches_python_osc_decoding():
    args = ("name", 3, 0.25, True, False, None, 12345678901)
    data = encode_message("/x", "sifTFNh", args)
    assert tuple(OscMessage(data).params) == args


@pytest.mark.parametrize("text,ok", [("127.0.0.1:9001", ("127.0.0.1", 9001)), ("[::1]:7000", ("::1", 7000)),
                                     ("host", None), ("h:0", None), ("h:70000", None), (":9000", None)])
def test_parse_target(text, ok):
    if ok:
        assert parse_target(text) == ok
    else:
        with pytest.raises(SessionError, match="HOST:PORT"):
            parse_target(text)


def test_bad_speed_and_host():
    with pytest.raises(SessionError, match="speed"):
        send_session(session_of([]), "127.0.0.1", 9, speed=0)
    with pytest.raises(SessionError, match="resolve"):
        send_session(session_of([]), "no-such-host.invalid", 9)


def test_each_recorded_sender_sends_from_its_own_socket():
    """Sent from one socket, a crowd looks like one phone inventing ids: the receiver's
    per-sender limits (crowd.max_per_sender, the rate) would refuse it. One socket per
    recorded sender, always the same one."""
    import socket as _socket
    rx = _socket.socket(_socket.AF_INET, _socket.SOCK_DGRAM)
    rx.setsockopt(_socket.SOL_SOCKET, _socket.SO_RCVBUF, 1 << 20)
    rx.bind(("127.0.0.1", 0))
    rx.settimeout(5)
    events = [TickedEvent(i, InputEvent(f"/crowd/p{i % 3}/motion", "f", (0.5,), f"10.0.0.{i % 3}:5000", i / 500))
              for i in range(30)]
    try:
        counts = send_session(session_of(events), "127.0.0.1", rx.getsockname()[1], speed=8.0)
        seen = {}
        for _ in range(30):
            data, (_, port) = rx.recvfrom(65536)
            seen.setdefault(OscMessage(data).address, set()).add(port)
    finally:
        rx.close()
    assert counts["sent"] == 30
    assert all(len(ports) == 1 for ports in seen.values()) and len(set().union(*seen.values())) == 3, seen
