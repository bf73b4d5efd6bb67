"""`analyze`: every plot, summary.json and report.md, from a session and a replay timeline."""
from __future__ import annotations

import json
import re

import numpy as np
import pytest

from installation.events import InputEvent, TickedEvent
from installation.session.analyze import PARTICIPANT_WINDOW_S, PLOTS, analyze
from installation.session.reader import Session
from installation.session.timeline import Timeline

HZ = 60


def crowd_session(seed: int, ticks: int) -> Session:
    rng = np.random.default_rng(seed)
    events = []
    for tick in range(ticks):
        for _ in range(int(rng.integers(0, 3))):
            pid = f"p{int(rng.integers(0, 15))}"
            kind = int(rng.integers(0, 4))
            t = tick / HZ
            if kind == 0:
                ev = InputEvent(f"/crowd/{pid}/touch", "fff", (float(rng.beta(2, 5)), float(rng.beta(5, 2)), 1.0), "h:1", t)
            elif kind == 1:
                ev = InputEvent(f"/crowd/{pid}/emotion", "ff", (float(rng.uniform(-1, 1)), float(rng.random())), "h:1", t)
            elif kind == 2:
                ev = InputEvent(f"/crowd/{pid}/motion", "f", (float(rng.random()),), "h:1", t)
            else:
                ev = InputEvent(f"/sensor/{pid}/level", "f", (float(rng.random()),), "h:2", t)
            events.append(TickedEvent(tick, ev))
        if tick in (200, 900):
            events.append(TickedEvent(tick, InputEvent("/pulse", "f", (0.9,), "127.0.0.1:1", tick / HZ)))
        if tick == 500:
            events.append(TickedEvent(tick, InputEvent("/crowd/p3/leave", "", (), "h:1", tick / HZ)))
            events.append(TickedEvent(tick, InputEvent("/scene", "s", ("night",), "127.0.0.1:1", tick / HZ)))
    header = {"format": "living-mosaic-session", "version": 1, "created": "2024-06-01T21:00:00+02:00",
              "seed": 3, "tick_hz": HZ, "config": {"render": {"width": 1280, "height": 720}}}
    return Session("night.jsonl", header, events, ticks, False)


