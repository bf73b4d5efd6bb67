"""Reading sessions back: JSON Lines session files and liblo `oscdump` text logs.

`read_session(path)` tells the two apart by the first line. A session file cut short by a crash
(no end marker, a half-written last line, or a tail of zero bytes left by a power cut) reads up
to its last whole line and says `truncated`; a bad line anywhere else raises SessionError
naming the file and the line, because replaying around a hole would silently diverge.

Reading checks every line up front but keeps no event: `Session.events` walks the files again
each time it is used (`stream.SessionEvents`), up to where the check stopped, so a session
of any length reads in the same little memory.
"""
from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass, field
from pathlib import Path

from ..events import InputEvent, TickedEvent
from .errors import SessionError
from .format import FORMAT, VERSION, part_path
from .lines import Tally, changed, identity, open_again, open_file, raw_lines, walk_of
from .oscdump import LineError, is_liblo_chatter, looks_like_oscdump, ntp_to_datetime, parse_line
from .oscdump import write_oscdump  # noqa: F401  (part of this module's API)
from .stream import Ends, SessionEvents

OSCDUMP_SRC = "oscdump"
DEFAULT_OSCDUMP_TICK_HZ = 60


@dataclass
class Session:
    path: str
    header: dict
    events: SessionEvents | list[TickedEvent]   # walked, not held: see stream.py
    end_ticks: int | None
    truncated: bool
    kind: str = "session"                 # "session" | "oscdump"
    parts: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)   # one line each: what was skipped or odd
    skipped_lines: int = 0                # oscdump lines that were not messages
    next_part: str | None = None          # a rotated file's successor, as its end marker names it
    gaps: list[dict] = field(default_factory=list)   # ticks a write error kept out ("resumed" headers)

    @property
    def seed(self) -> int:
        return int(self.header["seed"])

    @property
    def tick_hz(self) -> int:
        return int(self.header["tick_hz"])

    @property
    def config(self) -> dict:
        """The recorded config; {} (oscdump) means "use the current config"."""
        return self.header.get("config", {})

    @property
    def ticks(self) -> int:
        """How many ticks a replay runs: the end marker's count, else just past the last event."""
        if self.end_ticks is not None:
            return self.end_ticks
        return self.events[-1].tick + 1 if self.events else 0

    @property
    def duration_s(self) -> float:
        return self.ticks / self.tick_hz


def read_session(path: str | os.PathLike, *, follow: bool = True,
                 oscdump_tick_hz: int = DEFAULT_OSCDUMP_TICK_HZ) -> Session:
    """Read a session file (following rotated parts when `follow`) or an oscdump log.

    An oscdump log gets the header {seed 1, tick_hz `oscdump_tick_hz`, config {}} and its events
    src "oscdump"; they are not validated here: the caller runs them through the OSC validator.
    """
    p = Path(path)
    with open_file(p) as f:
        first, lineno = _first_line(f, p)
        f.seek(0)
        if first.lstrip().startswith("{"):
            session = _read_jsonl(p, f)
        elif looks_like_oscdump(first) or is_liblo_chatter(first):
            return _read_oscdump(p, f, oscdump_tick_hz)
        else:
            raise SessionError(f"{p}: line {lineno}: neither a Living Mosaic session (JSON Lines) "
                               "nor an oscdump log")
    if follow:
        session = _from_its_start(_follow_parts(session, p))
    return session


def _from_its_start(session: Session) -> Session:
    """A recording started mid-run (`/record/start`, header `start_tick`) replays from its own
    first tick: its events and end move back by `start_tick`, so a replay or an export of the
    last hour of a day does not first run the hours before it with no input."""
    start = session.header.get("start_tick", 0)
    if not _is_int(start) or start <= 0:
        return session
    session.events = session.events.shifted(start)
    if session.end_ticks is not None:
        session.end_ticks = max(0, session.end_ticks - start)
    session.notes.append(f"recorded from tick {start} of its run: replayed from the seed, at the "
                         "scene, light and sound levels of its start, as tick 0")
    return session


def _first_line(f, p: Path) -> tuple[str, int]:
    for lineno, raw in enumerate(f, start=1):
        text = raw.rstrip(b"\x00").decode("utf-8", errors="replace")
        if text.strip():
            return text, lineno
    raise SessionError(f"{p}: the file is empty: nothing to replay")


def _decode(p: Path, lineno: int, raw: bytes) -> str:
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        raise SessionError(f"{p}: line {lineno}: not UTF-8 text") from None


