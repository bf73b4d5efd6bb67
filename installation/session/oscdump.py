"""liblo `oscdump` text logs: read them as events, write sessions out for `oscsendfile`.

What oscdump (liblo 0.28-0.32) prints per message, `-L` only changes buffering:

    eeb1f08f.3463e079 /crowd/a/emotion ff 0.500000 0.800000
    eeb1f08f.34b838c0 /scene sf "hello world" 2.500000
    eeb1f08f.354fce74 /record/stop                         (no types: a trailing space)

Timetags are NTP seconds.fraction in hex; old releases printed them in decimal
(`  3736432783.878823449`), some forks put the sender's `host:port` first. Arguments follow
`lo_arg_pp`: `%d` ints, `%f` floats, `"..."` strings (not escaped), `'sym` symbols, `'c'`
chars, `#T #F Nil Infinitum`, `MIDI [0x.. 0x.. 0x.. 0x..]`, `[N byte blob]`.

Arguments come back in python-osc's shape (T/F/N give True/False/None, I gives nothing), so the
caller's OSC validator sees exactly what a live packet would have produced.
"""
from __future__ import annotations

import datetime as _dt
import math
import os
import re
from dataclasses import dataclass
from pathlib import Path

NTP_UNIX_OFFSET = 2208988800      # seconds from 1900-01-01 (NTP) to 1970-01-01 (Unix)
_FRAC = 1 << 32

_HEAD = re.compile(
    r"^\s*(?:(?P<src>[^\s/]+:\d+)\s+)?"
    r"(?:(?P<tt>[0-9A-Fa-f]{8}\.[0-9A-Fa-f]{8}|\d{1,10}\.\d{1,10})\s+)?"
    r"(?P<addr>/\S*)(?:\s+(?P<types>[A-Za-z\[\]]+))?(?P<rest>.*)$")
_INT = re.compile(r"[-+]?\d+")
_FLOAT = re.compile(r"[-+]?(?:nan|inf(?:inity)?|(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?)", re.IGNORECASE)
_MIDI = re.compile(r"MIDI \[0x([0-9a-fA-F]{1,2}) 0x([0-9a-fA-F]{1,2}) 0x([0-9a-fA-F]{1,2}) 0x([0-9a-fA-F]{1,2})\]|([0-9a-fA-F]{8})")
_BLOB = re.compile(r"\[(?:(\d+) byte blob|(\d+)b((?: ?0(?:x[0-9a-fA-F]{1,2})?)*))\]")
_TT_ARG = re.compile(r"([0-9A-Fa-f]{8})\.([0-9A-Fa-f]{8})")
_FLAG_TOKENS = {"T": ("#T", "true"), "F": ("#F", "false"), "N": ("Nil", "nil"), "I": ("Infinitum", "infinitum")}
_FLAG_VALUES = {"T": True, "F": False, "N": None}


@dataclass(frozen=True, slots=True)
class DumpLine:
    timetag: int | None     # NTP time as a 64-bit fixed-point integer (sec << 32 | frac)
    addr: str
    types: str
    args: tuple
    src: str | None


class LineError(ValueError):
    """One oscdump line that cannot be read; the message says why."""


def is_liblo_chatter(line: str) -> bool:
    """Lines liblo itself prints among the messages (server errors, warnings)."""
    s = line.strip()
    return s.startswith("liblo ") or s.startswith("Could not start a server")


def looks_like_oscdump(line: str) -> bool:
    m = _HEAD.match(line.rstrip("\r\n"))
    return bool(m and (m.group("tt") or m.group("src") or line.lstrip().startswith("/")))


def _timetag(text: str) -> int:
    a, b = text.split(".")
    if len(a) == 8 and len(b) == 8:
        sec, frac = int(a, 16), int(b, 16)
    else:
        sec, frac = int(a), int(b)
        if sec >= _FRAC or frac >= _FRAC:
            raise LineError(f"timetag {text} out of range")
    return (sec << 32) | frac


def _skip_space(s: str, pos: int) -> int:
    while pos < len(s) and s[pos] in " \t":
        pos += 1
    return pos


def _token_end(s: str, pos: int) -> int:
    end = pos
    while end < len(s) and s[end] not in " \t":
        end += 1
    return end


