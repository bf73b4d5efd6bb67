"""What the main loop hands the symphony once per tick: one flat float32 array.

The frame loop fills an `AudioParams` (preallocated once) and publishes it; the audio side
copies it whole through a mailbox and glides toward it. Hits are events, not states: each
carries a running number, so a hit is played exactly once however publishes and audio blocks
interleave.

Layout (offsets are the constants below):
    header   [VOLUME, QUIET, VALENCE, AROUSAL, AGREEMENT, ENERGY, COUNT,
              DENSITY, SPEED, CLUSTERING, HIT_SERIAL, 5 spare]
    hits     HIT_SLOTS x (strength 0..1, pan -1..1), a ring indexed by serial % HIT_SLOTS
    voices   MAX_VOICES x (presence 0..1 (0 = silent), x 0..1, y 0..1, valence -1..1, arousal 0..1,
              energy 0..1, species 0..15, pan -1..1)
"""
from __future__ import annotations

import numpy as np
from numba import njit, types
from numba.extending import intrinsic

MAX_VOICES = 64
HIT_SLOTS = 16
HIT_SERIAL_MOD = 65536  # exact in float32; the reader takes differences modulo this

VOLUME, QUIET, VALENCE, AROUSAL, AGREEMENT, ENERGY, COUNT = 0, 1, 2, 3, 4, 5, 6
DENSITY, SPEED, CLUSTERING, HIT_SERIAL = 7, 8, 9, 10
HEADER = 16
HITS = HEADER
HIT_FIELDS = 2
VOICES = HITS + HIT_SLOTS * HIT_FIELDS
V_ACTIVE, V_X, V_Y, V_VALENCE, V_AROUSAL, V_ENERGY, V_SPECIES, V_PAN = range(8)
VOICE_FIELDS = 8
SIZE = VOICES + MAX_VOICES * VOICE_FIELDS


def _bounds() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    lo = np.zeros(SIZE, np.float32)
    hi = np.ones(SIZE, np.float32)
    default = np.zeros(SIZE, np.float32)
    lo[VALENCE] = -1.0
    hi[COUNT] = 1e6
    hi[HIT_SERIAL] = HIT_SERIAL_MOD - 1
    default[VOLUME] = 0.6
    for s in range(HIT_SLOTS):
        lo[HITS + s * HIT_FIELDS + 1] = -1.0
    for v in range(MAX_VOICES):
        b = VOICES + v * VOICE_FIELDS
        lo[b + V_VALENCE] = -1.0
        hi[b + V_SPECIES] = 15.0
        lo[b + V_PAN] = -1.0
    return lo, hi, default


@njit(nogil=True, cache=True)
def sanitize_into(src, dst, lo, hi, default) -> int:
    """Copy src into dst clamped to [lo, hi]; a non-finite value becomes the default. Returns
    how many values were not finite."""
    bad = 0
    for i in range(src.shape[0]):
        x = src[i]
        if not np.isfinite(x):
            bad += 1
            x = default[i]
        dst[i] = min(max(x, lo[i]), hi[i])
    return bad


class AudioParams:
    """The per-tick audio targets. Setters write raw numbers; `publish` checks them."""

    def __init__(self, volume: float = 0.6):
        self.data = np.zeros(SIZE, np.float32)
        self.lo, self.hi, self.default = _bounds()
        self.default[VOLUME] = volume
        self.data[VOLUME] = volume
        self._hit_serial = 0

    # -- views for callers that fill many voices from arrays at once
    @property
    def voices(self) -> np.ndarray:
        """(MAX_VOICES, VOICE_FIELDS) view: columns V_ACTIVE .. V_PAN."""
        return self.data[VOICES:].reshape(MAX_VOICES, VOICE_FIELDS)

    @property
    def volume(self) -> float:
        return float(self.data[VOLUME])

    @volume.setter
    def volume(self, value: float) -> None:
        self.data[VOLUME] = value

    @property
    def quiet(self) -> float:
        return float(self.data[QUIET])

    @quiet.setter
    def quiet(self, value: float) -> None:
        self.data[QUIET] = value

    max_voices = MAX_VOICES

    def set_voice(self, i: int, active: bool | float, x: float, y: float, valence: float, arousal: float,
                  energy: float, species: float, pan: float) -> None:
        """Voice i (a participant's stable slot, 0..63): touch x/y 0..1, feeling, tile pan -1..1.

        `active` is presence: True/1 sounds, False/0 releases, and a level in between (a
        leaving participant's fade) scales the voice's loudness."""
        b = VOICES + int(i) * VOICE_FIELDS
        d = self.data
        d[b + V_ACTIVE] = float(active)
        d[b + V_X] = x
        d[b + V_Y] = y
        d[b + V_VALENCE] = valence
        d[b + V_AROUSAL] = arousal
        d[b + V_ENERGY] = energy
        d[b + V_SPECIES] = species
        d[b + V_PAN] = pan

    def clear_voices(self) -> None:
        """Mark every voice silent (they release smoothly); call before this tick's set_voice."""
        self.data[VOICES + V_ACTIVE::VOICE_FIELDS] = 0.0

    def clear_voices_from(self, n: int) -> None:
        """Mark voices n.. silent (the slots nobody filled this tick)."""
        n = max(0, min(int(n), MAX_VOICES))
        self.data[VOICES + n * VOICE_FIELDS + V_ACTIVE::VOICE_FIELDS] = 0.0

    def set_mood(self, valence: float, arousal: float, agreement: float, energy: float, count: float) -> None:
        d = self.data
        d[VALENCE], d[AROUSAL], d[AGREEMENT], d[ENERGY], d[COUNT] = valence, arousal, agreement, energy, count

    def set_texture(self, density: float, speed: float, clustering: float) -> None:
        """The swarm as heard: density, mean speed, clustering, each 0..1."""
        d = self.data
        d[DENSITY], d[SPEED], d[CLUSTERING] = density, speed, clustering

    def hit(self, strength: float, pan: float = 0.0) -> None:
        """A pulse this tick: played once, at the audio block after the next publish."""
        self._hit_serial = (self._hit_serial + 1) % HIT_SERIAL_MOD
        b = HITS + (self._hit_serial % HIT_SLOTS) * HIT_FIELDS
        self.data[b] = strength
        self.data[b + 1] = pan
        self.data[HIT_SERIAL] = self._hit_serial


