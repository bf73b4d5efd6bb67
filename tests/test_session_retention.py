"""Keeping the newest sessions within `[session] keep_gb` / `keep_days`: real files, real recorder."""
from __future__ import annotations

import datetime as dt
import json
import logging
import os
import time
from pathlib import Path

import pytest

from installation.events import InputEvent
from installation.session import retention
from installation.session.format import FORMAT, header_line, part_path
from installation.session.reader import read_session
from installation.session.recorder import Recorder, SessionManager
from installation.session.retention import GB, Retention
from installation.session.settings import SessionSettings

HEADER = {"seed": 7, "tick_hz": 60, "config": {"sim": {"particles": 1000}}}
NOW = time.time()
KB = 1000


def days_ago(d: float) -> str:
    return dt.datetime.fromtimestamp(NOW - d * 86400).astimezone().isoformat(timespec="seconds")


def stored(folder: Path, name: str, began_days_ago: float, parts: int = 1, part_kb: int = 100,
           part_days: float = 0.0, mtime_days_ago: float | None = None) -> list[Path]:
    """A session this program wrote: `parts` files of about `part_kb` KB, part k begun
    `part_days * k` days after the first, their mtimes set to `mtime_days_ago` if given."""
    files = []
    for k in range(parts):
        p = part_path(folder / name, k)
        head = header_line({"format": FORMAT, "version": 1, "created": days_ago(began_days_ago - k * part_days),
                            **HEADER, "part": k})
        pad = json.dumps({"tick": k, "t": 0.0, "src": "h:1", "addr": "/pad", "types": "s",
                          "args": ["x" * (part_kb * KB - len(head) - 80)]}) + "\n"
        p.write_text(head + pad + json.dumps({"end": True, "ticks": k + 1}) + "\n")
        if mtime_days_ago is not None:
            t = NOW - mtime_days_ago * 86400
            os.utime(p, (t, t))
        files.append(p)
    return files


def others(folder: Path) -> dict[Path, bytes]:
    """Files that are not sessions of this format, each big enough to matter for a limit."""
    big = "x" * 200 * KB
    files = {
        folder / "notes.txt": f"curator's notes {big}",
        folder / "export.mp4": big,
        folder / "venue.toml": f"[session]\nkeep_gb = 1\n# {big}",
        folder / "notes.jsonl": json.dumps({"note": "not a session", "created": days_ago(900)}) + f"\n{big}\n",
        folder / "future.jsonl": header_line({"format": FORMAT, "version": 99, "created": days_ago(900),
                                              **HEADER}) + big + "\n",
        folder / "other-app.jsonl": json.dumps({"format": "another-format", "version": 1,
                                                "created": days_ago(900), **HEADER}) + "\n" + big + "\n",
        folder / "oscdump.jsonl": f"e0a1b2c3.00000000 /crowd/a/motion f 0.5\n{big}\n",
        folder / "cut.jsonl": header_line({"format": FORMAT, "version": 1, "created": days_ago(900),
                                           **HEADER})[:-40],     # a header cut short: no session
    }
    for p, text in files.items():
        p.write_text(text)
        os.utime(p, (NOW - 900 * 86400,) * 2)
    (folder / "old-exports").mkdir()
    (folder / "old-exports" / "night.jsonl").write_text(header_line({"format": FORMAT, "version": 1,
                                                                     "created": days_ago(900), **HEADER}))
    return {p: p.read_bytes() for p in [*files, folder / "old-exports" / "night.jsonl"]}


def untouched(kept: dict[Path, bytes]) -> bool:
    return all(p.exists() and p.read_bytes() == b for p, b in kept.items())


def session_size(files) -> int:
    return sum(p.stat().st_size for p in files)


def event(i: int) -> InputEvent:
    return InputEvent("/crowd/a/motion", "f", (0.5,), "10.0.0.2:9000", i / 60)


def test_over_the_size_limit_the_oldest_sessions_go_whole_until_under(tmp_path, caplog):
    caplog.set_level(logging.INFO, logger="installation.session")
    # mtimes the other way round: the headers' `created` says which is oldest, not the mtime
    a = stored(tmp_path, "a.jsonl", 30, parts=3, mtime_days_ago=0)
    b = stored(tmp_path, "b.jsonl", 20, parts=2, mtime_days_ago=1)
    c = stored(tmp_path, "c.jsonl", 10, mtime_days_ago=2)
    d = stored(tmp_path, "d.jsonl", 5, mtime_days_ago=3)
    kept = others(tmp_path)
    assert [s.name for s in retention.stored_sessions(tmp_path)] == ["a.jsonl", "b.jsonl", "c.jsonl", "d.jsonl"]
    limit = session_size(b + c + d) + 10 * KB          # a must go; b, c and d fit
    r = Retention(keep_gb=limit / GB)
    r.apply(tmp_path)
    assert not any(p.exists() for p in a)
    assert all(p.exists() for p in b + c + d)
    assert untouched(kept)
    assert r.deleted == 1 and r.deleted_bytes >= 300 * KB - 1000 and r.errors == 0
    said = [m.getMessage() for m in caplog.records if "deleted old session" in m.getMessage()]
    assert len(said) == 1 and "a.jsonl" in said[0] and "3 of 3 files" in said[0] and "keep_gb" in said[0]
    assert " MB" in said[0]
    # tighter: b goes whole (both parts), then c; d is under the limit on its own
    Retention(keep_gb=(session_size(d) + 10 * KB) / GB).apply(tmp_path)
    assert not any(p.exists() for p in b + c) and all(p.exists() for p in d)
    assert untouched(kept)
    # room for the part about to be written counts: with it, d no longer fits
    Retention(keep_gb=(session_size(d) + 10 * KB) / GB, reserve_bytes=20 * KB).apply(tmp_path)
    assert not any(p.exists() for p in d)
    assert untouched(kept)


