#!/usr/bin/env python3
"""Soak test: hours of `run --headless --record` fed by the virtual crowd, watched from outside.

    python benchmarks/soak.py                       # one hour (the target of issue 7)
    python benchmarks/soak.py --duration 60 --warmup 15 --interval 2   # a short one, as CI runs it

It starts the installation headless with recording on, points status-over-OSC at a local
listener (for fps over time), starts `crowd` against the installation's OSC port, and
every `--interval` seconds samples the process from /proc: resident memory (VmRSS), open
file descriptors (/proc/PID/fd) and threads. After the warm-up (counted from the first
status message, i.e. once the frame loop runs) it compares the start of the steady state
with its end (medians of a few samples, so one GC moment does not decide):

- RSS must not grow by more than --max-rss-growth-mb (20 MiB),
- the open-file count must not grow (a leak of sockets or session files),
- the thread count must not grow,
- fps must hold: the last window's median at least --min-fps-ratio (0.9) of the first's,
- the run must exit 0 and leave a complete session (its last line `{"end": true, ...}`).

Exit status 0 when all hold, 1 when one fails (the report says which), 2 on bad usage.
Linux only (/proc).
"""
from __future__ import annotations

import argparse
import json
import math
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


# -- sampling -------------------------------------------------------------------------------

def proc_sample(pid: int | str) -> dict | None:
    """RSS (MiB), open fds and threads of a live process; None once it has gone."""
    base = Path("/proc") / str(pid)
    try:
        rss_kb = threads = None
        for line in (base / "status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                rss_kb = int(line.split()[1])
            elif line.startswith("Threads:"):
                threads = int(line.split()[1])
        fds = len(os.listdir(base / "fd"))
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return None
    if rss_kb is None:  # a zombie has no memory left to report
        return None
    return {"rss_mb": rss_kb / 1024.0, "fds": fds, "threads": threads or 0}


class StatusListener:
    """Collects /status/fps (and the scene) the installation sends once a second."""

    def __init__(self):
        from pythonosc.osc_message import OscMessage
        self._parse = OscMessage
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.settimeout(0.2)
        self.port = self.sock.getsockname()[1]
        self.first_at: float | None = None
        self.fps: float | None = None
        self.scene = ""
        self.messages = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="soak-status", daemon=True)

    def start(self) -> "StatusListener":
        self._thread.start()
        return self

    def _run(self):
        while not self._stop.is_set():
            try:
                data = self.sock.recv(65536)
            except socket.timeout:
                continue
            except OSError:
                return
            try:
                m = self._parse(data)
            except Exception:  # noqa: BLE001 - a stray datagram is not our concern
                continue
            self.messages += 1
            if self.first_at is None:
                self.first_at = time.monotonic()
            if m.address == "/status/fps" and m.params:
                self.fps = float(m.params[0])
            elif m.address == "/status/scene" and m.params:
                self.scene = str(m.params[0])

    def close(self):
        self._stop.set()
        self._thread.join(timeout=2)
        self.sock.close()


