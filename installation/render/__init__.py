"""Rendering: the swarm and the frame's look → finished BGRA pixels, and their display.

    base.py           the Renderer interface and create_renderer(settings, ...)
    cpu_renderer.py   the numba CPU backend (kernels.py; NumPy twins in reference.py)
    plan.py           framing, bloom size, tone and encode curves shared by every backend
    shader_source.py  GLSL sources from shaders/ for the GL backend (#include, #define, stages)
    synthetic.py      a seeded stand-in swarm for tests and benchmarks
    settings.py, look.py, display.py, hud.py
"""
