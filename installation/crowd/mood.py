"""The collective mood: what the room feels, smoothed, and the surges in it.

Per tick the participants' latest values are averaged, each weighted by their presence
(`Participant.fade`: 1 for someone fully there, less while joining, leaving or while the
attract crowd hands over):
- valence, arousal: weighted means over those who sent an emotion;
- agreement: 1 - the weighted spread of (valence, arousal), normalised so that two people
  at opposite corners of the emotion square give 0 and any number feeling alike give 1:
      agreement = 1 - sqrt((var(valence) + 4 * var(arousal)) / 2)
  (valence spans 2, arousal 1: each variance is at most 1 once arousal's is scaled by 4);
- energy: weighted mean motion over those who sent a motion;
- sensor: the mean ambient sensor level.
Where nobody contributes, the target is 0 (a calm, empty room). Each value then follows its
target with an exponential smoothing of time constant `crowd.mood_smoothing_s`:
    value += (1 - exp(-1 / (tau * tick_hz))) * (target - value)      per tick.
A surge is a rise of the smoothed arousal or energy by `crowd.surge_threshold` within
`crowd.surge_window_s`; it fires once, then the window starts again from the new level.
"""
from __future__ import annotations

import collections
import math
from dataclasses import dataclass
from typing import Iterable


@dataclass(frozen=True)
class Mood:
    valence: float = 0.0     # -1 .. 1
    arousal: float = 0.0     # 0 .. 1
    agreement: float = 0.0   # 0 .. 1
    energy: float = 0.0      # 0 .. 1
    count: int = 0           # real participants present now
    sensor: float = 0.0      # 0 .. 1


def aggregate(participants: Iterable) -> tuple[float, float, float, float]:
    """(valence, arousal, agreement, energy) targets from participants' weighted values."""
    wf = sv = sa = 0.0
    we = se = 0.0
    felt = []
    for p in participants:
        w = p.fade
        if w <= 0.0:
            continue
        if p.felt:
            wf += w
            sv += w * p.valence
            sa += w * p.arousal
            felt.append(p)
        if p.moved:
            we += w
            se += w * p.energy
    if wf > 0.0:
        mv, ma = sv / wf, sa / wf
        var_v = sum(p.fade * (p.valence - mv) ** 2 for p in felt) / wf
        var_a = sum(p.fade * (p.arousal - ma) ** 2 for p in felt) / wf
        agreement = max(0.0, 1.0 - math.sqrt(min(1.0, (var_v + 4.0 * var_a) / 2.0)))
    else:
        mv = ma = agreement = 0.0
    energy = se / we if we > 0.0 else 0.0
    return mv, ma, agreement, energy


def smoothing_alpha(tau_s: float, tick_hz: int, steps: int = 1) -> float:
    """The fraction of the way to the target covered in `steps` ticks."""
    if tau_s <= 0.0:
        return 1.0
    return 1.0 - math.exp(-steps / (tau_s * tick_hz))


class MoodTracker:
    def __init__(self, tau_s: float, tick_hz: int):
        self.tau_s = tau_s
        self.tick_hz = tick_hz
        self.valence = self.arousal = self.agreement = self.energy = self.sensor = 0.0

    def update(self, targets: tuple[float, float, float, float], sensor: float, count: int,
               steps: int = 1) -> Mood:
        a = smoothing_alpha(self.tau_s, self.tick_hz, steps)
        tv, ta, tg, te = targets
        self.valence += a * (tv - self.valence)
        self.arousal += a * (ta - self.arousal)
        self.agreement += a * (tg - self.agreement)
        self.energy += a * (te - self.energy)
        self.sensor += a * (sensor - self.sensor)
        return Mood(self.valence, self.arousal, self.agreement, self.energy, count, self.sensor)


class SurgeDetector:
    def __init__(self, threshold: float, window_s: float, tick_hz: int):
        self.threshold = threshold
        self.window = max(1, round(window_s * tick_hz))
        self._hist: collections.deque = collections.deque(maxlen=self.window + 1)

    def set_window(self, window_s: float, tick_hz: int) -> None:
        """A new window (a scene or /param changed it), keeping the newest history."""
        self.window = max(1, round(window_s * tick_hz))
        self._hist = collections.deque(self._hist, maxlen=self.window + 1)

    def push(self, arousal: float, energy: float) -> float:
        """Feed one tick; the strength 0..1 of a surge that happened now, else 0."""
        h = self._hist
        h.append((arousal, energy))
        rise = max(arousal - min(v[0] for v in h), energy - min(v[1] for v in h))
        if rise < self.threshold:
            return 0.0
        h.clear()
        h.append((arousal, energy))
        return min(1.0, rise / (2.0 * self.threshold))
