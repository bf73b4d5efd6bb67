"""`analyze SESSION --out DIR`: plots, numbers and a short report for curators and researchers.

Inputs are the session's events (touch positions, who spoke when, operator pulses) and the
`Timeline` a headless replay produced (collective mood, participants, surges, limiter and
flash-guard activity per tick). Nothing here needs a display or a sound device: figures are
drawn with matplotlib's Agg canvas directly, without pyplot's global state. Without a timeline
the event-derived parts are still written and the report says what is missing.

Outputs in DIR: mood.png, crowd.png, touch_map.png, moments.png, summary.json, report.md.
"""
from __future__ import annotations

import json
import math
import os
import re
from array import array
from pathlib import Path

import numpy as np

from .timeline import Timeline

PLOTS = {
    "mood": ("mood.png", "Collective mood over time"),
    "crowd": ("crowd.png", "Participants and OSC rate"),
    "touch_map": ("touch_map.png", "Biocommunication map: where people touched"),
    "moments": ("moments.png", "Surges, limiter and flash guard"),
}
PARTICIPANT_WINDOW_S = 10.0     # without a timeline: a phone counts as present this long after it spoke
_MAX_POINTS = 2000              # longer series are averaged into this many bins for plotting
_CROWD = re.compile(r"^/crowd/([A-Za-z0-9_-]{1,32})/(emotion|touch|motion|leave)$")
_SENSOR = re.compile(r"^/sensor/([A-Za-z0-9_-]{1,32})/level$")


# ---- the events as columns -----------------------------------------------------------------

def _floats(a: array) -> np.ndarray:
    return np.frombuffer(a, dtype=np.float64) if a else np.zeros(0, np.float64)


def _num(v) -> float | None:
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        return None
    f = float(v)
    return f if math.isfinite(f) else None


class EventTable:
    """The session's events sorted into what the analysis needs, in one walk over them.

    Kept as compact arrays (under 50 bytes an event), never as an object per event:
    a day's session holds tens of millions."""

    def __init__(self, session):
        hz = float(session.tick_hz)
        self.kinds: dict[str, int] = {}
        ids: dict[str, int] = {}                # a phone's id -> its number in crowd_id
        times, who, left = array("d"), array("i"), array("b")
        touch_t, touch_x, touch_y = array("d"), array("d"), array("d")
        pulse, emotion, motion, every = array("d"), array("d"), array("d"), array("d")
        for te in session.events:
            ev = te.event
            s = te.tick / hz
            every.append(s)
            m = _CROWD.match(ev.addr)
            if m:
                pid, what = m.groups()
                kind = what
                times.append(s)
                who.append(ids.setdefault(pid, len(ids)))
                left.append(what == "leave")
                if what == "touch" and len(ev.args) >= 2:
                    x, y = _num(ev.args[0]), _num(ev.args[1])
                    if x is not None and y is not None:
                        touch_t.append(s)
                        touch_x.append(min(max(x, 0.0), 1.0))
                        touch_y.append(min(max(y, 0.0), 1.0))
                elif what == "emotion" and len(ev.args) >= 2:
                    v, a = _num(ev.args[0]), _num(ev.args[1])
                    if v is not None and a is not None:
                        emotion.extend((s, v, a))
                elif what == "motion" and ev.args:
                    e = _num(ev.args[0])
                    if e is not None:
                        motion.extend((s, e))
            elif _SENSOR.match(ev.addr):
                kind = "sensor"
            elif ev.addr == "/pulse":
                kind = "pulse"
                pulse.append(s)
            elif ev.addr.startswith(("/scene", "/param/", "/master/", "/blackout", "/record/")):
                kind = "operator"
            else:
                kind = "other"
            self.kinds[kind] = self.kinds.get(kind, 0) + 1
        self.crowd_s = _floats(times)
        self.crowd_id = np.frombuffer(who, dtype=np.intc) if who else np.zeros(0, np.intc)
        self.crowd_left = np.frombuffer(left, dtype=np.int8) != 0 if left else np.zeros(0, bool)
        self.touch_s = _floats(touch_t)
        self.touch_x = _floats(touch_x)
        self.touch_y = _floats(touch_y)
        self.pulse_s = _floats(pulse)
        self.emotion = _floats(emotion).reshape(-1, 3)      # (seconds, valence, arousal)
        self.motion = _floats(motion).reshape(-1, 2)        # (seconds, energy)
        self.all_s = _floats(every)
        self.distinct = len(ids)

    def participants_per_second(self, seconds: int) -> np.ndarray:
        """Phones present at the end of each second: their latest message is less than
        PARTICIPANT_WINDOW_S old and is not a /leave. Each phone's presence is a set of
        disjoint half-open intervals [first, last + window), counted with a difference array."""
        diff = np.zeros(seconds + 1, dtype=np.int64)
        since: dict[int, float] = {}
        until: dict[int, float] = {}

        def close(pid: int, end: float) -> None:
            # Second k is sampled at the instant k + 1: covered when start <= k + 1 < end.
            lo = max(0, math.ceil(since.pop(pid)) - 1)
            hi = min(seconds, math.ceil(end) - 1)
            until.pop(pid)
            if hi > lo:
                diff[lo] += 1
                diff[hi] -= 1

        for t, pid, gone in zip(self.crowd_s, self.crowd_id, self.crowd_left):
            if pid in until and t >= until[pid]:
                close(pid, until[pid])
            if gone:
                if pid in until:
                    close(pid, t)
                continue
            since.setdefault(pid, t)
            until[pid] = t + PARTICIPANT_WINDOW_S
        for pid in list(until):
            close(pid, until[pid])
        return np.cumsum(diff)[:seconds]