# ---- JSON Lines -----------------------------------------------------------------------------

def _jsonl_objects(p: Path, f, tally: Tally, limit: int | None = None):
    """(lineno, offset, object) of each line that holds one. A cut-short tail ends the walk
    and says so in `tally`; a bad line anywhere else raises SessionError."""
    for lineno, start, end, raw, whole in raw_lines(f, limit):
        if not raw.strip():
            if not whole:
                tally.truncated = tally.zeros = True    # zeros and nothing else: a power cut
                return
            tally.end = end
            continue
        try:
            obj = json.loads(raw.decode("utf-8"))
        except ValueError as e:             # UnicodeDecodeError is a ValueError too
            if not whole:
                tally.truncated = True      # the line being written when the run died
                return
            why = "not UTF-8 text" if isinstance(e, UnicodeDecodeError) else f"not valid JSON ({e.msg})"
            raise SessionError(f"{p}: line {lineno}: {why}") from None
        tally.end = end
        yield lineno, start, obj


def _is_end(obj) -> bool:
    return isinstance(obj, dict) and obj.get("end") is True


def _read_jsonl(p: Path, f) -> Session:
    tally = Tally()
    header = None
    end = None
    next_name = None
    count, ends = 0, Ends()
    ordered = True
    last_tick = -1
    for lineno, _, obj in _jsonl_objects(p, f, tally):
        if header is None:
            header = _check_header(p, lineno, obj)
            continue
        if end is not None:
            raise SessionError(f"{p}: line {lineno}: text after the end marker")
        if _is_end(obj):
            ticks = obj.get("ticks")
            if not _is_int(ticks) or ticks < 0:
                raise SessionError(f"{p}: line {lineno}: the end marker needs \"ticks\": a whole number >= 0")
            end = ticks
            nxt = obj.get("next")
            if nxt is not None:
                if not isinstance(nxt, str) or not nxt or Path(nxt).name != nxt or nxt in (".", ".."):
                    raise SessionError(f"{p}: line {lineno}: \"next\" must be a bare file name")
                next_name = nxt
            continue
        te = _event(p, lineno, obj)
        if te.tick < last_tick:
            ordered = False
        last_tick = te.tick
        count += 1
        ends.see(te)
    if header is None:
        raise SessionError(f"{p}: line 1: the header is cut short: nothing to replay")
    notes = []
    if not ordered:
        notes.append("events were out of tick order and have been sorted")
    gaps = []
    lost = header.get("resumed")
    if isinstance(lost, dict):
        # the recorder paused on a write error and went on in this part: the input of those
        # ticks is not in the session, so from there the replay is not the show
        gaps.append(lost)
        notes.append(f"ticks {lost.get('from_tick')}..{lost.get('to_tick')} were not recorded (a write error: "
                     f"{lost.get('events')} events lost): from tick {lost.get('from_tick')} the replay is not exact")
    if end is not None and ends.last is not None and ends.last.tick >= end:
        # a replay runs the end marker's ticks: input stamped later is never applied
        notes.append(f"{p.name}: events up to tick {ends.last.tick} lie past its end marker's {end} ticks: "
                     f"they are not replayed")
    if end is not None and tally.zeros:
        # whole to its end marker: the zeros after it are a power cut's, not lost input
        notes.append(f"{p.name}: the zero bytes after its end marker are passed over")
    events = SessionEvents([_jsonl_walk(p, tally.end, ordered, identity(f), count)], count, ends.first, ends.last)
    # cut text after an end marker is not a power cut's zeros: something else wrote there
    truncated = end is None or (tally.truncated and not tally.zeros)
    return Session(str(p), header, events, end, truncated, "session", [str(p)], notes,
                   next_part=next_name, gaps=gaps)


def _jsonl_walk(p: Path, limit: int, ordered: bool, ident: tuple[int, int], count: int):
    def in_file_order():
        n = 0
        with open_again(p, ident, limit) as f:
            objects = _jsonl_objects(p, f, Tally(), limit)
            next(objects, None)             # the header
            for lineno, offset, obj in objects:
                if not _is_end(obj):
                    n += 1
                    yield offset, _event(p, lineno, obj)
        if n != count:                      # the same file, rewritten in place
            raise changed(p)

    return walk_of(p, limit, ordered, in_file_order, lambda raw, tick, t: _event(p, 0, json.loads(raw)), ident)


