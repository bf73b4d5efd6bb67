"""Keep numba's on-disk cache of the audio kernels honest.

numba keys a cached kernel on its own source file only: a kernel in engine.py that inlines
one from master.py is NOT recompiled when master.py changes, and silently runs the old
code. `ensure_fresh_cache()` hashes every kernel module of this package together and, when
the hash differs from the one recorded beside the cache, deletes this package's cache
files, so the next call compiles afresh. Call it before the first kernel call (the Engine
does; so do the tests).
"""
from __future__ import annotations

import hashlib
from pathlib import Path

KERNEL_MODULES = ("engine", "loudness", "master", "music", "params", "synth")
_checked = False


def _cache_dir() -> Path | None:
    from .engine import render_kernel
    try:
        return Path(render_kernel._cache.cache_path)
    except AttributeError:      # pragma: no cover - numba moved its internals
        return None


def sources_hash() -> str:
    here = Path(__file__).resolve().parent
    h = hashlib.sha256()
    for name in KERNEL_MODULES:
        h.update((here / f"{name}.py").read_bytes())
    return h.hexdigest()


def refresh(stamp_name: str, digest: str, modules) -> bool:
    """Drop the cache files of `modules` unless the stamp `stamp_name` beside the cache
    already records `digest`; record it. True when stale files were removed."""
    folder = _cache_dir()
    if folder is None or not folder.is_dir():
        return False
    stamp = folder / stamp_name
    try:
        if stamp.read_text() == digest:
            return False
    except OSError:
        pass
    removed = False
    for name in modules:
        for f in list(folder.glob(f"{name}.*.nbi")) + list(folder.glob(f"{name}.*.nbc")):
            try:
                f.unlink()
                removed = True
            except OSError:
                pass
    try:
        stamp.write_text(digest)
    except OSError:
        pass
    return removed


def ensure_fresh_cache() -> bool:
    """True when stale cache files were removed. Cheap after the first call."""
    global _checked
    if _checked:
        return False
    _checked = True
    return refresh("living-mosaic-audio.stamp", sources_hash(), KERNEL_MODULES)
