"""Operator control of a running installation over real UDP: scenes, parameters, status."""
from __future__ import annotations

import json
import subprocess
import socket
import time

import pytest
from pythonosc.osc_message import OscMessage
from pythonosc.osc_message_builder import OscMessageBuilder

from e2e_helpers import CLI, finish, free_udp_port, start, summary, wait_for_first_frame

pytestmark = pytest.mark.slow


def msg(addr, *args) -> bytes:
    b = OscMessageBuilder(address=addr)
    for a in args:
        b.add_arg(a)
    return b.build().dgram


def test_scene_param_and_status_over_udp(tmp_path, cli_env):
    status = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    status.bind(("127.0.0.1", 0))
    status.settimeout(0.2)
    status_port = status.getsockname()[1]
    port = free_udp_port()
    out = tmp_path / "s.json"
    proc = start(["--headless", "--no-audio", "--osc-port", str(port), "--duration", "5",
                  "--set", "sim.particles=10000", "--set", f"status.targets=['127.0.0.1:{status_port}']",
                  "--set", "status.interval_s=0.2", "--set", "crowd.max_participants=3",
                  "--set", "crowd.max_per_sender=2",
                  "--summary", str(out)], cli_env)
    try:
        wait_for_first_frame(proc)
        send = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        send.sendto(msg("/scene", "calm-sanctuary", 0.5), ("127.0.0.1", port))
        send.sendto(msg("/param/flow_strength", 0.9), ("127.0.0.1", port))
        send.sendto(msg("/scene", "no-such-scene"), ("127.0.0.1", port))
        for who in ("ana", "ben", "cy", "cy"):    # two per sender: cy's messages are refused
            send.sendto(msg(f"/crowd/{who}/motion", 0.5), ("127.0.0.1", port))
        time.sleep(0.1)
        phone2, phone3 = (socket.socket(socket.AF_INET, socket.SOCK_DGRAM) for _ in range(2))
        phone2.sendto(msg("/crowd/dee/motion", 0.5), ("127.0.0.1", port))     # the third and last place
        time.sleep(0.1)
        for _ in range(2):                                                   # full: refused
            phone3.sendto(msg("/crowd/eve/motion", 0.5), ("127.0.0.1", port))
        seen = {}
        deadline = time.time() + 20.0   # generous: a cold numba cache compiles on the way
        while time.time() < deadline:
            try:
                data, _ = status.recvfrom(65536)
            except socket.timeout:
                continue
            m = OscMessage(data)
            seen[m.address] = m.params
            if seen.get("/status/scene") == ["calm-sanctuary"]:
                break
        assert seen.get("/status/scene") == ["calm-sanctuary"], seen
        assert len(seen.get("/status/mood", [])) == 4
        assert "/status/fps" in seen and "/status/participants" in seen
    finally:
        finish(proc)
        status.close()
    s = summary(out)
    assert s["scene"] == "calm-sanctuary"
    assert s["operator_rejected"] == 1          # the unknown scene, counted, not fatal
    # what got through the listener but was refused after counts as rejected too
    kinds = {k: n for k, n in s["osc_rejected_by_kind"].items() if n}
    assert kinds == {"operator-refused": 1, "participant-cap": 2, "sender-cap": 2}, kinds
    assert s["osc_rejected"] == 5 and s["participants_peak"] == 3


def test_operator_from_a_non_allowed_host_is_rejected(tmp_path, cli_env):
    port = free_udp_port()
    out = tmp_path / "s.json"
    proc = start(["--headless", "--no-audio", "--osc-port", str(port), "--duration", "3",
                  "--set", "sim.particles=10000", "--set", "osc.host='127.0.0.1'",
                  "--set", "osc.operator_hosts=['127.0.0.1/32']", "--summary", str(out)], cli_env)
    try:
        wait_for_first_frame(proc)
        other = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        other.bind(("127.0.0.2", 0))
        other.sendto(msg("/scene", "surge"), ("127.0.0.1", port))
    finally:
        finish(proc)
    s = summary(out)
    assert s["scene"] == "living-mosaic"
    assert s["osc_rejected"] == 1 and s["osc_rejected_by_kind"].get("operator-denied") == 1


def test_operator_recording_writes_a_bare_name_into_the_sessions_folder(tmp_path, cli_env):
    port = free_udp_port()
    folder = tmp_path / "sessions"
    proc = start(["--headless", "--no-audio", "--osc-port", str(port), "--duration", "4",
                  "--set", "sim.particles=10000", "--set", f"session.folder='{folder}'"], cli_env)
    try:
        wait_for_first_frame(proc)
        send = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        send.sendto(msg("/scene", "surge", 0.0), ("127.0.0.1", port))
        send.sendto(msg("/master/brightness", 0.3), ("127.0.0.1", port))
        time.sleep(0.5)
        send.sendto(msg("/record/start", "../../etc/evil"), ("127.0.0.1", port))   # a path: refused
        send.sendto(msg("/record/start", "tonight"), ("127.0.0.1", port))
        time.sleep(0.5)
        send.sendto(msg("/crowd/ana/emotion", 0.5, 0.5), ("127.0.0.1", port))
        time.sleep(0.5)
        send.sendto(msg("/record/stop"), ("127.0.0.1", port))
    finally:
        finish(proc)
    files = sorted(p.name for p in folder.iterdir())
    assert files == ["tonight.jsonl"], files
    lines = (folder / "tonight.jsonl").read_text().splitlines()
    header = json.loads(lines[0])
    assert header["format"] == "living-mosaic-session"
    # started mid-run, its first events put the replay where the run was: its scene, the
    # operator's levels (the header keeps the start-up config later switches build on)
    assert header["start_tick"] > 0 and header["config"]["scene"]["name"] == "living-mosaic"
    state = [json.loads(x) for x in lines[1:5]]
    assert [(e["addr"], e["tick"]) for e in state] == [
        ("/scene", header["start_tick"]), ("/master/brightness", header["start_tick"]),
        ("/master/volume", header["start_tick"]), ("/blackout", header["start_tick"])]
    assert state[0]["args"] == ["surge", 0.0] and state[1]["args"] == [pytest.approx(0.3)]
    # ... and replays from its own first tick, not from the run's
    out = tmp_path / "replay.json"
    r = subprocess.run(CLI + ["replay", str(folder / "tonight.jsonl"), "--headless", "--no-audio",
                              "--summary", str(out)], env=cli_env, capture_output=True, text=True, timeout=240)
    assert r.returncode == 0, r.stderr[-2000:]
    replayed = summary(out)
    assert replayed["scene"] == "surge"
    assert replayed["ticks"] == json.loads(lines[-1])["ticks"] - header["start_tick"]
    assert any(json.loads(x).get("addr") == "/crowd/ana/emotion" for x in lines[1:])
    assert json.loads(lines[-1])["end"] is True
    assert not (tmp_path / "etc").exists()
