"""The session file format (JSON Lines), in one place for the writer and the reader.

    line 1   {"format": "living-mosaic-session", "version": 1, "created", "seed", "tick_hz",
              "config", "part": 0, ...}
    then     {"tick": int, "t": float, "src": "host:port", "addr": str, "types": str, "args": [...]}
    last     {"end": true, "ticks": int}            (absent when the run was killed)

Extensions to the contract (extra keys only, so older readers still work): the header carries
`part` (0 for the first file of a recording) and may carry `start_tick` (a recording started
by /record/start mid-run: its events are stamped with the run's ticks, and a reader replays
them from that tick as its tick 0) and `scenes` (every scene it could switch to); a file closed by rotation ends with
`{"end": true, "ticks": N, "next": "NAME.001.jsonl"}`, naming its successor in the same folder.
A part cut short by a write error (a full disk) is ended the same way at its last whole line
once writing works again, and its successor's header carries `resumed`: {"from_tick",
"to_tick", "events"}, what the gap lost.

Rotated files: `night.jsonl` is followed by `night.001.jsonl`, `night.002.jsonl`, ... (the part
number before the suffix; a path without a suffix gets `.001`, `.002`, ...). Every part has a
full header, so each one is a valid session on its own; reading the first part follows the
chain and gives the whole recording.
"""
from __future__ import annotations

import json
from pathlib import Path

from ..events import InputEvent

FORMAT = "living-mosaic-session"
VERSION = 1
SUFFIX = ".jsonl"


def header_line(header: dict) -> str:
    return json.dumps(header, ensure_ascii=False, separators=(", ", ": ")) + "\n"


def event_line(tick: int, ev: InputEvent) -> str:
    # Built by hand around json.dumps of the parts: ~2x faster than dumping a dict per event,
    # and the writer thread must keep up with floods of tens of thousands of events a second.
    return ('{"tick": %d, "t": %s, "src": %s, "addr": %s, "types": %s, "args": %s}\n'
            % (tick, repr(float(ev.t)), json.dumps(ev.src, ensure_ascii=False),
               json.dumps(ev.addr, ensure_ascii=False), json.dumps(ev.types),
               json.dumps(list(ev.args), ensure_ascii=False, separators=(", ", ": "))))


def end_line(ticks: int, next_name: str | None = None) -> str:
    end = {"end": True, "ticks": int(ticks)}
    if next_name is not None:
        end["next"] = next_name
    return json.dumps(end) + "\n"


def part_path(path: Path, part: int) -> Path:
    """The file of rotated part `part` (0 is the path itself)."""
    if part == 0:
        return path
    if path.suffix:
        return path.with_name(f"{path.stem}.{part:03d}{path.suffix}")
    return path.with_name(f"{path.name}.{part:03d}")


def _taken(path: Path) -> bool:
    """The path, or a rotated part of a recording under that name, is on disk."""
    if path.exists():
        return True
    pattern = f"{path.stem}.[0-9][0-9][0-9]{path.suffix}" if path.suffix else f"{path.name}.[0-9][0-9][0-9]"
    return any(path.parent.glob(pattern))


def free_path(path: Path) -> Path:
    """`path` if no recording is there, else the first free `NAME-2.jsonl`, `NAME-3.jsonl`, ...:
    a recording never overwrites an earlier one (last night's show, its rotated parts)."""
    path = Path(path)
    n = 2
    found = path
    while _taken(found):
        found = path.with_name(f"{path.stem}-{n}{path.suffix}")
        n += 1
    return found
