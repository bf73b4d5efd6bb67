"""Settings of exhibit operations: scenes, logging, status and the watchdog."""
from __future__ import annotations

from dataclasses import dataclass

from ..config.fields import setting


@dataclass(frozen=True)
class SceneSettings:
    name: str = setting("living-mosaic", "scene at start (a file in the scenes folder, without .toml); empty = the config as is")
    folder: str = setting("scenes", "scenes folder, relative to the config file")


@dataclass(frozen=True)
class LogSettings:
    level: str = setting("info", "console and file log level", choices=("debug", "info", "warning", "error"))
    file: str = setting("", "rotating log file; empty = console only")
    max_mb: float = setting(10.0, "size of one log file before rotation", unit="MiB", lo=0.1, hi=10000.0)
    keep: int = setting(5, "rotated log files kept", unit="count", lo=1, hi=100)
