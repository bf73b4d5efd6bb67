"""Record a crowd-driven run over real UDP, replay it exactly, export, analyse — through the CLI."""
from __future__ import annotations

import json
import re
import shutil
import subprocess

import pytest

from e2e_helpers import cli, finish, free_udp_port, start, summary, wait_for_first_frame
from installation.config.model import DEFAULT_CONFIG

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def recorded(tmp_path_factory, request):
    """A headless run of ~3 s, driven by the `crowd` command over real UDP, recorded."""
    from conftest import ROOT
    import os
    env = dict(os.environ, PYTHONPATH=str(ROOT), SDL_VIDEODRIVER="dummy")
    tmp = tmp_path_factory.mktemp("recorded")
    port = free_udp_port()
    rec, out = tmp / "night.jsonl", tmp / "live.json"
    proc = start(["--headless", "--no-audio", "--osc-port", str(port), "--duration", "4",
                  "--set", "sim.particles=20000", "--set", "render.width=640", "--set", "render.height=360",
                  "--record", str(rec), "--summary", str(out)], env)
    wait_for_first_frame(proc)
    crowd = cli(["crowd", "--to", f"127.0.0.1:{port}", "--participants", "6", "--duration", "2",
                 "--mood", "joyful", "--seed", "3"], env)
    finish(proc)
    return env, tmp, rec, summary(out), crowd.stdout


def test_crowd_drives_the_run(recorded):
    _, _, rec, live, crowd_out = recorded
    assert "sent" in crowd_out
    assert live["participants_peak"] == 6
    assert live["osc_received"] > 20 and live["osc_rejected"] == 0
    lines = rec.read_text().splitlines()
    header = json.loads(lines[0])
    assert header["format"] == "living-mosaic-session" and header["config"]["sim"]["particles"] == 20000
    events = [json.loads(x) for x in lines[1:-1]]
    assert len(events) > 20 and all(e["addr"].startswith("/crowd/") for e in events)
    assert json.loads(lines[-1]) == {"end": True, "ticks": live["ticks"]}


def test_replay_gives_the_recorded_state_hash_in_fresh_processes(recorded):
    env, tmp, rec, live, _ = recorded
    hashes = []
    for i in range(2):
        out = tmp / f"replay{i}.json"
        cli(["replay", str(rec), "--headless", "--no-audio", "--summary", str(out)], env)
        s = summary(out)
        assert s["ticks"] == live["ticks"]
        hashes.append((s["state_hash"], s["frame_hash"]))
    assert hashes[0][0] == live["state_hash"]
    assert hashes[0] == hashes[1]


def test_truncated_session_replays_up_to_its_last_whole_line(recorded):
    env, tmp, rec, live, _ = recorded
    data = rec.read_bytes()
    cut = tmp / "cut.jsonl"
    cut.write_bytes(data[: int(len(data) * 0.7)])
    out = tmp / "cut.json"
    r = cli(["replay", str(cut), "--headless", "--no-audio", "--summary", str(out)], env)
    s = summary(out)
    assert 0 < s["ticks"] < live["ticks"]
    assert "end marker" in r.stderr


def test_bad_line_names_its_line_number_exit_2(recorded):
    env, tmp, rec, _, _ = recorded
    lines = rec.read_text().splitlines()
    lines[3] = '{"tick": "soon", "addr": 5}'
    bad = tmp / "bad.jsonl"
    bad.write_text("\n".join(lines) + "\n")
    r = cli(["replay", str(bad), "--headless"], env, check=False)
    assert r.returncode == 2, r.stderr
    assert "line 4" in r.stderr and "Traceback" not in r.stderr