def test_a_pass_reads_only_new_or_changed_headers_and_says_real_sizes(tmp_path, monkeypatch, caplog):
    """A folder of thousands of sessions: each rotation's pass read every header again (0.4 s of
    the GIL beside the frame loop); now only the files that are new or changed. The log says
    what the recordings take and, apart, the room kept for the part being written."""
    caplog.set_level(logging.INFO, logger="installation.session")
    for k in range(30):
        stored(tmp_path, f"s{k:02d}.jsonl", 30 - k, part_kb=10)
    reads = []
    real = retention._header
    monkeypatch.setattr(retention, "_header", lambda p: reads.append(p.name) or real(p))
    assert len(retention.stored_sessions(tmp_path)) == 30 and len(reads) == 30
    assert len(retention.stored_sessions(tmp_path)) == 30 and len(reads) == 30     # none again
    grown = tmp_path / "s29.jsonl"
    grown.write_text(grown.read_text() + "\n")
    stored(tmp_path, "new.jsonl", 0, part_kb=10)
    assert len(retention.stored_sessions(tmp_path)) == 31 and sorted(reads[30:]) == ["new.jsonl", "s29.jsonl"]
    # what is kept of a header is two numbers, not its config; a file gone is forgotten
    seen = retention._seen[retention._key(tmp_path)]
    assert all(said is None or (isinstance(said, tuple) and len(said) == 2) for _, said in seen.values())
    (tmp_path / "s00.jsonl").rename(tmp_path / "s00.moved")
    retention.stored_sessions(tmp_path)
    assert "s00.jsonl" not in retention._seen[retention._key(tmp_path)]
    Retention(keep_gb=250 * KB / GB, reserve_bytes=100 * KB).apply(tmp_path)
    said = [m.getMessage() for m in caplog.records if "deleted old session" in m.getMessage()]
    assert said and "take 0.3 MB and room for the part being written, 0.1 MB" in said[0], said[:1]
    assert str(tmp_path.resolve()) in said[0]


