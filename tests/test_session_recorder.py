"""Session recording: a real writer thread writing real files, killed for real."""
from __future__ import annotations

import datetime as dt
import errno
import json
import logging
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from installation.events import InputEvent, TickedEvent
from installation.session.errors import SessionError
from installation.session.format import header_line, part_path
from installation.session.reader import read_session
from installation.session.recorder import Recorder, SessionManager, safe_session_name
from installation.session.settings import SessionSettings

ROOT = Path(__file__).resolve().parents[1]
HEADER = {"seed": 7, "tick_hz": 60, "config": {"sim": {"particles": 1000}, "render": {"width": 320, "height": 180}}}


def random_events(seed: int, ticks: int, per_tick: int = 3) -> list[TickedEvent]:
    """A seeded mix of every address the listener accepts, with float32-exact numbers."""
    rng = np.random.default_rng(seed)
    out = []
    for tick in range(ticks):
        for k in range(int(rng.integers(0, per_tick + 1))):
            pid = f"p{int(rng.integers(0, 12))}"
            t = tick / 60 + k * 1e-4 + float(rng.random()) * 1e-3
            src = f"192.168.1.{int(rng.integers(2, 250))}:{int(rng.integers(1024, 65535))}"
            f = lambda: float(np.float32(rng.random()))  # noqa: E731
            choice = int(rng.integers(0, 8))
            ev = [InputEvent(f"/crowd/{pid}/emotion", "ff", (f() * 2 - 1, f()), src, t),
                  InputEvent(f"/crowd/{pid}/touch", "fff", (f(), f(), f()), src, t),
                  InputEvent(f"/crowd/{pid}/motion", "f", (f(),), src, t),
                  InputEvent(f"/crowd/{pid}/leave", "", (), src, t),
                  InputEvent(f"/sensor/mic{k}/level", "f", (f(),), src, t),
                  InputEvent("/scene", "sf", ("nuit-étoilée", 2.5), "127.0.0.1:5000", t),
                  InputEvent("/blackout", "i", (int(rng.integers(0, 2)),), "127.0.0.1:5000", t),
                  InputEvent("/pulse", "f", (f(),), "127.0.0.1:5000", t)][choice]
            out.append(TickedEvent(tick, ev))
    return out


def record(path: Path, events: list[TickedEvent], ticks: int, settings: SessionSettings | None = None) -> Recorder:
    rec = Recorder(path, HEADER, settings or SessionSettings())
    for te in events:
        assert rec.write(te.tick, te.event)
    rec.close(ticks)
    return rec


def test_record_then_read_gives_the_same_events(tmp_path):
    events = random_events(1, 600)
    rec = record(tmp_path / "s.jsonl", events, 600)
    assert rec.written == len(events) and rec.dropped == 0 and rec.errors == 0
    s = read_session(tmp_path / "s.jsonl")
    assert s.events == events
    assert (s.seed, s.tick_hz, s.config) == (HEADER["seed"], HEADER["tick_hz"], HEADER["config"])
    assert s.end_ticks == 600 and not s.truncated
    lines = (tmp_path / "s.jsonl").read_text(encoding="utf-8").splitlines()
    head = json.loads(lines[0])
    assert head["format"] == "living-mosaic-session" and head["version"] == 1
    dt.datetime.fromisoformat(head["created"])
    assert json.loads(lines[-1]) == {"end": True, "ticks": 600}
    # Each event line carries exactly the contract's keys.
    assert set(json.loads(lines[1])) == {"tick", "t", "src", "addr", "types", "args"}


