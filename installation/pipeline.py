"""One run's state and its per-tick work: ticked input → control → swarm; frames; audio mailbox.

Live, replay and export all drive this same object; they differ only in where the events
come from and what happens to a finished frame. Nothing here reads the wall clock: quiet
hours arrive as `/quiet` events (from the live run's QuietClock, kept in the recording), or,
for a session recorded before those existed, as a time of day from its recorded start.
"""
from __future__ import annotations

import dataclasses
import hashlib
import logging
import math
from dataclasses import dataclass
from datetime import datetime
from typing import Callable

import numpy as np

from .audio.params import AudioParams
from .config import Config
from .crowd.control import CrowdControl
from .events import InputEvent
from .ops.scenes import SceneMixer
from .ops.votes import VoteBox
from .render.base import Particles
from .render.cpu_renderer import CpuRenderer
from .render.look import LookParams
from .render.settings import RenderSettings
from .safety.flash_guard import FlashGuard
from .safety.quiet_hours import QUIET_ADDR, QuietHours
from .sim import touch_field
from .sim.params import StepParams
from .sim.swarm import Swarm

log = logging.getLogger(__name__)

_PARTICLE_ARRAYS = ("x", "y", "vx", "vy", "energy", "species")    # Particles' arrays, in order


@dataclass
class FrameInput:
    """What one frame is drawn from: the particles and the look after a tick, copied out of
    the pipeline, so that the frame can be drawn while the next tick is simulated."""
    particles: Particles
    look: LookParams
    render_settings: RenderSettings     # in force at the tick
    tick: int


