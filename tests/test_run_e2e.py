"""The installation through its real CLI: headless, in a (dummy-driver) window, stopped by signals."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pytest

from conftest import ROOT
from e2e_helpers import wait_for_first_frame

pytestmark = pytest.mark.slow
CLI = [sys.executable, str(ROOT / "run_installation.py")]
CONTRACT_FIELDS = {"frames": int, "ticks": int, "wall_s": float, "fps_mean": float, "frame_ms_p50": float,
                   "frame_ms_p99": float, "particles": int, "participants_peak": int, "osc_received": int,
                   "osc_rejected": int, "audio_underflows": int, "flash_limited_frames": int,
                   "state_hash": str, "frame_hash": str, "scene": str, "audio_backend": str,
                   "audio_callbacks": int}


def run(args, env, timeout=180):
    r = subprocess.run(CLI + args, capture_output=True, text=True, env=env, timeout=timeout)
    assert r.returncode == 0, r.stderr[-3000:]
    return r


def summary_of(path):
    data = json.loads(path.read_text())
    for key, kind in CONTRACT_FIELDS.items():
        assert isinstance(data[key], kind if kind is not float else (int, float)), (key, data[key])
    return data


def test_headless_run_writes_the_contract_summary(tmp_path, cli_env):
    out = tmp_path / "s.json"
    run(["--headless", "--frames", "90", "--osc-port", "0", "--summary", str(out)], cli_env)
    s = summary_of(out)
    assert s["frames"] == 90 and s["ticks"] >= 90
    assert s["particles"] >= 50000
    assert s["scene"] == "living-mosaic"
    assert s["audio_backend"] == "offline"
    assert len(s["state_hash"]) == 64 and len(s["frame_hash"]) == 64
    assert s["fps_mean"] > 20


def test_windowed_run_on_the_dummy_video_driver(tmp_path, cli_env):
    out = tmp_path / "s.json"
    env = dict(cli_env, SDL_VIDEODRIVER="dummy")
    r = run(["--windowed", "--no-audio", "--frames", "30", "--osc-port", "0", "--size", "640x360",
             "--set", "window.hud=true", "--summary", str(out)], env)
    s = summary_of(out)
    assert s["frames"] == 30
    assert s["audio_backend"] == "none"
    assert "running headless" not in r.stderr


_SPACE_DRIVER = """
import sys, pygame
from installation.render import display as D
frames = {"n": 0}
poll = D.Display.poll
def keyed(self):
    frames["n"] += 1
    if frames["n"] == 5:            # a visitor at the kiosk keyboard: space, then "."
        for key in (pygame.K_SPACE, pygame.K_PERIOD):
            pygame.event.post(pygame.event.Event(pygame.KEYDOWN, key=key, mod=0, unicode="", scancode=0))
    return poll(self)
D.Display.poll = keyed
from installation.cli import main
sys.exit(main(sys.argv[1:]))
"""


def test_space_does_not_pause_a_live_show(tmp_path, cli_env):
    """Space and "." are a replay's transport. In a live run they froze the swarm (14 ticks in
    4,716 frames) and every phone's input went unseen until the next space."""
    out = tmp_path / "s.json"
    r = subprocess.run([sys.executable, "-c", _SPACE_DRIVER, "run", "--windowed", "--no-audio", "--frames", "120",
                        "--osc-port", "0", "--size", "320x180", "--set", "sim.particles=4000",
                        "--set", "window.quit_keys=[]", "--summary", str(out)],
                       capture_output=True, text=True, env=dict(cli_env, SDL_VIDEODRIVER="dummy"), timeout=180)
    assert r.returncode == 0, r.stderr[-3000:]
    s = summary_of(out)
    assert s["frames"] == 120 and s["ticks"] >= 100, s     # ticks follow the clock: never frozen


def test_no_display_is_one_line_and_carries_on(tmp_path, cli_env):
    env = {k: v for k, v in cli_env.items() if k not in ("SDL_VIDEODRIVER", "DISPLAY", "WAYLAND_DISPLAY")}
    if sys.platform != "linux":
        pytest.skip("the no-display path is detected from DISPLAY on Linux")
    out = tmp_path / "s.json"
    r = run(["--no-audio", "--frames", "5", "--osc-port", "0", "--summary", str(out)], env)
    assert "no display" in r.stderr and "running headless" in r.stderr
    assert summary_of(out)["frames"] == 5


def test_missing_display_index_is_exit_2(cli_env):
    r = subprocess.run(CLI + ["--no-audio", "--display", "7", "--frames", "2", "--osc-port", "0"],
                       capture_output=True, text=True, env=dict(cli_env, SDL_VIDEODRIVER="dummy"), timeout=120)
    assert r.returncode == 2
    assert "display 7 does not exist" in r.stderr and "Traceback" not in r.stderr


