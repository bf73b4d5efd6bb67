"""`bench`: the numbers the issues' targets are stated in, measured the same way every time.

Medians over repeated ticks/frames after a warm-up; the paced run and the export as the
`run --headless` and `replay --export` commands do them; numba compile time cold (empty cache
in a fresh process) and cached (the same cache, a second fresh process).
"""
from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from .config import load_config
from .ops.hostload import cpu_times, others_busy_percent, own_cpu_seconds, steal_percent


def _progress(msg: str) -> None:
    print(f"\r\033[K{msg}", end="", file=sys.stderr, flush=True)


def _median_ms(fn, warmup: int, reps: int) -> float:
    for _ in range(warmup):
        fn()
    times = np.empty(reps)
    for i in range(reps):
        t0 = time.perf_counter()
        fn()
        times[i] = time.perf_counter() - t0
    return float(np.median(times) * 1000.0)


def bench_sim(cfg, counts, reps) -> dict:
    from .sim.params import StepParams
    from .sim.swarm import Swarm
    out = {}
    for n in counts:
        _progress(f"bench: simulation {n} particles")
        sim = dataclasses.replace(cfg.sim, particles=n)
        swarm = Swarm(sim)
        params = StepParams.from_settings(sim)
        # let the particle-life clusters form: the steady state is what an exhibit runs
        for _ in range(120):
            swarm.step(params)
        out[str(n)] = round(_median_ms(lambda: swarm.step(params), 5, reps), 3)
    return out


def bench_sim_touches(cfg, n: int, touches: int, reps: int) -> float:
    """A tick of `n` particles while `touches` phones touch at once, spread over the image (the
    participant cap's worth): the touch grid keeps it near a tick without any."""
    from .sim.params import StepParams
    from .sim.swarm import Swarm
    _progress(f"bench: simulation {n} particles, {touches} touches")
    sim = dataclasses.replace(cfg.sim, particles=n)
    swarm = Swarm(sim)
    params = StepParams.from_settings(sim)
    rng = np.random.default_rng(7)
    k = min(touches, params.touches.shape[0])
    params.touches[:k, 0] = rng.uniform(0.0, sim.aspect, k)
    params.touches[:k, 1] = rng.uniform(0.0, 1.0, k)
    params.touches[:k, 2] = rng.uniform(0.3, 1.0, k)
    params.touches[:k, 3] = np.arange(k) % sim.species
    params.n_touches = k
    for _ in range(120):
        swarm.step(params)
    return round(_median_ms(lambda: swarm.step(params), 5, reps), 3)


def bench_render(cfg, sizes, reps) -> dict:
    from .render.cpu_renderer import CpuRenderer
    from .render.look import LookParams
    from .sim.params import StepParams
    from .sim.swarm import Swarm
    swarm = Swarm(cfg.sim)
    params = StepParams.from_settings(cfg.sim)
    for _ in range(60):
        swarm.step(params)
    look = LookParams.from_settings(cfg.render)
    out = {}
    for w, h in sizes:
        _progress(f"bench: render {w}x{h}")
        r = CpuRenderer(cfg.render, cfg.sim.species, cfg.sim.aspect, w, h)
        out[f"{w}x{h}"] = round(_median_ms(lambda: r.render(swarm, look), 5, reps), 3)
    return out


def bench_guard(cfg, reps) -> dict:
    """The guard on the default scene's own moving frames at 1920x1080 (what it meets in a
    show: regions swinging, detections, some near the limit) and on a still frame (its
    floor: one pass over the pixels and every region's detectors)."""
    from .render.cpu_renderer import CpuRenderer
    from .render.look import LookParams
    from .safety.flash_guard import FlashGuard
    from .sim.params import StepParams
    from .sim.swarm import Swarm
    _progress("bench: flash guard 1920x1080 (default scene)")
    swarm = Swarm(cfg.sim)
    params = StepParams.from_settings(cfg.sim)
    look = LookParams.from_settings(cfg.render)
    r = CpuRenderer(cfg.render, cfg.sim.species, cfg.sim.aspect, 1920, 1080)
    g = FlashGuard(cfg.safety, 1920, 1080, float(cfg.sim.tick_hz))
    times = []
    for t in range(60 + 60 + 2 * reps):
        swarm.step(params)
        frame = r.render(swarm, look)
        t0 = time.perf_counter()
        g.process(frame, t)
        if t >= 120:   # trails built up and the detectors' one-second window filled
            times.append(time.perf_counter() - t0)
    still = FlashGuard(cfg.safety, 1920, 1080, float(cfg.sim.tick_hz))
    frame = frame.copy()
    return {"flash_guard_ms_1080p": round(1000.0 * float(np.median(times)), 3),
            "flash_guard_ms_1080p_still": round(_median_ms(lambda: still.process(frame), 5, reps), 3),
            "flash_guard_limited_frames": int(g.limited_frames)}


