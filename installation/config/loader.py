"""Reads TOML into the typed, frozen configuration, with one predictable override order.

defaults → config file → scene file → environment (LIVING_MOSAIC__SECTION__KEY=value) →
command-line `--set section.key=value`. Every problem is a ConfigError whose message is one
line naming the file, the key and what is allowed, so the CLI can print it and exit 2.
"""
from __future__ import annotations

import dataclasses
import difflib
import math
import os
import tomllib
import typing
from pathlib import Path
from typing import Any, Mapping

from .fields import describe

ENV_PREFIX = "LIVING_MOSAIC__"


class ConfigError(Exception):
    """A bad configuration: the message is the whole story, fit for one line."""


def _suggest(name: str, options) -> str:
    close = difflib.get_close_matches(name, list(options), n=1, cutoff=0.6)
    return f" (did you mean '{close[0]}'?)" if close else ""


def parse_value(text: str) -> Any:
    """A TOML value as written after `=`; a bare word is taken as a string."""
    try:
        return tomllib.loads(f"v = {text}")["v"]
    except tomllib.TOMLDecodeError:
        return text


def _check_value(where: str, f: dataclasses.Field, hint: Any, value: Any) -> Any:
    name = f.name
    allowed = describe(f)

    def bad(why: str) -> ConfigError:
        return ConfigError(f"{where}: {name} = {value!r}: {why}" + (f" (allowed: {allowed})" if allowed else ""))

    origin = typing.get_origin(hint)
    if hint is bool:
        if not isinstance(value, bool):
            raise bad("expected true or false")
        return value
    if hint is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise bad("expected a whole number")
        out = value
    elif hint is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise bad("expected a number")
        out = float(value)
        if not math.isfinite(out):
            raise bad("expected a finite number")
    elif hint is str:
        if not isinstance(value, str):
            raise bad("expected a string in quotes")
        out = value
    elif origin is tuple:
        args = typing.get_args(hint)
        item = args[0]
        if not isinstance(value, (list, tuple)):
            raise bad("expected a list [ ... ]")
        items = []
        for v in value:
            if item is float and isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v):
                items.append(float(v))
            elif item is int and isinstance(v, int) and not isinstance(v, bool):
                items.append(v)
            elif item is str and isinstance(v, str):
                items.append(v)
            else:
                raise bad(f"every item must be a {item.__name__}")
        out = tuple(items)
        lo, hi = f.metadata.get("lo"), f.metadata.get("hi")
        if item in (int, float):
            for v in out:
                if (lo is not None and v < lo) or (hi is not None and v > hi):
                    raise bad("an item is out of range")
        choices = f.metadata.get("choices")
        if choices and item is str:
            for v in out:
                if v not in choices:
                    raise bad(f"unknown item {v!r}{_suggest(v, choices)}")
        return out
    else:  # pragma: no cover - a schema bug, not a user error
        raise TypeError(f"unsupported setting type {hint!r} for {name}")

    lo, hi = f.metadata.get("lo"), f.metadata.get("hi")
    if (lo is not None and out < lo) or (hi is not None and out > hi):
        raise bad("out of range")
    choices = f.metadata.get("choices")
    if choices and out not in choices:
        raise bad("not allowed" + _suggest(str(out), [str(c) for c in choices]))
    return out


def build_section(cls, values: Mapping[str, Any], where: str, relaxed: list[tuple[str, str]] | None = None):
    """One section dataclass from a mapping, checking every key and value. With `relaxed` (a
    recorded session's config), what the section's `validate()` refuses is appended to it as
    (where, problem) instead of raised: the recording ran with those values, and its replay
    must too."""
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls)}
    kwargs = {}
    for key, value in values.items():
        if key not in fields:
            raise ConfigError(f"{where}: unknown key '{key}'{_suggest(key, fields)}")
        f = fields[key]
        hint = hints[key]
        if dataclasses.is_dataclass(hint):
            if not isinstance(value, Mapping):
                raise ConfigError(f"{where}: {key} must be a table [{where.split('[')[-1].rstrip(']')}.{key}]")
            kwargs[key] = build_section(hint, value, f"{where}.{key}", relaxed)
        else:
            kwargs[key] = _check_value(where, f, hint, value)
    try:
        obj = cls(**kwargs)
    except ValueError as exc:  # cross-field checks every instance must pass
        raise ConfigError(f"{where}: {exc}") from None
    # A section's `validate()`: checks of loaded settings only (files, scenes, --set), not of
    # every value a crossfade or a /param glide passes through (those build sections with
    # dataclasses.replace, which runs __post_init__ alone). Those checks grow from version to
    # version; a session recorded before one was added still replays.
    if hasattr(obj, "validate"):
        try:
            obj.validate()
        except ValueError as exc:
            if relaxed is None:
                raise ConfigError(f"{where}: {exc}") from None
            relaxed.append((where, str(exc)))
    return obj


