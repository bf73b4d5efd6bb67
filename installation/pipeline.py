"""One run's state and its per-tick work: ticked input → control → swarm; frames; audio mailbox.

Live, replay and export all drive this same object; they differ only in where the events
come from and what happens to a finished frame. Nothing here reads the wall clock.
"""
from __future__ import annotations

import hashlib
import logging

import numpy as np

from .audio.params import AudioParams
from .config import Config
from .crowd.control import CrowdControl
from .events import InputEvent
from .render.cpu_renderer import CpuRenderer
from .render.look import LookParams
from .safety.flash_guard import FlashGuard
from .sim.params import StepParams
from .sim.swarm import Swarm

log = logging.getLogger(__name__)


class Pipeline:
    def __init__(self, config: Config, *, render_size: tuple[int, int] | None = None):
        self.config = config
        self.tick_hz = config.sim.tick_hz
        self.swarm = Swarm(config.sim)
        self.step = StepParams.from_settings(config.sim)
        self.look = LookParams.from_settings(config.render)
        self.control = CrowdControl(config)
        self.audio = AudioParams()
        w, h = render_size or (config.render.width, config.render.height)
        self.renderer = CpuRenderer(config.render, config.sim.species, config.sim.aspect, w, h)
        self.guard = FlashGuard(config.safety, w, h, float(self.tick_hz))
        self.tick = 0
        self.events_applied = 0
        self.frame: np.ndarray | None = None
        self.operator_handlers = []   # callables(event, tick) for /scene, /param, /record, votes

    # --- per tick -------------------------------------------------------------------------
    def advance(self, events: list[InputEvent]) -> None:
        """Apply this tick's events, update the control state, step the swarm once."""
        tick = self.tick
        control = self.control
        for ev in events:
            control.apply(ev, tick)
        self.events_applied += len(events)
        control.update(tick)
        for req in control.operator_requests:
            for handler in self.operator_handlers:
                handler(req, tick)
        self.step.reset_scalars(self.config.sim)
        control.fill(self.step, self.look)
        self.swarm.step(self.step)
        self._fill_audio()
        self.tick += 1

    def _fill_audio(self) -> None:
        ap = self.audio
        control = self.control
        mood = control.mood
        ap.set_mood(mood.valence, mood.arousal, mood.agreement, mood.energy, mood.count)
        st = self.swarm.stats
        ap.set_texture(float(st[0]), float(st[1]), float(st[2]))
        n = 0
        for p in control.participants:
            if n >= ap.max_voices:
                break
            # pan follows where the participant's tile lights up: left of the image is left
            ap.set_voice(n, p.fade, p.x, p.y, p.valence, p.arousal, p.energy, p.species, 2.0 * p.x - 1.0)
            n += 1
        ap.clear_voices_from(n)
        for x, y, strength in control.new_pulses:
            ap.hit(strength, 2.0 * x - 1.0)
        ap.volume = control.volume

    # --- per frame ------------------------------------------------------------------------
    def render(self) -> np.ndarray:
        frame = self.renderer.render(self.swarm, self.look)
        self.guard.process(frame)
        self.frame = frame
        return frame

    def state_hash(self) -> str:
        return self.swarm.state_hash()

    def frame_hash(self) -> str:
        # the guarded frame is what the audience saw: hash that, not the renderer's output
        return hashlib.sha256(self.frame).hexdigest() if self.frame is not None else ""