def _stage(cfg, **kw):
    """The default scene's pipeline as `run --headless` drives it (attract crowd, offline
    audio), warmed up and with the start-up heap frozen, as `run` does."""
    from .app import RunStage, StopFlag, settle_heap
    from .audio.offline import OfflineAudio
    from .pipeline import Pipeline
    p = Pipeline(cfg)
    stage = RunStage(p, source=lambda tick: [], audio=OfflineAudio(cfg.audio), stop=StopFlag(), **kw)
    for _ in range(30):
        stage.tick()
        stage.frame()
    settle_heap()
    return stage


def bench_frames(cfg, frames) -> dict:
    from .loop import run_loop
    _progress(f"bench: {frames} whole frames (headless pipeline, unpaced)")
    stage = _stage(cfg)
    stats = run_loop(stage, tick_s=None, frames=frames)
    return {"frame_ms_p50": round(stats.percentile(50), 3), "frame_ms_p99": round(stats.percentile(99), 3)}


def bench_paced(cfg, seconds: float) -> dict:
    """`run --headless` as issue 2 states its target: paced at the tick rate, frame times
    (the work of a frame, not the wait) and ticks dropped."""
    from .loop import run_loop
    _progress(f"bench: {seconds:g} s paced at {cfg.sim.tick_hz} Hz (run --headless)")
    stage = _stage(cfg)
    stats = run_loop(stage, tick_s=1.0 / cfg.sim.tick_hz, max_catchup=cfg.window.max_catchup_ticks,
                     duration_s=seconds)
    return {"paced_frame_ms_p50": round(stats.percentile(50), 3),
            "paced_frame_ms_p99": round(stats.percentile(99), 3),
            "paced_fps": round(stats.fps_mean, 2), "paced_dropped_ticks": int(stats.dropped_ticks)}


def bench_export(cfg, frames: int) -> dict:
    """`replay --export` at the render size (1280x720 by default): every tick's frame guarded,
    converted and encoded by ffmpeg, the audio rendered offline into a WAV beside it. The
    time runs until ffmpeg has taken the last frame; the ratio is content time over it."""
    from .frame_worker import FrameWorker
    from .loop import run_loop
    from .session.export import VideoWriter, WavWriter
    _progress(f"bench: export of {frames} frames at the render size")
    with tempfile.TemporaryDirectory(prefix="living-mosaic-bench-") as d:
        video = VideoWriter(Path(d) / "bench.mp4", cfg.render.width, cfg.render.height, cfg.sim.tick_hz,
                            settings=cfg.session)
        wav = WavWriter(Path(d) / "bench.wav", cfg.audio.samplerate, 2)
        worker = None
        try:
            stage = _stage(cfg, audio_sink=wav.write)
            worker = stage.frame_worker = FrameWorker(stage.p, video.write)   # as replay --export
            t0 = time.perf_counter()
            stats = run_loop(stage, tick_s=None, frames=frames)
            worker.close()
            wav.close()
            video.close()
            wall = time.perf_counter() - t0
        except BaseException:
            video.abort()           # first: a worker blocked on the encoder's pipe gets free
            if worker is not None:
                worker.abort()
            raise
    size = f"{cfg.render.width}x{cfg.render.height}"
    return {"export_size": size, "export_realtime_ratio": round(stats.ticks / cfg.sim.tick_hz / wall, 3),
            "export_ms_per_frame": round(1000.0 * wall / max(stats.frames, 1), 3)}