def _is_int(v) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _check_header(p: Path, lineno: int, h) -> dict:
    def bad(why: str) -> SessionError:
        return SessionError(f"{p}: line {lineno}: {why}")

    if not isinstance(h, dict) or h.get("format") != FORMAT:
        raise bad(f"not a session header (expected \"format\": \"{FORMAT}\")")
    v = h.get("version")
    if not _is_int(v):
        raise bad("the header's \"version\" must be a whole number")
    if v > VERSION:
        raise bad(f"session format version {v} is newer than this program reads ({VERSION}); update the installation")
    if v < 1:
        raise bad(f"unknown session format version {v}")
    if not _is_int(h.get("seed")):
        raise bad("the header's \"seed\" must be a whole number")
    if not _is_int(h.get("tick_hz")) or not 1 <= h["tick_hz"] <= 10000:
        raise bad("the header's \"tick_hz\" must be a whole number 1..10000")
    if not isinstance(h.get("config"), dict):
        raise bad("the header's \"config\" must be an object")
    return h


def _scalar(v) -> bool:
    return v is None or isinstance(v, (bool, int, str)) or (isinstance(v, float))


def _event(p: Path, lineno: int, obj) -> TickedEvent:
    def bad(why: str) -> SessionError:
        return SessionError(f"{p}: line {lineno}: bad event: {why}")

    if not isinstance(obj, dict):
        raise bad("expected an object {\"tick\", \"t\", \"src\", \"addr\", \"types\", \"args\"}")
    tick, t = obj.get("tick"), obj.get("t")
    if not _is_int(tick) or tick < 0:
        raise bad("\"tick\" must be a whole number >= 0")
    if isinstance(t, bool) or not isinstance(t, (int, float)) or not math.isfinite(t):
        raise bad("\"t\" must be a finite number of seconds")
    src, addr, types, args = obj.get("src"), obj.get("addr"), obj.get("types"), obj.get("args")
    if not isinstance(src, str):
        raise bad("\"src\" must be a string \"host:port\"")
    if not isinstance(addr, str) or not addr.startswith("/"):
        raise bad("\"addr\" must be an OSC address starting with /")
    if not isinstance(types, str):
        raise bad("\"types\" must be a string of OSC type tags")
    if not isinstance(args, list) or not all(_scalar(a) for a in args):
        raise bad("\"args\" must be a list of numbers, strings, true/false/null")
    # one argument per type tag, of its kind: a hand-edited line that breaks this would be
    # dropped or misread at its tick, long after this check said the session was whole
    if len(args) != len(types):
        raise bad(f"\"types\" {types!r} names {len(types)} argument{'s' if len(types) != 1 else ''}, "
                  f"\"args\" holds {len(args)}")
    for k, (tag, a) in enumerate(zip(types, args)):
        kind = _TAG_KINDS.get(tag)
        if kind is not None and not kind[0](a):
            raise bad(f"argument {k + 1} must be {kind[1]} (type tag {tag!r}), not {a!r}")
    return TickedEvent(tick, InputEvent(addr, types, tuple(args), src, float(t)))


def _number(v) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def _string(v) -> bool:
    return isinstance(v, str)


_TAG_KINDS = {
    "f": (_number, "a number"), "d": (_number, "a number"),
    "i": (_is_int, "a whole number"), "h": (_is_int, "a whole number"),
    "s": (_string, "a string"), "S": (_string, "a string"),
    "T": (lambda v: v is True, "true"), "F": (lambda v: v is False, "false"), "N": (lambda v: v is None, "null"),
}


def _follow_parts(first: Session, p: Path) -> Session:
    nxt = first.next_part
    seen = {p.resolve()}
    while nxt is not None:
        q = p.parent / nxt
        if q.resolve() in seen:
            raise SessionError(f"{q}: the rotated parts name each other in a loop")
        seen.add(q.resolve())
        if not q.exists():
            first.truncated = True
            first.notes.append(f"the next part {q.name} is missing: replaying the parts before it")
            break
        part = read_session(q, follow=False)
        if part.kind != "session":
            raise SessionError(f"{q}: a rotated part must be a session file")
        if part.header.get("seed") != first.header.get("seed") or part.tick_hz != first.tick_hz:
            raise SessionError(f"{q}: this part's seed or tick rate differs from {p.name}'s")
        if part.events and first.events and part.events[0].tick < first.events[-1].tick:
            raise SessionError(f"{q}: this part starts before the end of {p.name}")
        first.events.extend(part.events)
        first.parts.append(str(q))
        first.notes.extend(part.notes)
        first.gaps.extend(part.gaps)
        first.end_ticks = part.end_ticks
        first.truncated = part.truncated
        first.next_part = nxt = part.next_part
    if first.truncated and first.parts:
        # a part cut short names no successor; parts after it on disk are not replayed (a
        # replay across the hole would not be the recording): say which, so nobody misses them
        cut = Path(first.parts[-1])
        later = []
        while len(later) < 1000 and part_path(p, len(first.parts) + len(later)).exists():
            later.append(part_path(p, len(first.parts) + len(later)).name)
        if later:
            first.notes.append(f"{cut.name} ends without an end marker (cut short?), so the "
                               f"{len(later)} part{'s' if len(later) > 1 else ''} after it on disk "
                               f"({', '.join(later[:3])}{', ...' if len(later) > 3 else ''}) "
                               f"{'are' if len(later) > 1 else 'is'} not replayed: a replay across "
                               f"the hole would not be the recording")
    return first


