"""Unattended days: which scene the clock asks for, and when it changes its mind.

`[schedule] entries = ["09:00=calm-sanctuary", "12:00=living-mosaic", "21:00=night"]`
maps local time of day to a scene. Between entries the earlier one holds, and the last
entry of the day runs past midnight until the first one (so "21:00=night" covers the
night). An entry may name `playlist`: during that slot the scenes of `[schedule] playlist`
rotate every `playlist_minutes`. With no entries, a non-empty playlist rotates all day.

Rotation is counted in simulation ticks, not wall time, so a replay rotates at the same
ticks. The time of day is injected (`now`), so tests and replays choose the clock; a live
run passes `datetime.now()`. Note for recording: a time-of-day switch depends on the wall
clock, so the frame loop should record the resulting switch as a `/scene` event.
"""
from __future__ import annotations

import bisect
from datetime import datetime
from typing import Iterable, Mapping

from ..config.loader import ConfigError
from ..config.names import unknown_scene
from .settings import PLAYLIST_WORD, ScheduleSettings, parse_entry


class Schedule:
    def __init__(self, settings: ScheduleSettings, tick_hz: int = 60,
                 scenes: Iterable[str] | None = None, where: str | Mapping[str, str] = "[schedule]"):
        """`scenes`: the known scene names, to check the schedule's against. `where` names
        where the settings came from, for the messages: a prefix ("venue.toml [schedule]"), or
        the config's `origins` (dotted key -> "venue.toml [schedule] entries",
        "--set schedule.playlist", ...)."""
        self.settings = settings
        entries = sorted(parse_entry(e) for e in settings.entries)
        self._times = [t for t, _ in entries]
        self._names = [n for _, n in entries]
        self.playlist = tuple(settings.playlist)
        self.period_ticks = max(1, round(settings.playlist_minutes * 60.0 * tick_hz))
        if PLAYLIST_WORD in self._names and not self.playlist:
            raise ConfigError("[schedule] entries: a \"playlist\" slot needs [schedule] playlist = [\"scene\", ...]")
        if scenes is not None:
            known = sorted(set(scenes))
            for key, names in (("entries", [n for n in self._names if n != PLAYLIST_WORD]),
                               ("playlist", self.playlist)):
                for name in names:
                    if name not in known:
                        origin = (f"{where} {key}" if isinstance(where, str)
                                  else where.get(f"schedule.{key}", f"[schedule] {key}"))
                        raise ConfigError(unknown_scene(origin, name, known))
        self._last: str | None = None

    @property
    def active(self) -> bool:
        return bool(self._times or self.playlist)

    def playlist_at(self, tick: int) -> str | None:
        if not self.playlist:
            return None
        return self.playlist[(max(0, tick) // self.period_ticks) % len(self.playlist)]

    def slot_for(self, now: datetime) -> str | None:
        """The entry's name in force at `now` (may be "playlist"); None without entries."""
        if not self._times:
            return None
        t = now.hour * 3600 + now.minute * 60 + now.second
        i = bisect.bisect_right(self._times, t) - 1
        # Before the day's first entry, yesterday's last entry is still running.
        return self._names[i] if i >= 0 else self._names[-1]

    def scene_for(self, now: datetime, tick: int = 0) -> str | None:
        """The scene the schedule wants at wall time `now` and simulation tick `tick`."""
        slot = self.slot_for(now)
        if slot is None or slot == PLAYLIST_WORD:
            return self.playlist_at(tick)
        return slot

    def update(self, tick: int, now: datetime) -> str | None:
        """The scene to switch to when the schedule's wish changes (the first call reports it too).

        Only changes are reported, so an operator's /scene or a vote holds until the
        schedule next moves on.
        """
        want = self.scene_for(now, tick)
        if want is None or want == self._last:
            return None
        self._last = want
        return want