def test_size_rotation_writes_numbered_parts_that_chain(tmp_path):
    events = random_events(2, 900, per_tick=4)
    path = tmp_path / "night.jsonl"
    rec = record(path, events, 900, SessionSettings(rotate_mb=0.02))
    files = [Path(p) for p in rec.stats()["files"]]
    assert len(files) >= 3 and rec.rotations == len(files) - 1
    assert files == [part_path(path, k) for k in range(len(files))]
    assert files[1].name == "night.001.jsonl"
    total = 0
    for k, f in enumerate(files):
        part = read_session(f, follow=False)     # every part stands on its own
        assert part.header["part"] == k and part.seed == HEADER["seed"]
        assert f.stat().st_size < 0.02 * 1024 * 1024 + 4096
        total += len(part.events)
    assert total == len(events)
    whole = read_session(path)
    assert whole.events == events and whole.end_ticks == 900 and not whole.truncated
    assert whole.parts == [str(f) for f in files]


def test_duration_rotation(tmp_path):
    path = tmp_path / "day"
    rec = Recorder(path, HEADER, SessionSettings(rotate_minutes=0.15 / 60))
    events = random_events(3, 40)
    for te in events:
        rec.write(te.tick, te.event)
        time.sleep(0.012)
    rec.close(40)
    assert rec.rotations >= 2
    assert Path(rec.files[1]).name == "day.001"
    assert read_session(path).events == events


def test_a_full_queue_drops_and_counts_never_blocks(tmp_path):
    events = random_events(4, 12000, per_tick=5)
    rec = Recorder(tmp_path / "flood.jsonl", HEADER, SessionSettings(queue_max=100))
    accepted = []
    t0 = time.perf_counter()
    for te in events:
        if rec.write(te.tick, te.event):
            accepted.append(te)
    spent = time.perf_counter() - t0
    rec.close(12000)
    assert rec.dropped > 0
    assert rec.written + rec.dropped == len(events) == len(accepted) + rec.dropped
    assert read_session(tmp_path / "flood.jsonl").events == accepted
    # Queueing only: far below the ~5 us a serialised, written line costs on the writer thread.
    assert spent / len(events) < 20e-6


def test_sync_about_every_sync_s(tmp_path):
    rec = Recorder(tmp_path / "s.jsonl", HEADER, SessionSettings(sync_s=0.1))
    events = random_events(5, 70)
    t0 = time.monotonic()
    for te in events:
        rec.write(te.tick, te.event)
        time.sleep(0.01)
    elapsed = time.monotonic() - t0
    rec.close(70)
    # One sync per elapsed sync_s (give or take the batching) plus the closing one.
    assert elapsed / 0.1 - 2 <= rec.syncs <= elapsed / 0.1 + 3


def test_bad_path_is_one_clear_error(tmp_path):
    with pytest.raises(SessionError) as e:
        Recorder(tmp_path / "missing" / "s.jsonl", HEADER)
    assert "missing" in str(e.value) and "\n" not in str(e.value)


_WRITER_SCRIPT = r"""
import sys, time, json
sys.path.insert(0, sys.argv[1])
from installation.events import InputEvent
from installation.session.recorder import Recorder
from installation.session.settings import SessionSettings
rec = Recorder(sys.argv[2], {"seed": 1, "tick_hz": 1000, "config": {}}, SessionSettings(sync_s=1.0))
tick = 0
start = time.time()
while True:
    tick += 1
    rec.write(tick, InputEvent("/crowd/a/motion", "f", (0.5,), "127.0.0.1:1", time.time()))
    if tick == 300:
        print("ready", flush=True)
    time.sleep(0.001)
"""


