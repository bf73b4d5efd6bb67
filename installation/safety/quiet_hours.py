"""Quiet hours: a daily schedule that lowers the light level and the loudness ceiling.

`QuietHours.amount(now)` is 0 outside the schedule, 1 inside a period, and ramps smoothly
between. The ramp lies *outside* each period (before its start, after its end), so the
promise made to neighbours, "quiet from 22:00", holds from 22:00 on. The clock is never
read here: the caller passes the time (the loop's wall clock live, a fixed time in tests).
"""
from __future__ import annotations

import datetime as _dt
from typing import Iterable

_DAY = 24 * 60


def _parse_clock(text: str, item: str) -> int:
    hh, sep, mm = text.strip().partition(":")
    if not sep or not hh.isdigit() or not mm.isdigit() or len(mm) != 2 or not 1 <= len(hh) <= 2:
        raise ValueError(f"quiet_hours item {item!r}: times are HH:MM, e.g. '22:00-07:00'")
    h, m = int(hh), int(mm)
    if m > 59 or h > 24 or (h == 24 and m != 0):
        raise ValueError(f"quiet_hours item {item!r}: {text.strip()!r} is not a time of day (00:00..24:00)")
    return h * 60 + m


def parse_ranges(items: Iterable[str]) -> tuple[tuple[int, int], ...]:
    """'HH:MM-HH:MM' strings → (start, end) in minutes of the day; end < start crosses midnight."""
    out = []
    for item in items:
        if not isinstance(item, str):
            raise ValueError(f"quiet_hours item {item!r}: expected a string like '22:00-07:00'")
        start, sep, end = item.partition("-")
        if not sep:
            raise ValueError(f"quiet_hours item {item!r}: expected START-END, e.g. '22:00-07:00'")
        s, e = _parse_clock(start, item), _parse_clock(end, item)
        if s % _DAY == e % _DAY and not (s == 0 and e == _DAY):
            raise ValueError(f"quiet_hours item {item!r}: start and end are the same time (use '00:00-24:00' for all day)")
        out.append((s % _DAY, e if e == _DAY else e % _DAY))
    return tuple(out)


def _smooth(x: float) -> float:
    # smoothstep: no jump in level or slope where the ramp meets the plateau
    x = min(1.0, max(0.0, x))
    return x * x * (3.0 - 2.0 * x)


def _minutes(now) -> float:
    if isinstance(now, _dt.datetime):
        now = now.time()
    if isinstance(now, _dt.time):
        return now.hour * 60 + now.minute + now.second / 60.0 + now.microsecond / 60e6
    raise TypeError(f"QuietHours.amount needs a datetime.time or datetime.datetime, not {type(now).__name__}")


class QuietHours:
    """How quiet it should be at a given time of day: 0 (normal) .. 1 (full quiet)."""

    def __init__(self, ranges: Iterable[str], ramp_minutes: float = 15.0):
        if not ramp_minutes >= 0.0:  # also rejects NaN
            raise ValueError(f"quiet hours ramp must be >= 0 minutes, got {ramp_minutes!r}")
        self.ranges = parse_ranges(tuple(ranges))
        self.ramp = float(ramp_minutes)

    @classmethod
    def from_settings(cls, safety) -> "QuietHours":
        return cls(safety.quiet_hours, safety.quiet_ramp_min)

    def amount(self, now) -> float:
        t = _minutes(now)
        best = 0.0
        for s, e in self.ranges:
            length = _DAY if (s == 0 and e == _DAY) else (e - s) % _DAY
            if (t - s) % _DAY <= length:
                return 1.0
            if self.ramp > 0.0:
                until_start = (s - t) % _DAY
                since_end = (t - e) % _DAY
                best = max(best, _smooth(1.0 - until_start / self.ramp), _smooth(1.0 - since_end / self.ramp))
        return best

    def scale(self, now, at_full_quiet: float) -> float:
        """A factor that goes from 1 (normal) to `at_full_quiet` as quiet sets in."""
        return 1.0 + self.amount(now) * (at_full_quiet - 1.0)


QUIET_ADDR = "/quiet"      # the quiet amount as an input event: from the live clock, never the network


class QuietClock:
    """The live run's quiet amount, read from the wall clock (once a second) and handed to the
    pipeline as a `/quiet` event, which the recording keeps: a replay then dims exactly as the
    show did, on any machine, in any time zone, with no clock. A jump of the wall clock (NTP,
    a change of daylight-saving time, a manual change) moves the amount no faster than twice
    a ramp's steepest slope, measured on the monotonic clock, so it still fades; with no
    ramp (quiet_ramp_min = 0) it switches at once, as configured."""

    def __init__(self, quiet: QuietHours):
        self.quiet = quiet
        self.value: float | None = None      # the amount now
        self.emitted: float | None = None    # the amount last handed to the pipeline
        self._last_s = 0.0

    def poll(self, now: _dt.datetime, mono_s: float) -> float:
        target = self.quiet.amount(now)
        if self.value is None or self.quiet.ramp <= 0.0:
            self.value = target
        else:
            # smoothstep's steepest slope is 1.5 per ramp: a normal ramp passes untouched
            step = max(0.0, mono_s - self._last_s) * 2.0 / (self.quiet.ramp * 60.0)
            self.value = min(target, self.value + step) if target > self.value else max(target, self.value - step)
        self._last_s = mono_s
        return self.value

    def event_value(self) -> float | None:
        """The amount to send now, or None when the pipeline has it already."""
        if self.value is None or self.value == self.emitted:
            return None
        self.emitted = self.value
        return self.value