@pytest.mark.parametrize("threads", ["1", "2"])
def test_same_seed_same_state_whatever_the_thread_count(tmp_path, cli_env, threads):
    # one tick per frame (no catch-up), so the tick count is the frame count in every run
    args = ["--headless", "--no-audio", "--frames", "40", "--osc-port", "0", "--seed", "11",
            "--set", "window.max_catchup_ticks=1", "--set", "sim.particles=20000"]
    hashes = []
    for name in ("a", "b"):
        out = tmp_path / f"{name}.json"
        run(args + ["--summary", str(out)], dict(cli_env, NUMBA_NUM_THREADS=threads if name == "a" else "2"))
        hashes.append(summary_of(out)["state_hash"])
    assert hashes[0] == hashes[1]


def signalled(args, env, signals, wait=None, timeout=120):
    """Start `run ARGS`, wait (`wait(process)`, or 0.3 s: inside the start-up), send the signals
    0.1 s apart; the exit status and stderr."""
    p = subprocess.Popen(CLI + args, env=env, stderr=subprocess.PIPE, text=True)
    try:
        wait(p) if wait else time.sleep(0.3)
        for k, sig in enumerate(signals):
            if k:
                time.sleep(0.1)
            p.send_signal(sig)
        _, err = p.communicate(timeout=timeout)
    finally:
        if p.poll() is None:
            p.kill()
    return p.returncode, err


def recording_for(rec, seconds):
    """A wait: until the run has started its recording, then `seconds` more."""
    def wait(_process):
        deadline = time.time() + 120
        while time.time() < deadline and not (rec.exists() and rec.stat().st_size > 0):
            time.sleep(0.2)
        time.sleep(seconds)
    return wait


def test_sigterm_ends_cleanly_with_summary_and_complete_session(tmp_path, cli_env):
    out, rec = tmp_path / "s.json", tmp_path / "rec.jsonl"
    rc, err = signalled(["--headless", "--no-audio", "--osc-port", "0", "--record", str(rec), "--summary", str(out)],
                        cli_env, [signal.SIGTERM], recording_for(rec, 1.5), timeout=60)
    assert rc == 0, err[-2000:]
    s = summary_of(out)
    lines = rec.read_text().splitlines()
    assert json.loads(lines[0])["format"] == "living-mosaic-session"
    assert json.loads(lines[-1]) == {"end": True, "ticks": s["ticks"]}


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_a_stop_in_the_first_second_of_a_start_ends_as_cleanly(tmp_path, cli_env, sig):
    """Before the handlers moved to the CLI's first lines, a stop during the imports and the
    config load ended a run with exit 143 (SIGTERM) or 0 in silence (SIGINT), and neither
    the summary nor the recording's end was written."""
    out, rec = tmp_path / "s.json", tmp_path / "rec.jsonl"
    rc, err = signalled(["--headless", "--no-audio", "--osc-port", "0", "--record", str(rec), "--summary", str(out)],
                        cli_env, [sig])
    assert rc == 0, err[-2000:]
    s = summary_of(out)
    assert json.loads(rec.read_text().splitlines()[-1]) == {"end": True, "ticks": s["ticks"]}
    assert f"stopped by {sig.name}" in err


def test_a_second_ctrl_c_does_not_wait_for_the_start_up_and_never_cuts_a_clean_end(tmp_path, cli_env):
    """The first Ctrl-C asks for a clean end, which comes once the start-up is done (a cold
    numba cache: half a minute). A second one during the start-up stops at once. Once the
    show runs, a double tap is one stop: the clean end (summary, recording) is never cut."""
    big = ["--headless", "--no-audio", "--osc-port", "0", "--set", "sim.particles=1000000"]   # a start of seconds
    rc, err = signalled(big + ["--summary", str(tmp_path / "a.json")], cli_env, [signal.SIGINT, signal.SIGINT],
                        timeout=60)
    assert rc == 1 and "second Ctrl-C: nothing written" in err, err[-2000:]
    assert "Traceback" not in err and not (tmp_path / "a.json").exists()
    out, rec = tmp_path / "b.json", tmp_path / "b.jsonl"
    rc, err = signalled(SMALL + ["--osc-port", "0", "--record", str(rec), "--summary", str(out)], cli_env,
                        [signal.SIGINT, signal.SIGINT], recording_for(rec, 1.0), timeout=60)
    assert rc == 0, err[-2000:]
    assert json.loads(rec.read_text().splitlines()[-1]) == {"end": True, "ticks": summary_of(out)["ticks"]}


SMALL = ["--headless", "--no-audio", "--set", "sim.particles=4000", "--set", "render.width=320",
         "--set", "render.height=180"]


