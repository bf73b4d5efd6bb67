"""The control state: input events in, engine and look parameters out, once per tick.

The frame loop, per tick:
    for ev in events: crowd.apply(ev, tick)
    crowd.update(tick)
    crowd.fill(step_params, look)

Everything here is a function of (config, seed, ticked events): time is the tick index, the
attract crowd is generated inside from the seed, random positions come from a seeded
generator drawn in a fixed order. A replay of the same ticked events reproduces the state.

Attract mode: when no real participant has been present for `attract.after_s` (and at
start-up: nobody has come yet), a built-in virtual crowd keeps the mosaic alive. Its
weight (`attract_level`) glides 0 <-> 1 over `attract.handover_s`: when real people arrive
the virtual crowd's mood, touches, light and voices fade out under theirs, and back in after
they have gone. The virtual crowd steps every tick, shown or not, so its state depends on
the tick index only.
"""
from __future__ import annotations

import logging
import math
import random

from ..config.model import Config
from ..events import InputEvent
from ..ops.logs import RateLimitedLog
from ..render.look import MAX_SPECIES, LookParams
from ..sim.params import MAX_PULSES, MAX_TOUCHES, StepParams
from .mood import Mood, MoodTracker, SurgeDetector, aggregate
from .participants import Participant, Registry
from .virtual import VirtualCrowd

log = logging.getLogger(__name__)

# The engine's scalars that the mood mapping starts from (the scene's base values).
_BASE_SCALARS = ("life_strength", "alignment", "flow_strength", "flow_scale", "flow_speed", "mosaic_pull",
                 "friction", "max_speed", "touch_strength", "touch_radius", "pulse_strength", "pulse_speed",
                 "pulse_width")
OPERATOR_REQUESTS = ("/scene", "/record/start", "/record/stop")


def _clamp(v: float, lo: float, hi: float) -> float:
    return lo if v < lo else hi if v > hi else v


def _num(args: tuple, i: int, lo: float, hi: float, default: float | None = None) -> float:
    """A clamped finite number from a recorded event's args (defensive: sessions are files)."""
    if i >= len(args):
        if default is None:
            raise ValueError("missing argument")
        return default
    v = args[i]
    if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
        raise ValueError("not a finite number")
    return _clamp(float(v), lo, hi)


