"""What a headless replay saw, tick by tick: the input of `analyze`.

The replay loop calls `Timeline.append(...)` once per tick. Columns are NumPy arrays that grow
by doubling (give `capacity` = the session's tick count and they never grow); `columns()`
returns views of the filled part. Touch positions are not stored here: analysis takes them
from the session's events, which hold every touch exactly.
"""
from __future__ import annotations

import os

import numpy as np

FLOAT_COLUMNS = ("valence", "arousal", "agreement", "energy", "attract")
INT_COLUMNS = ("participants", "osc_count")
BOOL_COLUMNS = ("surge", "limiter_active", "flash_limited")
COLUMNS = ("tick",) + FLOAT_COLUMNS + INT_COLUMNS + BOOL_COLUMNS
_DTYPES = {"tick": np.int64, **{c: np.float32 for c in FLOAT_COLUMNS},
           **{c: np.int32 for c in INT_COLUMNS}, **{c: np.bool_ for c in BOOL_COLUMNS}}


class Timeline:
    def __init__(self, tick_hz: int, capacity: int = 4096):
        if tick_hz <= 0:
            raise ValueError(f"tick_hz must be above 0, got {tick_hz}")
        self.tick_hz = int(tick_hz)
        self._n = 0
        self._cols = {c: np.zeros(max(16, int(capacity)), dtype=_DTYPES[c]) for c in COLUMNS}

    def __len__(self) -> int:
        return self._n

    def append(self, tick: int, valence: float, arousal: float, agreement: float, energy: float,
               participants: int, osc_count: int, surge: bool, limiter_active: bool,
               flash_limited: bool, attract: float = 0.0) -> None:
        """One tick. `surge`: the crowd's own surge detector fired (not an operator /pulse);
        `attract`: the attract mode's virtual crowd's share of what was shown (0..1)."""
        n = self._n
        cols = self._cols
        if n == cols["tick"].shape[0]:
            self._grow()
            cols = self._cols
        cols["tick"][n] = tick
        cols["valence"][n] = valence
        cols["arousal"][n] = arousal
        cols["agreement"][n] = agreement
        cols["energy"][n] = energy
        cols["participants"][n] = participants
        cols["osc_count"][n] = osc_count
        cols["surge"][n] = surge
        cols["limiter_active"][n] = limiter_active
        cols["flash_limited"][n] = flash_limited
        cols["attract"][n] = attract
        self._n = n + 1

    def set_column(self, name: str, values) -> None:
        """Fill a column of the appended ticks afterwards (what was noted off the replay loop,
        such as the flash guard's decisions on frames drawn behind it)."""
        values = np.asarray(values, dtype=_DTYPES[name])
        if values.shape != (self._n,):
            raise ValueError(f"timeline: {name} needs {self._n} values, got {values.shape}")
        self._cols[name][: self._n] = values

    def _grow(self) -> None:
        for c, a in self._cols.items():
            bigger = np.zeros(2 * a.shape[0], dtype=a.dtype)
            bigger[: a.shape[0]] = a
            self._cols[c] = bigger

    def column(self, name: str) -> np.ndarray:
        return self._cols[name][: self._n]

    def columns(self) -> dict[str, np.ndarray]:
        return {c: a[: self._n] for c, a in self._cols.items()}

    def seconds(self) -> np.ndarray:
        return self.column("tick") / float(self.tick_hz)

    def save(self, path: str | os.PathLike) -> None:
        """An .npz of the filled columns and tick_hz (an analysis can run in another process)."""
        np.savez_compressed(path, tick_hz=np.int64(self.tick_hz), **self.columns())

    @classmethod
    def load(cls, path: str | os.PathLike) -> "Timeline":
        with np.load(path) as z:
            tl = cls(int(z["tick_hz"]), capacity=len(z["tick"]))
            for c in COLUMNS:
                tl._cols[c][: len(z[c])] = z[c]
            tl._n = len(z["tick"])
        return tl
