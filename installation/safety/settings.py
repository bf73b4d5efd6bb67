"""Settings of the audience-safety guards: `[safety]`."""
from __future__ import annotations

from dataclasses import dataclass

from ..config.fields import setting


@dataclass(frozen=True)
class SafetySettings:
    flash_guard: bool = setting(True, "limit flashes to WCAG 2.3.1; turning it off needs flash_guard_override too")
    flash_guard_override: str = setting("", "type 'I accept the seizure risk' to allow flash_guard = false")
    image_width_deg: float = setting(60.0, "width of the image in degrees of visual angle from the nearest typical viewpoint", unit="deg", lo=5.0, hi=180.0)