def replay_timeline(seed: int, ticks: int) -> Timeline:
    rng = np.random.default_rng(seed)
    tl = Timeline(HZ, capacity=64)            # small on purpose: it must grow
    surge = rng.random(ticks) < 0.01
    surge = np.convolve(surge, np.ones(20), "same") > 0
    for k in range(ticks):
        tl.append(k, np.sin(k / 90), 0.5 + 0.4 * np.cos(k / 70), rng.random(), rng.random(),
                  int(rng.integers(0, 30)), int(rng.integers(0, 6)), bool(surge[k]),
                  bool(rng.random() < 0.05), bool(rng.random() < 0.02),
                  attract=1.0 if k < ticks // 4 else 0.0)     # the first quarter: nobody there yet
    return tl


def check_outputs(out, summary):
    from matplotlib.image import imread
    for key, (fname, title) in PLOTS.items():
        img = imread(out / fname)
        assert img.shape[0] > 200 and img.shape[1] > 400 and img.std() > 0.01, fname
        assert summary["plots"][key] == fname
    assert json.loads((out / "summary.json").read_text()) == summary
    report = (out / "report.md").read_text()
    assert re.findall(r"!\[[^\]]+\]\(([^)]+)\)", report) == [f for f, _ in PLOTS.values()]
    assert "(summary.json)" in report


def test_analyze_with_a_replay_timeline(tmp_path):
    ticks = 1500
    s = crowd_session(1, ticks)
    tl = replay_timeline(2, ticks)
    summary = analyze(s, tmp_path / "out", tl)
    check_outputs(tmp_path / "out", summary)

    touches = [te.event for te in s.events if te.event.addr.endswith("/touch")]
    assert summary["touches"]["count"] == len(touches)
    assert summary["touches"]["centroid"] == pytest.approx([np.mean([e.args[0] for e in touches]),
                                                            np.mean([e.args[1] for e in touches])], abs=1e-4)
    kinds = {}
    for te in s.events:
        k = te.event.addr.split("/")[-1] if te.event.addr.startswith("/crowd/") else \
            {"/pulse": "pulse", "/scene": "operator"}.get(te.event.addr, "sensor")
        kinds[k] = kinds.get(k, 0) + 1
    assert summary["events_by_kind"] == kinds and summary["pulses"] == 2
    c = tl.columns()
    starts = sum(1 for k in range(ticks) if c["surge"][k] and (k == 0 or not c["surge"][k - 1]))
    assert summary["surges"]["count"] == starts and len(summary["surges"]["at_s"]) == starts
    assert summary["limiter"]["active_s"] == pytest.approx(c["limiter_active"].sum() / HZ, abs=1e-3)
    assert summary["flash_guard"]["limited_ticks"] == int(c["flash_limited"].sum())
    assert summary["participants"]["peak"] == int(c["participants"].max())
    assert summary["mood"]["valence"]["max"] == pytest.approx(float(c["valence"].max()), abs=1e-4)
    assert summary["osc_per_s"]["peak"] == max(c["osc_count"][i:i + HZ].sum() for i in range(0, ticks, HZ))
    assert summary["duration_s"] == ticks / HZ and summary["timeline"] is True
    # the mean rate over the session's true length, not over whole seconds rounded up
    assert summary["osc_per_s"]["mean"] == pytest.approx(c["osc_count"].sum() / (ticks / HZ), abs=1e-3)
    assert summary["attract"] == {"seconds": pytest.approx(ticks // 4 / HZ), "fraction": 0.25}
    report = (tmp_path / "out" / "report.md").read_text()
    assert "Attract mode" in report and "25%" in report and "not the operator's pulses" in report


def test_analyze_from_events_alone(tmp_path):
    """A session recorded without audio or display, analysed without any replay."""
    ticks = 1200
    s = crowd_session(4, ticks)
    summary = analyze(s, tmp_path / "out")
    check_outputs(tmp_path / "out", summary)
    assert summary["timeline"] is False and summary["mood"] is None and summary["surges"] is None
    assert "No replay timeline" in (tmp_path / "out" / "report.md").read_text()
    # Participants, brute force: at the end of each second, whose latest message is recent
    # enough and not a /leave.
    seconds = ticks // HZ
    per_s = []
    for sec in range(seconds):
        latest = {}
        for te in s.events:
            m = re.match(r"^/crowd/([^/]+)/(\w+)$", te.event.addr)
            if m and te.tick / HZ <= sec + 1:
                latest[m.group(1)] = (te.tick / HZ, m.group(2))
        per_s.append(sum(1 for t, what in latest.values() if what != "leave" and sec + 1 < t + PARTICIPANT_WINDOW_S))
    assert summary["participants"]["peak"] == max(per_s)
    assert summary["participants"]["mean"] == pytest.approx(np.mean(per_s), abs=1e-3)
    assert summary["osc_per_s"]["peak"] == max(np.bincount([te.tick // HZ for te in s.events]))


def test_an_empty_session_still_gives_a_report(tmp_path):
    header = {"format": "living-mosaic-session", "version": 1, "created": "", "seed": 1, "tick_hz": 60, "config": {}}
    summary = analyze(Session("empty.jsonl", header, [], 0, True), tmp_path)
    check_outputs(tmp_path, summary)
    assert summary["touches"] == {"count": 0, "centroid": None, "busiest_cell": None}
    assert summary["truncated"] is True and "cut short" in (tmp_path / "report.md").read_text()


def test_timeline_grows_and_round_trips(tmp_path):
    tl = replay_timeline(5, 300)
    assert len(tl) == 300 and tl.column("tick").tolist() == list(range(300))
    tl.save(tmp_path / "tl.npz")
    back = Timeline.load(tmp_path / "tl.npz")
    assert back.tick_hz == HZ and len(back) == 300
    for k, a in tl.columns().items():
        assert np.array_equal(back.column(k), a) and back.column(k).dtype == a.dtype
