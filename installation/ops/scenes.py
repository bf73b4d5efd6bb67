"""Scenes and crossfades: the running configuration as a blend of two scenes.

`SceneMixer.update(tick)` returns the Config the frame loop should use on that tick.
During a crossfade every continuous setting (each float field of the scene sections)
moves from the old scene's value to the new one's along a smoothstep; discrete settings
(ints, bools, strings, lists) switch at the midpoint; palette colours blend one by one.
Time is the tick index, so live, replay and export cross-fade identically.

How a scene applies: a scene file names some keys; the target of a switch is the start-up
configuration (config file, start scene, environment, --set) with the new scene's keys
laid over it. Keys a scene does not name keep their start-up values, which is why the
shipped scenes all name the same keys (a test holds them to it): then a switch lands on
the same values whichever scene came before.

What a switch never changes, with a log line when a scene tries:
- FIXED_AT_START: the swarm, its grid and the audio stream are allocated once, so
  sim.particles, sim.species, sim.tick_hz (and the few others listed) keep their start-up
  values for the whole run. Start with `--scene NAME` to get a scene's own values there.
- Sections other than SCENE_SECTIONS (window, osc, session, safety, log, ...): they are
  the installation's, not a scene's. Audience safety in particular never changes by scene.
- PROTECTED: audience safety (loudness ceilings, quiet hours) is the config file's alone;
  neither a scene nor /param may loosen it while the exhibit runs.
- OPERATOR_KEYS (master brightness and volume): they belong to the operator's /master/*,
  so a scene keeps whatever the operator last set.

`set_param("flow_strength", 0.8, tick)` (from `/param/{name}`) changes one setting of the
running scene: floats glide there over `[scene] param_glide_s`, ints and bools step,
values are clamped to the setting's range. The change lasts until the next switch.
Unknown scenes and parameters are rejected with a one-line reason and counted.
"""
from __future__ import annotations

import dataclasses
import logging
import math
import typing
from typing import Any

from ..config.loader import ConfigError, _suggest, merge
from ..config.model import SAFETY_KEYS, Config, from_tree, list_scenes, read_scene, to_dict
from .logs import RateLimitedLog

log = logging.getLogger(__name__)

SCENE_SECTIONS = ("sim", "render", "mapping", "audio", "crowd", "attract")
FIXED_AT_START = frozenset({
    "sim.particles", "sim.species", "sim.tick_hz",  # the swarm is allocated once
    "sim.seed",                                      # the run's identity for replay
    "sim.aspect", "sim.radius",                      # the neighbour grid is sized once
    "render.backend", "render.width", "render.height",  # the frame buffers are allocated once
    "audio.enabled", "audio.device", "audio.samplerate", "audio.blocksize",  # the stream opens once
    "audio.limiter_lookahead_ms",                    # the limiter's delay line is sized once
})
# Audience safety (loudness limits, quiet hours) is set in the config file only: neither a
# scene nor /param may loosen it while the exhibit runs. ([safety] is not a scene section.)
PROTECTED = SAFETY_KEYS    # config/model.py: a start-up scene may not set them either
OPERATOR_KEYS = frozenset({"render.brightness", "audio.volume"})
MAX_CROSSFADE_S = 600.0


def smoothstep(t: float) -> float:
    t = 0.0 if t < 0.0 else 1.0 if t > 1.0 else t
    return t * t * (3.0 - 2.0 * t)


def _hex_to_rgb(c: str) -> tuple[int, int, int]:
    return int(c[1:3], 16), int(c[3:5], 16), int(c[5:7], 16)


def mix_colour(a: str, b: str, s: float) -> str:
    (ar, ag, ab), (br, bg, bb) = _hex_to_rgb(a), _hex_to_rgb(b)
    return "#{:02x}{:02x}{:02x}".format(round(ar + (br - ar) * s), round(ag + (bg - ag) * s),
                                        round(ab + (bb - ab) * s))


