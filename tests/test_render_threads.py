"""A frame is bit-identical whatever the numba thread count (1 vs 2, separate processes)."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

SCRIPT = """
from installation.render.cpu_renderer import CpuRenderer
from installation.render.look import LookParams
from installation.render.settings import RenderSettings
from installation.render.synthetic import make_swarm
import numba
settings = RenderSettings()
look = LookParams.from_settings(settings)
look.warmth = 0.3
print("threads", numba.get_num_threads())
for w, h in ((320, 180), (333, 197)):
    swarm = make_swarm(30000, seed=5)
    r = CpuRenderer(settings, 8, swarm.aspect, w, h)
    for i in range(4):
        r.render(swarm, look)
        swarm.drift()
        print(w, h, i, r.frame_hash())
"""


def frame_hashes(threads: int) -> list[str]:
    env = dict(os.environ, NUMBA_NUM_THREADS=str(threads))
    env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    done = subprocess.run([sys.executable, "-c", SCRIPT], env=env, cwd=ROOT, capture_output=True,
                          text=True, timeout=240)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0] == f"threads {threads}"
    return lines[1:]


def test_frames_do_not_depend_on_the_thread_count():
    one, two = frame_hashes(1), frame_hashes(2)
    assert len(one) == 8
    assert one == two
