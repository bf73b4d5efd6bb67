"""Datagram -> (address, arguments) of every message in it, as python-osc parses them.

The semantics are those of python-osc's `Dispatcher(strict_timing=False)`: bundles (nested
too) are unpacked and their timetags are never waited for. Two things are done before
python-osc sees the bytes, because it gets them wrong for input from strangers:
- a type tag it does not know makes it call `logging.warning` on the root logger and drop
  the argument, so a flood of junk would flood the log and a message could lose an argument
  silently; such packets are refused here as "arg-type";
- it lets UnicodeDecodeError, IndexError, struct.error and RecursionError escape; the caller
  catches every exception and counts the packet as "malformed".
- it pads arguments cut short with zero bytes, so `/crowd/x/emotion ,ff` carrying one float
  would arrive as an arousal of 0.0; a message whose data is shorter than its type tags say
  is refused here as "malformed" (OSC 1.0 has no optional trailing bytes).
"""
from __future__ import annotations

import struct

from pythonosc import osc_packet

_KNOWN_TAGS = b"ifsdhbTFNrmt[]"
_BUNDLE = b"#bundle\x00"
_MAX_DEPTH = 16


class MalformedPacket(ValueError):
    """A packet refused before python-osc sees it."""


class UnsupportedTypeTag(MalformedPacket):
    """A type tag python-osc would skip; the packet is rejected as a whole ("arg-type")."""


def _check(d: bytes, depth: int) -> None:
    """Walk the packet's structure: bundle element sizes, nesting and type tags.

    python-osc 1.10 loops forever on a bundle element of negative size (its index walks
    backwards: a 20-byte datagram would freeze the listener) and logs a root warning for
    each element it cannot identify; neither may reach it, so bundles are checked here.
    """
    if d[:8] == _BUNDLE:
        if depth > _MAX_DEPTH:
            raise MalformedPacket("bundles nested too deeply")
        n = len(d)
        if n < 16:
            raise MalformedPacket("a bundle without its timetag")
        i = 16
        while i < n:
            if i + 4 > n:
                raise MalformedPacket("a bundle element without its size")
            size = int.from_bytes(d[i:i + 4], "big", signed=True)
            i += 4
            if size <= 0 or i + size > n:
                raise MalformedPacket(f"a bundle element of {size} bytes where {n - i} remain")
            element = d[i:i + size]
            if element[:1] != b"/" and element[:8] != _BUNDLE:
                raise MalformedPacket("a bundle element that is neither a message nor a bundle")
            _check(element, depth + 1)
            i += size
        return
    end = d.find(b"\x00")
    if end < 0:
        return                     # python-osc rejects it
    i = (end + 4) & ~3
    if i >= len(d) or d[i] != 0x2C:  # ","
        return
    stop = d.find(b"\x00", i)
    tags = d[i + 1:stop if stop >= 0 else len(d)]
    if tags.translate(None, _KNOWN_TAGS):
        raise UnsupportedTypeTag(f"type tags {tags[:16]!r}")
    if stop >= 0:
        _args_fit(d, (stop + 4) & ~3, tags)


_SIZES = {ord(c): n for c, n in (("i", 4), ("f", 4), ("r", 4), ("m", 4), ("d", 8), ("h", 8), ("t", 8),
                                 ("T", 0), ("F", 0), ("N", 0), ("[", 0), ("]", 0))}


def _args_fit(d: bytes, j: int, tags: bytes) -> None:
    """MalformedPacket unless the bytes from j hold every argument the tags name."""
    n = len(d)
    for tag in tags:
        size = _SIZES.get(tag)
        if size is not None:
            j += size
        elif tag == 0x73:                       # s: a string up to its NUL, padded to 4
            end = d.find(b"\x00", j)
            if end < 0:
                raise MalformedPacket("a string argument without its end")
            j = (end + 4) & ~3
        elif tag == 0x62:                       # b: a size, then that many bytes, padded
            if j + 4 > n:
                raise MalformedPacket("a blob without its size")
            size = int.from_bytes(d[j:j + 4], "big", signed=True)
            if size < 0:
                raise MalformedPacket(f"a blob of {size} bytes")
            j += 4 + ((size + 3) & ~3)
        if j > n:
            raise MalformedPacket(f"arguments cut short: type tags {tags[:16]!r} need more than {n} bytes")


def _plain_message(d: bytes) -> tuple[str, list] | None:
    """The common case, a single message of only f and i arguments, without python-osc's
    per-argument calls (a third of the listener's time at 20k msg/s). None for anything
    else, which python-osc then parses; `reference_parse` is the twin a test compares with."""
    end = d.find(b"\x00")
    if end < 1 or d[0] != 0x2F:
        return None
    i = (end + 4) & ~3
    n = len(d)
    if i > n:
        return None
    address = d[:end].decode("utf-8")         # UnicodeDecodeError: python-osc raises it too
    if i == n:
        return address, []
    if d[i] != 0x2C:
        return None
    stop = d.find(b"\x00", i)
    if stop < 0:
        return None
    tags = d[i + 1:stop]
    j = (stop + 4) & ~3
    if j > n or tags.translate(None, b"fi"):
        return None
    if not tags:
        return address, []
    st = _STRUCTS.get(tags)
    if st is None:
        if len(_STRUCTS) > 256:
            return None
        st = _STRUCTS[tags] = struct.Struct(">" + tags.decode())
    if n - j < st.size:
        raise MalformedPacket(f"arguments cut short: type tags {tags[:16]!r} need {st.size} bytes, {n - j} came")
    return address, list(st.unpack_from(d, j))


_STRUCTS: dict[bytes, struct.Struct] = {}


def reference_parse(data: bytes) -> list[tuple[str, list]]:
    """python-osc's own parse of a packet (the oracle for `parse_packet`)."""
    return [(tm.message.address, tm.message.params) for tm in osc_packet.OscPacket(data).messages]


def parse_packet(data: bytes) -> list[tuple[str, list]]:
    """Every message of a packet in order (bundles by timetag, as python-osc sorts them).

    Raises UnsupportedTypeTag for an unknown type tag, MalformedPacket for a broken structure,
    and anything else python-osc raises for other broken packets.
    """
    plain = _plain_message(data)
    if plain is not None:
        return [plain]
    _check(data, 0)
    return reference_parse(data)