# ---- helpers --------------------------------------------------------------------------------

def _bins(x: np.ndarray, y: np.ndarray, reduce=np.mean) -> tuple[np.ndarray, np.ndarray]:
    """At most _MAX_POINTS points: equal-count bins, reduced with `reduce`."""
    n = len(x)
    if n <= _MAX_POINTS:
        return x, y
    k = int(math.ceil(n / _MAX_POINTS))
    m = n // k * k
    xs = x[:m].reshape(-1, k)[:, 0]
    ys = reduce(y[:m].astype(np.float64).reshape(-1, k), axis=1)
    return xs, ys


def _spans(flags: np.ndarray, t: np.ndarray, dt: float) -> list[tuple[float, float]]:
    """(start, length) in seconds of each run of True."""
    if len(flags) == 0:
        return []
    f = np.concatenate([[False], flags.astype(bool), [False]])
    edges = np.flatnonzero(np.diff(f.astype(np.int8)))
    starts, ends = edges[0::2], edges[1::2]
    return [(float(t[a]), float(t[b - 1] - t[a] + dt)) for a, b in zip(starts, ends)]


def _rising_edges(flags: np.ndarray) -> int:
    f = flags.astype(bool)
    return int(np.count_nonzero(f[1:] & ~f[:-1]) + (1 if len(f) and f[0] else 0))


def _stats(a: np.ndarray) -> dict | None:
    a = a[np.isfinite(a)] if a.dtype.kind == "f" else a
    if len(a) == 0:
        return None
    return {"mean": round(float(np.mean(a)), 4), "min": round(float(np.min(a)), 4),
            "max": round(float(np.max(a)), 4)}


