"""GLSL program sources from `shaders/`: `#include`, `#define` and stage splitting as plain
string work, so it is tested without a GL context.

A program is one file whose stages are guarded by `#if defined VERTEX_SHADER` /
`FRAGMENT_SHADER` (/ `GEOMETRY_SHADER`). For each stage the file mentions, the source becomes:
its `#version` line, `#define <STAGE>`, the caller's defines, then the file with its includes
expanded. `#line` directives keep compiler messages pointing at the right file and line:
source-string number i is `ProgramSource.files[i]`.

- `#include "name"` is looked up next to the including file, then in each registered folder;
  a file is included once per program (later includes of it are skipped).
- A define whose name the source already `#define`s replaces that line's value (so a shader
  can carry a default); any other define is added after the stage define.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping

from . import plan
from .look import MAX_SPECIES

SHADER_DIR = Path(__file__).resolve().parents[2] / "shaders"
STAGES = {"vertex": "VERTEX_SHADER", "geometry": "GEOMETRY_SHADER", "fragment": "FRAGMENT_SHADER"}
MAX_TAPS = 64      # blur taps a GL backend may upload (2 * radius + 1)

_INCLUDE = re.compile(r'^\s*#\s*include\s+(?:"([^"]+)"|<([^>]+)>)\s*(//.*)?$')
_VERSION = re.compile(r"^\s*#\s*version\b")
_DEFINE = re.compile(r"^(\s*#\s*define\s+)([A-Za-z_]\w*)(\s.*)?$")
_NAME = re.compile(r"^[A-Za-z_]\w*$")


class ShaderSourceError(ValueError):
    """A shader file that cannot be assembled; the message is one line naming file and line."""


@dataclass(frozen=True)
class ProgramSource:
    name: str
    stages: Mapping[str, str]      # "vertex" / "geometry" / "fragment" → complete GLSL source
    files: tuple[str, ...]         # #line source-string number → file path

    @property
    def vertex(self) -> str:
        return self.stages["vertex"]

    @property
    def fragment(self) -> str:
        return self.stages["fragment"]

    @property
    def geometry(self) -> str | None:
        return self.stages.get("geometry")


def look_defines() -> dict[str, str]:
    """The constants of the look, from the Python side that the CPU renderer uses too."""
    return {
        "LM_MAX_SPECIES": str(MAX_SPECIES),
        "LM_MAX_TAPS": str(MAX_TAPS),
        "LM_ENCODE_A": _glsl_float(plan.ENCODE_A),
        "LM_ENCODE_B": _glsl_float(plan.ENCODE_B),
        "LM_ENCODE_C": _glsl_float(plan.ENCODE_C),
        "LM_ENCODE_KNEE": _glsl_float(plan.ENCODE_KNEE),
        "LM_ENCODE_TOE": _glsl_float(plan.ENCODE_TOE),
        "LM_FLUSH": _glsl_float(1e-6),
    }


def _glsl_float(v: float) -> str:
    text = repr(float(v))
    return text if any(c in text for c in ".eE") else text + ".0"


def load_program(name: str, defines: Mapping[str, object] | None = None,
                 folders: tuple[Path, ...] = (SHADER_DIR,)) -> ProgramSource:
    """The stages of program `name` (a path relative to one of `folders`, e.g. "post.glsl")."""
    path = _find(name, None, folders, where=f"program {name!r}")
    return assemble(path, defines, folders)


def assemble(path: Path, defines: Mapping[str, object] | None = None,
             folders: tuple[Path, ...] = (SHADER_DIR,)) -> ProgramSource:
    files: list[str] = []
    lines = _expand(Path(path), folders, files, stack=(), seen=set())
    version_at = next((i for i, line in enumerate(lines) if _VERSION.match(line)), None)
    if version_at is None:
        raise ShaderSourceError(f"{path}: no #version line (it must come first in the file)")
    version = lines[version_at].strip()
    for line in lines[:version_at]:
        if line.strip() and not line.lstrip().startswith("//"):
            raise ShaderSourceError(f"{path}: #version must come before anything else")
    lines[version_at] = "// (#version moved to the top)"

    extra = _defines(defines or {}, path)
    for i, line in enumerate(lines):
        m = _DEFINE.match(line)
        if m and m.group(2) in extra:
            value = extra.pop(m.group(2))
            lines[i] = f"{m.group(1)}{m.group(2)}" + (f" {value}" if value else "")

    body = "\n".join(lines)
    stages = {}
    for stage, macro in STAGES.items():
        if not re.search(rf"\bdefined\s*\(?\s*{macro}\b", body):
            continue
        head = [version, f"#define {macro}"]
        head += [f"#define {k}" + (f" {v}" if v else "") for k, v in extra.items()]
        stages[stage] = "\n".join(head) + "\n#line 1 0\n" + body + "\n"
    if "vertex" not in stages or "fragment" not in stages:
        raise ShaderSourceError(f"{path}: a program needs both '#if defined VERTEX_SHADER' and "
                                f"'FRAGMENT_SHADER' sections")
    return ProgramSource(Path(path).stem, stages, tuple(files))


def _defines(defines: Mapping[str, object], path: Path) -> dict[str, str]:
    out = {}
    for k, v in defines.items():
        if not _NAME.match(str(k)):
            raise ShaderSourceError(f"{path}: define name {k!r} is not a GLSL identifier")
        text = "" if v is None else (_glsl_float(v) if isinstance(v, float) else str(v))
        if "\n" in text or "\r" in text:
            raise ShaderSourceError(f"{path}: define {k} has a line break in its value")
        out[str(k)] = text
    return out


def _find(name: str, here: Path | None, folders: tuple[Path, ...], where: str) -> Path:
    candidates = ([here / name] if here is not None else []) + [Path(f) / name for f in folders]
    for c in candidates:
        if c.is_file():
            return c.resolve()
    looked = ", ".join(str(c.parent) for c in candidates)
    raise ShaderSourceError(f"{where}: {name!r} not found (looked in {looked})")


def _expand(path: Path, folders, files: list[str], stack: tuple[Path, ...], seen: set) -> list[str]:
    path = path.resolve()
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ShaderSourceError(f"{path}: cannot read ({exc.__class__.__name__}: {exc})") from None
    number = len(files)
    files.append(str(path))
    seen.add(path)
    out: list[str] = []
    for lineno, line in enumerate(text.splitlines(), start=1):
        m = _INCLUDE.match(line)
        if not m:
            out.append(line)
            continue
        name = m.group(1) or m.group(2)
        target = _find(name, path.parent, folders, where=f"{path}:{lineno}: #include")
        if target in stack or target == path:
            chain = " → ".join(p.name for p in (*stack, path, target))
            raise ShaderSourceError(f"{path}:{lineno}: #include cycle {chain}")
        if target in seen:
            out.append(f"// #include {name!r}: already included")
            continue
        inner = _expand(target, folders, files, (*stack, path), seen)
        out.append(f"#line 1 {files.index(str(target))}")
        out.extend(inner)
        out.append(f"#line {lineno + 1} {number}")
    return out
