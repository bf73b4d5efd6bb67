"""Seeded frame sequences for the flash-guard tests: adversarial flashes and calm content.

Frames are (n, height, width) uint32 0xAARRGGBB, built in sRGB floats 0..1 and packed.
"""
from __future__ import annotations

import numpy as np

OPAQUE = np.uint32(0xFF000000)


def pack(srgb: np.ndarray) -> np.ndarray:
    """(..., 3) sRGB floats 0..1 → uint32 0xAARRGGBB."""
    c = np.clip(np.round(np.asarray(srgb) * 255.0), 0, 255).astype(np.uint32)
    return (OPAQUE | (c[..., 0] << 16) | (c[..., 1] << 8) | c[..., 2]).astype(np.uint32)


def toggles(n: int, fps: float, hz: float) -> np.ndarray:
    """True/False per frame for a square wave of `hz` full cycles per second."""
    t = np.arange(n) / fps
    return (np.floor(t * hz * 2.0).astype(int) % 2) == 0


def alternation(n, fps, hz, on, off, width, height):
    """Full-screen alternation between two colours (sRGB triples)."""
    a, b = pack(np.array(on, float)), pack(np.array(off, float))
    return np.where(toggles(n, fps, hz)[:, None, None], a, b).astype(np.uint32) * np.ones((1, height, width), np.uint32)


def swarm(n, fps, width, height, *, count=120, speed=0.05, radius=1.2, seed=0, gain=1.0):
    """Soft coloured dots drifting over black: a stand-in for the particle swarm."""
    rng = np.random.default_rng(seed)
    pos = rng.random((count, 2)) * [width, height]
    vel = (rng.random((count, 2)) - 0.5) * speed * width
    col = rng.random((count, 3)) * 0.6 + 0.4
    yy, xx = np.mgrid[0:height, 0:width]
    out = np.empty((n, height, width), np.uint32)
    for i in range(n):
        img = np.zeros((height, width, 3))
        p = pos + vel * (i / fps)
        p[:, 0] %= width
        p[:, 1] %= height
        for (x, y), c in zip(p, col):
            img += np.exp(-((xx - x) ** 2 + (yy - y) ** 2) / (2 * radius ** 2))[..., None] * c * gain
        out[i] = pack(np.clip(img, 0.0, 1.0))
    return out


def blackout_toggle(frames, fps, hz):
    """The same frames with a full black-out switched on and off at `hz`."""
    out = frames.copy()
    out[~toggles(len(frames), fps, hz)] = OPAQUE
    return out


def noise(n, width, height, *, seed=0, colour=False, hold=1):
    """Random per-pixel flicker, a new draw every `hold` frames."""
    rng = np.random.default_rng(seed)
    draws = -(-n // hold)
    if colour:
        v = rng.random((draws, height, width, 3))
    else:
        v = np.repeat(rng.random((draws, height, width, 1)), 3, axis=-1)
    return np.repeat(pack(v), hold, axis=0)[:n]


def patch(frames, fps, hz, x0, y0, w, h, on=(1.0, 1.0, 1.0), off=(0.0, 0.0, 0.0)):
    """`frames` with a rectangle alternating between two colours at `hz`."""
    out = frames.copy()
    a, b = pack(np.array(on, float)), pack(np.array(off, float))
    for i, s in enumerate(toggles(len(frames), fps, hz)):
        out[i, y0:y0 + h, x0:x0 + w] = a if s else b
    return out


def drifting_gradient(n, fps, width, height, *, cycles=2.0, speed_hz=0.3):
    t = np.arange(n)[:, None, None] / fps
    x = np.arange(width)[None, None, :] / width
    v = 0.5 + 0.5 * np.sin(2 * np.pi * (cycles * x - speed_hz * t))
    img = np.stack([v, 0.8 * v, 1.0 - 0.6 * v], axis=-1)
    return pack(np.broadcast_to(img, (n, height, width, 3)))


def slow_fade(n, fps, width, height, *, hz=0.5, colour=(1.0, 0.3, 0.2)):
    t = np.arange(n)[:, None, None, None] / fps
    v = 0.5 + 0.5 * np.sin(2 * np.pi * hz * t)
    return pack(np.broadcast_to(v * np.array(colour), (n, height, width, 3)))


def random_mix(n, fps, width, height, *, seed=0):
    """Rectangles flashing at random rates and colours over random flicker: a fuzz input."""
    rng = np.random.default_rng(seed)
    out = noise(n, width, height, seed=seed + 1, colour=True, hold=int(rng.integers(1, 4)))
    for _ in range(int(rng.integers(2, 6))):
        w = int(rng.integers(width // 6, width))
        h = int(rng.integers(height // 6, height))
        x0 = int(rng.integers(0, width - w + 1))
        y0 = int(rng.integers(0, height - h + 1))
        hz = float(rng.uniform(2.0, fps / 2.0))
        on = tuple(rng.random(3))
        off = tuple(rng.random(3) * 0.3)
        out = patch(out, fps, hz, x0, y0, w, h, on, off)
    return out
