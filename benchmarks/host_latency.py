#!/usr/bin/env python3
"""Is this machine fit for glitch-free audio? How late its scheduler wakes a real-time thread.

    python benchmarks/host_latency.py                    # 60 s, one probe per CPU
    python benchmarks/host_latency.py --seconds 600      # as long as the audio soak

An audio block of 256 frames at 48 kHz lasts 5.33 ms. JACK's cycle (and the callback inside
it) must run once in every such period; when the operating system, or the hypervisor under
a virtual machine, leaves a real-time thread waiting longer than one block, the device
underflows whatever the program does. This probe measures exactly that, as `cyclictest`
(rt-tests) does: one process per CPU, pinned to it, SCHED_FIFO where the rights allow,
sleeps 1 ms at a time against an absolute deadline and records how late it woke. It also
reads the CPU time the hypervisor stole from this guest (/proc/stat).

A machine for an exhibit should show no wake-up later than a block over ten minutes; a
shared cloud VM usually shows several a minute, even idle. `audio_run_soak.py` runs this
probe beside the installation, so its underflows can be set against the host's own gaps.

Exit 0 when no wake-up was later than a block, 1 otherwise, 2 when no probe could run.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from installation.ops.hostload import cpu_times, steal_percent  # noqa: E402

BLOCK_S = 256 / 48000          # the default audio block
INTERVAL_S = 0.001
FIFO_PRIORITY = 80             # above JACK's threads (jackd -R: 10), as cyclictest's usual -p 80: it
                               # measures the host, and its microseconds of work a millisecond delay no one


def probe(seconds: float, interval: float, block_s: float) -> dict:
    """Run in the child: sleep to absolute deadlines and record how late each wake-up was."""
    import signal
    stop = []
    # SIGTERM ends the probe early, with its report: a soak stops it when the run ends
    signal.signal(signal.SIGTERM, lambda *_: stop.append(True))
    fifo = True
    try:
        os.sched_setscheduler(0, os.SCHED_FIFO, os.sched_param(FIFO_PRIORITY))
    except (OSError, AttributeError):
        fifo = False
    clock = time.CLOCK_MONOTONIC
    late_ns = []                   # only the wake-ups later than 1 ms (or a block): few, no histogram
    gaps = []                      # when the ones later than a block happened (monotonic s)
    block_ns = block_s * 1e9
    worst = 0
    n = 0
    step = int(interval * 1e9)
    deadline = begun = time.clock_gettime_ns(clock) + step
    end = deadline + int(seconds * 1e9)
    while deadline < end and not stop:
        delay = deadline - time.clock_gettime_ns(clock)
        if delay > 0:
            time.sleep(delay / 1e9)
        late = time.clock_gettime_ns(clock) - deadline
        n += 1
        worst = max(worst, late)
        if late > min(1_000_000, block_ns):
            late_ns.append(late)
            if late > block_ns and len(gaps) < 10_000:
                gaps.append(round(deadline / 1e9, 3))
        deadline += step
        if late > step:            # resynchronise after a gap: it counts once, not as a burst
            deadline = time.clock_gettime_ns(clock) + step
    return {"cpu": os.sched_getaffinity(0).pop() if len(os.sched_getaffinity(0)) == 1 else -1,
            "fifo": fifo, "wakeups": n, "elapsed_s": round((time.clock_gettime_ns(clock) - begun) / 1e9, 2), "max_ms": round(worst / 1e6, 3),
            "later_than_1ms": sum(1 for x in late_ns if x > 1_000_000), "later_than_block": sum(1 for x in late_ns if x > block_ns), "gaps": gaps}


class HostLatency:
    """One probe process per CPU, started by `start()`, read by `finish()`."""

    def __init__(self, seconds: float, block_s: float = BLOCK_S):
        self.seconds = seconds
        self.block_s = block_s
        self.procs: list[subprocess.Popen] = []
        self.before: list[int] | None = None

    def start(self) -> "HostLatency":
        self.before = cpu_times()
        code = ("import json, os, sys; sys.path.insert(0, sys.argv[1]); os.sched_setaffinity(0, {int(sys.argv[2])}); "
                "from host_latency import probe; "
                "print(json.dumps(probe(float(sys.argv[3]), float(sys.argv[4]), float(sys.argv[5]))))")
        here = os.path.dirname(os.path.abspath(__file__))
        for cpu in sorted(os.sched_getaffinity(0)):
            self.procs.append(subprocess.Popen(
                [sys.executable, "-c", code, here, str(cpu), str(self.seconds), str(INTERVAL_S), str(self.block_s)],
                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True))
        return self

    def finish(self, timeout: float | None = None, now: bool = False) -> dict:
        """The report; `now` stops the probes first (they cover until then)."""
        per_cpu = []
        if now:
            for p in self.procs:
                if p.poll() is None:
                    p.terminate()
        for p in self.procs:
            try:
                out, err = p.communicate(timeout=timeout if timeout is not None else self.seconds + 30)
            except subprocess.TimeoutExpired:
                p.kill()
                out, err = p.communicate()
            if p.returncode == 0 and out.strip():
                per_cpu.append(json.loads(out))
            else:
                per_cpu.append({"error": (err.strip().splitlines() or ["no output"])[-1]})
        ok = [r for r in per_cpu if "error" not in r]
        return {
            "measured": bool(ok),
            "seconds": max((r["elapsed_s"] for r in ok), default=0.0),     # stopped early, or the whole
            "block_ms": round(self.block_s * 1e3, 3),
            "realtime_priority": bool(ok) and all(r["fifo"] for r in ok),
            "wakeups_later_than_block": sum(r["later_than_block"] for r in ok),
            "wakeups_later_than_1ms": sum(r["later_than_1ms"] for r in ok),
            "max_wakeup_latency_ms": max((r["max_ms"] for r in ok), default=None),
            "cpu_steal_percent": steal_percent(self.before, cpu_times()),
            "gap_times": sorted(t for r in ok for t in r["gaps"]),
            "per_cpu": [{k: v for k, v in r.items() if k != "gaps"} for r in per_cpu],
        }


def verdict(report: dict) -> str:
    if not report.get("measured", True):
        errors = "; ".join(c.get("error", "") for c in report.get("per_cpu", []))
        return f"not measured: no probe ran ({errors or 'none started'})"
    n = report["wakeups_later_than_block"]
    if n == 0:
        return (f"fit: no real-time wake-up was later than one {report['block_ms']} ms block "
                f"(worst {report['max_wakeup_latency_ms']} ms)")
    prio = "" if report["realtime_priority"] else " (without real-time priority: run as root or with rtprio rights)"
    return (f"not fit for glitch-free audio at this block size: {n} real-time wake-ups were later than one "
            f"{report['block_ms']} ms block in {report['seconds']:g} s (worst {report['max_wakeup_latency_ms']} ms, "
            f"CPU steal {report['cpu_steal_percent']}%){prio}; each such gap can underflow the device whatever the "
            f"program does")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--seconds", type=float, default=60.0, help="how long to probe (default 60)")
    ap.add_argument("--blocksize", type=int, default=256, help="the audio block, frames (default 256)")
    ap.add_argument("--rate", type=int, default=48000, help="the sample rate (default 48000)")
    ap.add_argument("--json", default="", help="also write the report here")
    args = ap.parse_args(argv)
    if args.seconds <= 0 or args.blocksize <= 0 or args.rate <= 0:
        ap.error("--seconds, --blocksize and --rate must be positive")
    report = HostLatency(args.seconds, args.blocksize / args.rate).start().finish()
    report["verdict"] = verdict(report)
    print(json.dumps(report, indent=2))
    if args.json:
        with open(args.json, "w") as f:
            f.write(json.dumps(report, indent=2) + "\n")
    if not report["measured"]:
        return 2
    return 0 if report["wakeups_later_than_block"] == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
