#!/usr/bin/env python3
"""OSC flood: does the listener lose anything at the socket while the frame loop works?

    python benchmarks/osc_flood.py                      # 20,000 msg/s, 8 senders, 10 s, the swarm
    python benchmarks/osc_flood.py --seconds 3 --kernel spin --kernel-ms 8 --json out.json

A separate process sends `--rate` messages a second on loopback from `--senders` sockets
(as many phones: distinct source ports), a mix of /crowd/{id}/emotion, touch and motion.
This process runs the real `OscListener` and, in its main thread at `--tick-hz`, the frame
loop's input side: drain the queue, apply the events to the real `CrowdControl`, update,
fill, then a numba kernel that releases the GIL:
- `--kernel swarm`: the installation's `Swarm.step` at `--particles` (default: the config's);
- `--kernel spin`: a small nogil kernel sized to take about `--kernel-ms` per tick;
- `--kernel none`: no kernel.
By default the per-sender rate limit is lifted so that every message takes the full path
(parse, validate, queue, apply); `--rate-limit` keeps the configured limit instead.

Reported: sent, received (counted by the listener), loss = sent - received, the kernel's own
drop counter for the socket (/proc/net/udp, Linux), accepted/rejected, and the tick times.
Exit status 0 when nothing was lost, 1 otherwise.
"""
from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


# ---- the senders (a child process, so their Python does not share our GIL) ------------------
def _pool(k: int) -> list[bytes]:
    from pythonosc.osc_message_builder import OscMessageBuilder
    out = []
    for i in range(64):
        kind = i % 4
        b = OscMessageBuilder(f"/crowd/phone{k}/" + ("emotion", "touch", "motion", "touch")[kind])
        vals = {0: (i / 64.0 * 2 - 1, i / 64.0), 1: (i / 64.0, 1 - i / 64.0, 0.8),
                2: (i / 64.0,), 3: (1 - i / 64.0, i / 64.0)}[kind]
        for v in vals:
            b.add_arg(float(v), "f")
        out.append(b.build().dgram)
    return out


