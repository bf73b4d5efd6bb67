#!/usr/bin/env python3
"""Audio soak of the whole installation: `run` on JACK's dummy server under a surge crowd.

    python benchmarks/audio_run_soak.py                  # 60 s
    python benchmarks/audio_run_soak.py --seconds 600    # issue 4's ten minutes

It starts its own JACK server (`jackd --no-realtime -d dummy -r 48000 -p 256`, under a
private name; `--realtime` for `jackd --realtime`), runs `run_installation.py run --windowed` with SDL's dummy video driver (the
full pipeline: swarm, renderer, flash guard, audio mailbox; `--headless` would use the
offline audio driver instead) and `--set audio.device=JACK`, and feeds it the `crowd`
command (default 64 phones in a surge) on a free OSC port. It reads the run's `--summary`
and prints underflows, callbacks (and the count real time predicts), callback load and the
machine's load average; `--json` writes the same report. Beside the run, host_latency.py
measures how often the machine itself left a real-time thread waiting longer than a block
(`host_gaps_per_10s`, next to `underflows_per_10s`): on a virtual machine those gaps, not the
program, set the floor of underflows.

Exit 0 with no underflow, 1 with some, 2 when JACK or the run is missing or failed.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(Path(__file__).resolve().parent))
from audio_soak import start_jackd  # noqa: E402  (the sibling script starts JACK the same way)
from soak import free_udp_port  # noqa: E402  (and the hour soak probes ports the same way)
from host_latency import HostLatency, verdict  # noqa: E402  (the host's own scheduling gaps, measured beside the run)


def realtime_threads(pid: int) -> bool:
    """Whether any thread of the process runs under a real-time policy (jackd -R falls back
    to ordinary scheduling, with a warning only, where rtprio is refused)."""
    try:
        tids = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return False
    for tid in tids:
        try:
            if os.sched_getscheduler(int(tid)) in (os.SCHED_FIFO, os.SCHED_RR):
                return True
        except OSError:
            continue
    return False


class UnderflowWatch:
    """The run's /status/audio (total underflows), sent once a second: when they happened."""

    def __init__(self):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.settimeout(0.2)
        self.port = self.sock.getsockname()[1]
        self.samples: list[tuple[float, int]] = []      # (seconds since the first status, total)
        self.t0: float | None = None                    # time.monotonic() of the first status
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self):
        from pythonosc.osc_message import OscMessage
        while not self._stop.is_set():
            try:
                data = self.sock.recv(65536)
            except OSError:
                continue
            try:
                msgs = [OscMessage(data)]
            except Exception:
                from pythonosc.osc_bundle import OscBundle
                try:
                    msgs = [c for c in OscBundle(data) if isinstance(c, OscMessage)]
                except Exception:
                    continue
            for m in msgs:
                if m.address == "/status/audio" and m.params:
                    now = time.monotonic()
                    self.t0 = now if self.t0 is None else self.t0
                    self.samples.append((round(now - self.t0, 1), int(m.params[0])))

    def close(self):
        self._stop.set()
        self._thread.join(timeout=2)
        self.sock.close()

    def per_window(self, seconds: float = 10.0) -> list[int]:
        """Underflows in each window of the run (from the first status message)."""
        out: list[int] = []
        last = 0
        for t, total in self.samples:
            k = int(t // seconds)
            while len(out) <= k:
                out.append(0)
            out[k] += total - last
            last = total
        return out

    def events_per_window(self, times: list[float], seconds: float = 10.0) -> list[int]:
        """Events at monotonic `times` (the host's gaps) in the same windows as per_window."""
        out = [0] * max(len(self.per_window(seconds)), 1)
        for t in times:
            k = int((t - (self.t0 or 0.0)) // seconds)
            if 0 <= k < len(out):
                out[k] += 1
        return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--seconds", type=float, default=60.0, help="length of the run (default 60)")
    ap.add_argument("--participants", type=int, default=180,
                    help="phones of the virtual crowd (default 180: about 2,000 msg/s, issue 4's load)")
    ap.add_argument("--mood", default="surge")
    ap.add_argument("--blocksize", type=int, default=256)
    ap.add_argument("--realtime", action="store_true",
                    help="start jackd with realtime scheduling, as an exhibit machine should (needs rtprio rights); "
                         "its clients' process threads, the audio callback's included, then run SCHED_FIFO")
    ap.add_argument("--set", action="append", default=[], metavar="SECTION.KEY=VALUE",
                    help="extra config override for the run (repeatable)")
    ap.add_argument("--json", default="", help="also write the report here")
    args = ap.parse_args(argv)

    if not (shutil.which("jackd") and shutil.which("jack_lsp")):
        print("audio_run_soak: jackd is missing (apt install jackd2)", file=sys.stderr)
        return 2
    name = f"living-mosaic-run-soak-{os.getpid()}"
    env = dict(os.environ, JACK_DEFAULT_SERVER=name, JACK_NO_START_SERVER="1", SDL_VIDEODRIVER="dummy",
               SDL_AUDIODRIVER="dummy", PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    try:
        jack = start_jackd(name, 48000, args.blocksize, args.realtime)
    except RuntimeError as exc:
        print(f"audio_run_soak: {exc}", file=sys.stderr)
        return 2
    run = crowd = host = None
    tmp = tempfile.TemporaryDirectory()
    summary_path = Path(tmp.name) / "summary.json"
    try:
        # the watch's socket first: a port picked and released before it was bound could be
        # the one the kernel then hands the watch, and the run could not listen there
        watch = UnderflowWatch()
        port = free_udp_port()
        cmd = [sys.executable, str(ROOT / "run_installation.py"), "run", "--windowed", "--duration", str(args.seconds),
               "--osc-port", str(port), "--summary", str(summary_path), "--set", "audio.device=JACK",
               "--set", f"audio.blocksize={args.blocksize}",
               "--set", f'status.targets=["127.0.0.1:{watch.port}"]', "--set", "status.interval_s=1.0"]
        for s in args.set:
            cmd += ["--set", s]
        load0 = os.getloadavg()[0]
        # beyond the run's length: it counts its --duration from its first frame, after
        # start-up; the probes are stopped when it ends, so they cover all of it
        host = HostLatency(args.seconds + 600, args.blocksize / 48000).start()
        run = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        # the crowd outlasts the run: the surge holds to the last frame
        crowd = subprocess.Popen([sys.executable, str(ROOT / "run_installation.py"), "crowd", "--to", f"127.0.0.1:{port}",
                                  "--participants", str(args.participants), "--mood", args.mood,
                                  "--duration", str(args.seconds + 120)],
                                 env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(min(3.0, args.seconds / 2))     # the client is active: its RT thread exists
        rt_granted = realtime_threads(jack.pid)
        log, _ = run.communicate(timeout=args.seconds + 180)
        load1 = os.getloadavg()[0]
        host_report = host.finish(timeout=60, now=True)
        if run.returncode != 0 or not summary_path.exists():
            print(f"audio_run_soak: the run failed (exit {run.returncode}):\n{log[-2000:]}", file=sys.stderr)
            return 2
        s = json.loads(summary_path.read_text())
        watch.close()
    finally:
        for p in (crowd, run, *(host.procs if host else ())):
            if p is not None and p.poll() is None:
                p.terminate()
                try:
                    p.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    p.kill()
        jack.terminate()
        jack.wait(timeout=10)
        tmp.cleanup()

    if "JACK" not in str(s.get("audio_backend")):
        print(f"audio_run_soak: the run did not play on JACK (audio_backend {s.get('audio_backend')!r}):\n"
              f"{log[-2000:]}", file=sys.stderr)
        return 2
    report = {
        "seconds": args.seconds,
        "wall_s": s.get("wall_s"),
        "participants": args.participants,
        "mood": args.mood,
        "jack_realtime": bool(args.realtime),
        "jack_realtime_granted": rt_granted,
        "audio_backend": s.get("audio_backend"),
        "audio_callbacks": s.get("audio_callbacks"),
        "callbacks_expected": round(float(s.get("wall_s", 0.0)) * 48000 / args.blocksize),
        "audio_underflows": s.get("audio_underflows"),
        "underflows_per_10s": watch.per_window(10.0),
        "audio_errors": s.get("audio_errors"),
        "audio_load_p50": s.get("audio_load_p50"),
        "audio_load_max": s.get("audio_load_max"),
        "participants_peak": s.get("participants_peak"),
        "osc_received": s.get("osc_received"),
        "osc_msgs_per_s": round(float(s.get("osc_received") or 0) / max(float(s.get("wall_s") or 0.0), 1e-9), 1),
        "fps_mean": s.get("fps_mean"),
        "frame_ms_p50": s.get("frame_ms_p50"),
        "frame_ms_p99": s.get("frame_ms_p99"),
        "machine_load_1min": [round(load0, 2), round(load1, 2)],
        # the host's own gaps, measured beside the run (host_latency.py): underflows in the
        # windows where a real-time thread could not run for a whole block are the machine's
        "host_wakeups_later_than_block": host_report["wakeups_later_than_block"],
        "host_gaps_per_10s": watch.events_per_window(host_report["gap_times"], 10.0),
        "host_max_wakeup_latency_ms": host_report["max_wakeup_latency_ms"],
        "host_probe_realtime": host_report["realtime_priority"],
        "cpu_steal_percent": host_report["cpu_steal_percent"],
        "host_verdict": verdict(host_report),
        "cpu_count": os.cpu_count(),
    }
    print(json.dumps(report, indent=2))
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=2) + "\n")
    return 0 if report["audio_underflows"] == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