class Mailbox:
    """Single writer (main loop), single reader (audio callback), no lock, no allocation.

    A ring of slots with a sequence number each (odd while being written): a seqlock. The
    reader copies the newest slot and keeps its copy only if the slot's number did not change
    meanwhile; otherwise it keeps last tick's targets, which is harmless. Everything lives in
    numpy arrays and both sides are nogil kernels with memory fences, so the reader can be
    native code that never takes the GIL (the real-time stream's callback, native_callback.py)
    while a writer on another core publishes.
    """

    SLOTS = 4

    def __init__(self, volume: float = 0.6):
        proto = AudioParams(volume)
        self._lo, self._hi, self._default = proto.lo, proto.hi, proto.default
        self.slots = np.empty((self.SLOTS, SIZE), np.float32)
        self.slots[:] = proto.data
        self.seq = np.zeros(self.SLOTS, np.int64)
        self.latest = np.zeros(1, np.int64)
        self._next = 1
        self.bad_values = 0

    def publish(self, params: AudioParams) -> None:
        j = self._next
        self.bad_values += publish_sanitized(params.data, self.slots, self.seq, self.latest, j,
                                             self._lo, self._hi, self._default)
        self._next = (j + 1) % self.SLOTS

    def read_into(self, dst: np.ndarray) -> bool:
        """Copy the newest published targets into dst (a staging buffer); False when the copy
        may be torn, and then the caller must not use dst."""
        return seq_read(self.slots, self.seq, self.latest, dst)

    def initial(self) -> np.ndarray:
        return self.slots[self.latest[0]].copy()


class SeqBox:
    """A seqlock mailbox for any float array (the stream's engine config): the same protocol
    as Mailbox, without the clamping. Single writer; the reader is `seq_read`."""

    SLOTS = 2

    def __init__(self, initial: np.ndarray):
        self.slots = np.empty((self.SLOTS,) + initial.shape, initial.dtype)
        self.slots[:] = initial
        self.seq = np.zeros(self.SLOTS, np.int64)
        self.latest = np.zeros(1, np.int64)
        self._next = 1

    def publish(self, values: np.ndarray) -> None:
        j = self._next
        publish_copy(values, self.slots, self.seq, self.latest, j)
        self._next = (j + 1) % self.SLOTS


@intrinsic
def fence(typingctx):
    """A full memory barrier (and a compiler barrier): the seqlock's sequence numbers must be
    ordered against the payload on every CPU, ARM included, and LLVM must not move the
    reader's second load of the number across the copy."""
    def codegen(context, builder, sig, args):
        builder.fence("seq_cst")
        return context.get_dummy_value()
    return types.void(), codegen


@njit(nogil=True, cache=True)
def publish_sanitized(src, slots, seq, latest, j, lo, hi, default) -> int:
    """Write slot j (clamped, non-finite values replaced) under its sequence number and make
    it the newest. Returns how many values were not finite."""
    seq[j] += 1
    fence()
    bad = sanitize_into(src, slots[j], lo, hi, default)
    fence()
    seq[j] += 1
    fence()
    latest[0] = j
    return bad


@njit(nogil=True, cache=True)
def publish_copy(src, slots, seq, latest, j):
    seq[j] += 1
    fence()
    for i in range(src.shape[0]):
        slots[j, i] = src[i]
    fence()
    seq[j] += 1
    fence()
    latest[0] = j


@njit(nogil=True, cache=True)
def seq_read(slots, seq, latest, dst) -> bool:
    """Copy the newest slot into dst; False when the writer touched it meanwhile (dst is then
    garbage and must not be used)."""
    j = latest[0]
    s = seq[j]
    if s & 1:
        return False
    fence()
    for i in range(dst.shape[0]):       # a plain loop: no temporary, whatever numba decides
        dst[i] = slots[j, i]
    fence()
    return seq[j] == s