@pytest.mark.skipif(not hasattr(signal, "SIGHUP"), reason="no SIGHUP on this platform")
def test_sighup_ends_cleanly_as_sigterm_does(tmp_path, cli_env):
    """A technician's ssh session drops: the run gets SIGHUP. It used to die on the spot, with
    no end marker and no summary."""
    out, rec = tmp_path / "s.json", tmp_path / "rec.jsonl"
    rc, err = signalled(SMALL + ["--osc-port", "0", "--record", str(rec), "--summary", str(out)], cli_env,
                        [signal.SIGHUP], lambda p: (wait_for_first_frame(p), time.sleep(0.5)), timeout=60)
    assert rc == 0, err[-2000:]
    assert "stopped by SIGHUP" in err
    s = summary_of(out)
    lines = rec.read_text().splitlines()
    assert json.loads(lines[-1]) == {"end": True, "ticks": s["ticks"]}


def _file_size_limit(limit: int):
    def apply():     # in the child: a disk that takes no file larger than `limit` bytes
        import resource
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))
    return apply


@pytest.mark.skipif(sys.platform != "linux", reason="uses RLIMIT_FSIZE to make the disk 'full'")
def test_a_recording_the_disk_cannot_take_never_stops_the_show(tmp_path, cli_env):
    """`run --record` where the session header cannot be written (a full disk): it exited 2
    at start-up and left a 0-byte file, so under systemd's Restart=always the exhibit stayed
    dark and gained an empty file every 3 s. Now it runs, without a recording, says so once,
    counts it, and leaves no file behind."""
    rec, out = tmp_path / "night.jsonl", tmp_path / "s.json"
    args = SMALL + ["--frames", "30", "--osc-port", "0", "--record", str(rec), "--summary", str(out)]
    run(args, cli_env)                  # the kernels compiled and cached, with room on the disk
    rec.unlink()
    out.unlink()
    r = subprocess.run(CLI + args, capture_output=True, text=True, env=cli_env, timeout=180,
                       preexec_fn=_file_size_limit(4000))     # the header is ~8 kB, the summary ~1 kB
    assert r.returncode == 0, r.stderr[-3000:]
    assert "Traceback" not in r.stderr
    errors = [ln for ln in r.stderr.splitlines() if " ERROR " in ln]
    assert len(errors) == 1 and "recording paused" in errors[0] and str(rec) in errors[0], r.stderr[-3000:]
    assert not rec.exists() and sorted(p.name for p in tmp_path.iterdir()) == ["s.json"]
    s = summary_of(out)
    assert s["frames"] == 30
    assert s["recording"]["errors"] == 1 and s["recording"]["failed"] is True and s["recording"]["files"] == []


def test_a_port_in_use_names_it_as_an_address(cli_env):
    """The port-in-use line said `UDP :::9325`; an IPv6 address with a port is `[::]:9325`."""
    import socket
    try:
        holder = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
        holder.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
        holder.bind(("::", 0))
    except OSError:
        pytest.skip("no IPv6 on this machine: the listener binds IPv4 only")
    port = holder.getsockname()[1]
    try:
        r = subprocess.run(CLI + SMALL + ["--frames", "5", "--osc-port", str(port)],
                           capture_output=True, text=True, env=cli_env, timeout=120)
    finally:
        holder.close()
    assert r.returncode == 2, r.stderr[-2000:]
    last = r.stderr.strip().splitlines()[-1]
    assert f"UDP [::]:{port}" in last and ":::" not in last and "in use" in last, last


def test_a_display_that_is_not_up_is_said_not_drawn_to_unseen(tmp_path, cli_env):
    """DISPLAY set, no X server there (the desktop not up yet at boot): SDL would fall back to
    drawing offscreen, a window nobody sees for weeks. It says so and runs headless, or, with
    [window] require_display (a kiosk under systemd), stops with 2 so the unit tries again."""
    env = {k: v for k, v in cli_env.items() if k not in ("SDL_VIDEODRIVER", "WAYLAND_DISPLAY")}
    env["DISPLAY"] = ":77"
    out = tmp_path / "s.json"
    r = run(["--no-audio", "--frames", "5", "--osc-port", "0", "--summary", str(out)], env)
    assert "no display" in r.stderr and "running headless" in r.stderr, r.stderr[-2000:]
    assert summary_of(out)["frames"] == 5
    r = subprocess.run(CLI + ["--no-audio", "--frames", "5", "--osc-port", "0", "--set", "window.require_display=true"],
                       capture_output=True, text=True, env=env, timeout=120)
    assert r.returncode == 2 and "require_display" in r.stderr and "Traceback" not in r.stderr
