"""Where a command will write, checked before its work starts: an export, an analysis or a
long run must not spend its hours and then fail on a path it could have refused at once."""
from __future__ import annotations

import os
import tempfile
from pathlib import Path


class OutputPathError(Exception):
    """The message names the flag, the path and the fix, in one line."""


def file_to_write(flag: str, path: str | os.PathLike) -> Path:
    """A file the command will (over)write: not a folder; its folder made if missing, and
    writable."""
    p = Path(path).expanduser()
    if p.is_dir():
        raise OutputPathError(f"{flag} {path}: is a folder; give a file name inside it")
    if p.suffix.lower() == ".toml" and p.exists():
        # a config, scene or alias file: written over with JSON, the next start fails on it
        raise OutputPathError(f"{flag} {path}: is a TOML file (a config, scene or alias file?); "
                              "it is never written over: give the output another name")
    _writable_folder(flag, path, p.parent)
    return p


def folder_to_fill(flag: str, path: str | os.PathLike) -> Path:
    """A folder the command writes files into: made if missing; not a file."""
    p = Path(path).expanduser()
    if p.exists() and not p.is_dir():
        raise OutputPathError(f"{flag} {path}: is a file, not a folder; give a folder's name")
    _writable_folder(flag, path, p)
    return p


def _writable_folder(flag: str, path, folder: Path) -> None:
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except FileExistsError:
        raise OutputPathError(f"{flag} {path}: {folder} is a file, not a folder") from None
    except OSError as exc:
        raise OutputPathError(f"{flag} {path}: cannot make the folder {folder}: {exc.strerror or exc}") from None
    # a file made and removed, not os.access: root "may" write into /proc, and cannot
    try:
        with tempfile.TemporaryFile(dir=folder):
            pass
    except OSError as exc:
        raise OutputPathError(f"{flag} {path}: cannot write into {folder}: {exc.strerror or exc}") from None


def distinct(reads: dict[str, str | os.PathLike | None], writes: dict[str, str | os.PathLike | None]) -> None:
    """No file written is one the command reads or another it writes (`replay s.jsonl --wav
    s.jsonl` would overwrite the session; `--record x --summary x` the recording). Flags
    without a path are skipped."""
    seen: dict[Path, str] = {}
    for kind, paths in (("read", reads), ("write", writes)):
        for flag, path in paths.items():
            if not path:
                continue
            key = Path(path).expanduser().resolve()
            if key in seen and kind == "write":
                raise OutputPathError(f"{flag} {path}: is the same file as {seen[key]}; give it another name")
            seen.setdefault(key, f"{flag} {path}" if flag else str(path))
