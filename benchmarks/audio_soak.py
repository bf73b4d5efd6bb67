#!/usr/bin/env python3
"""Audio soak: the real stream against JACK's dummy backend while the main thread is busy.

    python benchmarks/audio_soak.py                      # 10 minutes (issue 4's target)
    python benchmarks/audio_soak.py --seconds 30         # the short version

It starts its own JACK server (`jackd --no-realtime -d dummy -r 48000 -p 256`, under a
private name, unless --server names a running one), opens the installation's AudioOutput
on it with 64 moving voices, a dense swarm texture and pulses, and runs a 60 Hz main loop
that does what the frame loop does to the audio thread: it publishes the parameters every
tick, runs numba work with the GIL released (--nogil-ms per tick, like the swarm and the
renderer) and plain Python with the GIL held (--python-ms per tick, like input handling).

Reports callbacks, underflows, callback load (render time / block duration: median and
worst) and the machine's load average, as text and optionally --json. Exit 0 when there
was no underflow, 1 otherwise, 2 when JACK or PortAudio is missing.

The callback is native (installation/audio/native_callback.py) and never takes the GIL, so
--python-ms no longer reaches it; what is left is the machine's scheduling (a non-realtime
JACK server on a loaded machine has xruns of its own: try --realtime). The whole-program
version, `run` under a surge crowd, is benchmarks/audio_run_soak.py.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def server_up(name: str) -> bool:
    env = dict(os.environ, JACK_DEFAULT_SERVER=name, JACK_NO_START_SERVER="1")
    try:
        return subprocess.run(["jack_lsp"], env=env, capture_output=True, timeout=5).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


def start_jackd(name: str, rate: int, period: int, realtime: bool = False) -> subprocess.Popen:
    mode = ["--realtime"] if realtime else ["--no-realtime"]
    proc = subprocess.Popen(["jackd", "-n", name] + mode + ["-d", "dummy", "-r", str(rate), "-p", str(period)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    for _ in range(100):
        if server_up(name):
            return proc
        time.sleep(0.1)
    proc.terminate()
    raise RuntimeError("jackd did not come up in 10 s")


def make_busy_kernel():
    from numba import njit

    @njit(nogil=True, cache=True)
    def busy(n, seed):
        # a stand-in for a swarm step: arithmetic over a working set, GIL released
        acc = seed
        for i in range(n):
            acc = acc * 1.0000001 + (i & 7) * 1e-9
            if acc > 2.0:
                acc -= 1.0
        return acc

    return busy


def calibrate(busy, ms: float) -> int:
    busy(1000, 0.5)
    n = 200_000
    t0 = time.perf_counter()
    busy(n, 0.5)
    per = (time.perf_counter() - t0) / n
    return max(1, int(ms * 1e-3 / per))


def python_busy(ms: float) -> None:
    end = time.perf_counter() + ms * 1e-3
    x = 0
    while time.perf_counter() < end:
        x += sum(range(50))


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--seconds", type=float, default=600.0, help="how long to run (default 600 = 10 min)")
    ap.add_argument("--server", default="", help="use this running JACK server instead of starting one")
    ap.add_argument("--voices", type=int, default=64)
    ap.add_argument("--nogil-ms", type=float, default=8.0, help="numba work per tick with the GIL released")
    ap.add_argument("--python-ms", type=float, default=1.0, help="pure Python per tick, GIL held")
    ap.add_argument("--switch-interval", type=float, default=0.001, help="sys.setswitchinterval (s)")
    ap.add_argument("--blocksize", type=int, default=256)
    ap.add_argument("--realtime", action="store_true",
                    help="start jackd with realtime scheduling, as an exhibit machine should (needs rtprio rights)")
    ap.add_argument("--json", default="", help="also write the report here")
    args = ap.parse_args(argv)

    if not shutil.which("jackd"):
        print("audio_soak: jackd is missing (apt install jackd2)", file=sys.stderr)
        return 2
    name = args.server or f"living-mosaic-soak-{os.getpid()}"
    os.environ["JACK_DEFAULT_SERVER"] = name
    os.environ["JACK_NO_START_SERVER"] = "1"
    jack = None if server_up(name) else start_jackd(name, 48000, args.blocksize, args.realtime)

    import numpy as np

    from installation.audio.output import AudioOutput, AudioUnavailable, load_sounddevice, rescan
    from installation.audio.params import AudioParams
    from installation.audio.settings import AudioSettings
    try:
        sd = load_sounddevice()
    except AudioUnavailable as exc:
        print(f"audio_soak: {exc}", file=sys.stderr)
        return 2
    rescan(sd)
    sys.setswitchinterval(args.switch_interval)
    busy = make_busy_kernel()
    n_busy = calibrate(busy, args.nogil_ms)

    out = AudioOutput(AudioSettings(device="JACK", blocksize=args.blocksize)).start()
    if "JACK" not in out.stats()["audio_backend"]:
        print("audio_soak: no JACK device through PortAudio", file=sys.stderr)
        return 2
    rng = np.random.default_rng(1)
    p = AudioParams(0.8)
    x = rng.random(args.voices)
    y = rng.random(args.voices)
    tick_s = 1 / 60
    start = time.monotonic()
    next_tick = start
    next_report = start + 10.0
    first = out.stats()
    tick = 0
    late_ticks = 0
    try:
        while time.monotonic() - start < args.seconds:
            phase = tick / 600.0
            p.set_mood(float(np.sin(phase)), 0.5 + 0.5 * float(np.sin(phase * 1.7)), 0.5 + 0.5 * float(np.cos(phase)),
                       0.5 + 0.5 * float(np.sin(phase * 2.3)), args.voices)
            p.set_texture(0.8, 0.5 + 0.5 * float(np.sin(phase * 3.1)), 0.5 + 0.5 * float(np.cos(phase * 0.7)))
            x = (x + rng.normal(0, 0.01, args.voices)) % 1.0
            y = (y + rng.normal(0, 0.01, args.voices)) % 1.0
            for i in range(args.voices):
                p.set_voice(i, True, x[i], y[i], 0.2, 0.6, 0.7, i % 8, x[i] * 2 - 1)
            if rng.random() < 0.05:
                p.hit(float(rng.random()), float(rng.uniform(-1, 1)))
            out.publish(p)
            busy(n_busy, 0.5)
            python_busy(args.python_ms)
            tick += 1
            next_tick += tick_s
            delay = next_tick - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            else:
                late_ticks += 1
                next_tick = time.monotonic()
            if time.monotonic() >= next_report:
                s = out.stats()
                print(f"{time.monotonic() - start:7.1f} s  callbacks {s['audio_callbacks']}  "
                      f"underflows {s['audio_underflows'] - first['audio_underflows']}  "
                      f"load p50 {s['audio_load_p50']:.3f} max {s['audio_load_max']:.3f}  "
                      f"machine load {os.getloadavg()[0]:.2f}", flush=True)
                next_report += 10.0
        wall = time.monotonic() - start
        last = out.stats()
    finally:
        out.close()
        try:
            sd._terminate()              # let go of the JACK client while its server still runs
        except Exception:
            pass
        if jack is not None:
            jack.terminate()
            jack.wait(timeout=10)

    callbacks = last["audio_callbacks"] - first["audio_callbacks"]
    report = {
        "seconds": round(wall, 1),
        "voices": args.voices,
        "blocksize": args.blocksize,
        "callbacks": callbacks,
        "callbacks_expected": round(wall * 48000 / args.blocksize),
        "underflows": last["audio_underflows"] - first["audio_underflows"],
        "audio_errors": last["audio_errors"],
        "nonfinite_blocks": last["nonfinite_blocks"],
        "audio_load_p50": last["audio_load_p50"],
        "audio_load_max": last["audio_load_max"],
        "audio_callback_ms_max": last["audio_callback_ms_max"],
        "lufs": last["lufs"],
        "true_peak_max_db": last["true_peak_max_db"],
        "main_ticks": tick,
        "main_late_ticks": late_ticks,
        "nogil_ms": args.nogil_ms,
        "python_ms": args.python_ms,
        "switch_interval_s": args.switch_interval,
        "jack_realtime": bool(args.realtime),
        "machine_load_1min": round(os.getloadavg()[0], 2),
        "cpu_count": os.cpu_count(),
    }
    print(json.dumps(report, indent=2))
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=2) + "\n")
    return 0 if report["underflows"] == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