def _candidates(t: str, s: str, pos: int):
    """Every way the argument of type `t` can be read at `pos`: (values appended, end).

    Strings are not escaped by oscdump, so a quote inside a string is ambiguous: each closing
    quote that is followed by a space or the end is a candidate, and the caller backtracks."""
    if t in "ih":
        m = _INT.match(s, pos)
        if m and _token_end(s, pos) == m.end():
            yield (int(m.group()),), m.end()
    elif t in "fd":
        m = _FLOAT.match(s, pos)
        if m and _token_end(s, pos) == m.end():
            yield (float(m.group()),), m.end()
    elif t == "s" or t == "S":
        if pos < len(s) and s[pos] == '"':
            ends = [i for i in range(len(s) - 1, pos, -1) if s[i] == '"' and (i + 1 == len(s) or s[i + 1] in " \t")]
            for i in reversed(ends):          # shortest first: the usual case is no quote inside
                yield (s[pos + 1:i],), i + 1
        elif pos < len(s) and s[pos] == "'" and t == "S":
            for end in _space_ends(s, pos):
                yield (s[pos + 1:end],), end
        elif pos < len(s):
            end = _token_end(s, pos)         # oscsendfile's unquoted form
            yield (s[pos:end],), end
    elif t == "c":
        if s.startswith("'", pos) and pos + 2 < len(s) and s[pos + 2] == "'":
            yield (s[pos + 1],), pos + 3
        elif pos < len(s) and _token_end(s, pos) == pos + 1:
            yield (s[pos],), pos + 1
    elif t in _FLAG_TOKENS:
        value = () if t == "I" else (_FLAG_VALUES[t],)
        for tok in _FLAG_TOKENS[t]:
            if s.startswith(tok, pos) and _token_end(s, pos) == pos + len(tok):
                yield value, pos + len(tok)
        yield value, pos                    # oscsendfile files print nothing for these
    elif t == "m":
        m = _MIDI.match(s, pos)
        if m:
            if m.group(5):
                v = int(m.group(5), 16)
                yield ((v >> 24 & 255, v >> 16 & 255, v >> 8 & 255, v & 255),), m.end()
            else:
                yield (tuple(int(m.group(k), 16) for k in range(1, 5)),), m.end()
    elif t == "b":
        m = _BLOB.match(s, pos)
        if m:
            if m.group(1) is not None:
                yield (None,), m.end()      # contents not printed for blobs over 12 bytes
            else:
                data = bytes(int(x, 16) for x in m.group(3).split()) if m.group(3).strip() else b""
                yield (data,), m.end()
    elif t == "t":
        m = _TT_ARG.match(s, pos)
        if m:
            yield ((int(m.group(1), 16) + int(m.group(2), 16) / _FRAC),), m.end()


def _space_ends(s: str, pos: int) -> list[int]:
    return [i for i in range(pos + 1, len(s) + 1) if i == len(s) or s[i] in " \t"]


def _parse_args(types: str, s: str, i: int, pos: int, depth: int = 0):
    """Arguments for types[i:] from s[pos:], or None when no reading consumes the whole line."""
    if i == len(types):
        return [] if _skip_space(s, pos) == len(s) else None
    t = types[i]
    if t in "[]":
        return _parse_args(types, s, i + 1, pos)
    start = _skip_space(s, pos)
    for values, end in _candidates(t, s, start):
        if end != start and end < len(s) and s[end] not in " \t":
            continue
        tail = _parse_args(types, s, i + 1, end)
        if tail is not None:
            return list(values) + tail
    return None


def parse_line(line: str) -> DumpLine:
    """One oscdump line (without the newline) → DumpLine; LineError says what is wrong."""
    line = line.rstrip("\r\n")
    m = _HEAD.match(line)
    if not m:
        raise LineError("not an oscdump line (expected 'XXXXXXXX.XXXXXXXX /address types args')")
    types = m.group("types") or ""
    rest = m.group("rest")
    bad = sorted(set(types) - set("ihfdsScTFNImbt[]"))
    if bad:
        raise LineError(f"type '{bad[0]}' cannot be read back from oscdump text")
    args = _parse_args(types, rest, 0, 0)
    if args is None:
        raise LineError(f"arguments do not match the types '{types}'")
    tt = _timetag(m.group("tt")) if m.group("tt") else None
    return DumpLine(tt, m.group("addr"), types, tuple(args), m.group("src"))