def mix_palette(a: tuple[str, ...], b: tuple[str, ...], s: float, species: int) -> tuple[str, ...]:
    """One colour per species: the renderer repeats a palette (colour i % len), so blending
    per species index is exact at both ends whatever the two palettes' lengths."""
    return tuple(mix_colour(a[i % len(a)], b[i % len(b)], s) for i in range(max(1, species)))


@dataclasses.dataclass(frozen=True)
class _Field:
    section: str
    key: str
    kind: str            # "float", "int", "bool", "str", "tuple"
    lo: float | None
    hi: float | None


def _schema() -> dict[tuple[str, str], _Field]:
    out = {}
    hints = typing.get_type_hints(Config)
    for sec in SCENE_SECTIONS:
        cls = hints[sec]
        fhints = typing.get_type_hints(cls)
        for f in dataclasses.fields(cls):
            h = fhints[f.name]
            kind = {float: "float", int: "int", bool: "bool", str: "str"}.get(h, "tuple")
            out[(sec, f.name)] = _Field(sec, f.name, kind, f.metadata.get("lo"), f.metadata.get("hi"))
    return out


def _clamp(v: float, f: _Field) -> float:
    if f.lo is not None and v < f.lo:
        v = f.lo
    if f.hi is not None and v > f.hi:
        v = f.hi
    return v


def _why_fixed(dotted: str) -> str:
    if dotted in FIXED_AT_START:
        return "fixed at start-up"
    if dotted in PROTECTED:
        return "audience safety: set it in the config file"
    if dotted in OPERATOR_KEYS:
        # the operator's master value would overwrite it at once: say where it is set
        return f"the operator's master {dotted.split('.')[1]}: send /master/{dotted.split('.')[1]}"
    return "not a number"


def _with(cfg: Config, sec: str, key: str, value: Any) -> Config:
    return dataclasses.replace(cfg, **{sec: dataclasses.replace(getattr(cfg, sec), **{key: value})})