# ---- oscdump --------------------------------------------------------------------------------

def _dump_rows(p: Path, f, tally: Tally, limit: int | None = None):
    """(offset, timetag, DumpLine) of each message of an oscdump log, in file order; a line
    without a timetag takes the one before it. liblo's own chatter and messages whose
    arguments cannot be read back are skipped and counted in `tally`."""
    last_tt = None
    for lineno, start, end, raw, whole in raw_lines(f, limit):
        text = _decode(p, lineno, raw) if whole else raw.decode("utf-8", errors="replace")
        if not text.strip():
            tally.end = end
            continue
        if is_liblo_chatter(text):
            tally.skipped += 1
            tally.end = end
            continue
        try:
            d = parse_line(text)
        except LineError as e:
            if not whole:
                tally.truncated = True      # the last line, cut while oscdump was writing
                return
            if looks_like_oscdump(text):
                # A message oscdump printed but whose arguments cannot be read back (an odd
                # type from some sender): skip it, as the listener would reject it anyway.
                tally.skipped += 1
                if len(tally.notes) < 5:
                    tally.notes.append(f"line {lineno}: skipped: {e}")
                tally.end = end
                continue
            raise SessionError(f"{p}: line {lineno}: {e}") from None
        if not whole:
            tally.truncated = True          # oscdump ends every line: this one was cut or edited
        tally.end = end
        last_tt = d.timetag if d.timetag is not None else last_tt
        yield start, last_tt, d


def _read_oscdump(p: Path, f, tick_hz: int) -> Session:
    tally = Tally()
    count = 0
    t0 = None
    ordered = True
    prev = None
    rows = []                   # the first and the last message: (timetag, DumpLine)
    for _, tt, d in _dump_rows(p, f, tally):
        count += 1
        rows[1:] = [(tt, d)]
        if tt is not None:
            t0 = tt if t0 is None else min(t0, tt)
            ordered = ordered and (prev is None or tt >= prev)
            prev = tt
    known = t0 is not None
    t0 = t0 if known else 0

    def event(tt, d, t=None) -> TickedEvent:
        if t is None:
            t = ((tt if tt is not None else t0) - t0) / (1 << 32)
        return TickedEvent(math.floor(t * tick_hz + 0.5), InputEvent(d.addr, d.types, d.args, OSCDUMP_SRC, t))

    ident = identity(f)

    def in_file_order():
        n = 0
        with open_again(p, ident, tally.end) as g:
            for offset, tt, d in _dump_rows(p, g, Tally(), tally.end):
                n += 1
                yield offset, event(tt, d)
        if n != count:
            raise changed(p)

    def read_at(raw: bytes, tick: int, t: float) -> TickedEvent:
        return event(None, parse_line(raw.decode("utf-8", "replace")), t)

    # a later timetag never gives an earlier tick: in timetag order is in tick order
    walk = walk_of(p, tally.end, ordered, in_file_order, read_at, ident)
    ends = Ends()
    if ordered and count:
        ends.first, ends.last = event(*rows[0]), event(*rows[-1])
    elif count:
        for _, te in in_file_order():       # ticks need t0: a second look
            ends.see(te)
    created = ntp_to_datetime(t0).isoformat(timespec="seconds") if known else ""
    header = {"format": FORMAT, "version": VERSION, "created": created, "seed": 1,
              "tick_hz": int(tick_hz), "config": {}, "source": "oscdump"}
    return Session(str(p), header, SessionEvents([walk], count, ends.first, ends.last), None, tally.truncated, "oscdump",
                   [str(p)], tally.notes, tally.skipped)
