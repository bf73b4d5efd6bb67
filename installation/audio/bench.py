"""How much of one core the symphony costs: render time per block / block duration.

    python -m installation.audio.bench [--voices 64] [--seconds 5]

For `bench` and the issue's target (64 voices + texture + master bus <= 15% at 48 kHz).
The state is a busy one on purpose: every voice active and excited, a dense fast swarm
(grains), pulses, the limiter and the loudness rider working.
"""
from __future__ import annotations

import argparse
import json
import time

import numpy as np

from .engine import Engine
from .params import AudioParams
from .settings import AudioSettings


def busy_params(voices: int, seed: int = 1) -> AudioParams:
    rng = np.random.default_rng(seed)
    p = AudioParams(1.0)
    p.set_mood(0.3, 0.8, 0.4, 0.8, voices)
    p.set_texture(1.0, 0.8, 0.3)
    for i in range(voices):
        p.set_voice(i, True, rng.random(), rng.random(), rng.uniform(-1, 1), 0.5 + 0.5 * rng.random(),
                    rng.random(), i % 16, rng.uniform(-1, 1))
    return p


def measure_synth_load(settings: AudioSettings | None = None, voices: int = 64, seconds: float = 5.0) -> dict:
    """Median and 99th-percentile render time per block as a fraction of the block's duration."""
    s = settings or AudioSettings()
    engine = Engine(s)
    p = busy_params(voices)
    out = np.zeros((s.blocksize, 2), np.float32)
    block_s = s.blocksize / engine.samplerate
    n_blocks = max(50, int(seconds / block_s))
    for _ in range(50):                              # settle: voices attack, rider converges
        engine.render(p.data, out)
    times = np.empty(n_blocks)
    for i in range(n_blocks):
        if i % 20 == 0:
            p.hit(0.8, 0.0)
        t0 = time.perf_counter()
        engine.render(p.data, out)
        times[i] = time.perf_counter() - t0
    load = times / block_s
    return {"voices": voices, "samplerate": engine.samplerate, "blocksize": s.blocksize, "blocks": n_blocks,
            "block_ms_p50": round(float(np.median(times)) * 1e3, 4),
            "load_p50": round(float(np.median(load)), 4), "load_p99": round(float(np.percentile(load, 99)), 4)}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description="symphony CPU load per block")
    ap.add_argument("--voices", type=int, default=64)
    ap.add_argument("--seconds", type=float, default=5.0)
    ap.add_argument("--blocksize", type=int, default=256)
    ap.add_argument("--samplerate", type=int, default=48000)
    args = ap.parse_args(argv)
    s = AudioSettings(blocksize=args.blocksize, samplerate=args.samplerate)
    print(json.dumps(measure_synth_load(s, args.voices, args.seconds)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