def _send(port: int, rate: float, senders: int, seconds: float, start_at: float, conn) -> None:
    import socket
    socks = []
    for _ in range(senders):
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        s.bind(("127.0.0.1", 0))
        socks.append(s)
    pools = [_pool(k) for k in range(senders)]
    target = ("127.0.0.1", port)
    slot = 0.001                                  # pace in 1 ms slots
    per_slot = rate * slot
    sent = errors = 0
    while time.time() < start_at:
        time.sleep(0.001)
    t0 = time.perf_counter()
    due = 0.0
    i = 0
    while True:
        now = time.perf_counter() - t0
        if now >= seconds:
            break
        due += per_slot
        while sent + errors < int(due):
            k = i % senders
            try:
                socks[k].sendto(pools[k][(i // senders) % 64], target)
                sent += 1
            except OSError:
                errors += 1
            i += 1
        ahead = (sent + errors) / rate - (time.perf_counter() - t0)
        if ahead > 0:
            time.sleep(ahead)
    conn.send({"sent": sent, "errors": errors, "send_s": time.perf_counter() - t0})
    for s in socks:
        s.close()


# ---- a stand-in kernel -------------------------------------------------------------------------
def _spin_kernel():
    import numpy as np
    from numba import njit

    @njit(nogil=True, cache=True)
    def spin(x, v, reps):
        for _ in range(reps):
            for i in range(x.shape[0]):
                v[i] = np.float32(0.99) * v[i] + np.float32(0.01) * np.sin(x[i])
                x[i] += v[i] * np.float32(0.016)
        return x[0]

    x = np.linspace(0, 6.28, 100_000).astype(np.float32)
    v = np.zeros_like(x)
    spin(x, v, 1)
    return spin, x, v


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rate", type=float, default=20000.0, help="messages per second in all")
    ap.add_argument("--senders", type=int, default=8)
    ap.add_argument("--seconds", type=float, default=10.0)
    ap.add_argument("--tick-hz", type=float, default=60.0)
    ap.add_argument("--kernel", choices=("swarm", "spin", "none"), default="swarm")
    ap.add_argument("--particles", type=int, default=None, help="swarm size (default: the config's)")
    ap.add_argument("--kernel-ms", type=float, default=8.0, help="time per tick of --kernel spin")
    ap.add_argument("--rate-limit", action="store_true", help="keep the configured per-sender rate limit")
    ap.add_argument("--json", metavar="PATH")
    args = ap.parse_args(argv)

    from installation.config import load_config
    from installation.crowd.control import CrowdControl
    from installation.osc.listener import OscListener
    from installation.render.look import LookParams
    from installation.sim.params import StepParams

    sets = ["osc.host=127.0.0.1", "osc.port=0", "osc.queue_max=10000000", "attract.enabled=false"]
    if not args.rate_limit:
        sets += ["osc.rate_per_sender=1000000.0", "osc.burst_per_sender=1000000.0"]
    if args.particles:
        sets.append(f"sim.particles={args.particles}")
    cfg = load_config(sets=sets, env={})
    control = CrowdControl(cfg)
    step = StepParams.from_settings(cfg.sim)
    look = LookParams.from_settings(cfg.render)

    print(f"preparing the {args.kernel} kernel ...", flush=True)
    if args.kernel == "swarm":
        from installation.sim.swarm import Swarm
        swarm = Swarm(cfg.sim)
        swarm.step(step)
        kernel = lambda: swarm.step(step)  # noqa: E731
        what = f"Swarm.step, {swarm.n} particles"
    elif args.kernel == "spin":
        spin, x, v = _spin_kernel()
        t = time.perf_counter()
        spin(x, v, 10)
        reps = max(1, round(args.kernel_ms / ((time.perf_counter() - t) * 100.0)))
        kernel = lambda: spin(x, v, reps)  # noqa: E731
        what = f"nogil spin kernel, {reps} passes over 100k floats"
    else:
        kernel = lambda: None  # noqa: E731
        what = "none"

    listener = OscListener(cfg.osc, cfg.base_dir).start()
    ctx = mp.get_context("spawn")
    parent, child = ctx.Pipe()
    start_at = time.time() + 1.5                 # the child needs a moment to start
    proc = ctx.Process(target=_send, args=(listener.port, args.rate, args.senders, args.seconds, start_at, child))
    proc.start()
    print(f"flooding UDP 127.0.0.1:{listener.port}: {args.rate:,.0f} msg/s from {args.senders} senders for "
          f"{args.seconds:g} s; frame loop at {args.tick_hz:g} Hz with {what}", flush=True)

    tick_s = 1.0 / args.tick_hz
    drain_ms, kernel_ms, control_ms, tick_ms, per_tick = [], [], [], [], []
    tick = 0
    result = None
    t_next = t_loop = time.perf_counter()
    quiet_since = None
    last_received = -1
    while True:
        t0 = time.perf_counter()
        events = listener.drain()
        t1 = time.perf_counter()
        for ev in events:
            control.apply(ev, tick)
        control.update(tick)
        control.fill(step, look)
        t2 = time.perf_counter()
        kernel()
        t3 = time.perf_counter()
        drain_ms.append((t1 - t0) * 1e3)
        control_ms.append((t2 - t1) * 1e3)
        kernel_ms.append((t3 - t2) * 1e3)
        tick_ms.append((t3 - t0) * 1e3)
        per_tick.append(len(events))
        tick += 1
        if result is None and parent.poll():
            result = parent.recv()
        if result is not None:
            # the senders are done: carry on until nothing more arrives for 0.5 s
            if listener.received != last_received:
                last_received, quiet_since = listener.received, time.perf_counter()
            elif time.perf_counter() - quiet_since > 0.5 and listener.pending == 0:
                break
        t_next += tick_s
        pause = t_next - time.perf_counter()
        if pause > 0:
            time.sleep(pause)
        else:
            t_next = time.perf_counter()         # behind: no catch-up spiral
    loop_s = time.perf_counter() - t_loop
    proc.join()
    drops = listener.kernel_drops()
    listener.stop()

    sent = result["sent"]
    lost = sent - listener.received
    busy = [t for t, n in zip(tick_ms, per_tick) if n]
    report = {
        "rate_asked": args.rate, "senders": args.senders, "seconds": args.seconds,
        "send_s": round(result["send_s"], 3), "send_errors": result["errors"],
        "sent": sent, "received": listener.received, "lost": lost,
        "loss_pct": round(100.0 * lost / sent, 4) if sent else 0.0,
        "kernel_drops": drops, "rcvbuf_granted": listener.rcvbuf_granted,
        "accepted": listener.accepted, "rejected": listener.rejected,
        "rejected_by_kind": {k: v for k, v in listener.rejected_by_kind.items() if v},
        "kernel": what, "ticks": tick,
        "tick_hz_achieved": round(tick / loop_s, 2),
        "events_per_tick_p50": statistics.median(per_tick),
        "drain_ms_p50": round(statistics.median(drain_ms), 3),
        "drain_ms_max": round(max(drain_ms), 3),
        "control_ms_p50": round(statistics.median(control_ms), 3),
        "kernel_ms_p50": round(statistics.median(kernel_ms), 3),
        "tick_work_ms_p50": round(statistics.median(busy or tick_ms), 3),
        "tick_work_ms_p99": round(sorted(busy or tick_ms)[int(0.99 * (len(busy or tick_ms) - 1))], 3),
    }
    for k, v in report.items():
        print(f"  {k:22s} {v}")
    verdict = "no loss" if lost == 0 else f"LOST {lost} of {sent} ({report['loss_pct']} %)"
    print(f"osc_flood: {verdict}")
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=2) + "\n")
    return 0 if lost == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
