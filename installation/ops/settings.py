"""Settings of exhibit operations: scenes, schedule, votes, logging, status and the watchdog."""
from __future__ import annotations

import re
from dataclasses import dataclass

from ..config.fields import setting
from ..config.names import scene_name_problem

# "HH:MM=scene" or "HH:MM:SS=scene"; the scene may be the word "playlist". The time is read
# here, the name by the one scene-name rule (config/names.py), so each says what is wrong.
_ENTRY = re.compile(r"^\s*([01]?\d|2[0-3]):([0-5]\d)(?::([0-5]\d))?\s*=(.*)$", re.DOTALL)
PLAYLIST_WORD = "playlist"


def parse_entry(text: str) -> tuple[int, str]:
    """'21:30=night' -> (seconds after midnight, 'night'); ValueError with a one-line reason."""
    m = _ENTRY.match(text)
    if not m:
        raise ValueError(f"schedule entry {text!r}: expected \"HH:MM=scene\", e.g. \"21:00=night\"")
    h, mnt, sec, name = m.groups()
    name = name.strip()
    problem = scene_name_problem(name)
    if problem:
        raise ValueError(f"schedule entry {text!r}: the time is fine, the scene {name!r} is not: {problem}")
    return int(h) * 3600 + int(mnt) * 60 + int(sec or 0), name


def split_target(text: str) -> tuple[str, int]:
    """'host:port' or '[v6]:port' -> (host, port); ValueError with a one-line reason."""
    host, sep, port = text.strip().rpartition(":")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    if not sep or not host or not port.isdigit() or not 1 <= int(port) <= 65535:
        raise ValueError(f"status target {text!r}: expected \"host:port\", e.g. \"192.168.1.20:9001\"")
    return host, int(port)


@dataclass(frozen=True)
class SceneSettings:
    name: str = setting("living-mosaic", "scene at start (a file in the scenes folder, without .toml); empty = the config as is")
    folder: str = setting("scenes", "scenes folder, relative to the config file")
    crossfade_s: float = setting(5.0, "crossfade of a scene switch when /scene gives no duration", unit="s", lo=0.0, hi=600.0)
    param_glide_s: float = setting(0.5, "how long a /param/{name} change glides to its new value", unit="s", lo=0.0, hi=60.0)


@dataclass(frozen=True)
class ScheduleSettings:
    """Unattended days: a scene by time of day, or a rotating playlist."""
    entries: tuple[str, ...] = setting((), "time of day -> scene, \"HH:MM=name\" (local time; the last entry runs past midnight until the first); the name \"playlist\" rotates the playlist in that slot; empty = no schedule")
    playlist: tuple[str, ...] = setting((), "scenes rotated every playlist_minutes (always when entries is empty, else in \"playlist\" slots); empty = no rotation")
    playlist_minutes: float = setting(15.0, "how long each playlist scene runs", unit="min", lo=0.1, hi=1440.0)
    crossfade_s: float = setting(10.0, "crossfade of a scheduled switch", unit="s", lo=0.0, hi=600.0)

    def __post_init__(self):
        seen: dict[int, str] = {}
        for text in self.entries:
            at, _name = parse_entry(text)
            if at in seen:
                raise ValueError(f"schedule entries {seen[at]!r} and {text!r} start at the same time")
            seen[at] = text
        for name in self.playlist:
            if name == PLAYLIST_WORD:
                raise ValueError(f"playlist item {name!r}: the word names the playlist slot of an entry, not a scene")
            problem = scene_name_problem(name)
            if problem:
                raise ValueError(f"playlist item {name!r}: {problem}")


@dataclass(frozen=True)
class VoteSettings:
    """Audience votes: /crowd/{id}/vote name."""
    enabled: bool = setting(True, "accept /crowd/{id}/vote")
    round_s: float = setting(60.0, "length of a voting round, from its first vote", unit="s", lo=1.0, hi=86400.0)
    min_turnout: int = setting(3, "fewest participants who must vote for the round's winner to fade in", unit="count", lo=1, hi=10000)
    max_voters: int = setting(1024, "most participants counted in one round; later newcomers are rejected", unit="count", lo=1, hi=100000)
    crossfade_s: float = setting(8.0, "crossfade to the winning scene", unit="s", lo=0.0, hi=600.0)


@dataclass(frozen=True)
class StatusSettings:
    """Status over OSC for a monitoring tablet or TouchDesigner."""
    targets: tuple[str, ...] = setting((), "hosts that receive /status/... messages, \"host:port\"; empty = none")
    interval_s: float = setting(1.0, "how often status is sent", unit="s", lo=0.05, hi=3600.0)

    def __post_init__(self):
        for t in self.targets:
            split_target(t)


@dataclass(frozen=True)
class WatchdogSettings:
    stall_s: float = setting(6.0, "exit non-zero (so a supervisor restarts it) when the frame loop stalls this long; keep it 3 s or more below systemd's WatchdogSec so the recording is flushed first; 0 disables", unit="s", lo=0.0, hi=3600.0)
    flush_s: float = setting(3.0, "most time given to flushing the recording before the exit", unit="s", lo=0.1, hi=60.0)


@dataclass(frozen=True)
class LogSettings:
    level: str = setting("info", "console and file log level", choices=("debug", "info", "warning", "error"))
    file: str = setting("", "rotating log file; empty = console only")
    max_mb: float = setting(10.0, "size of one log file before rotation", unit="MiB", lo=0.1, hi=10000.0)
    keep: int = setting(5, "rotated log files kept", unit="count", lo=1, hi=100)
