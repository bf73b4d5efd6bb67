"""Settings of session recording: `[session]`."""
from __future__ import annotations

from dataclasses import dataclass

from ..config.fields import setting


@dataclass(frozen=True)
class SessionSettings:
    folder: str = setting("sessions", "where /record/start writes, relative to the working directory")
    sync_s: float = setting(1.0, "how often the recording is synced to disk", unit="s", lo=0.05, hi=60.0)
    rotate_mb: float = setting(256.0, "start a new file past this size (0 = never)", unit="MiB", lo=0.0, hi=1e6)
    rotate_minutes: float = setting(0.0, "start a new file after this long (0 = never)", unit="min", lo=0.0, hi=1e6)
