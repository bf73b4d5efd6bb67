"""Quiet hours: how far into night mode the installation is at a given local time.

The time of day is an argument, never read here: the frame loop passes its (injectable)
clock, so a test or a replay can say "it is 22:03" and get the same answer every time. The
result is 0 (day) .. 1 (night), ramping over `fade_s` after each span's start and end, so
the loudness ceiling and the light level move smoothly; the audio side glides further.
"""
from __future__ import annotations

import datetime as _dt

from .settings import AudioSettings, parse_span

DAY_S = 86400.0


def _ramp(x: float) -> float:
    x = min(max(x, 0.0), 1.0)
    return x * x * (3.0 - 2.0 * x)     # smoothstep: no corner where the fade starts or ends


def quiet_amount(spans: tuple[str, ...], seconds_of_day: float, fade_s: float) -> float:
    """Night-mode amount 0..1 at `seconds_of_day` (0..86400, local time) for spans like
    "22:00-07:00" (a span may cross midnight). Fades in over fade_s from each span's start
    and out over fade_s from its end; overlapping spans take the larger amount."""
    t = float(seconds_of_day) % DAY_S
    best = 0.0
    for text in spans:
        start_min, end_min = parse_span(text)
        start, end = start_min * 60.0, end_min * 60.0
        length = (end - start) % DAY_S
        since_start = (t - start) % DAY_S
        if fade_s <= 0:
            amount = 1.0 if since_start < length else 0.0
        else:
            top = _ramp(length / fade_s)          # a span shorter than the fade peaks lower
            if since_start < length:
                since_end = since_start + DAY_S - length      # the previous night's end
                amount = max(_ramp(since_start / fade_s), top * (1.0 - _ramp(since_end / fade_s)))
            else:
                amount = top * (1.0 - _ramp((since_start - length) / fade_s))
        if amount > best:
            best = amount
    return best


def quiet_for(settings: AudioSettings, when: _dt.datetime | _dt.time | float) -> float:
    """quiet_amount for the [audio] settings at a datetime, a time, or seconds after midnight."""
    if isinstance(when, _dt.datetime):
        when = when.time()
    if isinstance(when, _dt.time):
        when = when.hour * 3600 + when.minute * 60 + when.second + when.microsecond * 1e-6
    return quiet_amount(settings.quiet_hours, float(when), settings.quiet_fade_s)
