"""Timing the swarm: ms per tick at a few sizes, the neighbour counts they ran with, and the
numba compile time cold (empty cache) and cached. For `bench` and for tuning by hand:

    python -m installation.sim.measure [--sizes 25000,50000,100000,200000] [--settle 300] [--compile]

A fresh swarm is spread uniformly; particle life then gathers it, and the neighbour count
(what the tick costs) settles within a few hundred ticks, so both are reported.
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import os
import subprocess
import sys
import tempfile
import time

import numpy as np

from .params import StepParams
from .settings import SimSettings
from .swarm import STAT_CLUSTER, STAT_NEIGHBOURS, Swarm


def time_ticks(settings: SimSettings, ticks: int = 50, settle: int = 0, warmup: int = 3) -> dict:
    """Median and p90 wall ms of `ticks` ticks after `settle` untimed ticks (plus a short warm-up)."""
    swarm = Swarm(settings)
    params = StepParams.from_settings(settings)
    for _ in range(settle + warmup):
        swarm.step(params)
    ms = np.empty(ticks)
    for k in range(ticks):
        t0 = time.perf_counter()
        swarm.step(params)
        ms[k] = (time.perf_counter() - t0) * 1e3
    return {"particles": settings.particles, "ms_median": float(np.median(ms)),
            "ms_p90": float(np.percentile(ms, 90)), "neighbours": float(swarm.stats[STAT_NEIGHBOURS]),
            "cluster": float(swarm.stats[STAT_CLUSTER]), "settle_ticks": settle}


_FIRST_STEP = ("import time; t0 = time.perf_counter(); import installation.sim.swarm as m; "
               "from installation.sim.params import StepParams; from installation.sim.settings import SimSettings; "
               "s = SimSettings(particles=2000); m.Swarm(s).step(StepParams.from_settings(s)); "
               "print(time.perf_counter() - t0)")


def compile_seconds() -> tuple[float, float]:
    """(cold, cached): seconds from import to the end of the first tick in a fresh interpreter,
    first with an empty numba cache, then with the cache that run filled."""
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    with tempfile.TemporaryDirectory(prefix="numba-cache-") as cache:
        env = dict(os.environ, NUMBA_CACHE_DIR=cache,
                   PYTHONPATH=root + os.pathsep + os.environ.get("PYTHONPATH", ""))
        out = []
        for _ in range(2):
            res = subprocess.run([sys.executable, "-c", _FIRST_STEP], env=env, capture_output=True,
                                 text=True, check=True)
            out.append(float(res.stdout.strip().splitlines()[-1]))
    return out[0], out[1]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m installation.sim.measure", description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", default="25000,50000,100000,200000")
    ap.add_argument("--ticks", type=int, default=50)
    ap.add_argument("--settle", type=int, default=300, help="ticks to run before the settled timing")
    ap.add_argument("--radius", type=float, default=None)
    ap.add_argument("--compile", action="store_true", help="also time numba compilation cold and cached")
    ap.add_argument("--json", default=None)
    a = ap.parse_args(argv)
    base = SimSettings() if a.radius is None else SimSettings(radius=a.radius)
    rows = []
    print(f"{'particles':>9} {'fresh ms':>9} {'nb':>6} {'settled ms':>11} {'p90':>6} {'nb':>6} {'cluster':>8}", flush=True)
    for n in (int(v) for v in a.sizes.split(",")):
        s = dataclasses.replace(base, particles=n)
        fresh = time_ticks(s, a.ticks)
        settled = time_ticks(s, a.ticks, settle=a.settle)
        rows.append({"fresh": fresh, "settled": settled})
        print(f"{n:>9} {fresh['ms_median']:>9.2f} {fresh['neighbours']:>6.1f} {settled['ms_median']:>11.2f} "
              f"{settled['ms_p90']:>6.2f} {settled['neighbours']:>6.1f} {settled['cluster']:>8.2f}", flush=True)
    result = {"radius": base.radius, "rows": rows}
    if a.compile:
        cold, cached = compile_seconds()
        result.update(compile_s_cold=cold, compile_s_cached=cached)
        print(f"import + first tick: cold {cold:.1f} s, cached {cached:.2f} s")
    if a.json:
        with open(a.json, "w") as f:
            json.dump(result, f, indent=1)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