def bench_audio(cfg, reps) -> float:
    """Per cent of one core the synth takes with 64 voices, texture and master bus."""
    from .audio.offline import OfflineAudio
    from .audio.params import AudioParams
    audio = OfflineAudio(cfg.audio)
    ap = AudioParams()
    for i in range(ap.max_voices):
        ap.set_voice(i, 1.0, (i % 8) / 8, (i // 8) / 8, 0.3, 0.6, 0.5, i % 8, (i % 8) / 4 - 1)
    ap.set_mood(0.2, 0.6, 0.5, 0.4, ap.max_voices)
    ap.set_texture(0.5, 0.5, 0.5)
    audio.publish(ap)
    n = cfg.audio.blocksize
    ms = _median_ms(lambda: audio.render(n), 20, reps)
    return round(100.0 * ms / (1000.0 * n / cfg.audio.samplerate), 2)


_COMPILE_PROBE = """
import time, sys
t0 = time.perf_counter()
from installation.config import load_config
from installation.pipeline import Pipeline
p = Pipeline(load_config())
p.advance([])
p.render()
print(time.perf_counter() - t0)
"""


def bench_compile() -> tuple[float, float]:
    """Import to first frame in a fresh process: with an empty numba cache, then with it filled."""
    root = Path(__file__).resolve().parents[1]
    with tempfile.TemporaryDirectory() as cache:
        env = dict(os.environ, NUMBA_CACHE_DIR=cache, PYTHONPATH=str(root))
        out = []
        for label in ("cold", "cached"):
            _progress(f"bench: compile time ({label} numba cache)")
            r = subprocess.run([sys.executable, "-c", _COMPILE_PROBE], env=env, capture_output=True,
                               text=True, timeout=900)
            if r.returncode != 0:
                raise RuntimeError(f"compile probe failed: {r.stderr.strip().splitlines()[-1:]}")
            out.append(round(float(r.stdout.strip().splitlines()[-1]), 3))
    return out[0], out[1]


def bench_command(args) -> int:
    cfg = load_config(env={})
    host0, own0 = cpu_times(), own_cpu_seconds()
    reps = 20 if args.quick else 60
    counts = (25000, 50000, 100000) if args.quick else (25000, 50000, 100000, 200000)
    result = {"machine": {"cpus": os.cpu_count(), "python": sys.version.split()[0]}}
    result["sim_ms_per_tick"] = bench_sim(cfg, counts, reps)
    result["sim_ms_per_tick_256_touches"] = bench_sim_touches(cfg, 50000, 256, reps)
    result["render_ms"] = bench_render(cfg, ((1280, 720), (1920, 1080)), reps)
    result.update(bench_guard(cfg, reps))
    result["audio_cpu_percent"] = bench_audio(cfg, reps * 5)
    result.update(bench_frames(cfg, 300 if args.quick else 900))
    result.update(bench_paced(cfg, 10.0 if args.quick else 30.0))
    result.update(bench_export(cfg, 600 if args.quick else 1800))
    cold, cached = bench_compile()
    result["compile_s_cold"], result["compile_s_cached"] = cold, cached
    from .parallel import kernel_threads
    result["machine"]["kernels"] = kernel_threads()   # numbers differ by threading layer
    host1 = cpu_times()
    result["machine"]["cpu_steal_percent"] = steal_percent(host0, host1)
    result["machine"]["cpu_others_percent"] = others_busy_percent(host0, host1, own_cpu_seconds() - own0)
    _progress("")
    print(f"kernels: {result['machine']['kernels']}, {result['machine']['cpus']} CPUs")
    m = result["machine"]
    if m["cpu_steal_percent"] is not None:
        # a noisy machine makes slow medians: say how quiet it was while they were taken
        print(f"machine while measuring: {m['cpu_steal_percent']:.1f}% of CPU time stolen by the hypervisor, "
              f"{m['cpu_others_percent']:.1f}% used by other processes")
    print(f"{'measure':34s} {'median':>10s}")
    for n, ms in result["sim_ms_per_tick"].items():
        print(f"{'simulation ' + n + ' particles':34s} {ms:8.2f} ms/tick")
    print(f"{'simulation 50000, 256 touching':34s} {result['sim_ms_per_tick_256_touches']:8.2f} ms/tick")
    for size, ms in result["render_ms"].items():
        print(f"{'render ' + size:34s} {ms:8.2f} ms")
    print(f"{'flash guard 1920x1080, moving':34s} {result['flash_guard_ms_1080p']:8.2f} ms")
    print(f"{'flash guard 1920x1080, still':34s} {result['flash_guard_ms_1080p_still']:8.2f} ms")
    print(f"{'audio, 64 voices + master bus':34s} {result['audio_cpu_percent']:8.2f} % of a core")
    print(f"{'whole frame p50 (default scene)':34s} {result['frame_ms_p50']:8.2f} ms")
    print(f"{'whole frame p99 (default scene)':34s} {result['frame_ms_p99']:8.2f} ms")
    print(f"{'run --headless, paced: frame p50':34s} {result['paced_frame_ms_p50']:8.2f} ms")
    print(f"{'run --headless, paced: frame p99':34s} {result['paced_frame_ms_p99']:8.2f} ms"
          f"  ({result['paced_fps']:.1f} fps, {result['paced_dropped_ticks']} ticks dropped)")
    print(f"{'export ' + result['export_size'] + ' (x real time)':34s} {result['export_realtime_ratio']:8.2f} x"
          f"  ({result['export_ms_per_frame']:.2f} ms a frame)")
    print(f"{'start to first frame, cold cache':34s} {cold:8.2f} s")
    print(f"{'start to first frame, cached':34s} {cached:8.2f} s")
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    return 0