def test_kill_9_loses_at_most_about_a_second(tmp_path):
    path = tmp_path / "killed.jsonl"
    proc = subprocess.Popen([sys.executable, "-c", _WRITER_SCRIPT, str(ROOT), str(path)],
                            stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline().strip() == "ready"
        time.sleep(1.5)
    finally:
        killed_at = time.time()
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    s = read_session(path)
    assert s.truncated and s.end_ticks is None
    assert len(s.events) > 300
    ticks = [te.tick for te in s.events]
    assert ticks == list(range(1, len(ticks) + 1))          # nothing missing before the end
    lost_s = killed_at - s.events[-1].event.t
    assert lost_s <= 1.0, f"the last {lost_s:.3f} s were lost"


_FULL_DISK_SCRIPT = r"""
import logging, resource, signal, sys, time
sys.path.insert(0, sys.argv[1])
logging.basicConfig(level=logging.INFO, format="%(levelname)s %(message)s")
from installation.events import InputEvent
from installation.session.recorder import Recorder
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)          # get EFBIG instead of being killed
resource.setrlimit(resource.RLIMIT_FSIZE, (60_000, 60_000))
rec = Recorder(sys.argv[2], {"seed": 1, "tick_hz": 60, "config": {}})
n = 0
for tick in range(4000):
    rec.write(tick, InputEvent("/crowd/a/touch", "fff", (0.25, 0.5, 0.75), "10.0.0.2:4000", tick / 60))
    n += 1
    if tick % 200 == 0:
        time.sleep(0.03)
rec.close(4000)
print("alive", n, rec.written, rec.dropped, rec.errors, rec.failed, flush=True)
"""


@pytest.mark.skipif(sys.platform != "linux", reason="uses RLIMIT_FSIZE to make the disk 'full'")
def test_disk_full_stops_the_recording_not_the_program(tmp_path):
    path = tmp_path / "full.jsonl"
    r = subprocess.run([sys.executable, "-c", _FULL_DISK_SCRIPT, str(ROOT), str(path)],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    word, n, written, dropped, errors, failed = r.stdout.split()
    assert word == "alive" and failed == "True" and int(errors) == 1
    assert int(written) + int(dropped) == int(n) and int(dropped) > 0
    stops = [ln for ln in r.stderr.splitlines() if "recording paused" in ln]
    assert len(stops) == 1 and str(path) in stops[0]
    s = read_session(path)                                # what reached the disk still replays
    assert s.truncated and len(s.events) >= int(written)
    assert path.stat().st_size <= 60_000


@pytest.mark.parametrize("name,expected", [
    ("night", "night"), ("  Vernissage 2024-06-01  ", "Vernissage 2024-06-01"), ("show.jsonl", "show"),
    ("mañana_1", "mañana_1"), ("a.b", "a.b"),
    ("", None), ("   ", None), ("..", None), ("../etc/passwd", None), ("a/b", None), ("a\\b", None),
    ("/abs", None), (".hidden", None), ("x..y", None), ("tab\there", None), ("nl\n", None), ("nul\x00", None),
    ("C:evil", None), ("CON", None), ("nul.txt", None), ("x" * 101, None), ("trailing.", None), (42, None), (None, None),
])
def test_safe_session_name(name, expected):
    assert safe_session_name(name) == expected


def test_session_manager_start_stop(tmp_path, caplog):
    headers = []

    def header():
        headers.append(1)
        return dict(HEADER)

    clock = lambda: dt.datetime(2024, 6, 1, 21, 30, 5)  # noqa: E731
    m = SessionManager(tmp_path / "sessions", header, SessionSettings(), clock=clock)
    assert m.stop(10) is None and not m.active
    ev = random_events(6, 30)

    p1 = m.start(None, tick=100)
    assert p1 == tmp_path / "sessions" / "session-20240601-213005.jsonl" and m.active
    for te in ev[:10]:
        m.write(te.tick + 100, te.event)
    p2 = m.start("night", tick=200)          # a start while recording closes the first file
    assert p2.name == "night.jsonl"
    for te in ev[10:]:
        m.write(te.tick + 200, te.event)
    assert m.stop(300) == p2 and not m.active
    assert m.start("night", tick=300).name == "night-2.jsonl"   # never overwrite
    m.stop(310)

    first, second = read_session(p1), read_session(p2)
    # a recording started mid-run reads from its own first tick
    assert first.header["start_tick"] == 100 and first.end_ticks == 100 and not first.truncated
    assert [te.event for te in first.events] == [te.event for te in ev[:10]]
    assert [te.tick for te in first.events] == [te.tick for te in ev[:10]]
    assert second.header["start_tick"] == 200 and second.end_ticks == 100
    assert len(second.events) == len(ev) - 10

    for bad in ("../x", "a/b", ".secret"):
        assert m.start(bad, tick=400) is None
    assert m.rejected_names == 3 and not m.active
    assert sorted(p.name for p in (tmp_path / "sessions").iterdir()) == [
        "night-2.jsonl", "night.jsonl", "session-20240601-213005.jsonl"]
    assert "refused" in caplog.text and m.started == 3 and len(headers) == 3


def test_session_manager_unwritable_folder_is_counted_not_raised(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    m = SessionManager(blocker / "sessions", lambda: dict(HEADER))
    assert m.start("x", tick=0) is None
    assert m.errors == 1 and not m.active
    m.write(1, InputEvent("/pulse", "f", (1.0,), "127.0.0.1:1", 0.0))   # harmless while idle


def test_an_event_json_cannot_hold_is_skipped_and_recording_goes_on(tmp_path):
    rec = Recorder(tmp_path / "s.jsonl", HEADER)
    good = random_events(8, 20)
    rec.write(0, InputEvent("/x", "b", (b"\x00\x01",), "a:1", 0.0))
    for te in good:
        rec.write(te.tick, te.event)
    rec.close(20)
    assert rec.unwritable == 1 and rec.dropped == 1 and rec.written == len(good) and not rec.failed
    assert read_session(tmp_path / "s.jsonl").events == good


# ---- a disk that fills up and frees again ------------------------------------------------------

class FullDisk:
    """Files the recorder opens for writing, on a disk that can fill up: while `full`, a write
    puts the first half of its bytes on disk (as a real disk filling mid-write does) and
    raises ENOSPC. Installed as the recorder module's `open`; the files are real."""

    def __init__(self, full: bool = False):
        self.full = full
        self.failed_writes = 0

    def open(self, path, mode="r", *args, **kwargs):
        import builtins
        f = builtins.open(path, mode, *args, **kwargs)
        return _FillingFile(f, self) if any(c in mode for c in "wa+") else f


class _FillingFile:
    def __init__(self, f, disk: FullDisk):
        self._f, self._disk = f, disk

    def write(self, data):
        if self._disk.full:
            self._disk.failed_writes += 1
            self._f.write(data[: len(data) // 2])
            try:
                self._f.flush()
            finally:
                raise OSError(errno.ENOSPC, "No space left on device")
        return self._f.write(data)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self._f.close()

    def __getattr__(self, name):
        return getattr(self._f, name)


@pytest.fixture
def disk(monkeypatch):
    import installation.session.recorder as recorder_module
    d = FullDisk()
    monkeypatch.setattr(recorder_module, "open", d.open, raising=False)
    return d


def wait_until(cond, timeout=10.0) -> None:
    deadline = time.monotonic() + timeout
    while not cond():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.01)


def session_errors(caplog) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == "installation.session" and r.levelno >= logging.ERROR]


def test_a_full_disk_at_start_leaves_no_file_and_is_one_error(tmp_path, disk):
    """/record/start on a full disk: refused, counted, and no empty file left behind (each
    try used to leave one: show.jsonl, show-2.jsonl, ...)."""
    disk.full = True
    with pytest.raises(SessionError, match="No space left") as e:
        Recorder(tmp_path / "s.jsonl", HEADER)
    assert "\n" not in str(e.value)
    assert list(tmp_path.iterdir()) == []
    m = SessionManager(tmp_path / "sessions", lambda: dict(HEADER))
    assert m.start("show", tick=10) is None and m.start("show", tick=20) is None
    assert m.errors == 2 and not m.active
    assert list((tmp_path / "sessions").iterdir()) == []


def test_a_full_disk_at_start_pauses_and_records_once_space_frees(tmp_path, disk, caplog):
    """`run --record` on a full disk: the show goes on, nothing is left on disk while nothing
    can be written, and the recording starts (at its own path) once space frees."""
    caplog.set_level(logging.INFO, logger="installation.session")
    disk.full = True
    path = tmp_path / "night.jsonl"
    rec = Recorder(path, HEADER, SessionSettings(sync_s=0.05), retry_s=0.1, pause_at_start=True)
    assert rec.failed and not rec.active and rec.errors == 1 and rec.files == []
    assert not path.exists()
    events = random_events(9, 60)
    assert not any(rec.write(te.tick, te.event) for te in events[:10])     # dropped, counted
    wait_until(lambda: rec.retries >= 3)                  # tried again, still full: quiet
    assert not path.exists() and rec.errors >= 4
    disk.full = False
    wait_until(lambda: rec.active)
    later = [te for te in events if te.tick >= 30]
    for te in later:
        assert rec.write(te.tick, te.event)
    rec.close(60)
    errors = session_errors(caplog)
    assert len(errors) == 1 and "No space left on device" in errors[0] and str(path) in errors[0]
    s = read_session(path)
    assert s.events == later and s.end_ticks == 60 and not s.truncated
    assert s.header["part"] == 0 and s.header["resumed"]["events"] == 10
    assert rec.resumes == 1 and rec.stats()["resumes"] == 1


def test_a_write_error_mid_run_pauses_then_resumes_in_a_new_part_that_chains(tmp_path, disk, caplog):
    """ENOSPC in the middle of a weeks-long run: the recording is not off for the rest of the
    run. The cut part is closed at its last whole line and names a NEW part with a full header,
    so the whole chain replays; the header and the log say what was lost."""
    caplog.set_level(logging.INFO, logger="installation.session")
    path = tmp_path / "night.jsonl"
    rec = Recorder(path, HEADER, SessionSettings(sync_s=0.05), retry_s=0.15)
    events = random_events(10, 300, per_tick=4)
    before = [te for te in events if te.tick < 100]
    lost = [te for te in events if 100 <= te.tick < 200]
    after = [te for te in events if te.tick >= 200]
    for te in before:
        assert rec.write(te.tick, te.event)
    wait_until(lambda: rec.written == len(before))
    disk.full = True
    for te in lost[:5]:
        rec.write(te.tick, te.event)
    wait_until(lambda: rec.failed)
    assert not rec.active
    for te in lost[5:]:
        assert not rec.write(te.tick, te.event)
    wait_until(lambda: rec.retries >= 2)                  # still full: tried, counted, not logged
    assert len(session_errors(caplog)) == 1 and rec.resumes == 0
    disk.full = False
    wait_until(lambda: rec.active)
    for te in after:
        assert rec.write(te.tick, te.event)
    rec.close(300)
    assert disk.failed_writes >= 1
    errors = session_errors(caplog)
    assert len(errors) == 1 and "recording paused" in errors[0] and "No space left on device" in errors[0]
    resumed = [r.getMessage() for r in caplog.records if "recording resumed" in r.getMessage()]
    assert len(resumed) == 1 and f"{len(lost)} events" in resumed[0]
    assert [p.name for p in rec.files] == ["night.jsonl", "night.001.jsonl"]
    first = read_session(path, follow=False)              # the cut part, closed whole
    assert first.events == before and first.next_part == "night.001.jsonl"
    second = read_session(tmp_path / "night.001.jsonl", follow=False)
    assert second.header["part"] == 1 and second.seed == HEADER["seed"]
    assert second.header["resumed"]["events"] == len(lost)
    assert second.header["resumed"]["from_tick"] == lost[0].tick
    whole = read_session(path)
    assert whole.events == before + after and whole.end_ticks == 300 and not whole.truncated
    # the gap is said: a replay of it is not the show from there on
    assert len(whole.gaps) == 1 and whole.gaps[0]["events"] == len(lost)
    assert any(f"ticks {lost[0].tick}.." in n and "not exact" in n for n in whole.notes), whole.notes
    assert rec.written == len(before) + len(after) and rec.dropped == len(lost)
    assert rec.errors >= 3 and rec.resumes == 1 and rec.lost_ticks > 0


def paused_mid_run(path: Path, settings: SessionSettings, disk: FullDisk, seed: int) -> tuple[Recorder, list]:
    """A recording of 20 events whose disk then fills: paused, retrying every 0.1 s."""
    rec = Recorder(path, HEADER, settings, retry_s=0.1)
    events = random_events(seed, 100)
    for te in events[:20]:
        rec.write(te.tick, te.event)
    wait_until(lambda: rec.written == 20)
    disk.full = True
    rec.write(50, events[50].event)
    wait_until(lambda: rec.failed)
    return rec, events


def test_a_cut_part_removed_to_make_room_does_not_block_the_resume(tmp_path, disk):
    """The technician deletes the broken file to free the disk: the recording still resumes."""
    path = tmp_path / "night.jsonl"
    rec, events = paused_mid_run(path, SessionSettings(sync_s=0.05), disk, seed=11)
    path.unlink()
    disk.full = False
    wait_until(lambda: rec.active)
    later = [te for te in events if te.tick >= 60]
    for te in later:
        rec.write(te.tick, te.event)
    rec.close(100)
    part = read_session(tmp_path / "night.001.jsonl")
    assert part.events == later and part.end_ticks == 100 and part.header["part"] == 1


def test_a_disk_running_low_is_said_when_a_part_opens(tmp_path, monkeypatch, caplog):
    """Weeks of recording fill a disk: each new part says how little is left, before it fills."""
    import collections
    import logging
    import installation.session.recorder as recorder_module
    usage = collections.namedtuple("usage", "total used free")
    monkeypatch.setattr(recorder_module.shutil, "disk_usage", lambda p: usage(10**12, 10**12 - 10**9, 10**9))
    with caplog.at_level(logging.WARNING, logger="installation.session.recorder"):
        rec = Recorder(tmp_path / "night.jsonl", HEADER, SessionSettings(sync_s=0.05))
        rec.close(10)
    low = [r.getMessage() for r in caplog.records if "GB free" in r.getMessage()]
    assert len(low) == 1 and "1.00 GB free" in low[0] and "night.jsonl" in low[0], low
    monkeypatch.setattr(recorder_module.shutil, "disk_usage", lambda p: usage(10**12, 0, 10**12))
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="installation.session.recorder"):
        Recorder(tmp_path / "day.jsonl", HEADER, SessionSettings(sync_s=0.05)).close(10)
    assert not [r for r in caplog.records if "GB free" in r.getMessage()]


def test_a_full_disk_frees_old_sessions_by_the_limits_before_resuming(tmp_path, disk, caplog):
    """With `keep_gb` set, the retry after a full disk first deletes the oldest sessions of the
    folder (never the recording's own cut part), then resumes."""
    caplog.set_level(logging.INFO, logger="installation.session")
    path = tmp_path / "night.jsonl"
    rec, events = paused_mid_run(path, SessionSettings(sync_s=0.05, keep_gb=1e-9), disk, seed=12)
    old = tmp_path / "last-week.jsonl"      # appears after the start's pass: only a resume deletes it
    old.write_text(header_line({"format": "living-mosaic-session", "version": 1, "created": "2024-05-01T20:00:00+02:00",
                                **HEADER}) + '{"end": true, "ticks": 0}\n')
    notes = tmp_path / "notes.txt"
    notes.write_text("the curator's")
    disk.full = False
    wait_until(lambda: rec.active)
    assert not old.exists() and notes.exists() and path.exists()
    later = [te for te in events if te.tick >= 60]
    for te in later:
        rec.write(te.tick, te.event)
    rec.close(100)
    assert list(read_session(path).events)[-len(later):] == later
    assert any("deleted old session last-week.jsonl" in r.getMessage() for r in caplog.records)