def test_export_mp4_matches_the_session_and_carries_audio(recorded):
    env, tmp, rec, live, _ = recorded
    from installation.session.export import ffmpeg_exe
    video = tmp / "exports" / "tonight" / "out.mp4"      # folders made first, as --record's are
    cli(["replay", str(rec), "--export", str(video), "--size", "320x180"], env, timeout=600)
    r = subprocess.run([ffmpeg_exe(), "-hide_banner", "-i", str(video), "-map", "0:v:0", "-f", "null", "-"],
                       capture_output=True, text=True)
    frames = [int(line.split("frame=")[1].split()[0]) for line in r.stderr.splitlines() if "frame=" in line]
    assert frames and frames[-1] == live["ticks"]
    probe = subprocess.run([ffmpeg_exe(), "-hide_banner", "-i", str(video)], capture_output=True, text=True).stderr
    assert "Audio:" in probe and "Video: h264" in probe
    dur = probe.split("Duration: ")[1].split(",")[0]
    h, m, s = dur.split(":")
    assert abs(float(h) * 3600 + float(m) * 60 + float(s) - live["ticks"] / 60) < 0.1


def test_ctrl_c_ends_an_export_with_the_frames_so_far(recorded):
    """The operator stops a long export: the mp4 holds the frames exported so far, and the log's
    ratio is theirs (it once divided the whole session's length by the time spent)."""
    import re
    import signal
    import time
    env, tmp, rec, _, _ = recorded
    from installation.session.export import ffmpeg_exe
    lines = rec.read_text().splitlines()
    long_session = tmp / "long.jsonl"          # the same night, its end marker an hour later
    long_session.write_text("\n".join(lines[:-1] + [json.dumps({"end": True, "ticks": 216000})]) + "\n")
    video = tmp / "stopped.mp4"
    proc = start(["replay", str(long_session), "--export", str(video), "--size", "320x180"], env)
    deadline = time.time() + 300
    while time.time() < deadline:
        line = proc.stderr.readline()
        m = re.search(r" (\d+)/216000 frames", line)
        if m and int(m.group(1)) >= 60:
            break
        assert line, "the export ended before it was stopped"
    proc.send_signal(signal.SIGINT)
    rest = proc.communicate(timeout=120)[1]
    assert proc.returncode == 1, rest[-2000:]       # stopped before its end: not done
    assert "export stopped by SIGINT at tick " in rest
    m = re.search(r"exported (\d+) frames to .* in ([\d.]+) s \(([\d.]+)x real time\)", rest)
    assert m, rest[-2000:]
    frames, wall, ratio = int(m.group(1)), float(m.group(2)), float(m.group(3))
    assert 60 <= frames < 216000
    assert abs(ratio - frames / 60 / wall) <= 0.02 + 0.1 * ratio    # the log rounds wall to 0.1 s
    r = subprocess.run([ffmpeg_exe(), "-hide_banner", "-i", str(video), "-map", "0:v:0", "-f", "null", "-"],
                       capture_output=True, text=True)
    decoded = [int(x.split("frame=")[1].split()[0]) for x in r.stderr.splitlines() if "frame=" in x]
    assert decoded and decoded[-1] == frames


def test_an_encoder_that_dies_mid_export_is_a_one_line_error(recorded):
    """ffmpeg gives up after a few frames: the frames drawn on the export's worker thread go
    nowhere, the run stops at once with ffmpeg's own last words and exit 2, and hangs on
    nothing (the worker may be waiting on the dead encoder's pipe)."""
    import os
    env, tmp, rec, _, _ = recorded
    fake = tmp / "dying-ffmpeg"
    fake.write_text("#!/bin/sh\nhead -c 600000 > /dev/null\necho 'encoder gave up: simulated' >&2\nexit 1\n")
    fake.chmod(0o755)
    r = cli(["replay", str(rec), "--export", str(tmp / "dead.mp4"), "--size", "320x180"],
            dict(env, IMAGEIO_FFMPEG_EXE=str(fake)), timeout=180, check=False)
    assert r.returncode == 2, r.stderr[-2000:]
    last = r.stderr.strip().splitlines()[-1]
    assert last.startswith("error: ") and "encoder gave up: simulated" in last, r.stderr[-2000:]
    assert "Traceback" not in r.stderr
    assert not os.path.exists(tmp / "dead.mp4")