def ntp_to_datetime(tt: int) -> _dt.datetime:
    unix = (tt >> 32) - NTP_UNIX_OFFSET + (tt & (_FRAC - 1)) / _FRAC
    return _dt.datetime.fromtimestamp(unix, _dt.timezone.utc)


# ---- writing ------------------------------------------------------------------------------

def _base_timetag(created: object) -> int:
    try:
        when = _dt.datetime.fromisoformat(str(created))
        if when.tzinfo is None:
            when = when.astimezone()
        unix = when.timestamp()
    except (TypeError, ValueError):
        unix = 0.0
    sec = math.floor(unix)
    return ((sec + NTP_UNIX_OFFSET) << 32) + round((unix - sec) * _FRAC)


def _seconds_to_fixed(t: float) -> int:
    whole = math.floor(t)
    return (whole << 32) + round((t - whole) * _FRAC)


def format_args(types: str, args: tuple) -> str | None:
    """The argument tokens oscsendfile reads back into the same message, or None if this
    message has no faithful text form (blobs, timetags, strings with control characters)."""
    out = []
    k = 0
    for t in types:
        if t in "[]I":
            continue
        if k >= len(args):
            return None
        v = args[k]
        k += 1
        if t in "TFN":
            continue            # oscsendfile adds these without reading a token
        if t in "ih" and isinstance(v, (int, float)) and float(v).is_integer():
            out.append(str(int(v)))
        elif t in "fd" and isinstance(v, (int, float)):
            out.append(repr(float(v)))
        elif t in "sS" and isinstance(v, str) and v.isprintable():
            out.append(f'"{v}"')
        elif t == "c" and isinstance(v, str) and len(v) == 1 and v.isprintable() and not v.isspace():
            out.append(v)
        elif t == "m" and isinstance(v, (tuple, list)) and len(v) == 4:
            out.append("".join(f"{int(b) & 255:02x}" for b in v))
        else:
            return None
    return " ".join(out) if k == len(args) else None


def write_oscdump(session, path: str | os.PathLike) -> dict:
    """Write a session's events as oscdump text that `oscsendfile HOST PORT FILE` plays.

    Timetags are the session's `created` time plus each event's arrival time `t`, so the
    spacing between events is the recorded one, to 2^-32 s. Floats are written in full
    (`repr`), so reading the file back gives the same numbers; oscdump itself prints only 6
    decimals. Known limits of liblo's oscsendfile (not of this file): it splits on spaces, so a
    string holding a space arrives cut in pieces; and a message without arguments (e.g.
    /crowd/{id}/leave) that follows one with arguments is sent with the previous arguments,
    because oscsendfile does not reset them. Events that have no text form are skipped and
    counted. Events at an address no listener accepts (the installation's own quiet hours,
    `/quiet`) are left out and counted: their replay from the log would refuse them. The
    schedule's switches and a mid-run recording's starting state are OSC the listener takes,
    and are kept. Returns {"written": n, "skipped": n, "internal": n}.
    """
    from ..osc.validate import Validator
    base = _base_timetag(session.header.get("created"))
    written = skipped = internal = 0
    try:
        f = open(Path(path), "w", encoding="utf-8", newline="\n")
    except OSError as e:
        from .errors import SessionError
        raise SessionError(f"{path}: cannot write the oscdump file: {e.strerror or e}") from None
    with f:
        for te in session.events:
            ev = te.event
            if Validator.route(ev.addr) is None:
                internal += 1
                continue
            text = format_args(ev.types, tuple(ev.args))
            if text is None or any(c.isspace() for c in ev.addr):
                skipped += 1
                continue
            tt = base + _seconds_to_fixed(ev.t)
            head = f"{tt >> 32:08x}.{tt & (_FRAC - 1):08x} {ev.addr}"
            f.write(f"{head} {ev.types} {text}".rstrip() + "\n" if ev.types else head + "\n")
            written += 1
    return {"written": written, "skipped": skipped, "internal": internal}
