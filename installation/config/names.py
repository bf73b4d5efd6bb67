"""The one rule for a scene's name, wherever a name is read: a scene file's stem, `[scene]
name`, `--scene`, schedule entries and the playlist, `/scene` and `/crowd/{id}/vote`.

1 to 64 ASCII letters, digits, `-` and `_`: what an OSC string, a file name on every
system and a TOML string all carry unchanged. A name that passes here for one reader
passes for all, so a scene that can be started can also be switched to, scheduled and
voted for.
"""
from __future__ import annotations

import difflib
import re
import unicodedata
from typing import Iterable

SCENE_NAME_MAX = 64
SCENE_NAME_RE = re.compile(r"[A-Za-z0-9_-]{1,%d}\Z" % SCENE_NAME_MAX)
SCENE_NAME_RULE = f"a scene name is 1-{SCENE_NAME_MAX} ASCII letters, digits, - and _"


def scene_name_problem(name) -> str | None:
    """None for a good scene name, else the rule and what breaks it, in one line."""
    if not isinstance(name, str):
        return f"{SCENE_NAME_RULE} (not a string)"
    if SCENE_NAME_RE.match(name):
        return None
    if not name:
        why = "it is empty"
    elif len(name) > SCENE_NAME_MAX:
        why = f"it has {len(name)} characters"
    else:
        bad = next(c for c in name if not SCENE_NAME_RE.match(c))
        why = "a space is not allowed" if bad == " " else f"{bad!r} is not allowed"
    return f"{SCENE_NAME_RULE} ({why})"


def fixed_scene_name(name: str) -> str:
    """A name that follows the rule, as close to `name` as it can be: accents dropped
    ('nuit-été' → 'nuit-ete'), every run of other characters made one '-' ('late night',
    'night.v2' → 'late-night', 'night-v2')."""
    plain = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode("ascii")
    out = re.sub(r"[^A-Za-z0-9_-]+", "-", plain).strip("-")[:SCENE_NAME_MAX].strip("-")
    return out or "scene"


def unknown_scene(where: str, name: str, known: Iterable[str], folder=None) -> str:
    """The one message for a well-formed name that is no scene, wherever it was named: where
    ("venue.toml [schedule] entries", "--scene"; empty for none), the nearest known name, the
    known ones and the folder they were read from."""
    known = sorted(known)
    close = difflib.get_close_matches(name, known, n=1, cutoff=0.6)
    return ((f"{where}: " if where else "") + f"unknown scene '{name}'"
            + (f" (did you mean '{close[0]}'?)" if close else "")
            + f"; known scenes: {', '.join(known) or 'none'}" + (f" (in {folder})" if folder else ""))
