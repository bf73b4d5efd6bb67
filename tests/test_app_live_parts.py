"""What a live run opens around its pipeline (app._LiveParts): the watchdog as configured, the
HUD's word on the recording, a recording on a disk that cannot take it."""
from __future__ import annotations

import argparse
import errno
import time

import pytest

from installation.app import _LiveParts
from installation.config import load_config
from installation.events import InputEvent
from installation.pipeline import Pipeline

SMALL = ["sim.particles=4000", "render.width=320", "render.height=180", "osc.enabled=false"]


def live_parts(tmp_path, record=None, sets=()):
    cfg = load_config(env={}, sets=SMALL + [f"session.folder='{tmp_path / 'sessions'}'", *sets])
    args = argparse.Namespace(record=str(record) if record else None, summary=None)
    parts = _LiveParts(cfg, args, Pipeline(cfg), None)
    parts.open()
    return parts


def test_the_watchdog_gets_its_flush_time_from_the_config(tmp_path):
    """`[watchdog] flush_s` was ignored: the watchdog always gave the flush its default 3 s."""
    parts = live_parts(tmp_path, sets=["watchdog.flush_s=0.7", "watchdog.stall_s=4.0"])
    try:
        assert parts.watchdog.flush_s == pytest.approx(0.7)
        assert parts.watchdog.timeout_s == pytest.approx(4.0)
    finally:
        parts.close()


class _Full:
    """The recorder's files, on a disk that fills up once `full` is set."""

    def __init__(self):
        self.full = False

    def open(self, path, mode="r", *args, **kwargs):
        import builtins
        f = builtins.open(path, mode, *args, **kwargs)
        disk = self

        class File:
            def write(self, data):
                if disk.full:
                    raise OSError(errno.ENOSPC, "No space left on device")
                return f.write(data)

            def __getattr__(self, name):
                return getattr(f, name)

        return File() if "w" in mode else f


def test_the_hud_says_no_once_the_recording_has_failed(tmp_path, monkeypatch):
    import installation.session.recorder as recorder_module
    disk = _Full()
    monkeypatch.setattr(recorder_module, "open", disk.open, raising=False)
    parts = live_parts(tmp_path, record=tmp_path / "night.jsonl")
    try:
        assert parts.hud_status()["recording"] == "yes"
        disk.full = True
        deadline = time.monotonic() + 10
        tick = 0
        while not parts.recorder.failed:
            assert time.monotonic() < deadline, "the recorder never noticed the full disk"
            parts.record(tick, InputEvent("/crowd/a/motion", "f", (0.5,), "10.0.0.2:4000", tick / 60))
            tick += 1
            time.sleep(0.005)
        status = parts.hud_status()["recording"]
        assert status.startswith("no") and "write error" in status
    finally:
        parts.close()
    assert parts.summary_extra()["recording"]["failed"] is True


def test_record_start_on_a_full_disk_leaves_no_empty_files(tmp_path, monkeypatch):
    """The operator's /record/start on a full disk: refused and counted, and no 0-byte
    show.jsonl, show-2.jsonl, ... piling up in the sessions folder."""
    import installation.session.recorder as recorder_module
    disk = _Full()
    disk.full = True
    monkeypatch.setattr(recorder_module, "open", disk.open, raising=False)
    parts = live_parts(tmp_path)
    try:
        for tick in (10, 20, 30):
            parts._record_request(InputEvent("/record/start", "s", ("show",), "127.0.0.1:1", tick / 60), tick)
        assert parts.sessions.errors == 3 and not parts.sessions.active
        assert parts.hud_status()["recording"] == "no"
    finally:
        parts.close()
    assert list((tmp_path / "sessions").iterdir()) == []


def test_an_operator_recording_paused_by_the_disk_still_counts_every_tick_and_is_closed(tmp_path, monkeypatch):
    """A /record/start recording that a full disk paused went on seeing no ticks (so its
    resume named only the first lost batch) and was never closed at the end."""
    import installation.session.recorder as recorder_module
    disk = _Full()
    monkeypatch.setattr(recorder_module, "open", disk.open, raising=False)
    parts = live_parts(tmp_path)
    try:
        parts._record_request(InputEvent("/record/start", "s", ("show",), "127.0.0.1:1", 0.0), 0)
        rec = parts.sessions.recorder
        disk.full = True
        deadline = time.monotonic() + 10
        tick = 1
        while not rec.failed:
            assert time.monotonic() < deadline, "the recorder never noticed the full disk"
            parts.record(tick, InputEvent("/crowd/a/motion", "f", (0.5,), "10.0.0.2:4000", tick / 60))
            tick += 1
            time.sleep(0.005)
        dropped = rec.dropped
        for t in range(tick, tick + 200):                  # paused: every tick is still seen
            parts.record(t, InputEvent("/crowd/a/motion", "f", (0.5,), "10.0.0.2:4000", t / 60))
        assert rec.dropped == dropped + 200
    finally:
        parts.close()
    assert parts.sessions.recorder is None and parts.sessions.finished      # closed, its stats kept
