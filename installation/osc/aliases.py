"""Alias maps: other senders' OSC addresses onto the contract's, read from TOML.

Phones running TouchOSC, Sensors2OSC or ZIG SIM do not speak the contract; an alias file
says how their messages become contract messages. One `[[alias]]` table per address:

    [[alias]]
    address = "/accxyz"                 # the sender's address; * matches one path segment
    to = "/crowd/{sender}/motion"       # a contract address; {sender} is the sender's id
    args = [{ norm = [0, 1, 2], center = 1.0, scale = 1.5 }]

Each output argument is `offset + scale * g`, where g is one of
    { arg = i }                   the sender's i-th argument
    { norm = [i, j, ...] }        the length of the vector of those arguments
    { value = c }                 a constant (g = c, scale and offset still apply)
and, with `center = c`, g becomes |g - c| (how far the length is from rest, e.g. gravity).
The result then goes through the contract's own checks (range clamp, NaN rejected), so an
alias can never produce what the contract would not accept.

{sender} is the id derived from the sender's host:port (`validate.sender_id`): these apps
do not name their user, and a phone keeps its source port while the app runs.
Relative paths are resolved against the config file's folder, then the shipped configs/.
"""
from __future__ import annotations

import math
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

from ..config.loader import ConfigError, read_toml
from .validate import Validator, sender_id

SHIPPED_DIR = Path(__file__).resolve().parents[2] / "configs"
_MAX_INDEX = 63
_ALIAS_KEYS = {"address", "to", "args"}
_ARG_KEYS = {"arg", "norm", "value", "center", "scale", "offset"}


@dataclass(frozen=True)
class AliasArg:
    source: str                  # "arg", "norm" or "value"
    index: tuple[int, ...]       # argument indices read ("arg": one, "norm": several)
    value: float = 0.0           # the constant for "value"
    center: float | None = None
    scale: float = 1.0
    offset: float = 0.0

    def compute(self, args: Sequence) -> float:
        if self.source == "value":
            g = self.value
        elif self.source == "arg":
            g = float(args[self.index[0]])
        else:
            g = math.sqrt(sum(float(args[i]) * float(args[i]) for i in self.index))
        if self.center is not None:
            g = abs(g - self.center)
        return self.offset + self.scale * g


@dataclass(frozen=True)
class Alias:
    address: str
    to: str
    args: tuple[AliasArg, ...]
    needs: int                   # how many of the sender's arguments must be present
    indices: tuple[int, ...]     # the sender's arguments read (each must be a number)
    origin: str                  # "file: alias #n", for messages


def _wildcard_regex(pattern: str) -> re.Pattern:
    return re.compile("".join("[^/]+" if part == "*" else re.escape(part)
                              for part in re.split(r"(\*)", pattern)) + r"\Z")


def _number(where: str, key: str, v) -> float:
    if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
        raise ConfigError(f"{where}: {key} = {v!r}: expected a finite number")
    return float(v)


def _index(where: str, key: str, v) -> int:
    if isinstance(v, bool) or not isinstance(v, int) or not 0 <= v <= _MAX_INDEX:
        raise ConfigError(f"{where}: {key} = {v!r}: expected an argument index 0..{_MAX_INDEX}")
    return v


def _parse_arg(where: str, raw) -> AliasArg:
    if not isinstance(raw, dict):
        raise ConfigError(f"{where}: each item of args must be a table like {{ arg = 0 }}")
    unknown = set(raw) - _ARG_KEYS
    if unknown:
        raise ConfigError(f"{where}: unknown key '{sorted(unknown)[0]}' (allowed: {', '.join(sorted(_ARG_KEYS))})")
    sources = [k for k in ("arg", "norm", "value") if k in raw]
    if len(sources) != 1:
        raise ConfigError(f"{where}: give exactly one of arg = i, norm = [i, ...] or value = c")
    source = sources[0]
    index: tuple[int, ...] = ()
    value = 0.0
    if source == "arg":
        index = (_index(where, "arg", raw["arg"]),)
    elif source == "norm":
        items = raw["norm"]
        if not isinstance(items, list) or not items:
            raise ConfigError(f"{where}: norm must be a non-empty list of argument indices")
        index = tuple(_index(where, "norm", i) for i in items)
    else:
        value = _number(where, "value", raw["value"])
    center = _number(where, "center", raw["center"]) if "center" in raw else None
    return AliasArg(source, index, value, center,
                    _number(where, "scale", raw.get("scale", 1.0)),
                    _number(where, "offset", raw.get("offset", 0.0)))


