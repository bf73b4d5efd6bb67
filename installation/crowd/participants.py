"""The registry of participants: who is there, how they feel, where they touch.

Time is the tick index: joins, timeouts, touch holds, energy decay and fades are all counted
in ticks, so the same ticked events give the same registry, live or in replay.

A participant joins with their first message and takes a species (a tile of the mosaic,
with its colour and voice): the species with the fewest present participants, then the
fewest still fading out, then the lowest index. They leave on `/leave` or after
`crowd.timeout_s` of silence; their light and voice fade out over `crowd.fade_s`, and a
message during the fade brings them back on the same tile.
"""
from __future__ import annotations

import math
from dataclasses import dataclass


@dataclass(eq=False)
class Participant:
    """One participant. Read-only outside this module."""
    id: str
    species: int
    virtual: bool = False
    sender: str = ""             # host:port it joined from (for crowd.max_per_sender)
    x: float = 0.5
    y: float = 0.5
    touching: bool = False
    pressure: float = 0.0
    valence: float = 0.0
    arousal: float = 0.0
    energy: float = 0.0
    presence: float = 0.0        # 0..1: ramps up on joining, down on leaving (crowd.fade_s)
    level: int = 0               # presence in whole ticks of the fade, so it reaches 0 and 1 exactly
    weight: float = 1.0          # the group's weight: 1 for real people, the attract level for virtual ones
    leaving: bool = False
    felt: bool = False           # has sent an emotion (only those count in valence/arousal/agreement)
    moved: bool = False          # has sent a motion (only those count in energy)
    joined_tick: int = 0
    last_tick: int = 0           # last message
    touch_tick: int = -1
    motion_tick: int = -1

    @property
    def fade(self) -> float:
        """How much of this participant is visible and audible now, 0..1."""
        return self.presence * self.weight


class Registry:
    def __init__(self, *, species: int, cap: int, tick_hz: int, timeout_s: float, fade_s: float,
                 touch_hold_s: float, energy_decay_s: float, virtual: bool = False, per_sender: int = 0):
        self.species = max(1, int(species))
        self.virtual = virtual
        self.tick_hz = tick_hz
        self.fade_ticks = 1
        self.by_id: dict[str, Participant] = {}
        self.configure(cap=cap, per_sender=per_sender, timeout_s=timeout_s, fade_s=fade_s,
                       touch_hold_s=touch_hold_s, energy_decay_s=energy_decay_s)
        self.refused = 0          # newcomers refused because the registry was full
        self.refused_sender = 0   # newcomers refused because their sender held max_per_sender already
        self.peak = 0             # most present at once
        self.weight = 1.0

    def configure(self, *, cap: int, per_sender: int, timeout_s: float, fade_s: float, touch_hold_s: float,
                  energy_decay_s: float) -> None:
        """Limits and times, at start and whenever a scene or /param changes them: those
        present stay, their fades keep the share of the way they had gone."""
        tick_hz = self.tick_hz
        self.cap = int(cap)
        self.per_sender = int(per_sender)
        self.timeout_ticks = max(1, round(timeout_s * tick_hz))
        self.hold_ticks = max(1, round(touch_hold_s * tick_hz))
        fade_ticks = max(1, round(fade_s * tick_hz))
        if fade_ticks != self.fade_ticks:
            for p in self.by_id.values():
                p.level = round(p.level * fade_ticks / self.fade_ticks)
            self.fade_ticks = fade_ticks
        self.energy_keep = math.exp(-1.0 / (energy_decay_s * tick_hz))

    # ---- joining ----
    def _pick_species(self) -> int:
        present = [0] * self.species
        fading = [0] * self.species
        for p in self.by_id.values():
            (fading if p.leaving else present)[p.species] += 1
        return min(range(self.species), key=lambda s: (present[s], fading[s], s))

    def get(self, pid: str, tick: int, sender: str = "") -> Participant | None:
        """The participant with this id, joining (or returning) now from `sender` (host:port);
        None when full, or when `sender` already holds `per_sender` of those present (so one
        phone or script inventing ids cannot take every place)."""
        p = self.by_id.get(pid)
        if p is None or p.leaving:
            # one who is fading out comes back only where a newcomer could join: a script's
            # /leave then message again must not get past either limit
            if self.active_count() >= self.cap:
                self.refused += 1
                return None
            if self.per_sender and sender and self.sender_count(sender) >= self.per_sender:
                self.refused_sender += 1
                return None
        if p is None:
            p = Participant(pid, self._pick_species(), virtual=self.virtual, sender=sender, joined_tick=tick,
                            weight=self.weight)
            self.by_id[pid] = p
            p.leaving = False
            # counted on joining: someone who comes and goes within one tick was still there
            self.peak = max(self.peak, self.active_count())
        if sender:
            p.sender = sender
        p.leaving = False
        p.last_tick = tick
        return p

    def active_count(self) -> int:
        return sum(1 for p in self.by_id.values() if not p.leaving)

    def sender_count(self, sender: str) -> int:
        return sum(1 for p in self.by_id.values() if not p.leaving and p.sender == sender)

    # ---- messages ----
    def emotion(self, pid: str, valence: float, arousal: float, tick: int, sender: str = "") -> bool:
        p = self.get(pid, tick, sender)
        if p is None:
            return False
        p.valence, p.arousal, p.felt = valence, arousal, True
        return True

    def touch(self, pid: str, x: float, y: float, pressure: float, tick: int, sender: str = "") -> bool:
        p = self.get(pid, tick, sender)
        if p is None:
            return False
        p.x, p.y, p.pressure = x, y, pressure
        p.touching = pressure > 0.0
        p.touch_tick = tick
        return True

    def motion(self, pid: str, energy: float, tick: int, sender: str = "") -> bool:
        p = self.get(pid, tick, sender)
        if p is None:
            return False
        p.energy, p.moved, p.motion_tick = energy, True, tick
        return True

    def leave(self, pid: str, tick: int) -> None:
        p = self.by_id.get(pid)
        if p is not None:
            p.leaving = True
            p.touching = False

    # ---- once per tick ----
    def advance(self, tick: int, steps: int = 1) -> None:
        """Timeouts, touch holds, energy decay and fades after `steps` ticks ending at `tick`."""
        gone = []
        keep = self.energy_keep ** steps
        for p in self.by_id.values():
            if not p.leaving and tick - p.last_tick >= self.timeout_ticks:
                p.leaving = True
            if p.leaving:
                p.touching = False
            elif p.touching and tick - p.touch_tick >= self.hold_ticks:
                p.touching = False
            n = min(steps, tick - p.motion_tick)   # decay from the tick after the message on
            if n > 0:
                p.energy *= keep if n == steps else self.energy_keep ** n
            if p.leaving:
                p.level = max(0, p.level - steps)
                if p.level == 0:
                    gone.append(p.id)
            else:
                p.level = min(self.fade_ticks, p.level + steps)
            p.presence = p.level / self.fade_ticks
            p.weight = self.weight
        for pid in gone:
            del self.by_id[pid]

    def set_weight(self, weight: float) -> None:
        self.weight = weight
        for p in self.by_id.values():
            p.weight = weight

    def __iter__(self):
        return iter(self.by_id.values())

    def __len__(self) -> int:
        return len(self.by_id)
