"""The one shape input takes between the OSC thread, the recorder, replay and the control state."""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class InputEvent:
    """An accepted, validated OSC message in the contract's address space.

    `addr` is already mapped through aliases (e.g. TouchOSC `/1/xy1` arrives here as
    `/crowd/{id}/touch`); `args` are plain Python numbers/strings, clamped to range; `src` is
    "host:port" of the sender; `t` is seconds since the run started (monotonic) when it arrived.
    The tick it takes effect on is assigned by the frame loop when it drains the queue.
    """
    addr: str
    types: str
    args: tuple
    src: str
    t: float


# `src` of the events the installation makes itself (the quiet-hours clock, the schedule's
# switches, the state a recording started mid-run begins with): recorded so a replay is exact.
INTERNAL_SOURCES = frozenset({"clock", "schedule", "state"})


@dataclass(frozen=True, slots=True)
class TickedEvent:
    """An InputEvent stamped with the simulation tick it was applied on (what a session records)."""
    tick: int
    event: InputEvent