def _figure(w: float = 10.0, h: float = 5.0):
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    fig = Figure(figsize=(w, h), dpi=100, layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def _time_axis(seconds: float) -> tuple[float, str]:
    if seconds >= 3 * 3600:
        return 3600.0, "hours"
    if seconds >= 180:
        return 60.0, "minutes"
    return 1.0, "seconds"


# ---- the plots -----------------------------------------------------------------------------

def _plot_mood(path: Path, ev: EventTable, tl: Timeline | None, duration: float) -> str:
    scale, unit = _time_axis(duration)
    fig = _figure(10, 5)
    ax = fig.add_subplot()
    colors = {"valence": "#e4572e", "arousal": "#f3a712", "agreement": "#29335c", "energy": "#669bbc"}
    if tl is not None and len(tl):
        t = tl.seconds()
        for name in ("valence", "arousal", "agreement", "energy"):
            x, y = _bins(t, tl.column(name))
            ax.plot(x / scale, y, label=name, color=colors[name], lw=1.3)
        # the built-in virtual crowd kept the mosaic alive there: its mood, not the audience's
        for k, (start, length) in enumerate(_spans(tl.column("attract") >= 0.5, t, 1.0 / tl.tick_hz)):
            ax.axvspan(start / scale, (start + length) / scale, color="#bbbbbb", alpha=0.35, lw=0,
                       label="attract mode (virtual crowd)" if k == 0 else None)
        note = "the replayed control state"
    else:
        if len(ev.emotion):
            e = ev.emotion
            for col, name in ((1, "valence"), (2, "arousal")):
                x, y = _bins(e[:, 0], e[:, col])
                ax.plot(x / scale, y, ".", ms=3, alpha=0.6, label=f"{name} (reported)", color=colors[name])
        if len(ev.motion):
            m = ev.motion
            x, y = _bins(m[:, 0], m[:, 1])
            ax.plot(x / scale, y, ".", ms=3, alpha=0.6, label="energy (reported motion)", color=colors["energy"])
        note = "no replay timeline: raw reports from the phones"
    ax.axhline(0.0, color="#999", lw=0.6)
    ax.set_ylim(-1.05, 1.05)
    ax.set_xlim(0, max(duration, 1e-3) / scale)
    ax.set_xlabel(unit)
    ax.set_ylabel("valence −1..1; arousal, agreement, energy 0..1")
    ax.set_title(f"Collective mood ({note})", fontsize=11)
    if ax.get_legend_handles_labels()[0]:
        ax.legend(loc="upper right", fontsize=8, ncols=4)
    fig.savefig(path)
    return path.name


def _plot_crowd(path: Path, ev: EventTable, tl: Timeline | None, duration: float,
                per_s: np.ndarray, osc_per_s: np.ndarray) -> str:
    scale, unit = _time_axis(duration)
    fig = _figure(10, 5.5)
    ax1, ax2 = fig.subplots(2, 1, sharex=True)
    if tl is not None and len(tl):
        x, y = _bins(tl.seconds(), tl.column("participants"))
        ax1.plot(x / scale, y, color="#29335c", lw=1.3)
        ax1.set_title("Participants (replayed control state)", fontsize=10)
    else:
        x, y = _bins(np.arange(len(per_s) + 1, dtype=np.float64), np.append(per_s, per_s[-1:]))
        ax1.step(x / scale, y, where="post", color="#29335c", lw=1.3)
        ax1.set_title(f"Participants (phones heard within {PARTICIPANT_WINDOW_S:g} s)", fontsize=10)
    ax1.set_ylabel("people")
    ax1.set_ylim(bottom=0)
    # One more point at the end so the last second is drawn as a full step.
    x, y = _bins(np.arange(len(osc_per_s) + 1, dtype=np.float64), np.append(osc_per_s, osc_per_s[-1:]))
    ax2.fill_between(x / scale, y, step="post", color="#669bbc", alpha=0.7)
    ax2.set_ylabel("messages / s")
    ax2.set_ylim(bottom=0)
    ax2.set_xlabel(unit)
    ax2.set_title("OSC rate", fontsize=10)
    ax2.set_xlim(0, max(duration, 1e-3) / scale)
    fig.savefig(path)
    return path.name


def _plot_touch_map(path: Path, ev: EventTable, aspect: float) -> tuple[str, list | None]:
    from matplotlib.colors import PowerNorm
    nx = 64
    ny = max(8, int(round(nx / aspect)))
    fig = _figure(8, 8 / aspect + 0.8)
    ax = fig.add_subplot()
    busiest = None
    h, _, _ = np.histogram2d(ev.touch_y, ev.touch_x, bins=(ny, nx), range=((0, 1), (0, 1)))
    if len(ev.touch_x):
        iy, ix = np.unravel_index(int(np.argmax(h)), h.shape)
        busiest = [round(float((ix + 0.5) / nx), 4), round(float((iy + 0.5) / ny), 4)]
        im = ax.imshow(h, extent=(0, 1, 1, 0), origin="upper", cmap="inferno", aspect=1 / aspect,
                       norm=PowerNorm(0.5, vmin=0, vmax=max(1.0, float(h.max()))), interpolation="bilinear")
        fig.colorbar(im, ax=ax, shrink=0.8, label="touches")
    else:
        ax.imshow(h, extent=(0, 1, 1, 0), origin="upper", cmap="inferno", aspect=1 / aspect, vmin=0, vmax=1)
        ax.text(0.5, 0.5, "no touches recorded", color="white", ha="center", va="center", fontsize=14)
    ax.set_xlabel("x (0 = left)")
    ax.set_ylabel("y (0 = top)")
    ax.set_title(f"Biocommunication map — {len(ev.touch_x)} touches", fontsize=11)
    fig.savefig(path)
    return path.name, busiest


def _plot_moments(path: Path, ev: EventTable, tl: Timeline | None, duration: float) -> str:
    scale, unit = _time_axis(duration)
    fig = _figure(10, 3.6)
    ax = fig.add_subplot()
    rows = [("surge", "#e4572e"), ("limiter_active", "#f3a712"), ("flash_limited", "#8e44ad")]
    labels = ["surges", "audio limiter", "flash guard"]
    if tl is not None and len(tl):
        t = tl.seconds()
        dt = 1.0 / tl.tick_hz
        for i, (name, color) in enumerate(rows):
            spans = [(a / scale, max(b / scale, duration / scale / 2000)) for a, b in _spans(tl.column(name), t, dt)]
            if spans:
                ax.broken_barh(spans, (i + 0.6, 0.8), color=color)
    else:
        ax.text(duration / scale / 2, 2, "no replay timeline: only operator pulses are known",
                ha="center", va="center", fontsize=9, color="#555")
    if len(ev.pulse_s):
        ax.vlines(ev.pulse_s / scale, 0.55, 3.45, color="#222", lw=0.8, linestyles="dotted",
                  label="/pulse")
        ax.legend(loc="upper right", fontsize=8)
    ax.set_yticks([1, 2, 3], labels)
    ax.set_ylim(0.4, 3.6)
    ax.set_xlim(0, max(duration, 1e-3) / scale)
    ax.set_xlabel(unit)
    ax.set_title("Moments: surges, limiter and flash-guard activity", fontsize=11)
    fig.savefig(path)
    return path.name


# ---- the entry point -----------------------------------------------------------------------

def _aspect(config: dict) -> float:
    r = config.get("render", {}) if isinstance(config, dict) else {}
    w, h = r.get("width"), r.get("height")
    if isinstance(w, (int, float)) and isinstance(h, (int, float)) and w > 0 and h > 0:
        return float(w) / float(h)
    return 16 / 9


def analyze(session, out_dir: str | os.PathLike, timeline: Timeline | None = None) -> dict:
    """Write the plots, summary.json and report.md into out_dir; returns the summary."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    ev = EventTable(session)
    hz = session.tick_hz
    duration = session.ticks / hz
    if timeline is not None and len(timeline):
        duration = max(duration, float(timeline.column("tick")[-1] + 1) / timeline.tick_hz)
    seconds = max(1, int(math.ceil(duration)))
    per_s = ev.participants_per_second(seconds)
    if timeline is not None and len(timeline):
        sec = (timeline.column("tick") // timeline.tick_hz).astype(np.int64)
        osc_per_s = np.bincount(np.minimum(sec, seconds - 1), weights=timeline.column("osc_count"),
                                minlength=seconds)
    else:
        osc_per_s = np.bincount(np.minimum(ev.all_s.astype(np.int64), seconds - 1), minlength=seconds).astype(np.float64)

    plots = {"mood": _plot_mood(out / PLOTS["mood"][0], ev, timeline, duration),
             "crowd": _plot_crowd(out / PLOTS["crowd"][0], ev, timeline, duration, per_s, osc_per_s)}
    plots["touch_map"], busiest = _plot_touch_map(out / PLOTS["touch_map"][0], ev, _aspect(session.config))
    plots["moments"] = _plot_moments(out / PLOTS["moments"][0], ev, timeline, duration)

    has_tl = timeline is not None and len(timeline) > 0
    summary = {
        "session": str(session.path), "kind": session.kind, "created": session.header.get("created", ""),
        "seed": session.seed, "tick_hz": hz, "ticks": session.ticks, "duration_s": round(duration, 3),
        "truncated": bool(session.truncated), "events": len(session.events),
        "events_by_kind": dict(sorted(ev.kinds.items())),
        "participants": {"distinct": ev.distinct,
                         "peak": int(timeline.column("participants").max()) if has_tl else int(per_s.max(initial=0)),
                         "mean": round(float(timeline.column("participants").mean()) if has_tl else float(per_s.mean()), 3)},
        # the mean over the session's true length (the last second may be a part of one)
        "osc_per_s": {"mean": round(float(osc_per_s.sum()) / max(duration, 1e-9), 3),
                      "peak": round(float(osc_per_s.max(initial=0)), 3)},
        "touches": {"count": int(len(ev.touch_x)),
                    "centroid": [round(float(ev.touch_x.mean()), 4), round(float(ev.touch_y.mean()), 4)] if len(ev.touch_x) else None,
                    "busiest_cell": busiest},
        "pulses": len(ev.pulse_s),
        "timeline": has_tl,
        "plots": {k: v for k, v in plots.items()},
    }
    if has_tl:
        c = timeline.columns()
        dt = 1.0 / timeline.tick_hz
        summary["mood"] = {k: _stats(c[k]) for k in ("valence", "arousal", "agreement", "energy")}
        surge_spans = _spans(c["surge"], timeline.seconds(), dt)
        summary["surges"] = {"count": _rising_edges(c["surge"]),
                             "at_s": [round(a, 3) for a, _ in surge_spans[:100]]}
        summary["attract"] = {"seconds": round(float(np.count_nonzero(c["attract"] >= 0.5)) * dt, 3),
                              "fraction": round(float(np.mean(c["attract"] >= 0.5)), 5)}
        summary["limiter"] = {"active_s": round(float(np.count_nonzero(c["limiter_active"])) * dt, 3),
                              "fraction": round(float(np.mean(c["limiter_active"])), 5)}
        summary["flash_guard"] = {"limited_ticks": int(np.count_nonzero(c["flash_limited"])),
                                  "fraction": round(float(np.mean(c["flash_limited"])), 5)}
    else:
        summary["mood"] = summary["surges"] = summary["limiter"] = summary["flash_guard"] = None
        summary["attract"] = None
    (out / "summary.json").write_text(json.dumps(summary, indent=2) + "\n", encoding="utf-8")
    (out / "report.md").write_text(_report(summary), encoding="utf-8")
    return summary


def _fmt_s(s: float) -> str:
    s = int(round(s))
    h, rem = divmod(s, 3600)
    m, sec = divmod(rem, 60)
    return f"{h} h {m:02d} min" if h else (f"{m} min {sec:02d} s" if m else f"{sec} s")


def _report(s: dict) -> str:
    name = Path(s["session"]).name
    lines = [f"# Session report: {name}", "",
             f"Recorded {s['created'] or 'at an unknown time'}; {_fmt_s(s['duration_s'])} "
             f"({s['ticks']} ticks at {s['tick_hz']} Hz), seed {s['seed']}, {s['events']} input events"
             + (" — **the file was cut short** (replayed up to its last whole line)" if s["truncated"] else "") + ".",
             ""]
    p = s["participants"]
    lines += [f"- People: {p['distinct']} distinct phones, at most {p['peak']} at once, {p['mean']:.1f} on average.",
              f"- OSC: {s['osc_per_s']['mean']:.1f} messages/s on average, peak {s['osc_per_s']['peak']:.0f}/s.",
              f"- Touches: {s['touches']['count']}"
              + (f", busiest around x {s['touches']['busiest_cell'][0]:.2f}, y {s['touches']['busiest_cell'][1]:.2f}"
                 if s["touches"]["busiest_cell"] else "") + ".",
              f"- Operator pulses: {s['pulses']}."]
    if s["timeline"]:
        m = s["mood"]
        lines += [f"- Mood: valence {m['valence']['mean']:+.2f} on average (from {m['valence']['min']:+.2f} to "
                  f"{m['valence']['max']:+.2f}), arousal {m['arousal']['mean']:.2f}, agreement {m['agreement']['mean']:.2f}, "
                  f"energy {m['energy']['mean']:.2f}.",
                  f"- Surges of the crowd (its own, not the operator's pulses): {s['surges']['count']}"
                  + (f", at {', '.join(f'{a:.1f}' for a in s['surges']['at_s'][:10])} s" if s['surges']['at_s'] else "")
                  + ".",
                  f"- Attract mode (the built-in virtual crowd, when nobody was there) ran {_fmt_s(s['attract']['seconds'])}"
                  f" ({100 * s['attract']['fraction']:.0f}% of the session): the mood figures include its mood then.",
                  f"- Audio limiter active {s['limiter']['active_s']:.1f} s; flash guard limited "
                  f"{s['flash_guard']['limited_ticks']} ticks."]
    else:
        lines += ["- No replay timeline was given: mood, surges, limiter and flash-guard figures are missing."]
    lines.append("")
    for key, (fname, title) in PLOTS.items():
        lines += [f"## {title}", "", f"![{title}]({fname})", ""]
    lines += ["All numbers: [summary.json](summary.json).", ""]
    return "\n".join(lines)
