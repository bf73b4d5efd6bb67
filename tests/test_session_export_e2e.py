"""`replay --export` and `analyze` through the real CLI when things go wrong: a disk that
cannot take the export, a small $TMPDIR, a signal before the end."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from e2e_helpers import CLI, cli, start

pytestmark = pytest.mark.slow

SMALL = ["--set", "sim.particles=4000", "--set", "render.width=320", "--set", "render.height=180"]
LONG_TICKS = 216000      # an hour: long enough that nothing ends before the signal


@pytest.fixture(scope="module")
def sessions(tmp_path_factory):
    """A short recorded run (150 ticks) and the same night with its end marker an hour later;
    the first export warms the export's kernels into numba's cache."""
    from conftest import ROOT
    env = dict(os.environ, PYTHONPATH=str(ROOT), SDL_VIDEODRIVER="dummy", SDL_AUDIODRIVER="dummy")
    tmp = tmp_path_factory.mktemp("export-e2e")
    rec = tmp / "night.jsonl"
    cli(["run", "--headless", "--no-audio", "--frames", "150", "--set", "window.max_catchup_ticks=1",
         "--osc-port", "0", "--record", str(rec)] + SMALL, env)
    lines = rec.read_text().splitlines()
    long = tmp / "long.jsonl"
    long.write_text("\n".join(lines[:-1] + [json.dumps({"end": True, "ticks": LONG_TICKS})]) + "\n")
    warm = tmp / "warm"
    warm.mkdir()
    cli(["replay", str(rec), "--export", str(warm / "w.mp4"), "--size", "64x64"], env, timeout=300)
    return env, tmp, rec, long, json.loads(lines[-1])["ticks"]


def decoded_frames(path: Path) -> int:
    from installation.session.export import ffmpeg_exe
    r = subprocess.run([ffmpeg_exe(), "-hide_banner", "-i", str(path), "-map", "0:v:0", "-f", "null", "-"],
                       capture_output=True, text=True)
    counts = [int(x.split("frame=")[1].split()[0]) for x in r.stderr.splitlines() if "frame=" in x]
    return counts[-1] if counts else 0


def test_the_export_keeps_its_temporary_files_beside_the_video_not_in_tmpdir(sessions, tmp_path):
    """A night's picture and sound went to $TMPDIR first: on a small /tmp (a tmpfs) the export
    failed with a double traceback. Now they go in a hidden folder beside the video, removed
    afterwards."""
    env, _, rec, _, ticks = sessions
    tmpdir, outdir = tmp_path / "tmpdir", tmp_path / "out"
    tmpdir.mkdir()
    outdir.mkdir()
    seen_tmp, seen_out = set(), set()
    proc = start(["replay", str(rec), "--export", str(outdir / "night.mp4"), "--size", "320x180"],
                 dict(env, TMPDIR=str(tmpdir)))
    while proc.poll() is None:
        seen_tmp.update(os.listdir(tmpdir))
        seen_out.update(os.listdir(outdir))
        time.sleep(0.01)
    _, err = proc.communicate()
    assert proc.returncode == 0, err[-2000:]
    assert seen_tmp == set(), seen_tmp
    hidden = [n for n in seen_out if n.startswith(".night.mp4.")]
    assert hidden, seen_out
    assert sorted(os.listdir(outdir)) == ["night.mp4"]         # the temporary folder is gone
    assert decoded_frames(outdir / "night.mp4") == ticks


def _file_size_limit(limit: int):
    def apply():
        import resource
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))
    return apply


@pytest.mark.skipif(sys.platform != "linux", reason="uses RLIMIT_FSIZE to make the disk 'full'")
def test_an_export_the_disk_cannot_take_is_one_line_exit_1_and_leaves_nothing(sessions, tmp_path):
    """The sound (~190 kB a second) outgrows what the disk takes (100 kB) a second or so in:
    one line saying what could not be written and how much room there is, status 1 (not a
    usage error), no traceback, and no unfinished file left."""
    env, _, rec, _, _ = sessions
    outdir = tmp_path / "out"
    outdir.mkdir()
    r = subprocess.run(CLI + ["replay", str(rec), "--export", str(outdir / "night.mp4"), "--size", "64x64",
                              "--set", "session.video_crf=51"],
                       capture_output=True, text=True, env=env, timeout=300, preexec_fn=_file_size_limit(100_000))
    assert r.returncode == 1, r.stderr[-3000:]
    assert "Traceback" not in r.stderr, r.stderr[-3000:]
    last = r.stderr.strip().splitlines()[-1]
    assert last.startswith("error: export failed at tick "), last
    assert "audio.wav: File too large" in last and f"free in {outdir}" in last and "removed" in last, last
    assert os.listdir(outdir) == []


def _interrupted(proc, started, wait_s: float, sig: str, group: bool = False) -> str:
    """Send `sig` `wait_s` after the log line for which `started` is true (`group`: to the
    command's whole process group, as a terminal's Ctrl-C does); the command's stderr."""
    try:
        deadline = time.time() + 120
        while time.time() < deadline:
            line = proc.stderr.readline()
            assert line, "the command ended before it was stopped"
            if started(line):
                break
        time.sleep(wait_s)
        if group:
            os.killpg(proc.pid, getattr(signal, sig))
        else:
            proc.send_signal(getattr(signal, sig))
        _, err = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
    return err


@pytest.mark.parametrize("sig, group", [("SIGINT", False), ("SIGHUP", False), ("SIGINT", True)])
def test_a_signal_stops_an_export_with_status_1_and_says_what_the_video_holds(sessions, tmp_path, sig, group):
    """An export stopped before its end is not done: it exited 0, as if the hour were in the
    video. Now: the frames so far, in a whole video, one line saying so, and status 1. Ctrl-C
    in a terminal signals the whole group: the encoder must not die with the video in it."""
    if not hasattr(signal, sig):
        pytest.skip(f"no {sig} on this platform")
    env, _, _, long, _ = sessions
    outdir = tmp_path / "out"
    outdir.mkdir()
    video = outdir / "stopped.mp4"
    proc = start(["replay", str(long), "--export", str(video), "--size", "320x180"], env, own_group=group)
    # once the first frame is out
    err = _interrupted(proc, lambda line: f"/{LONG_TICKS} frames" in line, 1.5, sig, group)
    assert proc.returncode == 1, err[-2000:]
    assert "Traceback" not in err, err[-4000:]
    stopped = [ln for ln in err.splitlines() if ln.startswith("export stopped")]
    assert len(stopped) == 1, err[-2000:]
    frames = decoded_frames(video)
    assert 0 < frames < LONG_TICKS
    assert stopped[0] == (f"export stopped by {sig} at tick {frames} of {LONG_TICKS}: "
                          f"{video} holds the first {frames / 60:.1f} s")
    assert os.listdir(outdir) == ["stopped.mp4"]


@pytest.mark.parametrize("sig", ["SIGINT", "SIGTERM"])
def test_an_interrupted_analyze_says_so_and_exits_1(sessions, tmp_path, sig):
    """Ctrl-C during an hour's analysis exited 0, silently, with nothing written."""
    env, _, _, long, _ = sessions
    out = tmp_path / "analysis"
    proc = start(["analyze", str(long), "--out", str(out)], env)
    err = _interrupted(proc, lambda line: line.startswith("analyze ["), 0.5, sig)
    assert proc.returncode == 1, err[-2000:]
    assert "Traceback" not in err, err[-4000:]
    assert err.strip().splitlines()[-1] == "analyze interrupted: nothing written", err[-2000:]
    assert list(out.iterdir()) == []
