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
    # frame indices + 1, so that "no chain" is 0 and masking is a multiplication
    idx = np.int16 if n < np.iinfo(np.int16).max else np.int32
    base = np.broadcast_to(np.arange(1, n + 1, dtype=idx)[:, None], (n, points))
    prev_up, prev_down = base, base
    tmp = np.empty((n, points), idx)
    for _level in range(need):
        s_up = np.zeros((n, points), idx)
        s_down = np.zeros((n, points), idx)
        for d in range(1, min(m, n)):
            # S[j] = max(S[j], prev[j - d]) where the change j - d -> j qualifies
            t = tmp[d:]
            np.multiply(prev_down[:-d], up[d], out=t)
            np.maximum(s_up[d:], t, out=s_up[d:])
            np.multiply(prev_up[:-d], down[d], out=t)
            np.maximum(s_down[d:], t, out=s_down[d:])
        prev_up, prev_down = s_up, s_down
    return np.maximum(prev_up, prev_down).astype(np.int64) - 1


def _signals(kind: str, rgb: np.ndarray):
    """Per frame and point: the signal a transition is a change of, and for red the
    saturation flags. (n, points) arrays."""
    n = rgb.shape[0]
    pts = rgb.reshape(n, -1, 3)
    r, g, b = pts[..., 0], pts[..., 1], pts[..., 2]
    if kind == "general":
        return 0.2126 * r + 0.7152 * g + 0.0722 * b, None
    total = r + g + b
    return 320.0 * np.maximum(0.0, r - g - b), (total > 0) & (r >= 0.8 * total)


def could_flash(sig: np.ndarray, m: int, need: int, step: float) -> np.ndarray:
    """Points whose signal travels at least `need * step` within some m consecutive frames.

    A chain of `need` transitions, each a change of at least `step`, inside a window travels
    at least that far (the triangle inequality), so no other point can flash: this only
    skips work, it changes no result."""
    n = sig.shape[0]
    moves = np.abs(np.diff(sig, axis=0))
    travelled = np.zeros((n, sig.shape[1]))
    travelled[1:] = np.cumsum(moves, axis=0)
    span = min(m - 1, n - 1)
    most = (travelled[span:] - travelled[:-span]).max(axis=0)
    return most >= need * step - 1e-9


def _qualifying_changes(kind: str, sig: np.ndarray, sat, m: int):
    """Per lag d, which changes from frame i to i + d count as up / down transitions."""
    n = sig.shape[0]
    up, down = {}, {}
    for d in range(1, min(m, n)):
        a, z = sig[:-d], sig[d:]
        if kind == "general":
            up[d] = (z - a >= 0.1) & (a < 0.8)
            down[d] = (a - z >= 0.1) & (z < 0.8)
        else:
            either = sat[:-d] | sat[d:]
            up[d] = (z - a > 20.0) & either
            down[d] = (a - z > 20.0) & either
    return up, down


def check_flashes(frames, fps: float, field_w: int, field_h: int, block: int = 1,
                  max_transitions: int = 6, prune: bool = True) -> FlashReport:
    """Every failing one-second window of a frame sequence (general and red). `prune`:
    skip the points `could_flash` rules out (the same result, sooner)."""
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
        sig, sat = _signals(kind, rgb)
        keep = np.arange(sig.shape[1])
        if prune:
            step = 0.1 if kind == "general" else 20.0
            keep = keep[could_flash(sig, m, max_transitions + 1, step)]
        up, down = _qualifying_changes(kind, sig[:, keep], None if sat is None else sat[:, keep],
                                       m)
        start = latest_chain_start(up, down, n, m, max_transitions + 1)
        reach = np.maximum.accumulate(start, axis=0)     # best start among chains ending <= j
        worst = 0.0
        for s in windows:
            flashing = np.zeros(sig.shape[1], bool)
            flashing[keep] = reach[min(n - 1, s + m - 1)] >= s
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
