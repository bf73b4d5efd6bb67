"""Settings of session recording and export: `[session]`."""
from __future__ import annotations

import math
from dataclasses import dataclass

from ..config.fields import setting

VIDEO_PRESETS = ("ultrafast", "superfast", "veryfast", "faster", "fast", "medium", "slow", "slower", "veryslow")


@dataclass(frozen=True)
class SessionSettings:
    folder: str = setting("sessions", "where /record/start writes, relative to the working directory")
    sync_s: float = setting(1.0, "how often the recording is synced to disk", unit="s", lo=0.05, hi=60.0)
    rotate_mb: float = setting(256.0, "start a new file past this size (0 = never)", unit="MiB", lo=0.0, hi=1e6)
    rotate_minutes: float = setting(0.0, "start a new file after this long (0 = never)", unit="min", lo=0.0, hi=1e6)
    keep_gb: float = setting(0.0, "most space the sessions in a recording's folder (session.folder, or that of run --record PATH) may take: at each start and rotation the oldest are deleted, never the one being written (0 = no limit)", unit="GB", lo=0.0, hi=1e6)
    keep_days: float = setting(0.0, "delete the sessions in that folder older than this, at each start and rotation (0 = keep all)", unit="days", lo=0.0, hi=36500.0)
    queue_max: int = setting(100000, "most events waiting for the recorder thread; beyond it they are counted as dropped", unit="events", lo=100, hi=10_000_000)
    video_crf: int = setting(20, "H.264 quality of `replay --export` (lower is better and larger)", lo=0, hi=51)
    video_preset: str = setting("ultrafast", "x264 speed/size trade-off of `replay --export`: the swarm's fine detail makes x264 the export's largest cost; ultrafast takes about half the CPU of superfast for files about 15% larger (pick a slower preset for smaller files when export time does not matter)", choices=VIDEO_PRESETS)
    audio_kbps: int = setting(192, "AAC bit rate of the exported video's sound", unit="kbit/s", lo=32, hi=512)

    def validate(self) -> None:
        """The loader's cross-field check: keep_gb leaves room for two parts. The part being
        written counts as full (rotate_mb) so the folder stays under the limit until the next
        rotation; a limit below that deleted every older session at every start."""
        if self.keep_gb > 0 and self.rotate_mb > 0 and self.keep_gb * 1e9 < 2 * self.rotate_mb * 2 ** 20:
            least = math.ceil(2 * self.rotate_mb * 2 ** 20 / 1e7) / 100
            raise ValueError(f"keep_gb = {self.keep_gb:g} leaves no room for two parts of rotate_mb = "
                             f"{self.rotate_mb:g} MiB (the part being written counts as full, so every start "
                             f"would delete all older sessions): raise keep_gb to at least {least:g} or lower "
                             f"rotate_mb")
