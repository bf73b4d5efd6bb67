"""The harmony: modes that follow the mood, a chord per bar, touch height quantised to a note.

Pure functions of their arguments, compiled for the audio kernel; `reference.py` holds their
NumPy twins and the tests compare the two.
"""
from __future__ import annotations

import numpy as np
from numba import njit

# Church modes ordered from darkest to brightest: a sad crowd plays Phrygian, a joyful one
# Lydian. Locrian is left out: its diminished tonic never comes to rest.
MODE_NAMES = ("phrygian", "aeolian", "dorian", "mixolydian", "ionian", "lydian")
MODES = np.array([
    [0, 1, 3, 5, 7, 8, 10],
    [0, 2, 3, 5, 7, 8, 10],
    [0, 2, 3, 5, 7, 9, 10],
    [0, 2, 4, 5, 7, 9, 10],
    [0, 2, 4, 5, 7, 9, 11],
    [0, 2, 4, 6, 7, 9, 11],
], dtype=np.int64)
N_MODES = 6
# A degree stays put until the touch moves this far past the half-way point to the next
# one, so a finger resting on a boundary does not warble between two notes.
HYSTERESIS = 0.15


@njit(nogil=True, cache=True)
def mode_index(valence: float) -> int:
    v = min(max(valence, -1.0), 1.0)
    return int(np.floor((v + 1.0) * 0.5 * (N_MODES - 1) + 0.5))


@njit(nogil=True, cache=True)
def is_chord_tone(degree: int, chord_root: int) -> bool:
    r = (degree - chord_root) % 7
    return r == 0 or r == 2 or r == 4


@njit(nogil=True, cache=True)
def quantise_degree(position: float, steps: int, chord_root: int, consonant: bool, current: int) -> int:
    """Scale degree (0..steps+2) for a continuous position 0..steps.

    With `consonant` only the chord's tones (root, third, fifth) are allowed. `current` is
    the degree now sounding (-1 for none): it is kept while the position stays near it.
    """
    p = min(max(position, 0.0), float(steps))
    if current >= 0 and abs(p - current) < 0.5 + HYSTERESIS and (not consonant or is_chord_tone(current, chord_root)):
        return current
    best = -1
    best_d = 1e9
    base = int(np.floor(p + 0.5))
    for k in range(-3, 4):
        d = base + k
        if d < 0 or d > steps + 2:
            continue
        if consonant and not is_chord_tone(d, chord_root):
            continue
        dist = abs(d - p)
        if dist < best_d - 1e-9:
            best_d = dist
            best = d
    return best


@njit(nogil=True, cache=True)
def degree_semitones(degree: int, mode: int) -> int:
    return 12 * (degree // 7) + MODES[mode, degree % 7]


@njit(nogil=True, cache=True)
def hash01(n: int) -> float:
    """A fixed pseudo-random number in [0, 1) for an integer: a participant's rhythm motif."""
    x = (n * 0x9E3779B1 + 0x7F4A7C15) & 0xFFFFFFFF
    x ^= x >> 16
    x = (x * 0x85EBCA6B) & 0xFFFFFFFF
    x ^= x >> 13
    x = (x * 0xC2B2AE35) & 0xFFFFFFFF
    x ^= x >> 16
    return x / 4294967296.0
