"""Status over OSC, received by a real UDP listener on loopback and parsed by python-osc."""
from __future__ import annotations

import socket
import logging
import time

import pytest
from pythonosc.osc_message import OscMessage

from installation.config import ConfigError
from installation.config.loader import build_section
from installation.ops.settings import StatusSettings
from installation.ops.status import StatusSender, build_messages

SNAPSHOT = {"fps": 59.5, "participants": 12, "valence": 0.25, "arousal": 0.5, "agreement": 0.75,
            "energy": 0.125, "scene": "calm-sanctuary", "osc_received": 1234, "osc_rejected": 7,
            "audio_underflows": 2, "flash_limited_frames": 3}
EXPECTED = {
    "/status/fps": [59.5],
    "/status/participants": [12],
    "/status/mood": [0.25, 0.5, 0.75, 0.125],
    "/status/scene": ["calm-sanctuary"],
    "/status/osc": [1234, 7],
    "/status/audio": [2],
    "/status/flash": [3],
}


@pytest.fixture
def listener():
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind(("127.0.0.1", 0))
    s.settimeout(3.0)
    yield s
    s.close()


def receive(sock, n: int) -> list[OscMessage]:
    return [OscMessage(sock.recv(65536)) for _ in range(n)]


def test_a_listener_receives_every_status_message(listener):
    port = listener.getsockname()[1]
    sender = StatusSender((f"127.0.0.1:{port}",), interval_s=0.05)
    try:
        sender.start()
        sender.publish(SNAPSHOT)
        got = {m.address: m.params for m in receive(listener, len(EXPECTED))}
    finally:
        sender.close()
    assert got == EXPECTED
    assert sender.sent >= len(EXPECTED) and sender.errors == 0


def test_the_latest_snapshot_wins_and_it_repeats_every_interval(listener):
    port = listener.getsockname()[1]
    sender = StatusSender((f"127.0.0.1:{port}",), interval_s=0.05)
    try:
        sender.start()
        for fps in (10.0, 20.0, 30.0):
            sender.publish({**SNAPSHOT, "fps": fps})
        t0 = time.monotonic()
        fps_seen = []
        while len(fps_seen) < 3:
            m = OscMessage(listener.recv(65536))
            if m.address == "/status/fps":
                fps_seen.append(m.params[0])
        elapsed = time.monotonic() - t0
    finally:
        sender.close()
    assert fps_seen == [30.0, 30.0, 30.0]
    assert elapsed >= 0.05  # paced by the interval, not sent in a burst


def test_bad_values_are_sent_as_safe_defaults():
    msgs = {m.address: m.params for m in map(OscMessage, build_messages(
        {"fps": float("nan"), "participants": 10**12, "scene": None, "valence": "x"}))}
    assert msgs["/status/fps"] == [0.0]
    assert msgs["/status/participants"] == [2**31 - 1]
    assert msgs["/status/scene"] == [""]
    assert msgs["/status/mood"] == [0.0, 0.0, 0.0, 0.0]
    assert msgs["/status/osc"] == [0, 0]


def test_a_failing_target_is_counted_and_does_not_stop_the_others(listener):
    port = listener.getsockname()[1]
    # Broadcast without SO_BROADCAST: sendto fails with EACCES on every platform we run on.
    sender = StatusSender(("255.255.255.255:9", f"127.0.0.1:{port}"), interval_s=0.05)
    lines = []
    handler = logging.Handler()
    handler.emit = lambda record: lines.append(record.getMessage())
    logging.getLogger("installation.ops.status").addHandler(handler)
    try:
        sender.start()
        sender.publish(SNAPSHOT)
        got = {m.address for m in receive(listener, len(EXPECTED))}
        deadline = time.monotonic() + 2
        while sender.errors < 5 and time.monotonic() < deadline:
            time.sleep(0.01)
    finally:
        sender.close()
        logging.getLogger("installation.ops.status").removeHandler(handler)
    assert got == set(EXPECTED) and sender.errors >= 5
    # every beat fails, but the log says so once (a day of it would be 86,400 lines)
    assert len([x for x in lines if "failed" in x]) == 1, lines


def test_no_targets_no_thread():
    sender = StatusSender(())
    sender.start()
    sender.publish(SNAPSHOT)
    assert not sender.enabled and sender._thread is None
    sender.close()


@pytest.mark.parametrize("target", ["localhost", "host:0", "host:99999", ":9000", "host:port"])
def test_bad_targets_are_config_errors(target):
    with pytest.raises(ConfigError, match="host:port"):
        build_section(StatusSettings, {"targets": [target]}, "cfg.toml [status]")


def test_ipv6_target_form_is_accepted():
    assert build_section(StatusSettings, {"targets": ["[::1]:9001"]}, "x").targets == ("[::1]:9001",)