class CrowdControl:
    def __init__(self, config: Config):
        self.config = config
        c, a, sim = config.crowd, config.attract, config.sim
        self.tick_hz = sim.tick_hz
        self.species = min(sim.species, MAX_SPECIES)
        common = dict(species=self.species, tick_hz=self.tick_hz, timeout_s=c.timeout_s, fade_s=c.fade_s,
                      touch_hold_s=c.touch_hold_s, energy_decay_s=c.energy_decay_s)
        self._real = Registry(cap=c.max_participants, per_sender=c.max_per_sender, **common)
        self._virtual = Registry(cap=max(1, a.participants), virtual=True, **common)
        self._attract_crowd = self._new_attract_crowd(config) if a.enabled else None
        self._mood_tracker = MoodTracker(c.mood_smoothing_s, self.tick_hz)
        self._surge = SurgeDetector(c.surge_threshold, c.surge_window_s, self.tick_hz)
        # Pulse positions: a generator of its own, so attract mode and pulses do not disturb each other.
        self._rng = random.Random(sim.seed * 7919 + 17)
        self._sensors: dict[str, list] = {}          # id -> [level, last tick]
        self.sensors_refused = 0                     # sensor messages refused: too many sensors
        self._pulses: list[tuple[float, float, float, int]] = []   # (x, y, strength, tick born), oldest first
        self._log = RateLimitedLog(log)

        self._mood = Mood()
        self._tick = -1                 # last tick update() ran for
        self._events_tick: int | None = None
        self._new_pulses: list[tuple[float, float, float]] = []
        self._requests: list[InputEvent] = []
        self._last_real_tick: int | None = None
        self._attract_active = a.enabled
        self._attract_level = 1.0 if a.enabled else 0.0   # alive from the first frame
        self._virtual.set_weight(self._attract_level)
        self._gains = [1.0] * MAX_SPECIES
        self.participants_peak = 0
        self.surged = False
        self.ignored = 0                # events that made no sense here (counted, logged)
        self.volume = config.audio.volume
        self.brightness = config.render.brightness
        self.blackout = False

    # ---- configuration ----
    def set_config(self, config: Config) -> None:
        """The running configuration changed (a scene crossfade, /param): the mapping, the
        base values and the smoothing follow; participants and the mood are kept."""
        old = self.config
        self.config = config
        c, a = config.crowd, config.attract
        self._mood_tracker.tau_s = c.mood_smoothing_s
        self._surge.threshold = c.surge_threshold
        if c.surge_window_s != old.crowd.surge_window_s:
            self._surge.set_window(c.surge_window_s, self.tick_hz)
        if c != old.crowd or a.participants != old.attract.participants:
            times = dict(timeout_s=c.timeout_s, fade_s=c.fade_s, touch_hold_s=c.touch_hold_s,
                         energy_decay_s=c.energy_decay_s)
            self._real.configure(cap=c.max_participants, per_sender=c.max_per_sender, **times)
            self._virtual.configure(cap=max(1, a.participants), per_sender=0, **times)
        if a.enabled and (self._attract_crowd is None or (a.participants, a.mood) != (old.attract.participants,
                                                                                       old.attract.mood)):
            # a new virtual crowd, seeded as at start (the same ticks give the same crowd in a
            # replay): the old one fades out as it fades in
            self._attract_crowd = self._new_attract_crowd(config)
            for pid in [p.id for p in self._virtual]:
                self._virtual.leave(pid, max(self._tick, 0))

    def _new_attract_crowd(self, config: Config) -> VirtualCrowd:
        a = config.attract
        return VirtualCrowd(a.participants, a.mood, seed=config.sim.seed, rate_hz=self.tick_hz, prefix="attract-")

    # ---- read-only views ----
    @property
    def mood(self) -> Mood:
        return self._mood

    @property
    def participants(self) -> tuple[Participant, ...]:
        """Real participants, then the attract crowd while it shows (its `fade` carries the
        handover weight). Read-only."""
        real = tuple(self._real)
        if self._attract_level <= 0.0:
            return real
        return real + tuple(self._virtual)

    @property
    def attract_active(self) -> bool:
        return self._attract_active

    @property
    def attract_level(self) -> float:
        return self._attract_level

    @property
    def new_pulses(self) -> list[tuple[float, float, float]]:
        """Pulses started this tick: (x 0..1 across the image, y 0..1, strength 0..1)."""
        return self._new_pulses

    @property
    def operator_requests(self) -> list[InputEvent]:
        """This tick's /scene, /param/*, /record/* and /crowd/*/vote events, for the lead to route."""
        return self._requests

    @property
    def refused(self) -> int:
        """Messages of newcomers refused because `crowd.max_participants` were present."""
        return self._real.refused

    @property
    def refused_sender(self) -> int:
        """Messages of newcomers refused because their sender held `crowd.max_per_sender` already."""
        return self._real.refused_sender

    @property
    def species_gain(self) -> tuple[float, ...]:
        return tuple(self._gains)

    @property
    def pulses(self) -> tuple[tuple[float, float, float, float], ...]:
        """Live pulses: (x 0..1, y 0..1, age in seconds, strength); fill() scales x to the world."""
        now = max(self._tick, self._events_tick if self._events_tick is not None else -1)
        return tuple((x, y, (now - born) / self.tick_hz, st) for x, y, st, born in self._pulses)

    # ---- input ----
    def _new_tick(self, tick: int) -> None:
        if self._events_tick != tick:
            self._events_tick = tick
            self._new_pulses = []
            self._requests = []

    def apply(self, event: InputEvent, tick: int) -> None:
        """One accepted event, on the tick it takes effect. Never raises on odd input."""
        self._new_tick(tick)
        try:
            self._apply(event, tick)
        except (ValueError, TypeError, IndexError) as exc:
            self.ignored += 1
            self._log.warning("event", "ignored %s %r: %s", event.addr, event.args, exc)

    def _apply(self, ev: InputEvent, tick: int) -> None:
        addr, args = ev.addr, ev.args
        parts = addr.split("/")
        if len(parts) == 4 and parts[1] == "crowd":
            pid, verb = parts[2], parts[3]
            reg = self._real
            refused_sender = reg.refused_sender
            if verb == "emotion":
                ok = reg.emotion(pid, _num(args, 0, -1.0, 1.0), _num(args, 1, 0.0, 1.0), tick, ev.src)
            elif verb == "touch":
                ok = reg.touch(pid, _num(args, 0, 0.0, 1.0), _num(args, 1, 0.0, 1.0),
                               _num(args, 2, 0.0, 1.0, 1.0), tick, ev.src)
            elif verb == "motion":
                ok = reg.motion(pid, _num(args, 0, 0.0, 1.0), tick, ev.src)
            elif verb == "leave":
                reg.leave(pid, tick)
                ok = True
            elif verb == "vote":
                self._requests.append(ev)
                ok = True
            else:
                raise ValueError("unknown crowd address")
            if not ok and reg.refused_sender > refused_sender:
                self._log.warning("sender", "participant %s refused: sender %s already has %d present (crowd.max_per_sender; "
                                  "raise it for a relay that sends for many phones)", pid, ev.src, reg.per_sender)
            elif not ok:
                self._log.warning("full", "participant %s refused: %d present (crowd.max_participants)",
                                  pid, reg.cap)
        elif len(parts) == 4 and parts[1] == "sensor" and parts[3] == "level":
            level = _num(args, 0, 0.0, 1.0)
            if parts[2] in self._sensors or len(self._sensors) < self.config.crowd.max_participants:
                self._sensors[parts[2]] = [level, tick]
            else:
                self.sensors_refused += 1
                self._log.warning("sensors", "sensor %s refused: %d sensors already (crowd.max_participants)",
                                  parts[2], len(self._sensors))
        elif addr == "/pulse":
            strength = _num(args, 0, 0.0, 1.0, 1.0)
            if strength > 0.0:   # a push button's release sends 0: no pulse
                self._add_pulse(0.5, 0.5, strength, tick)
        elif addr == "/master/brightness":
            self.brightness = _num(args, 0, 0.0, 1.0)
        elif addr == "/master/volume":
            self.volume = _num(args, 0, 0.0, 1.0)
        elif addr == "/blackout":
            self.blackout = _num(args, 0, -math.inf, math.inf) != 0.0
        elif addr in OPERATOR_REQUESTS or addr.startswith("/param/"):
            self._requests.append(ev)
        else:
            raise ValueError("not a contract address")

    def _add_pulse(self, x: float, y: float, strength: float, tick: int) -> None:
        if len(self._pulses) >= MAX_PULSES:
            self._pulses.pop(0)   # the oldest ring gives way
        self._pulses.append((x, y, strength, tick))
        self._new_pulses.append((x, y, strength))

    # ---- once per tick ----
    def update(self, tick: int) -> None:
        """Advance the control state to `tick` (once per tick, after that tick's apply calls)."""
        if tick <= self._tick:
            return
        self._new_tick(tick)
        steps = tick - self._tick if self._tick >= 0 else 1
        self._tick = tick
        cfg = self.config

        # the attract crowd lives on every tick, shown or not
        if self._attract_crowd is not None:
            for _ in range(steps):
                for _k, addr, args in self._attract_crowd.step():
                    self._apply_virtual(addr, args, tick)

        self._real.advance(tick, steps)
        present = self._real.active_count()
        if present:
            self._last_real_tick = tick
        self.participants_peak = max(self.participants_peak, present, self._real.peak)
        a = cfg.attract
        if not a.enabled or self._attract_crowd is None:
            self._attract_active = False
        elif present:
            self._attract_active = False
        else:
            quiet = math.inf if self._last_real_tick is None else (tick - self._last_real_tick) / self.tick_hz
            self._attract_active = quiet >= a.after_s
        target = 1.0 if self._attract_active else 0.0
        rate = math.inf if a.handover_s <= 0.0 else steps / (a.handover_s * self.tick_hz)
        lvl = self._attract_level
        self._attract_level = min(target, lvl + rate) if target > lvl else max(target, lvl - rate)
        self._virtual.set_weight(self._attract_level)
        self._virtual.advance(tick, steps)

        timeout = self._real.timeout_ticks
        for sid in [s for s, (_, last) in self._sensors.items() if tick - last >= timeout]:
            del self._sensors[sid]
        sensor = sum(v for v, _ in self._sensors.values()) / len(self._sensors) if self._sensors else 0.0

        everyone = self.participants
        self._mood = self._mood_tracker.update(aggregate(everyone), sensor, present, steps)

        strength = self._surge.push(self._mood.arousal, self._mood.energy)
        self.surged = strength > 0.0       # the crowd's own surge, told apart from an operator /pulse
        if strength > 0.0:
            x = self._rng.uniform(0.15, 0.85)
            self._add_pulse(x, self._rng.uniform(0.15, 0.85), strength, tick)

        life_ticks = cfg.crowd.pulse_life_s * self.tick_hz
        if self._pulses and tick - self._pulses[0][3] > life_ticks:
            self._pulses = [p for p in self._pulses if tick - p[3] <= life_ticks]

        self._update_gains(everyone)

    def _apply_virtual(self, addr: str, args: tuple, tick: int) -> None:
        reg = self._virtual
        _, _, pid, verb = addr.split("/")
        if verb == "emotion":
            reg.emotion(pid, args[0], args[1], tick)
        elif verb == "touch":
            reg.touch(pid, args[0], args[1], args[2], tick)
        elif verb == "motion":
            reg.motion(pid, args[0], tick)
        elif verb == "leave":
            reg.leave(pid, tick)

    def _update_gains(self, everyone) -> None:
        """A tile shines fully while someone holds it; the others dim to `crowd.idle_gain`,
        except in an empty room, where the whole mosaic shines."""
        idle = self.config.crowd.idle_gain
        held = [0.0] * MAX_SPECIES
        total = 0.0
        for p in everyone:
            f = p.fade
            total += f
            if f > held[p.species]:
                held[p.species] = f
        empty = max(0.0, 1.0 - total)
        for s in range(MAX_SPECIES):
            self._gains[s] = idle + (1.0 - idle) * max(held[s], empty) if s < self.species else 1.0

    # ---- out to the engine and the look ----
    def fill(self, step: StepParams, look: LookParams, *, reset: bool = True) -> None:
        """Mood -> engine and look. With reset (the default) the engine's scalars start from the
        running config's [sim] values and the warmth from [render]; pass reset=False when the
        caller has already written the base values (they are then added to)."""
        cfg = self.config
        m = cfg.mapping
        mood = self._mood
        if reset:
            sim = cfg.sim
            for name in _BASE_SCALARS:
                setattr(step, name, getattr(sim, name))
            look.warmth = cfg.render.warmth
        step.mosaic_pull += m.agreement_to_mosaic * mood.agreement
        step.alignment += m.agreement_to_alignment * mood.agreement
        step.flow_strength += m.arousal_to_flow * mood.arousal + m.energy_to_flow * mood.energy
        step.max_speed += m.arousal_to_speed * mood.arousal

        aspect = cfg.sim.aspect
        touches = step.touches
        n = 0
        for p in self.participants:
            if n >= MAX_TOUCHES:
                break
            if p.touching:
                s = p.pressure * p.fade
                if s > 0.0:
                    touches[n, 0] = p.x * aspect
                    touches[n, 1] = p.y
                    touches[n, 2] = s
                    touches[n, 3] = p.species
                    n += 1
        step.n_touches = n

        pulses = step.pulses
        now = self._tick
        for i, (x, y, strength, born) in enumerate(self._pulses):
            pulses[i, 0] = x * aspect
            pulses[i, 1] = y
            pulses[i, 2] = max(0, now - born) / self.tick_hz
            pulses[i, 3] = strength
        step.n_pulses = len(self._pulses)

        look.species_gain[:len(self._gains)] = self._gains
        look.warmth = _clamp(look.warmth + m.valence_to_warmth * mood.valence, -1.0, 1.0)
        look.brightness = _clamp(self.brightness + m.sensor_to_brightness * mood.sensor, 0.0, 1.0)
        look.blackout = self.blackout