class Pipeline:
    def __init__(self, config: Config, *, render_size: tuple[int, int] | None = None,
                 time_of_day: Callable[[int], datetime] | None = None):
        self.config = config
        self.tick_hz = config.sim.tick_hz
        self.swarm = Swarm(config.sim)
        self.step = StepParams.from_settings(config.sim)
        self.look = LookParams.from_settings(config.render)
        self.control = CrowdControl(config)
        self.mixer = SceneMixer(config)
        self.votes = VoteBox(config.votes, self.tick_hz, self.mixer.scenes())
        self.quiet = QuietHours.from_settings(config.safety)
        self.time_of_day = time_of_day
        # quiet hours hold from the first sample: a start at night must not open at the day's
        # loudness ceiling (the audio's ceiling moves 1 dB/s) before the first tick's publish
        # (live: set_quiet before the stream opens; an old session: its clock at tick 0)
        self.audio = AudioParams()
        self.audio.volume = self.control.volume
        self.set_quiet(self.quiet.amount(time_of_day(0)) if time_of_day is not None else 0.0)
        w, h = render_size or (config.render.width, config.render.height)
        self.renderer = CpuRenderer(config.render, config.sim.species, config.sim.aspect, w, h)
        self._render_settings = config.render      # in force (a scene may change them) ...
        self._renderer_has = config.render          # ... and given to the renderer
        self.guard = FlashGuard(config.safety, w, h, float(self.tick_hz))
        self.burst = 0.0
        self._burst_decay = float(np.exp(-1.0 / (0.08 * self.tick_hz)))
        self.tick = 0
        self.events_applied = 0
        self.operator_rejected = 0
        self.frame: np.ndarray | None = None
        # /record/start and /record/stop belong to the live run, not to the simulation
        self.record_handler: Callable[[InputEvent, int], None] | None = None

    def warm_up(self) -> None:
        """Run the rarely taken paths once before the first frame (the flash guard's limiter
        above all), so numba compiles or loads them now and not in the middle of a show, where
        a compile is a frozen picture long enough for the watchdog to fire."""
        import dataclasses
        sim = self.config.sim
        tiny = Swarm(sim)   # a scene switch's new matrix and mosaic homes, on a throwaway swarm
        tiny.step(StepParams.from_settings(sim))
        tiny.apply_settings(dataclasses.replace(sim, matrix_seed=sim.matrix_seed + 1,
                                                mosaic_tiles=max(1, sim.mosaic_tiles - 1)))
        # the paths the start's own parameters may not take: the flow (a venue config may start
        # with none; the mood or a scene turns it on), a crowd's touches drawn as a grid, a pulse
        busy = StepParams.from_settings(sim)
        busy.flow_strength = max(busy.flow_strength, 1.0)
        n = min(busy.touches.shape[0], touch_field.GRID_FROM)
        busy.touches[:n] = (0.5 * sim.aspect, 0.5, 1.0, 0.0)
        busy.n_touches = n
        busy.touch_radius = max(busy.touch_radius, touch_field.grid_min_reach(sim.aspect))
        busy.pulses[0] = (0.5 * sim.aspect, 0.5, 0.1, 1.0)
        busy.n_pulses = 1
        tiny.step(busy)
        self.renderer.set_settings(self.config.render)
        guard = FlashGuard(self.config.safety, 64, 48, float(self.tick_hz))
        frame = np.zeros((48, 64), np.uint32)
        for i in range(2 * self.tick_hz // 3):
            frame[:] = 0xFFFFFFFF if i % 2 else 0xFF000000
            guard.process(frame, i)

    # --- per tick -------------------------------------------------------------------------
    def advance(self, events: list[InputEvent]) -> None:
        """Apply this tick's events, update the control state, step the swarm once."""
        tick = self.tick
        control = self.control
        for ev in events:
            if ev.addr == QUIET_ADDR:
                self._quiet_event(ev)
            else:
                control.apply(ev, tick)
        self.events_applied += len(events)
        control.update(tick)
        for req in control.operator_requests:
            self._operator(req, tick)
        winner = self.votes.update(tick)
        if winner:
            log.info("the audience voted for scene '%s'", winner)
            # a refusal here is the mixer's (logged there), not an operator message's: not counted
            self.mixer.switch(winner, self.config.votes.crossfade_s, tick)
        cfg = self.mixer.update(tick)
        if cfg is not self.config:
            self._set_config(cfg)
        control.fill(self.step, self.look)
        self._pulse_light()
        if self.time_of_day is not None and tick % self.tick_hz == 0:
            self.quiet_amount = self.quiet.amount(self.time_of_day(tick))
        if self.quiet_amount > 0.0:
            self.look.brightness *= 1.0 - self.quiet_amount * (1.0 - self.config.safety.quiet_brightness)
        self.swarm.step(self.step)
        self._fill_audio()
        self.tick += 1

    def show_at(self, ticks_per_second: float) -> None:
        """The frames reach a screen at this many simulation ticks a second (a replay at 4x in a
        window: 4 x tick_hz), before the first frame. The guard counts its one-second window in
        ticks: at the tick rate, a fast replay would show 4 of its seconds in one of the
        viewer's, flashing four times as often as it allows."""
        if ticks_per_second != self.guard.fps:
            w, h = self.renderer.width, self.renderer.height
            self.guard = FlashGuard(self.config.safety, w, h, float(ticks_per_second))

    def set_quiet(self, amount: float) -> None:
        """The quiet-hours amount (0..1) in force: light and loudness ceiling follow."""
        self.quiet_amount = min(1.0, max(0.0, float(amount)))
        self.audio.quiet = self.quiet_amount

    def _quiet_event(self, ev: InputEvent) -> None:
        try:
            amount = float(ev.args[0])
        except (IndexError, TypeError, ValueError):
            amount = math.nan
        if math.isfinite(amount):
            self.set_quiet(amount)
        else:
            log.warning("ignored %s %r: expected one finite number", ev.addr, ev.args)

    def _pulse_light(self) -> None:
        """A pulse is a burst of light as well as a shock-wave: the exposure jumps with its
        strength and falls back within a tenth of a second. Bursts in quick succession are
        exactly what the flash guard is there to tame."""
        for _x, _y, strength in self.control.new_pulses:
            self.burst = max(self.burst, float(strength))
        self.look.exposure = self.config.render.exposure * (1.0 + self.config.render.pulse_flash * self.burst)
        self.burst *= self._burst_decay

    def _set_config(self, cfg: Config) -> None:
        if cfg.sim is not self.config.sim:
            self.swarm.apply_settings(cfg.sim)
        self.config = cfg
        self.control.set_config(cfg)
        r = cfg.render
        self.look.bloom, self.look.trail_decay = r.bloom, r.trail_decay
        # the renderer takes them when it next draws: a frame may be drawn on another thread
        self._render_settings = r

    def _reject(self, reason: str | None) -> None:
        if reason:      # counted here; the scene mixer and the vote box have logged it
            self.operator_rejected += 1

    def _operator(self, ev: InputEvent, tick: int) -> None:
        addr = ev.addr
        if addr == "/scene":
            fade = float(ev.args[1]) if len(ev.args) > 1 else None
            self._reject(self.mixer.switch(str(ev.args[0]), fade, tick))
        elif addr.startswith("/param/"):
            self._reject(self.mixer.set_param(addr[len("/param/"):], float(ev.args[0]), tick))
        elif addr.endswith("/vote"):
            pid = addr.split("/")[2]
            self._reject(self.votes.vote(pid, str(ev.args[0]), tick))
        elif addr.startswith("/record/"):
            if self.record_handler is not None:
                self.record_handler(ev, tick)

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
            # pan follows where the participant's touch lights up: left of the image is left
            ap.set_voice(n, p.fade, p.x, p.y, p.valence, p.arousal, p.energy, p.species, 2.0 * p.x - 1.0)
            n += 1
        ap.clear_voices_from(n)
        for x, y, strength in control.new_pulses:
            ap.hit(strength, 2.0 * x - 1.0)
        ap.volume = control.volume
        ap.quiet = self.quiet_amount

    # --- per frame ------------------------------------------------------------------------
    def render(self) -> np.ndarray:
        """The guarded frame of the state now."""
        return self._draw(self.swarm, self.look, self._render_settings, self.tick)

    def frame_input(self, into: FrameInput | None = None) -> FrameInput:
        """The state a frame is drawn from, copied (into `into`'s arrays when they fit)."""
        sw = self.swarm
        if into is None or any(getattr(into.particles, a).shape != getattr(sw, a).shape
                               for a in _PARTICLE_ARRAYS):
            look = dataclasses.replace(self.look, species_gain=self.look.species_gain.copy())
            into = FrameInput(Particles(sw.n, sw.species_count, sw.aspect,
                                        *(getattr(sw, a).copy() for a in _PARTICLE_ARRAYS)),
                              look, self._render_settings, self.tick)
        else:
            for a in _PARTICLE_ARRAYS:
                np.copyto(getattr(into.particles, a), getattr(sw, a))
            for f in dataclasses.fields(self.look):
                value = getattr(self.look, f.name)
                if isinstance(value, np.ndarray):
                    np.copyto(getattr(into.look, f.name), value)
                else:
                    setattr(into.look, f.name, value)
        pt = into.particles
        pt.n, pt.species_count, pt.aspect = sw.n, sw.species_count, sw.aspect
        into.render_settings = self._render_settings
        into.tick = self.tick
        return into

    def render_input(self, fi: FrameInput) -> np.ndarray:
        """The guarded frame of a FrameInput: the pixels `render()` gave right after its tick.
        Frames must be drawn in tick order (the trails and the flash guard follow them)."""
        return self._draw(fi.particles, fi.look, fi.render_settings, fi.tick)

    def _draw(self, particles, look: LookParams, settings, tick: int) -> np.ndarray:
        if settings is not self._renderer_has:
            self.renderer.set_settings(settings)
            self._renderer_has = settings
        frame = self.renderer.render(particles, look)
        self.guard.process(frame, tick)
        self.frame = frame
        return frame

    def state_hash(self) -> str:
        return self.swarm.state_hash()

    def frame_hash(self) -> str:
        # the guarded frame is what the audience saw: hash that, not the renderer's output
        return hashlib.sha256(self.frame).hexdigest() if self.frame is not None else ""