class SceneMixer:
    def __init__(self, config: Config):
        self._start = config
        self._hz = config.sim.tick_hz
        self._species = config.sim.species
        self._fields = _schema()
        self._floats = [k for k, f in self._fields.items() if f.kind == "float"]
        settable = {k: f for k, f in self._fields.items()
                    if f.kind in ("float", "int", "bool") and f"{k[0]}.{k[1]}" not in FIXED_AT_START | PROTECTED | OPERATOR_KEYS}
        self._settable = settable
        # A bare key must be unique among all scene settings, fixed ones included, so that
        # "enabled" is never silently taken to mean one of several.
        bare: dict[str, list[tuple[str, str]]] = {}
        for sec, key in self._fields:
            bare.setdefault(key, []).append((sec, key))
        self._bare = bare
        self._from = config
        self._to = config
        self._current = config
        self._fade_start = 0
        self._fade_ticks = 0
        self._fading = False
        self._glides: dict[tuple[str, str], tuple[float, float, int, int]] = {}
        self._params: dict[tuple[str, str], Any] = {}   # /param changes since the last switch
        self._dirty = False
        self._limited = RateLimitedLog(log)
        self.current_name = config.scene.name
        self.previous_name = ""
        self.switches = 0
        self.rejected = 0
        self.last_reason = ""

    # -- queries -------------------------------------------------------------------------
    @property
    def crossfading(self) -> bool:
        return self._fading

    def progress(self, tick: int) -> float:
        """0..1 through the current crossfade (1 when none)."""
        if not self._fading or self._fade_ticks <= 0:
            return 1.0
        return min(1.0, max(0.0, (tick - self._fade_start) / self._fade_ticks))

    def scenes(self) -> list[str]:
        return list_scenes(self._start)

    def param_names(self) -> list[str]:
        return sorted(f"{s}.{k}" for s, k in self._settable)

    # -- commands ------------------------------------------------------------------------
    def _reject(self, kind: str, why: str) -> str:
        self.rejected += 1
        self.last_reason = why
        self._limited.warning(kind, "%s", why)
        return why

    def switch(self, name: str, crossfade_s: float | None = None, tick: int = 0) -> str | None:
        """Start a crossfade to scene `name` at `tick`; None when started, else the reason."""
        if not isinstance(name, str) or not name:
            return self._reject("scene", f"/scene {name!r}: expected a scene name")
        try:
            overlay = read_scene(self._start, name)
        except ConfigError as exc:
            return self._reject("scene", str(exc))
        if crossfade_s is None or not isinstance(crossfade_s, (int, float)) or not math.isfinite(crossfade_s):
            crossfade_s = self._start.scene.crossfade_s
        crossfade_s = min(MAX_CROSSFADE_S, max(0.0, float(crossfade_s)))
        current = self.update(tick)
        tree = merge(to_dict(self._start), self._scene_keys(name, overlay, current))
        for dotted in OPERATOR_KEYS:
            sec, key = dotted.split(".")
            tree[sec][key] = getattr(getattr(current, sec), key)
        tree["scene"]["name"] = name
        try:
            # a replay switches as its recording did: checks added since warned at its start
            relaxed = [] if self._start.recorded else None
            target = dataclasses.replace(from_tree(tree, f"scene '{name}'", self._start.base_dir, relaxed),
                                         scenes=self._start.scenes, recorded=self._start.recorded)
        except ConfigError as exc:  # a cross-field check (e.g. a palette) the overlay failed
            return self._reject("scene", str(exc))
        ticks = round(crossfade_s * self._hz)
        self._from, self._to = current, target
        self._fade_start, self._fade_ticks = tick, ticks
        self._fading = ticks > 0
        self._glides.clear()
        self._params.clear()
        self._current = current if self._fading else target
        self._dirty = False
        self.previous_name, self.current_name = self.current_name, name
        self.switches += 1
        log.info("scene '%s' -> '%s' over %.1f s (tick %d)", self.previous_name or "(config)", name,
                 crossfade_s, tick)
        return None

    def _scene_keys(self, name: str, overlay: dict, current: Config) -> dict:
        """The overlay without what a scene may not change at run time (each one logged)."""
        kept: dict[str, dict] = {}
        for sec, table in overlay.items():
            if sec not in SCENE_SECTIONS:
                log.info("scene '%s': [%s] is the installation's, not a scene's; ignored at a switch", name, sec)
                continue
            for key, value in table.items():
                dotted = f"{sec}.{key}"
                if dotted in FIXED_AT_START:
                    now = getattr(getattr(current, sec), key)
                    if value != now:
                        log.info("scene '%s': %s is fixed at start-up (%r); the scene's %r is ignored "
                                 "(start with --scene %s to use it)", name, dotted, now, value, name)
                    continue
                if dotted in PROTECTED:
                    log.info("scene '%s': %s is audience safety, set in the config file only; ignored",
                             name, dotted)
                    continue
                if dotted in OPERATOR_KEYS:
                    log.info("scene '%s': %s belongs to the operator (/master); ignored at a switch", name, dotted)
                    continue
                kept.setdefault(sec, {})[key] = value
        return kept

    def resolve(self, name: str) -> tuple[str, str] | str:
        """'section.key' or a unique bare key -> (section, key); else the reason as a string."""
        name = name.strip().replace("/", ".")
        if "." in name:
            sec, _, key = name.partition(".")
            if (sec, key) in self._settable:
                return sec, key
            if (sec, key) in self._fields:
                return f"/param/{name}: {name} cannot be set while running ({_why_fixed(name)})"
            return f"/param/{name}: unknown parameter{_suggest(name, self.param_names())}"
        hits = self._bare.get(name, [])
        if len(hits) == 1:
            if hits[0] in self._settable:
                return hits[0]
            dotted = f"{hits[0][0]}.{name}"
            return f"/param/{name}: {dotted} cannot be set while running ({_why_fixed(dotted)})"
        if hits:
            return f"/param/{name}: ambiguous, say which: " + ", ".join(f"{s}.{k}" for s, k in sorted(hits))
        return f"/param/{name}: unknown parameter{_suggest(name, list(self._bare) + self.param_names())}"

    def set_param(self, name: str, value: float, tick: int) -> str | None:
        """Set one parameter of the running scene; None when accepted (clamped), else the reason."""
        where = self.resolve(name) if isinstance(name, str) else f"/param/{name!r}: bad name"
        if isinstance(where, str):
            return self._reject("param", where)
        sec, key = where
        f = self._settable[where]
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            return self._reject("param", f"/param/{name} {value!r}: expected a finite number")
        if f.kind == "float":
            v: Any = float(_clamp(float(value), f))
        elif f.kind == "int":
            v = int(_clamp(round(value), f))
        else:
            v = value >= 0.5
        current = self.update(tick)
        was = getattr(getattr(current, sec), key)
        # Both ends of a running crossfade take the value, so the fade no longer moves it.
        self._from = _with(self._from, sec, key, v)
        self._to = _with(self._to, sec, key, v)
        glide = round(self._start.scene.param_glide_s * self._hz)
        if f.kind == "float" and glide > 0 and was != v:
            self._glides[where] = (float(was), v, tick, glide)
        else:
            self._glides.pop(where, None)
        self._params[where] = v
        self._dirty = True
        return None

    def state_events(self, tick: int) -> list[tuple[str, str, tuple]]:
        """The running state as operator messages (address, types, args): the scene switched
        to (with what is left of its crossfade) and the /param changes since. A recording
        started mid-run begins with them, so its replay runs in the same scene."""
        out: list[tuple[str, str, tuple]] = []
        if self.switches:
            left = (1.0 - self.progress(tick)) * self._fade_ticks / self._hz if self._fading else 0.0
            out.append(("/scene", "sf", (self.current_name, float(left))))
        for (sec, key), v in self._params.items():
            out.append((f"/param/{sec}.{key}", "f", (float(v),)))
        return out

    # -- the per-tick blend --------------------------------------------------------------
    def update(self, tick: int) -> Config:
        """The configuration in force at `tick` (the same object while nothing moves)."""
        if not (self._fading or self._glides or self._dirty):
            return self._current
        self._dirty = False
        changes: dict[str, dict[str, Any]] = {}
        base = self._to
        if self._fading:
            t = (tick - self._fade_start) / self._fade_ticks
            if t >= 1.0:
                self._fading = False
            else:
                s = smoothstep(t)
                a_cfg, b_cfg = self._from, self._to
                base = b_cfg if t >= 0.5 else a_cfg
                for sec, key in self._floats:
                    a = getattr(getattr(a_cfg, sec), key)
                    b = getattr(getattr(b_cfg, sec), key)
                    if a != b:
                        changes.setdefault(sec, {})[key] = _clamp(a + (b - a) * s, self._fields[(sec, key)])
                pa, pb = a_cfg.render.palette, b_cfg.render.palette
                if pa != pb:
                    changes.setdefault("render", {})["palette"] = mix_palette(pa, pb, s, self._species)
        for where, (a, b, start, n) in list(self._glides.items()):
            p = (tick - start) / n
            if p >= 1.0:
                del self._glides[where]
                changes.get(where[0], {}).pop(where[1], None)  # the target already holds b
                continue
            changes.setdefault(where[0], {})[where[1]] = a + (b - a) * smoothstep(p)
        if changes:
            cfg = dataclasses.replace(base, **{sec: dataclasses.replace(getattr(base, sec), **kv)
                                               for sec, kv in changes.items() if kv})
        else:
            cfg = base
        self._current = cfg
        return cfg
