"""One OSC message against the contract's address table, without any transport.

`Validator.check(address, args, src, t)` turns an (address, python-osc arguments, sender)
triple into an `InputEvent` in the contract's address space, or into a short rejection kind
("bad-id", "arg-type", ...). The listener thread calls it for live packets, and anything that
reads OSC from elsewhere (an `oscdump` log) can call the same function, so a message is
judged the same way wherever it came from.

Canonical form of an accepted event: numbers are Python floats clamped to the contract's
range (ints are accepted wherever a float is expected, as `oscsend` and many apps send
them), `/blackout` is an int 0/1, names are strings; optional arguments with a fixed meaning
are filled in (`touch` pressure 1.0, `/pulse` strength 1.0), those whose default lives in
the configuration (`/scene` crossfade, `/record/start` name) are left out.
"""
from __future__ import annotations

import hashlib
import ipaddress
import math
import re
from typing import Callable, Sequence

from ..config.names import SCENE_NAME_RE
from ..events import InputEvent
from .settings import OscSettings, operator_networks

# Every kind of rejection the OSC side counts; the listener pre-fills its counters with these.
REJECT_KINDS = ("malformed", "oversized", "unknown-address", "bad-id", "arg-count", "arg-type",
                "not-finite", "bad-name", "operator-denied", "rate-limited", "queue-full")

ID_RE = re.compile(r"[A-Za-z0-9_-]{1,32}\Z")
NAME_RE = SCENE_NAME_RE        # scene and vote names: the one scene-name rule (config/names.py)
PARAM_RE = re.compile(r"[A-Za-z0-9_.-]{1,64}\Z")      # /param/{name}: "flow_strength", "sim.friction"
FILE_RE = re.compile(r"[A-Za-z0-9_-][A-Za-z0-9_.-]{0,99}\Z")  # a bare file name: no separator, no leading dot

# Argument specs: ("num", lo, hi) a finite number clamped to [lo, hi]; ("bool",) an int 0/1
# from an int, float or OSC true/false; ("name", regex) a string matching regex.
_UNIT = ("num", 0.0, 1.0)
_SIGNED = ("num", -1.0, 1.0)
_ANY = ("num", -math.inf, math.inf)
_NAME = ("name", NAME_RE)
_FILE = ("name", FILE_RE)
_BOOL = ("bool",)
_ABSENT = object()   # an optional argument left out when not sent

# address (or verb) -> (required specs, ((optional spec, default or _ABSENT), ...))
CROWD_VERBS = {
    "emotion": ((_SIGNED, _UNIT), ()),
    "touch": ((_UNIT, _UNIT), ((_UNIT, 1.0),)),
    "motion": ((_UNIT,), ()),
    "leave": ((), ()),
    "vote": ((_NAME,), ()),
}
SENSOR_VERBS = {"level": ((_UNIT,), ())}
OPERATOR = {
    "/scene": ((_NAME,), ((("num", 0.0, 3600.0), _ABSENT),)),
    "/pulse": ((), ((_UNIT, 1.0),)),
    "/master/brightness": ((_UNIT,), ()),
    "/master/volume": ((_UNIT,), ()),
    "/blackout": ((_BOOL,), ()),
    "/record/start": ((), ((_FILE, _ABSENT),)),
    "/record/stop": ((), ()),
}
PARAM_SPEC = ((_ANY,), ())


def split_src(src: str) -> tuple[str, int]:
    """"host:port" (IPv6 hosts bare or in brackets) -> (host, port); port -1 if there is none."""
    host, sep, port = src.rpartition(":")
    if not sep:
        return src, -1
    try:
        p = int(port)
    except ValueError:
        return src, -1
    return host.strip("[]"), p


def sender_id(src: str) -> str:
    """A participant id in the contract's syntax for a sender that does not name itself.

    Readable where it fits ("192-168-1-20_53001"); a stable hash where an IPv6 address
    makes it too long. Each phone's app keeps its source port, so host:port is one phone.
    """
    host, port = split_src(src)
    text = re.sub(r"[^A-Za-z0-9]", "-", host) + (f"_{port}" if port >= 0 else "")
    if ID_RE.match(text):
        return text
    return "h-" + hashlib.blake2s(src.encode("utf-8", "replace"), digest_size=12).hexdigest()


class _Kind(str):
    """A rejection kind, told apart from a string argument by its type."""


_K = {k: _Kind(k) for k in REJECT_KINDS}


