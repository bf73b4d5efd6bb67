"""Writes `configs/default.toml` from the schema, so every key is listed with its doc.

    python -m installation.config.default_toml > configs/default.toml

A test checks the shipped file lists exactly the schema's keys.
"""
from __future__ import annotations

import dataclasses
import json

from .fields import describe
from .model import SECTION_NAMES, Config


def _toml_value(v) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, float):
        return repr(round(v, 6))
    if isinstance(v, (int,)):
        return str(v)
    if isinstance(v, str):
        return json.dumps(v)
    if isinstance(v, tuple):
        return "[" + ", ".join(_toml_value(x) for x in v) + "]"
    raise TypeError(v)


def render() -> str:
    lines = ["# Living Mosaic: the default configuration. Every key, with its unit and range.",
             "# Override order: this file, then a scene (configs/scenes/NAME.toml), then the",
             "# environment (LIVING_MOSAIC__SECTION__KEY=value), then --set section.key=value.",
             "# Check a config without running it: python run_installation.py check-config PATH", ""]
    cfg = Config()
    for section in dataclasses.fields(Config):
        if section.name not in SECTION_NAMES:     # base_dir, scenes: not TOML keys
            continue
        obj = getattr(cfg, section.name)
        doc = (type(obj).__doc__ or "").strip().splitlines()[0] if type(obj).__doc__ and "(" not in (type(obj).__doc__ or "")[:30] else ""
        lines.append(f"[{section.name}]" + (f"  # {doc}" if doc else ""))
        for f in dataclasses.fields(obj):
            allowed = describe(f)
            lines.append(f"# {f.metadata.get('doc', '')}" + (f" ({allowed})" if allowed else ""))
            lines.append(f"{f.name} = {_toml_value(getattr(obj, f.name))}")
        lines.append("")
    return "\n".join(lines)


if __name__ == "__main__":
    print(render(), end="")