def _parse_alias(where: str, raw) -> Alias:
    if not isinstance(raw, dict):
        raise ConfigError(f"{where}: must be a table with address, to and args")
    unknown = set(raw) - _ALIAS_KEYS
    if unknown:
        raise ConfigError(f"{where}: unknown key '{sorted(unknown)[0]}' (allowed: address, to, args)")
    address, to = raw.get("address"), raw.get("to")
    if not isinstance(address, str) or not address.startswith("/") or " " in address:
        raise ConfigError(f"{where}: address = {address!r}: expected an OSC address like \"/1/xy1\"")
    if not isinstance(to, str):
        raise ConfigError(f"{where}: to = {to!r}: expected a contract address like \"/crowd/{{sender}}/touch\"")
    args = raw.get("args", [])
    if not isinstance(args, list):
        raise ConfigError(f"{where}: args must be a list of tables")
    parsed = tuple(_parse_arg(f"{where} args[{i}]", a) for i, a in enumerate(args))
    # The target must be a contract address taking this many arguments, whatever the sender.
    route = Validator.route(to.replace("{sender}", "x"))
    if route is None or type(route) is str or "{" in to.replace("{sender}", ""):
        raise ConfigError(f"{where}: to = {to!r} is not an address of the contract (e.g. /crowd/{{sender}}/touch)")
    (required, optional), _ = route
    if not len(required) <= len(parsed) <= len(required) + len(optional):
        raise ConfigError(f"{where}: {to} takes {len(required)}"
                          + (f" to {len(required) + len(optional)}" if optional else "")
                          + f" arguments, args gives {len(parsed)}")
    indices = tuple(sorted({i for a in parsed for i in a.index}))
    return Alias(address, to, parsed, 1 + max(indices, default=-1), indices, where)


class AliasMap:
    """The aliases of several files; the first alias (in file order) matching an address wins."""

    def __init__(self, aliases: Sequence[Alias] = ()):
        self.aliases = tuple(aliases)
        self._exact: dict[str, tuple[int, Alias]] = {}
        self._wild: list[tuple[int, re.Pattern, Alias]] = []
        for order, a in enumerate(self.aliases):
            if "*" in a.address:
                self._wild.append((order, _wildcard_regex(a.address), a))
            elif a.address not in self._exact:
                self._exact[a.address] = (order, a)

    @staticmethod
    def resolve(path: str, base_dir: str | None) -> Path:
        p = Path(path).expanduser()
        if p.is_absolute():
            return p
        here = Path(base_dir or ".") / p
        if here.is_file() or not (SHIPPED_DIR / p).is_file():
            return here
        return SHIPPED_DIR / p

    @classmethod
    def load(cls, paths: Sequence[str], base_dir: str | None = None) -> "AliasMap":
        """Read alias files; ConfigError names the file and the alias on any problem."""
        aliases: list[Alias] = []
        for path in paths:
            full = cls.resolve(path, base_dir)
            try:
                tree = read_toml(full, missing="no such file")
            except ConfigError as exc:
                raise ConfigError(f"[osc] alias_files: {exc}") from None
            unknown = set(tree) - {"alias"}
            if unknown:
                raise ConfigError(f"{full}: unknown key '{sorted(unknown)[0]}' (an alias file holds [[alias]] tables)")
            items = tree.get("alias", [])
            if not isinstance(items, list):
                raise ConfigError(f"{full}: alias must be an array of tables [[alias]]")
            aliases += [_parse_alias(f"{full}: alias #{i + 1}", raw) for i, raw in enumerate(items)]
        return cls(aliases)

    def find(self, address: str) -> Alias | None:
        best = self._exact.get(address)
        for order, rx, alias in self._wild:
            if best is not None and order > best[0]:
                break
            if rx.match(address):
                best = (order, alias)
                break
        return None if best is None else best[1]

    def map(self, address: str, args: Sequence, src: str) -> tuple[str, tuple] | str | None:
        """(contract address, arguments) for an aliased message; a rejection kind when its
        arguments do not fit; None when no alias matches."""
        alias = self.find(address)
        if alias is None:
            return None
        if len(args) < alias.needs:
            return "arg-count"
        for i in alias.indices:
            v = args[i]
            if type(v) is not float and type(v) is not int:
                return "arg-type"
        try:
            out = tuple(a.compute(args) for a in alias.args)
        except (OverflowError, ValueError):
            return "not-finite"
        to = alias.to.replace("{sender}", sender_id(src)) if "{sender}" in alias.to else alias.to
        return to, out
