"""An independent WCAG 2.3.1 flash checker for tests. Slow, plain NumPy, written from the
definitions and sharing no code with `installation.safety` (it must be able to catch the
guard out).

Definitions (WCAG 2.x "general flash and red flash thresholds", ITU-R BT.1702):

* colours are linearised sRGB; relative luminance Y = 0.2126 R + 0.7152 G + 0.0722 B;
* a general transition is a change of Y by >= 0.1 whose darker state has Y < 0.8;
* a red transition is a change of 320 * max(0, R - G - B) by more than 20 where at least
  one of the two states is a saturated red, R / (R + G + B) >= 0.8;
* the number of transitions in a stretch of frames is the longest chain of such changes
  between frames i0 < i1 < ... < ik that alternate in direction (a flash is a pair);
* a one-second window is floor(fps) + 1 consecutive frames (it spans one second);
* a window fails when the points with more than three flashes in it (7 or more
  transitions) cover more than 25% of some field_w x field_h rectangle (a 10° field).

Points are blocks of `block` pixels, averaged in linear light: WCAG exempts fine
balanced patterns (checkerboard squares under 0.1°); pass block=1 to look at pixels.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


@dataclass
class Failure:
    kind: str          # "general" or "red"
    start: int         # first frame of the failing window
    fraction: float    # share of the worst field covered by flashing points
    x: int             # top-left pixel of that field
    y: int


@dataclass
class FlashReport:
    failures: list = field(default_factory=list)
    worst: dict = field(default_factory=dict)   # kind -> largest flashing share of any field, any window

    @property
    def ok(self) -> bool:
        return not self.failures

    def summary(self) -> str:
        if self.ok:
            return f"no failing window (worst shares {self.worst})"
        f = self.failures[0]
        return (f"{len(self.failures)} failing windows; first: {f.kind} flashes from frame {f.start} "
                f"over {100 * f.fraction:.0f}% of the field at ({f.x}, {f.y}); worst {self.worst}")


def linear_rgb(frames: np.ndarray) -> np.ndarray:
    """(n, h, w) uint32 0xAARRGGBB → (n, h, w, 3) float64 linear R, G, B."""
    f = np.asarray(frames).astype(np.uint32)
    chans = [((f >> s) & 0xFF).astype(np.float64) / 255.0 for s in (16, 8, 0)]
    c = np.stack(chans, axis=-1)
    return np.where(c <= 0.04045, c / 12.92, ((c + 0.055) / 1.055) ** 2.4)


def block_average(lin: np.ndarray, block: int) -> np.ndarray:
    """Mean of each block x block tile (edge tiles over the pixels they have)."""
    n, h, w, _ = lin.shape
    nby, nbx = -(-h // block), -(-w // block)
    padded = np.zeros((n, nby * block, nbx * block, 3))
    padded[:, :h, :w] = lin
    ones = np.zeros((nby * block, nbx * block))
    ones[:h, :w] = 1.0
    sums = padded.reshape(n, nby, block, nbx, block, 3).sum(axis=(2, 4))
    counts = ones.reshape(nby, block, nbx, block).sum(axis=(1, 3))
    return sums / counts[None, :, :, None]


def latest_chain_start(up, down, n: int, m: int, need: int) -> np.ndarray:
    """S[j, p]: the latest frame at which an alternating chain of `need` transitions ending
    at frame j starts at point p (-1: none). `up[d]` / `down[d]` say whether the change from
    frame i to i + d qualifies, shape (n - d, points); chains stay within m frames."""
    points = up[1].shape[1] if n > 1 else 0
    base = np.broadcast_to(np.arange(n)[:, None], (n, points))
    prev_up, prev_down = base, base
    for _level in range(need):
        s_up = np.full((n, points), -1)
        s_down = np.full((n, points), -1)
        for d in range(1, min(m, n)):
            np.maximum(s_up[d:], np.where(up[d], prev_down[:-d], -1), out=s_up[d:])
            np.maximum(s_down[d:], np.where(down[d], prev_up[:-d], -1), out=s_down[d:])
        prev_up, prev_down = s_up, s_down
    return np.maximum(prev_up, prev_down)


def _qualifying_changes(kind: str, rgb: np.ndarray, m: int):
    """Per lag d, which changes from frame i to i + d count as up / down transitions."""
    n = rgb.shape[0]
    pts = rgb.reshape(n, -1, 3)
    r, g, b = pts[..., 0], pts[..., 1], pts[..., 2]
    up, down = {}, {}
    if kind == "general":
        y = 0.2126 * r + 0.7152 * g + 0.0722 * b
        for d in range(1, min(m, n)):
            a, z = y[:-d], y[d:]
            up[d] = (z - a >= 0.1) & (a < 0.8)
            down[d] = (a - z >= 0.1) & (z < 0.8)
    else:
        q = 320.0 * np.maximum(0.0, r - g - b)
        total = r + g + b
        sat = (total > 0) & (r >= 0.8 * total)
        for d in range(1, min(m, n)):
            a, z = q[:-d], q[d:]
            either = sat[:-d] | sat[d:]
            up[d] = (z - a > 20.0) & either
            down[d] = (a - z > 20.0) & either
    return up, down


def check_flashes(frames, fps: float, field_w: int, field_h: int, block: int = 1,
                  max_transitions: int = 6) -> FlashReport:
    """Every failing one-second window of a frame sequence (general and red)."""
    frames = np.asarray(frames)
    n, h, w = frames.shape
    fw, fh = min(field_w, w), min(field_h, h)
    m = int(np.floor(fps + 1e-9)) + 1
    rgb = block_average(linear_rgb(frames), block)
    nby, nbx = rgb.shape[1:3]
    report = FlashReport()
    if n < 2:
        return report
    windows = range(0, max(0, n - m) + 1)
    for kind in ("general", "red"):
        up, down = _qualifying_changes(kind, rgb, m)
        start = latest_chain_start(up, down, n, m, max_transitions + 1)
        reach = np.maximum.accumulate(start, axis=0)     # best start among chains ending <= j
        worst = 0.0
        for s in windows:
            flashing = reach[min(n - 1, s + m - 1)] >= s
            if not flashing.any():
                continue
            pix = np.repeat(np.repeat(flashing.reshape(nby, nbx), block, 0), block, 1)[:h, :w]
            integ = np.zeros((h + 1, w + 1))
            integ[1:, 1:] = pix.cumsum(0).cumsum(1)
            boxes = integ[fh:, fw:] - integ[:-fh, fw:] - integ[fh:, :-fw] + integ[:-fh, :-fw]
            share = boxes / float(fw * fh)
            y, x = np.unravel_index(int(np.argmax(share)), share.shape)
            worst = max(worst, float(share[y, x]))
            if share[y, x] > 0.25:
                report.failures.append(Failure(kind, s, float(share[y, x]), int(x), int(y)))
        report.worst[kind] = worst
    return report