def free_udp_port() -> int:
    """A UDP port free on every interface, as the run's listener binds it."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("0.0.0.0", 0))
        return s.getsockname()[1]


# -- analysis (pure: tested with made-up samples) -----------------------------------------

def _median(xs):
    xs = [x for x in xs if x is not None and not (isinstance(x, float) and math.isnan(x))]
    return statistics.median(xs) if xs else None


def analyse(samples: list[dict], warmup_until: float, *, max_rss_growth_mb: float = 20.0,
            min_fps_ratio: float = 0.9, window: int = 3) -> dict:
    """Growth after warm-up. `samples`: dicts with t, rss_mb, fds, threads and maybe fps."""
    steady = [s for s in samples if s["t"] >= warmup_until]
    report: dict = {"samples": len(samples), "steady_samples": len(steady), "failures": []}
    if len(steady) < 2:
        report["failures"].append(f"only {len(steady)} samples after the warm-up: run longer or sample more often")
        return report
    w = max(1, min(window, len(steady) // 2))
    head, tail = steady[:w], steady[-w:]
    for key in ("rss_mb", "fds", "threads", "fps"):
        a, b = _median([s.get(key) for s in head]), _median([s.get(key) for s in tail])
        report[key] = {"start": a, "end": b,
                       "min": min((s[key] for s in steady if s.get(key) is not None), default=None),
                       "max": max((s[key] for s in steady if s.get(key) is not None), default=None)}
    rss = report["rss_mb"]
    rss["growth"] = rss["end"] - rss["start"]
    rss["peak_growth"] = rss["max"] - rss["start"]
    if rss["growth"] > max_rss_growth_mb:
        report["failures"].append(f"RSS grew {rss['growth']:.1f} MiB after warm-up (limit {max_rss_growth_mb:g} MiB)")
    for key, what in (("fds", "open files"), ("threads", "threads")):
        r = report[key]
        r["growth"] = r["end"] - r["start"]
        if r["growth"] > 0:
            report["failures"].append(f"{what} grew from {r['start']:g} to {r['end']:g} after warm-up")
    fps = report["fps"]
    if fps["start"] and fps["end"] is not None:
        fps["ratio"] = fps["end"] / fps["start"]
        if fps["ratio"] < min_fps_ratio:
            report["failures"].append(f"fps fell from {fps['start']:.1f} to {fps['end']:.1f} "
                                      f"(below {min_fps_ratio:.0%} of the start)")
    return report


def session_complete(path: Path) -> tuple[bool, str]:
    """Whether the session file ends with its clean-end line."""
    try:
        with open(path, "rb") as fh:
            fh.seek(0, os.SEEK_END)
            fh.seek(max(0, fh.tell() - 4096))
            last = fh.read().splitlines()[-1:]
    except OSError as exc:
        return False, f"session {path}: {exc.strerror or exc}"
    try:
        obj = json.loads(last[0]) if last else None
    except json.JSONDecodeError:
        obj = None
    if isinstance(obj, dict) and obj.get("end") is True:
        return True, f"session complete, {obj.get('ticks')} ticks"
    return False, f"session {path} has no clean end line"


# -- the soak -----------------------------------------------------------------------------

def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--duration", type=float, default=3600.0, help="seconds of running (default 3600)")
    p.add_argument("--warmup", type=float, default=None,
                   help="seconds after the loop starts that do not count (default: 20%% of the duration, at most 120)")
    p.add_argument("--interval", type=float, default=5.0, help="seconds between samples (default 5)")
    p.add_argument("--participants", type=int, default=12, help="size of the virtual crowd (default 12)")
    p.add_argument("--mood", default="mixed", choices=("calm", "joyful", "tense", "surge", "mixed"))
    p.add_argument("--config", help="configuration file for the run")
    p.add_argument("--scene", help="scene to run")
    p.add_argument("--set", dest="sets", action="append", default=[], metavar="SECTION.KEY=VALUE",
                   help="passed to `run --set` (repeatable)")
    p.add_argument("--out", help="folder for the session, summary, run log and report (default: a temporary folder)")
    p.add_argument("--json", help="write the report here as JSON")
    p.add_argument("--max-rss-growth-mb", type=float, default=20.0)
    p.add_argument("--min-fps-ratio", type=float, default=0.9)
    p.add_argument("--no-status", action="store_true", help="do not ask the run for status over OSC")
    p.add_argument("--start-timeout", type=float, default=300.0,
                   help="seconds allowed for start-up (a cold numba compile) before the loop must run")
    args = p.parse_args(argv)
    if not Path("/proc/self/status").exists():
        p.error("the soak samples /proc: it runs on Linux only")
    if args.duration <= 0 or args.interval <= 0:
        p.error("--duration and --interval must be > 0")
    if args.warmup is None:
        args.warmup = min(120.0, 0.2 * args.duration)
    return args


def _cli(*words: str) -> list[str]:
    return [sys.executable, str(ROOT / "run_installation.py"), *words]


def main(argv=None) -> int:
    args = parse_args(argv)
    out = Path(args.out) if args.out else Path(tempfile.mkdtemp(prefix="soak-"))
    out.mkdir(parents=True, exist_ok=True)
    session, summary, run_log = out / "soak-session.jsonl", out / "summary.json", out / "run.log"
    status = None if args.no_status else StatusListener().start()
    osc_port = free_udp_port()     # after the listener's own socket, which could get it otherwise

    run_cmd = _cli("run", "--headless", "--record", str(session), "--summary", str(summary),
                   "--osc-port", str(osc_port), "--duration", f"{args.duration:g}")
    if args.config:
        run_cmd += ["--config", args.config]
    if args.scene:
        run_cmd += ["--scene", args.scene]
    sets = list(args.sets)
    if status is not None:
        sets += [f'status.targets=["127.0.0.1:{status.port}"]', "status.interval_s=1.0"]
    for s in sets:
        run_cmd += ["--set", s]
    env = dict(os.environ, SDL_VIDEODRIVER=os.environ.get("SDL_VIDEODRIVER", "dummy"),
               SDL_AUDIODRIVER=os.environ.get("SDL_AUDIODRIVER", "dummy"))

    print(f"soak: {args.duration:g} s, warm-up {args.warmup:g} s, sample every {args.interval:g} s, "
          f"{args.participants} virtual participants; files in {out}", flush=True)
    t0 = time.monotonic()
    log_fh = open(run_log, "wb")
    run = subprocess.Popen(run_cmd, stdout=log_fh, stderr=subprocess.STDOUT, env=env, cwd=ROOT)
    # The crowd outlives the run's wall-clock duration by the start-up time; it is ended below.
    crowd = subprocess.Popen(_cli("crowd", "--to", f"127.0.0.1:{osc_port}", "--participants", str(args.participants),
                                  "--duration", f"{args.duration + args.start_timeout:g}", "--mood", args.mood),
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env, cwd=ROOT)
    samples: list[dict] = []
    live_at: float | None = None
    failures: list[str] = []
    try:
        next_at = time.monotonic()
        while run.poll() is None:
            now = time.monotonic()
            if live_at is None:
                if status is not None and status.first_at is not None:
                    live_at = status.first_at
                elif status is None and session.exists() and session.stat().st_size > 0:
                    live_at = now
                elif now - t0 > args.start_timeout:
                    failures.append(f"the frame loop did not start within {args.start_timeout:g} s")
                    break
            if now >= next_at:
                s = proc_sample(run.pid)
                if s is not None:
                    s["t"] = round(now - t0, 3)
                    s["fps"] = status.fps if status is not None else None
                    samples.append(s)
                    print(f"  t={s['t']:8.1f}s rss={s['rss_mb']:8.1f} MiB fds={s['fds']:4d} "
                          f"threads={s['threads']:3d} fps={'-' if s['fps'] is None else format(s['fps'], '.1f')}",
                          flush=True)
                next_at += args.interval
            time.sleep(min(0.2, max(0.0, next_at - time.monotonic())))
        if run.poll() is None:
            run.send_signal(signal.SIGTERM)  # a clean end: the session still gets its end line
        try:
            rc = run.wait(timeout=args.start_timeout + args.duration)
        except subprocess.TimeoutExpired:
            run.kill()
            rc = run.wait()
            failures.append("the run did not end by itself; killed")
    except KeyboardInterrupt:
        run.send_signal(signal.SIGINT)
        rc = run.wait()
        failures.append("interrupted")
    finally:
        crowd.terminate()
        try:
            crowd.wait(timeout=10)
        except subprocess.TimeoutExpired:
            crowd.kill()
            crowd.wait()
        log_fh.close()
        if status is not None:
            status.close()

    warmup_until = (live_at - t0 if live_at is not None else 0.0) + args.warmup
    report = analyse(samples, warmup_until, max_rss_growth_mb=args.max_rss_growth_mb,
                     min_fps_ratio=args.min_fps_ratio)
    report["failures"][:0] = failures
    report["run_exit"] = rc
    if rc != 0:
        tail = run_log.read_text(errors="replace").strip().splitlines()[-5:]
        report["failures"].append(f"the run exited with status {rc}: " + " | ".join(tail))
    ok, why = session_complete(session)
    report["session"] = why
    if not ok:
        report["failures"].append(why)
    try:
        report["summary"] = json.loads(summary.read_text())
    except (OSError, json.JSONDecodeError):
        report["summary"] = None
        report["failures"].append(f"no summary at {summary}")
    report.update(duration_s=args.duration, warmup_until_s=round(warmup_until, 1), out=str(out))
    report["series"] = samples

    print_report(report)
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=2))
    return 1 if report["failures"] else 0


def print_report(r: dict) -> None:
    def fmt(x, spec=".1f"):
        return "-" if x is None else format(x, spec)

    print(f"soak report ({r['steady_samples']} of {r['samples']} samples after the warm-up at {r.get('warmup_until_s')} s)")
    for key, unit in (("rss_mb", "MiB"), ("fds", ""), ("threads", ""), ("fps", "")):
        v = r.get(key)
        if v:
            print(f"  {key:8s} start {fmt(v['start'])} end {fmt(v['end'])} min {fmt(v['min'])} max {fmt(v['max'])} {unit}"
                  + (f"  growth {fmt(v.get('growth'))}" if "growth" in v else ""))
    s = r.get("summary") or {}
    if s:
        print(f"  summary: {s.get('frames')} frames, fps_mean {fmt(s.get('fps_mean'))}, p99 {fmt(s.get('frame_ms_p99'))} ms, "
              f"osc {s.get('osc_received')} received / {s.get('osc_rejected')} rejected, "
              f"audio underflows {s.get('audio_underflows')}")
    print(f"  {r.get('session')}")
    print("PASS" if not r["failures"] else "FAIL: " + "; ".join(r["failures"]))


if __name__ == "__main__":
    sys.exit(main())
