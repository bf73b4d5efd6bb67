"""The pygame window: shows finished frames, scales them to the screen, reads the keyboard.

The frame arrives as (h, w) uint32 BGRA pixels at the render resolution; `frombuffer` wraps it
without a copy and SDL's renderer scales it to the window (pygame.SCALED), so the CPU never
resamples. Vsync is asked for and dropped quietly where the driver refuses it.
"""
from __future__ import annotations

import logging
import os
from dataclasses import dataclass

import numpy as np

from .settings import WindowSettings, key_code

log = logging.getLogger(__name__)


class DisplayUnavailable(Exception):
    """No display to open a window on: the run carries on headless."""


class DisplayError(Exception):
    """A display request that cannot be met (e.g. a display index that does not exist)."""


@dataclass
class KeyActions:
    quit: bool = False
    toggle_hud: bool = False
    pause: bool = False
    step: bool = False
    seek_s: float = 0.0


def _init_video() -> None:
    os.environ.setdefault("PYGAME_HIDE_SUPPORT_PROMPT", "1")
    import pygame
    if not os.environ.get("SDL_VIDEODRIVER") and os.name == "posix" and not (
            os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")) and os.uname().sysname == "Linux":
        raise DisplayUnavailable("no DISPLAY or WAYLAND_DISPLAY is set")
    try:
        pygame.display.init()
    except pygame.error as exc:
        raise DisplayUnavailable(str(exc)) from None
    # With no screen reachable (an X server not up yet at boot, a wrong DISPLAY) SDL falls back
    # to a driver that draws nowhere: a "window" nobody sees, for weeks. Unless asked for.
    driver = pygame.display.get_driver()
    if driver in ("offscreen", "dummy") and os.environ.get("SDL_VIDEODRIVER", "").lower() != driver:
        pygame.display.quit()
        where = os.environ.get("WAYLAND_DISPLAY") or os.environ.get("DISPLAY") or "none"
        raise DisplayUnavailable(f"SDL reached no screen (display {where}) and fell back to its {driver} driver")


class Display:
    def __init__(self, window: WindowSettings, render_size: tuple[int, int]):
        _init_video()
        import pygame
        self._pg = pygame
        n = pygame.display.get_num_displays()
        if window.display >= n:
            pygame.display.quit()
            raise DisplayError(f"display {window.display} does not exist: this machine has {n} "
                               f"(use --display 0..{n - 1})")
        self.render_size = render_size
        flags = pygame.SCALED | (pygame.FULLSCREEN if window.fullscreen else 0)
        try:
            self.screen = pygame.display.set_mode(render_size, flags, display=window.display,
                                                  vsync=1 if window.vsync else 0)
            self.vsync = window.vsync
        except pygame.error:
            self.screen = pygame.display.set_mode(render_size, flags, display=window.display)
            self.vsync = False
        if not window.fullscreen and (window.width, window.height) != render_size:
            try:
                pygame.Window.from_display_module().size = (window.width, window.height)
            except (AttributeError, pygame.error):  # older pygame / drivers without resizing
                pass
        pygame.display.set_caption("Living Mosaic")
        if window.fullscreen and window.hide_cursor:
            pygame.mouse.set_visible(False)
        problem = window.key_problem()      # settings built without the loader's check
        if problem:
            raise DisplayError(f"window.{problem}")
        self._chord = [key_code(name) for name in window.quit_keys]
        self._hud_key = key_code(window.hud_key)
        self.driver = pygame.display.get_driver()
        self._font = None

    def present(self, frame: np.ndarray, hud_lines: list[str] | None = None) -> None:
        pg = self._pg
        h, w = frame.shape
        surf = pg.image.frombuffer(frame, (w, h), "BGRA")
        self.screen.blit(surf, (0, 0))
        if hud_lines:
            self._draw_hud(hud_lines)
        pg.display.flip()

    def _draw_hud(self, lines: list[str]) -> None:
        pg = self._pg
        if self._font is None:
            pg.font.init()
            self._font = pg.font.Font(None, max(16, self.render_size[1] // 40))
        y = 8
        for line in lines:
            text = self._font.render(line, True, (235, 235, 235), (0, 0, 0))
            text.set_alpha(200)
            self.screen.blit(text, (8, y))
            y += text.get_height() + 2

    def poll(self) -> KeyActions:
        """Drain the window's events; never blocks."""
        pg = self._pg
        act = KeyActions()
        for ev in pg.event.get():
            if ev.type == pg.QUIT:
                act.quit = act.quit or bool(self._chord)  # kiosk: the close button does nothing
            elif ev.type == pg.KEYDOWN:
                if ev.key == self._hud_key:
                    act.toggle_hud = True
                elif ev.key == pg.K_SPACE:
                    act.pause = True
                elif ev.key == pg.K_PERIOD:
                    act.step = True
                elif ev.key == pg.K_RIGHT:
                    act.seek_s += 10.0
                elif ev.key == pg.K_LEFT:
                    act.seek_s -= 10.0
                if self._chord and ev.key in self._chord:
                    pressed = pg.key.get_pressed()
                    if all(pressed[k] or k == ev.key for k in self._chord):
                        act.quit = True
        return act

    def close(self) -> None:
        self._pg.display.quit()