def merge(base: dict, over: Mapping) -> dict:
    out = dict(base)
    for k, v in over.items():
        if isinstance(v, Mapping) and isinstance(out.get(k), Mapping):
            out[k] = merge(out[k], v)
        else:
            out[k] = v
    return out


def parse_toml(path, data: bytes) -> dict:
    """TOML text as an editor saved it: a UTF-8 byte-order mark (Windows Notepad) is fine;
    any other encoding is one line saying where and what to do."""
    if data.startswith(b"\xef\xbb\xbf"):
        data = data[3:]
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data[:exc.start].count(b"\n") + 1
        raise ConfigError(f"{path}: line {line}: byte 0x{data[exc.start]:02x} is not UTF-8 text "
                          "(save the file as UTF-8)") from None
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}") from None


def read_toml(path: Path, missing: str = "no such config file (check the path, or run without "
                                         "--config for configs/default.toml)") -> dict:
    try:
        with open(path, "rb") as fh:
            data = fh.read()
    except FileNotFoundError:
        raise ConfigError(f"{path}: {missing}") from None
    except IsADirectoryError:
        raise ConfigError(f"{path}: is a folder, not a config file") from None
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read: {exc.strerror}") from None
    return parse_toml(path, data)


def _set_dotted(tree: dict, dotted: str, value: Any, origin: str) -> None:
    parts = [p for p in dotted.strip().split(".") if p]
    if len(parts) < 2:
        raise ConfigError(f"{origin}: '{dotted}' must be SECTION.KEY, e.g. sim.particles")
    node = tree
    for p in parts[:-1]:
        nxt = node.get(p)
        if not isinstance(nxt, dict):
            nxt = {}
            node[p] = nxt
        node = nxt
    node[parts[-1]] = value


def overrides_from_env(env: Mapping[str, str]) -> dict:
    tree: dict = {}
    for name, text in env.items():
        if name.startswith(ENV_PREFIX):
            dotted = name[len(ENV_PREFIX):].lower().replace("__", ".")
            _set_dotted(tree, dotted, parse_value(text), f"environment {name}")
    return tree


def overrides_from_sets(sets: list[str]) -> dict:
    tree: dict = {}
    for item in sets or ():
        if "=" not in item:
            raise ConfigError(f"--set {item}: expected SECTION.KEY=VALUE, e.g. --set sim.particles=80000")
        key, text = item.split("=", 1)
        _set_dotted(tree, key, parse_value(text.strip()), f"--set {item}")
    return tree


def _stray_key(root_cls, hints, sections, key: str) -> str:
    """A `key = value` above the file's first [section] header: say so, and where it belongs
    (every section that has a key of that name, else the nearest key name of any section)."""
    owners = {}         # key name -> the sections that have it, in the schema's order
    for f in dataclasses.fields(root_cls):
        if f.name in sections:
            for k in dataclasses.fields(hints[f.name]):
                owners.setdefault(k.name, []).append(f.name)
    head = f"key '{key}' is outside any section"
    if key in owners:
        where = [f"[{s}]" for s in owners[key]]
        return f"{head}: put it under " + (where[0] if len(where) == 1 else ", ".join(where[:-1]) + f" or {where[-1]}")
    close = difflib.get_close_matches(key, list(owners), n=1, cutoff=0.6)
    if close:
        return f"{head} and no section has such a key (did you mean '{close[0]}' under [{owners[close[0]][0]}]?)"
    return f"{head} and no section has such a key: put each key under its [section] header"


def check_tree(root_cls, tree: Mapping, where: str, relaxed: list[tuple[str, str]] | None = None):
    """Validate a whole (possibly partial) tree against the root schema (`relaxed`: as in
    build_section)."""
    hints = typing.get_type_hints(root_cls)
    # the root's dataclass fields are its sections; the others (base_dir, ...) are not TOML
    sections = {f.name for f in dataclasses.fields(root_cls) if dataclasses.is_dataclass(hints[f.name])}
    kwargs = {}
    for name, values in tree.items():
        if name not in sections and not isinstance(values, Mapping):
            raise ConfigError(f"{where}: {_stray_key(root_cls, hints, sections, name)}")
        if name not in sections:
            raise ConfigError(f"{where}: unknown section [{name}]{_suggest(name, sections)}")
        if not isinstance(values, Mapping):
            raise ConfigError(f"{where}: [{name}] must be a table of keys, not a single value")
        kwargs[name] = build_section(hints[name], values, f"{where} [{name}]", relaxed)
    return kwargs