def _coerce(spec: tuple, value):
    """One argument -> its canonical value, or a rejection `_Kind`."""
    kind = spec[0]
    if kind == "name":
        if type(value) is not str:
            return _K["arg-type"]
        return value if spec[1].match(value) else _K["bad-name"]
    # bool is an int subclass: OSC true/false is only a number where the contract says i 0/1
    if type(value) is bool:
        return int(value) if kind == "bool" else _K["arg-type"]
    if type(value) is not float and type(value) is not int:
        return _K["arg-type"]
    try:
        f = float(value)
    except OverflowError:  # an int beyond float range (a hand-edited session, not OSC)
        return _K["not-finite"]
    if not math.isfinite(f):
        return _K["not-finite"]
    if kind == "bool":
        return 1 if f != 0.0 else 0
    lo, hi = spec[1], spec[2]
    return lo if f < lo else hi if f > hi else f


def coerce_args(spec: tuple, args: Sequence) -> tuple | str:
    """All arguments of a message against (required, optional) -> canonical tuple or a kind."""
    required, optional = spec
    n = len(args)
    if n < len(required) or n > len(required) + len(optional):
        return "arg-count"
    out = []
    for i, s in enumerate(required):
        v = _coerce(s, args[i])
        if type(v) is _Kind:
            return str(v)
        out.append(v)
    for j, (s, default) in enumerate(optional):
        i = len(required) + j
        if i < n:
            v = _coerce(s, args[i])
            if type(v) is _Kind:
                return str(v)
            out.append(v)
        elif default is not _ABSENT:
            out.append(default)
    return tuple(out)


def type_tags(args: tuple) -> str:
    return "".join("s" if type(a) is str else "i" if type(a) is int else "f" for a in args)


class Validator:
    """The contract's address table, the alias map and the operator gate, in one check.

    `operator_ok(src) -> bool` replaces the gate of `settings.operator_hosts` (replay of a
    log the operator chose passes `lambda src: True`); `aliases` replaces the alias files.
    """

    def __init__(self, settings: OscSettings | None = None, base_dir: str | None = None, *,
                 operator_ok: Callable[[str], bool] | None = None, aliases=None):
        settings = settings if settings is not None else OscSettings()
        if aliases is None:
            from .aliases import AliasMap  # noqa: PLC0415 - aliases imports this module
            aliases = AliasMap.load(settings.alias_files, base_dir)   # ConfigError on a bad file
        self.aliases = aliases
        self._nets = operator_networks(settings.operator_hosts)
        self._gate_cache: dict[str, bool] = {}
        self._operator_ok = operator_ok if operator_ok is not None else self.operator_allowed

    def operator_allowed(self, src: str) -> bool:
        host = split_src(src)[0]
        ok = self._gate_cache.get(host)
        if ok is None:
            try:
                ip = ipaddress.ip_address(host.split("%", 1)[0])
                if ip.version == 6 and ip.ipv4_mapped is not None:
                    ip = ip.ipv4_mapped
                ok = any(ip.version == n.version and ip in n for n in self._nets)
            except ValueError:
                ok = False
            if len(self._gate_cache) > 4096:  # spoofed sources must not grow it without bound
                self._gate_cache.clear()
            self._gate_cache[host] = ok
        return ok

    @staticmethod
    def route(address: str) -> tuple[tuple, bool] | str | None:
        """(arg spec, is operator) for a contract address; a kind for a bad id; None if unknown."""
        parts = address.split("/")
        n = len(parts)
        if n == 4 and parts[0] == "":
            head = parts[1]
            spec = CROWD_VERBS.get(parts[3]) if head == "crowd" else \
                SENSOR_VERBS.get(parts[3]) if head == "sensor" else None
            if spec is not None:
                return (spec, False) if ID_RE.match(parts[2]) else "bad-id"
        spec = OPERATOR.get(address)
        if spec is not None:
            return spec, True
        if n == 3 and parts[0] == "" and parts[1] == "param":
            return (PARAM_SPEC, True) if PARAM_RE.match(parts[2]) else "bad-name"
        return None

    def check(self, address: str, args: Sequence, src: str, t: float, *,
              trusted: bool = False) -> InputEvent | str:
        """An accepted event, or the kind of rejection. `trusted` skips the operator gate
        (input the operator chose to replay, not input from the network)."""
        if type(address) is not str:
            return "malformed"
        route = self.route(address)
        if route is None and self.aliases is not None:
            mapped = self.aliases.map(address, args, src)
            if type(mapped) is str:
                return mapped
            if mapped is not None:
                address, args = mapped
                route = self.route(address)
        if route is None:
            return "unknown-address"
        if type(route) is str:
            return route
        spec, operator = route
        if operator and not trusted and not self._operator_ok(src):
            return "operator-denied"
        out = coerce_args(spec, args)
        if type(out) is str:
            return out
        return InputEvent(address, type_tags(out), out, src, t)
