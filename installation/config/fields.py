"""The one way a setting is declared: a default, a doc line, a unit and the allowed values.

Every section of the configuration is a frozen dataclass whose fields are made with
`setting(...)`. The loader reads the metadata to check values, and `configs/default.toml`
is written from the same metadata, so the documentation cannot drift from the schema.

Checks across fields raise ValueError with a one-line reason (the loader adds the file and
section): in `__post_init__` when every instance must hold them, or in a `validate()` method
when only loaded settings must (files, scenes, --set, session headers), not the blends a
crossfade or a /param glide passes through on the way between two loaded ones.
"""
from __future__ import annotations

import dataclasses
from typing import Any


def setting(default: Any, doc: str, *, unit: str = "", lo: float | None = None,
            hi: float | None = None, choices: tuple | None = None):
    meta = {"doc": doc, "unit": unit, "lo": lo, "hi": hi, "choices": choices}
    if isinstance(default, (list, dict)):
        raise TypeError("settings are immutable: use a tuple, not a list or dict")
    return dataclasses.field(default=default, metadata=meta)


def describe(f: dataclasses.Field) -> str:
    """One-line description of a field's allowed values, for docs and error messages."""
    m = f.metadata
    parts = []

    def num(x):
        return str(int(x)) if float(x).is_integer() and abs(x) < 1e15 else f"{x:g}"

    if m.get("choices"):
        parts.append("one of " + ", ".join(repr(c) for c in m["choices"]))
    lo, hi = m.get("lo"), m.get("hi")
    if lo is not None and hi is not None:
        parts.append(f"{num(lo)}..{num(hi)}")
    elif lo is not None:
        parts.append(f">= {num(lo)}")
    elif hi is not None:
        parts.append(f"<= {num(hi)}")
    if m.get("unit"):
        parts.append(m["unit"])
    return ", ".join(parts)
