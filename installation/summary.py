"""The run summary of the contract: one JSON object, written atomically."""
from __future__ import annotations

import json
import os
from pathlib import Path

REQUIRED = ("frames", "ticks", "wall_s", "fps_mean", "frame_ms_p50", "frame_ms_p99", "particles",
            "participants_peak", "osc_received", "osc_rejected", "audio_underflows",
            "flash_limited_frames", "state_hash", "frame_hash", "scene", "audio_backend",
            "audio_callbacks")


def write_summary(path: str | os.PathLike, summary: dict) -> None:
    missing = [k for k in REQUIRED if k not in summary]
    if missing:  # a programming error: the contract's fields must all be there
        raise KeyError(f"summary lacks {missing}")
    from .outputs import OutputPathError
    path = Path(path)
    tmp = path.with_name(path.name + ".tmp")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp.write_text(json.dumps(summary, indent=2, sort_keys=True) + "\n", encoding="utf-8")
        os.replace(tmp, path)
    except OSError as exc:
        try:
            tmp.unlink(missing_ok=True)     # no stray file beside the one that could not be written
        except OSError:
            pass
        raise OutputPathError(f"--summary {path}: cannot write it: {exc.strerror or exc}") from None
