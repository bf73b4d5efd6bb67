"""The errors of the session area: each message is one line a user can act on (CLI exit 2)."""
from __future__ import annotations


class SessionError(Exception):
    """An unreadable or malformed session/oscdump file, or a recording that cannot start.

    The message names the file (and the line, when one line is at fault)."""


class ExportError(Exception):
    """The video/audio export failed (ffmpeg missing or exited, bad frame shape)."""
