"""Settings of the look (`[render]`) and of the window (`[window]`)."""
from __future__ import annotations

from dataclasses import dataclass

from ..config.fields import setting

DEFAULT_PALETTE = ("#ff4f6d", "#ffb347", "#ffe66d", "#7bd389", "#3ec1d3", "#4f7cff", "#a66dff", "#ff6ec7")


@dataclass(frozen=True)
class RenderSettings:
    backend: str = setting("cpu", "renderer: the numba CPU renderer (a GL backend will follow)", choices=("cpu",))
    width: int = setting(1280, "render resolution, independent of the window (scaled to fit)", unit="px", lo=64, hi=7680)
    height: int = setting(720, "render resolution height", unit="px", lo=64, hi=4320)
    palette: tuple[str, ...] = setting(DEFAULT_PALETTE, "species colours as #rrggbb, repeated if there are more species")
    warmth: float = setting(0.0, "palette warmth shift, -1 cool .. 1 warm; valence adds to it", lo=-1.0, hi=1.0)
    point_gain: float = setting(0.12, "light each particle adds to its pixels at a 720-row render (scaled with the pixel density at other sizes, so dense light keeps its level; at 1440 rows and each 720 more a particle's splat widens by a pixel each way, so 1440p and 4K look as 720p does; between the steps lone particles are finer points, which the tone curve shows dimmer: a 1080p render reads about 7% darker than 720p, where exposure can make it up)", lo=0.0, hi=10.0)
    speed_gain: float = setting(1.5, "extra brightness with speed", lo=0.0, hi=20.0)
    energy_gain: float = setting(1.0, "extra brightness with a particle's energy (pulses, touches)", lo=0.0, hi=20.0)
    trail_decay: float = setting(0.93, "fraction of light kept from the previous frame (trails)", lo=0.0, hi=0.99)
    bloom: float = setting(0.6, "bloom strength", lo=0.0, hi=5.0)
    bloom_threshold: float = setting(0.2, "level above which light blooms, of the light averaged over the bloom's cells (a few pixels across: a dense cluster's level, not one particle's; the default scene's brightest 3% of cells pass 0.2)", lo=0.0, hi=10.0)
    exposure: float = setting(1.2, "tone-map exposure", lo=0.05, hi=20.0)
    bloom_radius: float = setting(0.015, "bloom blur radius (Gaussian sigma) as a fraction of the frame height", lo=0.001, hi=0.2)
    tone_map: str = setting("aces", "tone-mapping curve from HDR light to the screen", choices=("aces", "reinhard"))
    pulse_flash: float = setting(2.0, "burst of light on a pulse: exposure multiplied by 1 + this x strength, fading in ~0.1 s", lo=0.0, hi=10.0)
    brightness: float = setting(1.0, "master brightness (the operator's /master/brightness)", lo=0.0, hi=1.0)

    def __post_init__(self):
        for c in self.palette:
            if len(c) != 7 or c[0] != "#" or any(ch not in "0123456789abcdefABCDEF" for ch in c[1:]):
                raise ValueError(f"palette = {list(self.palette)!r}: colours must be '#rrggbb', got {c!r}")
        if not self.palette:
            raise ValueError("palette must hold at least one colour")


@dataclass(frozen=True)
class WindowSettings:
    fullscreen: bool = setting(False, "fullscreen on the chosen display")
    display: int = setting(0, "display index for the window", lo=0, hi=16)
    width: int = setting(1280, "window width when windowed (fullscreen uses the display's size)", unit="px", lo=64, hi=7680)
    height: int = setting(720, "window height when windowed", unit="px", lo=64, hi=4320)
    vsync: bool = setting(True, "wait for the display's vertical blank where the driver allows")
    max_catchup_ticks: int = setting(4, "most simulation ticks run for one frame when rendering falls behind", unit="ticks", lo=1, hi=60)
    hud: bool = setting(False, "show the heads-up display at start")
    hud_key: str = setting("h", "key that toggles the heads-up display")
    quit_keys: tuple[str, ...] = setting(("escape",), "key chord that quits; empty disables quitting from the keyboard (kiosk)")
    hide_cursor: bool = setting(True, "hide the mouse cursor in fullscreen")
    require_display: bool = setting(False, "without a screen, stop with exit status 2 instead of running headless: under systemd the unit then restarts it until the desktop is up (set it for a kiosk)")

    def validate(self) -> None:
        """The key names, as the window will read them: check-config (and a headless run) then
        refuses what a windowed start would, naming the file."""
        problem = self.key_problem()
        if problem:
            raise ValueError(problem)

    def key_problem(self) -> str | None:
        """What is wrong with the key names (the window says it too), or None."""
        for name in self.quit_keys:
            if key_code(name) is None:
                return f"quit_keys: unknown key name {name!r} (pygame key names, e.g. 'escape', 'left ctrl', 'q')"
        if key_code(self.hud_key) is None:
            return f"hud_key: unknown key name {self.hud_key!r} (pygame key names, e.g. 'h', 'f1', 'tab')"
        return None


def key_code(name: str) -> int | None:
    """pygame's key code for a key name (SDL's names: 'escape', 'left ctrl', 'f1'), None if
    there is none. Names need no display: pygame's warning that it is not initialised is
    about keyboard layouts, which a name does not depend on."""
    import os
    import warnings
    os.environ.setdefault("PYGAME_HIDE_SUPPORT_PROMPT", "1")
    import pygame
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            return pygame.key.key_code(name)
        except ValueError:
            return None