def test_wav_and_analyze(recorded):
    env, tmp, rec, live, _ = recorded
    import wave
    wav = tmp / "a.wav"
    cli(["replay", str(rec), "--headless", "--wav", str(wav)], env)
    with wave.open(str(wav)) as w:
        assert w.getnchannels() == 2 and abs(w.getnframes() - live["ticks"] * w.getframerate() // 60) <= 1
    out = tmp / "analysis"
    cli(["analyze", str(rec), "--out", str(out)], env, timeout=600)
    for name in ("mood.png", "crowd.png", "touch_map.png", "moments.png", "summary.json", "report.md"):
        assert (out / name).stat().st_size > 0, name
    report = (out / "report.md").read_text()
    assert "mood.png" in report


def test_a_venue_scene_replays_exactly_after_its_folder_is_gone(tmp_path):
    """A venue keeps its own scenes beside its config, and its schedule switches to one. The
    session carries the scenes it could switch to, so the replay at the desk (where that
    folder is not) switches to the same scene and gives the recording's state_hash."""
    import os
    import shutil
    from conftest import ROOT
    env = dict(os.environ, PYTHONPATH=str(ROOT), SDL_VIDEODRIVER="dummy")
    venue = tmp_path / "venue"
    (venue / "our-scenes").mkdir(parents=True)
    (venue / "our-scenes" / "harbour.toml").write_text(
        '[sim]\nflow_strength = 2.5\nalignment = 0.9\n[render]\npalette = ["#0b3954", "#bfd7ea", "#ff5a5f"]\n')
    cfg = venue / "venue.toml"
    cfg.write_text('[scene]\nname = ""\nfolder = "our-scenes"\ncrossfade_s = 0.5\n'
                   '[schedule]\nentries = ["00:00=harbour"]\ncrossfade_s = 0.5\n'
                   '[sim]\nparticles = 4000\n[render]\nwidth = 320\nheight = 180\n')
    rec, live = tmp_path / "venue.jsonl", tmp_path / "live.json"
    cli(["run", "--config", str(cfg), "--headless", "--no-audio", "--frames", "90",
         "--osc-port", str(free_udp_port()), "--record", str(rec), "--summary", str(live)], env)
    header = json.loads(rec.read_text().splitlines()[0])
    assert header["scenes"]["harbour"]["sim"]["flow_strength"] == 2.5
    switch = [json.loads(x) for x in rec.read_text().splitlines()[1:] if json.loads(x).get("addr") == "/scene"]
    assert switch[0]["args"] == ["harbour", 0.0]     # the slot in force at start: no fade into it
    shutil.rmtree(venue)                    # the desk has the session file only
    out = tmp_path / "replay.json"
    r = cli(["replay", str(rec), "--headless", "--no-audio", "--summary", str(out)], env)
    assert "no file" not in r.stderr and "harbour" in r.stderr
    again, first = summary(out), summary(live)
    assert again["scene"] == first["scene"] == "harbour"
    assert again["state_hash"] == first["state_hash"]


def test_record_never_overwrites_last_nights_show(tmp_path):
    """The same `--record PATH` twice (a service restarted with its command line): the first
    recording stays whole and the second goes beside it, where the log says; a rotated
    part under the name counts as taken too."""
    import os
    from conftest import ROOT
    from installation.session.format import free_path
    env = dict(os.environ, PYTHONPATH=str(ROOT), SDL_VIDEODRIVER="dummy")
    rec = tmp_path / "show.jsonl"
    args = ["run", "--headless", "--no-audio", "--frames", "5", "--osc-port", str(free_udp_port()),
            "--set", "sim.particles=3000", "--set", "render.width=320", "--set", "render.height=180",
            "--record", str(rec)]
    cli(args, env)
    first = rec.read_bytes()
    r = cli(args, env)
    assert rec.read_bytes() == first
    second = tmp_path / "show-2.jsonl"
    assert f"recording to {second} instead" in r.stderr
    assert json.loads(second.read_text().splitlines()[-1])["end"] is True
    (tmp_path / "show-3.001.jsonl").write_text("")
    assert free_path(rec) == tmp_path / "show-4.jsonl"
    r = cli(args[:-1] + [str(tmp_path)], env, check=False)      # a folder is not a file name
    assert r.returncode == 2 and "--record" in r.stderr and "is a folder" in r.stderr, r.stderr


def test_outputs_and_hosts_a_command_cannot_use_fail_first_in_one_line(recorded, tmp_path):
    """Refused before any work: an hour's analysis or run must not end in a traceback over a
    path or a host it could have checked at the start."""
    env, _, rec, _, _ = recorded
    a_file, a_folder = tmp_path / "a.wav", tmp_path / "folder"
    a_file.write_text("x")
    a_folder.mkdir()
    venue = tmp_path / "venue"
    shutil.copytree(DEFAULT_CONFIG.parent, venue)
    cases = [
        (["analyze", str(rec), "--out", str(a_file)], "--out"),
        (["run", "--headless", "--no-audio", "--frames", "600", "--summary", str(a_folder)], "--summary"),
        (["run", "--headless", "--no-audio", "--frames", "600", "--summary", "/proc/x.json"], "cannot write into /proc"),
        (["replay", str(rec), "--headless", "--summary", str(a_folder)], "--summary"),
        (["replay", str(rec), "--export", str(a_folder)], "--export"),
        (["replay", str(rec), "--export", str(tmp_path / "night.avi")], "name it .mp4"),
        (["replay", str(rec), "--send", "nosuchhost.invalid:9000"], "--send"),
        (["crowd", "--to", "nosuchhost.invalid:9000", "--duration", "1"], "cannot resolve"),
        # an output that is the input, or another output: the session or the recording would be lost
        (["replay", str(rec), "--headless", "--no-audio", "--wav", str(rec)], "same file as SESSION"),
        (["replay", str(rec), "--headless", "--summary", str(a_file), "--wav", str(a_file)], "same file as --summary"),
        (["run", "--headless", "--no-audio", "--frames", "600", "--record", str(tmp_path / "x.jsonl"),
          "--summary", str(tmp_path / "x.jsonl")], "same file as --record"),
        (["replay", str(rec), "--write-oscdump", str(tmp_path / "o.txt"), "--export", str(tmp_path / "o.mp4")],
         "drop --export"),
        (["analyze", str(a_file), "--out", str(tmp_path / "never-made")], "a.wav"),
        # a config, scene or alias file written over with JSON: the next start fails on it (the
        # start scene is read without being named on the command line). A copy of the shipped
        # folder: were the check broken, the repository's files must not be the ones lost.
        (["run", "--config", str(venue / "default.toml"), "--headless", "--no-audio", "--frames", "600",
          "--summary", str(venue / "scenes" / "living-mosaic.toml")], "is a TOML file"),
        (["run", "--config", str(venue / "default.toml"), "--headless", "--no-audio", "--frames", "600",
          "--record", str(venue / "aliases" / "zigsim.toml")], "is a TOML file"),
        (["replay", str(rec), "--headless", "--summary", str(venue / "default.toml")], "is a TOML file"),
    ]
    shipped = {p: p.read_bytes() for p in venue.rglob("*.toml")}
    session_before = rec.read_bytes()
    for args, needle in cases:
        r = cli(args, env, check=False, timeout=120)
        lines = [line for line in r.stderr.splitlines() if line.strip() and "INFO" not in line]
        assert r.returncode == 2 and len(lines) == 1 and needle in lines[0], (args, r.stderr[-2000:])
        assert "Traceback" not in r.stderr
    assert not (tmp_path / "folder.tmp").exists()
    assert rec.read_bytes() == session_before and not (tmp_path / "never-made").exists()
    assert {p: p.read_bytes() for p in shipped} == shipped


def _harbour_session(tmp_path, folder):
    """A short headless recording whose schedule switches to the venue scene 'harbour' (in
    `folder`) at once: (env, the session, the live summary's path)."""
    import os
    from conftest import ROOT
    env = dict(os.environ, PYTHONPATH=str(ROOT), SDL_VIDEODRIVER="dummy")
    folder.mkdir()
    (folder / "harbour.toml").write_text("[sim]\nflow_strength = 2.5\n")
    cfg = tmp_path / "venue.toml"
    cfg.write_text(f'[scene]\nname = ""\nfolder = "{folder}"\n[schedule]\nentries = ["00:00=harbour"]\n'
                   '[sim]\nparticles = 3000\n[render]\nwidth = 320\nheight = 180\n')
    rec, live = tmp_path / "old.jsonl", tmp_path / "live.json"
    r = cli(["run", "--config", str(cfg), "--headless", "--no-audio", "--frames", "60",
             "--osc-port", str(free_udp_port()), "--record", str(rec), "--summary", str(live)], env)
    # the log says where the recording went and that it is whole, as /record/start's does
    assert f"recording to {rec} (--record)" in r.stderr and f"recording {rec} closed" in r.stderr, r.stderr[-2000:]
    return env, rec, live


def test_a_session_without_recorded_scenes_switches_in_its_recorded_folder(tmp_path):
    """Sessions written before headers carried the scenes: replay reads the scenes folder the
    recorded config names (here an absolute venue folder), as those versions did."""
    env, rec, live = _harbour_session(tmp_path, tmp_path / "venue-scenes")
    lines = rec.read_text().splitlines()
    header = json.loads(lines[0])
    del header["scenes"]
    rec.write_text("\n".join([json.dumps(header)] + lines[1:]) + "\n")
    out = tmp_path / "replay.json"
    cli(["replay", str(rec), "--headless", "--no-audio", "--summary", str(out)], env)
    assert summary(out)["scene"] == "harbour"
    assert summary(out)["state_hash"] == summary(live)["state_hash"]


def test_a_session_recorded_before_a_check_was_added_replays_as_recorded(tmp_path):
    """Checks of loaded settings grow from version to version (pitch ranges whose FM partial
    aliases, key names a window cannot read). A session recorded before one of them ran with
    those values: its replay warns, runs them, switches to its recorded scenes as the live run
    did, and ends on the recording's state; the desk's window falls back to the default keys."""
    env, rec, live = _harbour_session(tmp_path, tmp_path / "scenes")
    lines = rec.read_text().splitlines()
    header = json.loads(lines[0])
    # what older versions let through: this version refuses each of them in a new config
    header["config"]["audio"].update(root_hz=300.0, octaves=5.0)
    header["config"]["window"]["hud_key"] = "not a key"
    header["scenes"]["harbour"]["audio"] = {"octaves": 5.0}
    lines_of_events = lines[1:]
    rec.write_text("\n".join([json.dumps(header)] + lines_of_events) + "\n")
    from installation.config import ConfigError, load_config
    with pytest.raises(ConfigError, match="root_hz"):
        load_config(env={}, sets=["audio.root_hz=300", "audio.octaves=5"])
    for args in (["--headless"], ["--speed", "8"]):      # a window too: the desk's keys
        out = tmp_path / "replay.json"
        r = cli(["replay", str(rec), *args, "--no-audio", "--summary", str(out)], env)
        # each problem said once (the scenes checked over the config repeat the config's)
        assert r.stderr.count("root_hz = 300 with octaves = 5") == 1, r.stderr[-3000:]
        assert "replayed as recorded" in r.stderr
        assert r.stderr.count("'not a key'") == 1 and "hud_key 'h'" in r.stderr
        s = summary(out)
        assert s["scene"] == "harbour" and s["state_hash"] == summary(live)["state_hash"]
    # what --set changes now is checked as a new config is, and its own errors blame it, not
    # the recording: one line, exit 2
    for bad, said in ((["audio.samplerate=44100"], "44100"), (["sim.particles=-1"], "particles = -1"),
                      (["sim.partcles=3"], "partcles")):
        r = cli(["replay", str(rec), "--headless", "--no-audio", "--set", *bad], env, check=False)
        lines = [line for line in r.stderr.splitlines() if line.startswith("error")]
        assert r.returncode == 2 and len(lines) == 1 and said in lines[0], r.stderr[-2000:]
        assert "--set" in lines[0] and "does not accept" not in lines[0], lines[0]
    # a session recorded before headers carried the scenes switches to its folder's, built
    # over the recorded config: an older version's scene file that aliases there too
    del header["scenes"]
    (tmp_path / "scenes" / "harbour.toml").write_text("[sim]\nflow_strength = 2.5\n[audio]\noctaves = 5.0\n")
    rec.write_text("\n".join([json.dumps(header)] + lines_of_events) + "\n")
    out = tmp_path / "older.json"
    r = cli(["replay", str(rec), "--headless", "--no-audio", "--summary", str(out)], env)
    assert summary(out)["scene"] == "harbour" and summary(out)["state_hash"] == summary(live)["state_hash"]


def test_an_oscdump_of_a_crowd_replays_every_participant_and_leaves_out_the_installation_s_own(tmp_path):
    """An oscdump log has no senders (every message is "oscdump"): its replay does not apply
    the per-sender limit, or a crowd of 20 phones came back as 16. The installation's own
    events (quiet hours) are no OSC message: --write-oscdump leaves them out and says so, where
    it wrote a /quiet that the log's own replay then refused."""
    import os
    from conftest import ROOT
    from installation.events import InputEvent
    from installation.session.format import end_line, event_line
    env = dict(os.environ, PYTHONPATH=str(ROOT), SDL_VIDEODRIVER="dummy")
    rec = tmp_path / "crowd.jsonl"
    cli(["run", "--headless", "--no-audio", "--frames", "30", "--osc-port", str(free_udp_port()),
         "--set", "sim.particles=3000", "--set", "render.width=320", "--set", "render.height=180",
         "--record", str(rec)], env)
    header = rec.read_text().splitlines()[0]
    events = [event_line(10 + k, InputEvent(f"/crowd/p{k}/emotion", "ff", (0.5, 0.5), f"10.0.0.{k}:9000",
                                            (10 + k) / 60)) for k in range(20)]
    events.append(event_line(40, InputEvent("/quiet", "f", (0.0,), "clock", 40 / 60)))
    rec.write_text(header + "\n" + "".join(events) + end_line(120))
    live = tmp_path / "live.json"
    cli(["replay", str(rec), "--headless", "--no-audio", "--summary", str(live)], env)
    assert summary(live)["participants_peak"] == 20
    osc = tmp_path / "crowd.osc"
    r = cli(["replay", str(rec), "--write-oscdump", str(osc)], env)
    assert "wrote 20 messages" in r.stdout and "left out 1" in r.stdout, r.stdout
    assert "/quiet" not in osc.read_text()
    out = tmp_path / "osc.json"
    cli(["replay", str(osc), "--headless", "--no-audio", "--summary", str(out)], env)
    s = summary(out)
    assert s["participants_peak"] == 20 and s["replay_rejected"] == 0, s


def test_a_send_stopped_by_a_signal_says_how_far_it_got(tmp_path):
    """`replay --send` of a long session stopped by Ctrl-C said only "interrupted": the desk
    could not tell how much of the show had gone out. Now: how many of how many, status 1."""
    import os
    import signal
    import time
    from conftest import ROOT
    from installation.events import InputEvent
    from installation.session.format import end_line, event_line
    env = dict(os.environ, PYTHONPATH=str(ROOT), SDL_VIDEODRIVER="dummy")
    rec = tmp_path / "long.jsonl"
    cli(["run", "--headless", "--no-audio", "--frames", "10", "--osc-port", str(free_udp_port()),
         "--set", "sim.particles=2000", "--record", str(rec)], env)
    header = rec.read_text().splitlines()[0]
    events = [event_line(30 * k, InputEvent("/crowd/a/motion", "f", (0.5,), "10.0.0.1:9000", k / 2))
              for k in range(120)]                      # a minute of messages, one each half second
    rec.write_text(header + "\n" + "".join(events) + end_line(3600))
    proc = start(["replay", str(rec), "--send", f"127.0.0.1:{free_udp_port()}"], env)
    try:
        time.sleep(4)
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    m = re.search(r"send stopped by SIGINT: sent (\d+) of 120 messages to 127.0.0.1:\d+", err)
    assert proc.returncode == 1 and m and int(m.group(1)) < 120, err[-2000:]
    assert "Traceback" not in err


def test_a_replay_in_a_window_ends_on_the_recorded_state(recorded):
    """Paced in a window at 8x, every frame is owed several ticks: the catch-up must stop at
    the session's end, not run past it (it ended on other hashes six times in nine)."""
    env, tmp, rec, live, _ = recorded
    out = tmp / "window8.json"
    cli(["replay", str(rec), "--speed", "8", "--no-audio", "--summary", str(out)], env)
    s = summary(out)
    assert s["ticks"] == live["ticks"] and s["state_hash"] == live["state_hash"]
    # no tick is dropped in a replay (a slow machine replays slower, and says how fast)
    assert s["dropped_ticks"] == 0 and 0 < s["replay_speed"] <= 8.5


_HUD_DRIVER = """
import sys
from installation.render import display as D
seen = []
present = D.Display.present
def shown(self, frame, lines=None):
    if lines:
        seen.append(lines)
    return present(self, frame, lines)
D.Display.present = shown
from installation.cli import main
rc = main(sys.argv[1:])
print(repr(seen[-1] if seen else None))
sys.exit(rc)
"""


def test_a_replay_s_hud_says_where_in_the_session_it_is(recorded):
    import subprocess
    import sys
    env, _, rec, live, _ = recorded
    r = subprocess.run([sys.executable, "-c", _HUD_DRIVER, "replay", str(rec), "--no-audio", "--speed", "8",
                        "--set", "window.hud=true"], env=env, capture_output=True, text=True, timeout=180)
    assert r.returncode == 0, r.stderr[-2000:]
    last = r.stdout.strip().splitlines()[-1]
    total = live["ticks"] / 60
    assert f"replay " in last and f"s of {total:.1f} s, at 8x" in last, last


def test_quiet_hours_replay_as_the_show_dimmed_in_any_time_zone(tmp_path):
    """Quiet hours are recorded as /quiet events from the live clock: the replay dims as the
    show did, though the desk's machine sits in another time zone (it used to apply the quiet
    hours at the desk's own local hours)."""
    import datetime as dt
    import os
    from conftest import ROOT
    now = dt.datetime.now(dt.timezone.utc)
    a, b = now - dt.timedelta(minutes=30), now + dt.timedelta(minutes=30)
    window = f'safety.quiet_hours=["{a:%H:%M}-{b:%H:%M}"]'      # now, in UTC; not in UTC+5:30
    base = dict(os.environ, PYTHONPATH=str(ROOT), SDL_VIDEODRIVER="dummy")
    rec, live = tmp_path / "night.jsonl", tmp_path / "live.json"
    cli(["run", "--headless", "--no-audio", "--frames", "60", "--osc-port", str(free_udp_port()),
         "--set", "sim.particles=4000", "--set", "render.width=320", "--set", "render.height=180",
         "--set", window, "--set", "safety.quiet_ramp_min=0",
         "--record", str(rec), "--summary", str(live)], dict(base, TZ="UTC"))
    quiet = [json.loads(x) for x in rec.read_text().splitlines()[1:] if json.loads(x).get("addr") == "/quiet"]
    assert quiet and quiet[0]["tick"] == 0 and quiet[0]["args"] == [1.0] and quiet[0]["src"] == "clock"
    # a headless replay draws every tick (the live run may draw two ticks in one frame under
    # load, so its own frame_hash is no reference): the desk abroad sees what the desk at home
    # sees, which used to differ by the quiet hours' dimming
    home, abroad = tmp_path / "home.json", tmp_path / "abroad.json"
    cli(["replay", str(rec), "--headless", "--no-audio", "--summary", str(home)], dict(base, TZ="UTC"))
    cli(["replay", str(rec), "--headless", "--no-audio", "--summary", str(abroad)], dict(base, TZ="Asia/Kolkata"))
    assert summary(abroad)["frame_hash"] == summary(home)["frame_hash"]
    assert summary(abroad)["state_hash"] == summary(home)["state_hash"] == summary(live)["state_hash"]


_KEYS_DRIVER = """
import os, sys, pygame
from installation.render import display as D
frames = {"n": 0}
poll = D.Display.poll
def keyed(self):
    frames["n"] += 1
    if frames["n"] == 5:
        for _ in range(60):          # ten minutes forward: minutes of simulating
            pygame.event.post(pygame.event.Event(pygame.KEYDOWN, key=pygame.K_RIGHT, mod=0, unicode="", scancode=0))
        print("seeking", flush=True)
    return poll(self)
D.Display.poll = keyed
from installation.cli import main
sys.exit(main(sys.argv[1:]))
"""


def test_a_long_seek_in_a_window_still_ends_on_sigterm(recorded, tmp_path):
    """A seek simulates every tick up to its target: in an hour-long session that is minutes.
    The window must still end on SIGTERM (and Ctrl-C, Esc) while it does, not freeze."""
    import signal
    import subprocess
    import sys
    import time
    env, _, rec, _, _ = recorded
    header = rec.read_text().splitlines()[0]
    long = tmp_path / "long.jsonl"
    long.write_text(header + "\n" + json.dumps({"end": True, "ticks": 216000}) + "\n")   # an hour
    proc = subprocess.Popen([sys.executable, "-c", _KEYS_DRIVER, "replay", str(long), "--no-audio"],
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline().strip() == "seeking"
        time.sleep(2.0)
        assert proc.poll() is None                   # still seeking (600 s of ticks)
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=15)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, err[-2000:]
    assert "seek to 600" in err, err[-2000:]
    done = re.search(r"replayed (\d+) ticks", err)
    assert done and int(done.group(1)) < 600 * 60, err[-2000:]       # it stopped inside the seek


def test_no_output_is_written_over_the_shipped_config(tmp_path):
    """`run --summary configs/default.toml` once replaced the default config with JSON (it is
    read without --config, so no flag named it): every output refuses an existing .toml."""
    from installation.outputs import OutputPathError, file_to_write
    for flag in ("--summary", "--record", "--wav", "--export"):
        with pytest.raises(OutputPathError, match="is a TOML file"):
            file_to_write(flag, DEFAULT_CONFIG)
    assert file_to_write("--summary", tmp_path / "night.toml") == tmp_path / "night.toml"   # new: fine


def test_a_replay_with_the_flash_guard_off_says_so_as_run_does(recorded, tmp_path):
    """The README: the guard switched off (with its phrase) "warns at every start". `run`
    did, through its pre-flight; a replay or an export of such a session said nothing."""
    from installation.safety.settings import OVERRIDE_PHRASE
    env, _, rec, _, _ = recorded
    r = cli(["replay", str(rec), "--headless", "--no-audio", "--set", "safety.flash_guard=false",
             "--set", f"safety.flash_guard_override='{OVERRIDE_PHRASE}'", "--summary", str(tmp_path / "s.json")], env)
    assert "WARNING: the flash guard is OFF" in r.stderr, r.stderr[-2000:]


_SEEK_BACK_DRIVER = """
import sys, pygame
from installation.render import display as D
from installation.safety import flash_guard as G
frames = {"n": 0}
rates = []
init = G.FlashGuard.__init__
def built(self, settings, width, height, fps, **kw):
    rates.append(fps)
    init(self, settings, width, height, fps, **kw)
G.FlashGuard.__init__ = built
poll = D.Display.poll
def keyed(self):
    frames["n"] += 1
    if frames["n"] == 40:           # two seconds in at 4x: back 10 s, to the start
        pygame.event.post(pygame.event.Event(pygame.KEYDOWN, key=pygame.K_LEFT, mod=0, unicode="", scancode=0))
    return poll(self)
D.Display.poll = keyed
from installation.cli import main
rc = main(sys.argv[1:])
print("guards", rates)
sys.exit(rc)
"""


def test_a_seek_back_in_a_fast_replay_keeps_the_viewer_s_second(recorded, tmp_path):
    """A seek back starts the session over on a new pipeline: its flash guard went back to the
    tick rate (at 4x, 10 Hz pulses on screen at 40 Hz again). The replay still ends on the
    recording's state."""
    import subprocess
    import sys
    env, _, rec, live, _ = recorded
    out = tmp_path / "s.json"
    r = subprocess.run([sys.executable, "-c", _SEEK_BACK_DRIVER, "replay", str(rec), "--no-audio", "--speed", "4",
                        "--summary", str(out)], env=env, capture_output=True, text=True, timeout=180)
    assert r.returncode == 0, r.stderr[-2000:]
    assert "seek to 0.0" in r.stderr, r.stderr[-2000:]
    rates = eval(r.stdout.strip().splitlines()[-1].split(" ", 1)[1])
    hz = json.loads(rec.read_text().splitlines()[0])["tick_hz"]
    assert rates[-1] == 4 * hz and len([f for f in rates if f == 4 * hz]) >= 2, rates
    assert summary(out)["state_hash"] == live["state_hash"]