def test_a_recording_another_process_is_writing_is_never_deleted(tmp_path):
    """Another installation recording into the same folder is not in this process's set of
    live parts: its part's lock says it is written (it was deleted under it, silently)."""
    fcntl = pytest.importorskip("fcntl")
    theirs = stored(tmp_path, "theirs.jsonl", 9, parts=2)
    older = stored(tmp_path, "older.jsonl", 20)
    with open(theirs[-1], "ab") as f:          # a separate open: as another process holds it
        fcntl.flock(f.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        Retention(keep_gb=1 / GB).apply(tmp_path)
        assert all(p.exists() for p in theirs) and not older[0].exists()
    Retention(keep_gb=1 / GB).apply(tmp_path)    # ended: now it is an old session like any
    assert not any(p.exists() for p in theirs)


def test_keep_days_by_the_headers_created(tmp_path, caplog):
    caplog.set_level(logging.INFO, logger="installation.session")
    old = stored(tmp_path, "old.jsonl", 40, mtime_days_ago=0)              # touched today, begun 40 days ago
    recent = stored(tmp_path, "recent.jsonl", 2, mtime_days_ago=100)       # copied with old times
    # a long recording: begun 40 days ago, its last part 10 days ago: kept whole
    long = stored(tmp_path, "long.jsonl", 40, parts=4, part_days=10)
    # no readable `created`: the mtime says
    no_date = stored(tmp_path, "no-date.jsonl", 1, mtime_days_ago=50)
    text = no_date[0].read_text().replace(f'"created": "{days_ago(1)}", ', "")
    no_date[0].write_text(text)
    os.utime(no_date[0], (NOW - 50 * 86400,) * 2)
    kept = others(tmp_path)
    r = Retention(keep_days=30)
    r.apply(tmp_path, now=NOW)
    assert not old[0].exists() and not no_date[0].exists()
    assert recent[0].exists() and all(p.exists() for p in long)
    assert untouched(kept) and r.deleted == 2
    said = [m.getMessage() for m in caplog.records if "deleted old session" in m.getMessage()]
    assert len(said) == 2 and all("keep_days = 30" in m for m in said)
    Retention(keep_days=5).apply(tmp_path, now=NOW)
    assert not any(p.exists() for p in long) and recent[0].exists()


def test_off_by_default_nothing_is_deleted(tmp_path):
    assert not Retention().enabled
    s = SessionSettings()
    assert s.keep_gb == 0 and s.keep_days == 0
    old = stored(tmp_path, "ancient.jsonl", 3000, parts=3, part_kb=300)
    kept = others(tmp_path)
    rec = Recorder(tmp_path / "now.jsonl", HEADER, SessionSettings(rotate_mb=0.01))
    for i in range(600):
        rec.write(i, event(i))
    rec.close(600)
    assert rec.rotations >= 1
    assert all(p.exists() for p in old) and untouched(kept)
    assert rec.stats()["deleted_sessions"] == 0


def test_the_real_recorder_deletes_at_start_and_at_each_rotation_never_itself(tmp_path, caplog):
    caplog.set_level(logging.INFO, logger="installation.session")
    first = stored(tmp_path, "first.jsonl", 3)
    kept = others(tmp_path)
    # a limit the recording alone passes: every other session goes, every part of it stays
    rec = Recorder(tmp_path / "show.jsonl", HEADER, SessionSettings(rotate_mb=0.01, keep_gb=30 * KB / GB, sync_s=0.05))
    deadline = time.monotonic() + 10
    while any(p.exists() for p in first):                     # deleted as it starts
        assert time.monotonic() < deadline
        time.sleep(0.01)
    late = stored(tmp_path, "late.jsonl", 1, parts=2)          # appears while it records
    for i in range(1500):
        assert rec.write(i, event(i))
    rec.close(1500)
    assert rec.rotations >= 3                                   # ... and goes at a rotation
    assert not any(p.exists() for p in late)
    assert all(p.exists() for p in rec.files) and session_size(rec.files) > 30 * KB
    assert untouched(kept)
    whole = read_session(tmp_path / "show.jsonl")
    assert len(list(whole.events)) == 1500 and not whole.truncated and whole.parts == [str(p) for p in rec.files]
    assert rec.stats()["deleted_sessions"] == 2 and rec.stats()["delete_errors"] == 0
    said = [m.getMessage() for m in caplog.records if "deleted old session" in m.getMessage()]
    assert [("first.jsonl" in m, "late.jsonl" in m) for m in said] == [(True, False), (False, True)]
    # the recording alone over the limit is kept, and that is said, once
    over = [m.getMessage() for m in caplog.records if "recordings being written" in m.getMessage()]
    assert len(over) == 1 and "never deleted while written" in over[0], over


def test_another_recording_in_the_same_folder_is_never_deleted(tmp_path):
    """`run --record sessions/day.jsonl` goes on while /record/start writes into the same folder."""
    day = Recorder(tmp_path / "day.jsonl", HEADER, SessionSettings(sync_s=0.05))
    day.write(1, event(1))
    m = SessionManager(tmp_path, lambda: dict(HEADER), SessionSettings(keep_gb=1 / GB, rotate_mb=0.01))
    path = m.start("desk", tick=5)
    for i in range(5, 800):
        day.write(i, event(i))
        m.write(i, event(i))
    m.stop(800)
    day.close(800)
    assert m.finished[0]["rotations"] >= 1
    assert list(read_session(tmp_path / "day.jsonl").events)[-1].tick == 799
    assert len(list(read_session(path).events)) == 795
    # once it has ended it is a session like any other
    m.start("next", tick=900)
    m.stop(901)
    assert not (tmp_path / "day.jsonl").exists() and not path.exists()


@pytest.mark.parametrize("error", [PermissionError(13, "Permission denied"), FileNotFoundError(2, "No such file or directory")])
def test_a_deletion_error_is_said_once_and_the_recording_goes_on(tmp_path, monkeypatch, caplog, error):
    caplog.set_level(logging.INFO, logger="installation.session")
    locked = stored(tmp_path, "locked.jsonl", 9, parts=2) + stored(tmp_path, "locked-too.jsonl", 8)
    free = stored(tmp_path, "free.jsonl", 7)
    real_unlink = os.unlink

    def unlink(p, *a, **kw):
        if Path(p).name.startswith("locked"):
            if isinstance(error, FileNotFoundError):
                real_unlink(p)           # someone else deleted it just before
            raise error
        return real_unlink(p, *a, **kw)

    monkeypatch.setattr(os, "unlink", unlink)
    rec = Recorder(tmp_path / "show.jsonl", HEADER, SessionSettings(rotate_mb=0.01, keep_gb=1 / GB, sync_s=0.05))
    for i in range(900):
        assert rec.write(i, event(i))
    rec.close(900)
    assert not rec.failed and rec.errors == 0
    assert rec.rotations >= 2
    assert len(list(read_session(tmp_path / "show.jsonl").events)) == 900
    assert not free[0].exists()                                # the next oldest still went
    warned = [m.getMessage() for m in caplog.records if "cannot delete old session" in m.getMessage()]
    if isinstance(error, PermissionError):
        assert len(warned) == 1 and "locked" in warned[0] and error.strerror in warned[0]
        assert rec.stats()["delete_errors"] >= 3
        assert all(p.exists() for p in locked)
    else:       # gone already (two recordings' passes in one folder): nothing to say
        assert warned == [] and rec.stats()["delete_errors"] == 0
        assert not any(p.exists() for p in locked)
