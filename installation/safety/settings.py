"""Settings of the audience-safety guards: `[safety]`."""
from __future__ import annotations

from dataclasses import dataclass

from ..config.fields import setting
from .quiet_hours import parse_ranges

# The exact words that allow `flash_guard = false`; anything else keeps the guard on.
OVERRIDE_PHRASE = "I accept the seizure risk"


@dataclass(frozen=True)
class SafetySettings:
    flash_guard: bool = setting(True, "limit flashes to WCAG 2.3.1; turning it off needs flash_guard_override too")
    flash_guard_override: str = setting("", "type 'I accept the seizure risk' to allow flash_guard = false")
    image_width_deg: float = setting(60.0, "width of the image in degrees of visual angle from the nearest typical viewpoint", unit="deg", lo=5.0, hi=180.0)
    quiet_hours: tuple[str, ...] = setting((), "night-mode periods as 'HH:MM-HH:MM' (may cross midnight, e.g. '22:00-07:00'); empty = never quiet")
    quiet_brightness: float = setting(0.4, "light level at full quiet, as a factor on the master brightness", lo=0.0, hi=1.0)
    quiet_ramp_min: float = setting(15.0, "minutes of smooth ramp into quiet before each period starts and back out after it ends", unit="min", lo=0.0, hi=240.0)

    def __post_init__(self):
        parse_ranges(self.quiet_hours)  # ValueError names the bad item; the loader turns it into a ConfigError
