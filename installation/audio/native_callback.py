"""The real-time stream's callback as native code: a numba cfunc that PortAudio calls directly.

A Python callback must take the GIL for every block, and the main loop (swarm, renderer,
input handling) holds it most of the time on a small machine: the audio thread then waits
for the interpreter's switch interval, about one 256-frame block, and the device underflows.
This callback never touches the interpreter. PortAudio hands it `userData`, the address of
an int64 table (`Binding.table`) that holds the address and shape of every array it works
on; it rebuilds them with `numba.carray`, reads the parameter mailbox and the engine config
through their seqlocks (params.py), calls the engine's own `render_kernel` and times itself
with the C library's monotonic clock, called through a function pointer.

Nothing may leave it as an exception (numba's cfunc wrapper would take the GIL to print it):
the rendering runs inside a try/except (numba catches the exceptions of the kernels it
calls, ZeroDivisionError included, without the GIL), and a failed block is silence, counted
in `errors`; what runs outside the try (timing, counting) cannot raise. The table and every array it points to are owned by a
`Binding`, which must outlive the stream.
"""
from __future__ import annotations

import ctypes
import hashlib
import sys
import time
from pathlib import Path

import numpy as np
from llvmlite import ir
from numba import carray, cfunc, njit, types
from numba.core import cgutils
from numba.extending import intrinsic

from . import params as P
from .engine import C_CALLBACKS, Engine, render_kernel
from .params import SeqBox, seq_read

PA_OUTPUT_UNDERFLOW = 0x4        # paOutputUnderflow, PortAudio's ABI
PA_CONTINUE = 0
TIMES = 2048                     # callback durations kept for the load figures

# header of the table
H_CHANNELS, H_CLOCK_KIND, H_CLOCK_FN, H_CLOCK_ID, H_CLOCK_HZ = range(5)
HEADER = 8
CLOCK_NONE, CLOCK_POSIX, CLOCK_QPC = 0, 1, 2
# counters the callback keeps beside the engine's
N_ERRORS, N_TIMED = 0, 1
N_SIZE = 4
DESC = 4                         # an array's entry: address, up to three dimensions

# The arrays, in table order: (name, dtype, ndim). The engine's three state tuples are
# checked against SYNTH_SPEC, MASTER_SPEC and METER_SPEC when a binding is made, so a change
# of their layout in engine.py fails loudly when the stream opens, never inside the callback.
SYNTH_SPEC = (("vs", "f8", 2), ("gs", "f8", 1), ("drone", "f8", 2), ("grains", "f8", 2), ("drums", "f8", 2),
              ("rng", "i8", 1), ("bus_l", "f8", 1), ("bus_r", "f8", 1), ("power", "f8", 1),
              ("trig_off", "i8", 1), ("trig_step", "i8", 1))
MASTER_SPEC = (("ms", "f8", 1), ("kcoef", "f8", 2), ("kstate_pre", "f8", 3), ("ring_rider", "f8", 1),
               ("acc_rider", "f8", 1), ("phases", "f8", 2), ("hist_l", "f8", 1), ("hist_r", "f8", 1),
               ("qv", "f8", 1), ("qi", "i8", 1), ("box", "f8", 1), ("delay_l", "f8", 1), ("delay_r", "f8", 1))
METER_SPEC = (("kstate_out", "f8", 3), ("ring_out", "f8", 1), ("acc_out", "f8", 1), ("mhist_l", "f8", 1),
              ("mhist_r", "f8", 1), ("mstate", "f8", 1))
OWN_SPEC = (("pslots", "f4", 2), ("pseq", "i8", 1), ("platest", "i8", 1), ("staging", "f4", 1), ("target", "f4", 1),
            ("cslots", "f8", 2), ("cseq", "i8", 1), ("clatest", "i8", 1), ("cstaging", "f8", 1), ("cfg", "f8", 1),
            ("table", "f8", 1), ("counters", "i8", 1), ("meters", "f8", 1), ("scratch", "f4", 2),
            ("native", "i8", 1), ("times", "f8", 1), ("frames", "f8", 1), ("clockbuf", "i8", 1))
SPEC = OWN_SPEC + SYNTH_SPEC + MASTER_SPEC + METER_SPEC
A = {name: HEADER + DESC * k for k, (name, _, _) in enumerate(SPEC)}
TABLE_SIZE = HEADER + DESC * len(SPEC)
# Entry offsets as globals the kernels read. numpy scalars, not ints: numba types a global
# int as a literal and would compile every helper below once per offset (seconds of cold
# compile); an int64 is one signature.
(A_PSLOTS, A_PSEQ, A_PLATEST, A_STAGING, A_TARGET, A_CSLOTS, A_CSEQ, A_CLATEST, A_CSTAGING, A_CFG,
 A_TABLE, A_COUNTERS, A_METERS, A_SCRATCH, A_NATIVE, A_TIMES, A_FRAMES, A_CLOCKBUF) = (np.int64(A[n]) for n, _, _ in OWN_SPEC)
A_SYNTH = np.int64(A[SYNTH_SPEC[0][0]])
A_MASTER = np.int64(A[MASTER_SPEC[0][0]])
A_METER = np.int64(A[METER_SPEC[0][0]])


# -- pointers and the clock, without the interpreter
@intrinsic
def _ptr(typingctx, addr):
    def codegen(context, builder, sig, args):
        return builder.inttoptr(args[0], cgutils.voidptr_t)
    return types.voidptr(types.int64), codegen


@intrinsic
def _call_posix_clock(typingctx, fn, clock_id, buf):
    """int clock_gettime(clockid_t, struct timespec *) at address fn."""
    def codegen(context, builder, sig, args):
        fnty = ir.FunctionType(ir.IntType(32), [ir.IntType(32), cgutils.voidptr_t])
        f = builder.inttoptr(args[0], fnty.as_pointer())
        return builder.call(f, [builder.trunc(args[1], ir.IntType(32)), args[2]])
    return types.int32(types.int64, types.int64, types.voidptr), codegen


@intrinsic
def _call_qpc(typingctx, fn, buf):
    """BOOL QueryPerformanceCounter(LARGE_INTEGER *) at address fn (Windows)."""
    def codegen(context, builder, sig, args):
        fnty = ir.FunctionType(ir.IntType(32), [cgutils.voidptr_t])
        f = builder.inttoptr(args[0], fnty.as_pointer())
        return builder.call(f, [args[1]])
    return types.int32(types.int64, types.voidptr), codegen


@njit(nogil=True, cache=True)
def _now(tab, buf):
    """Seconds on a monotonic clock, or 0.0 when there is none."""
    kind = tab[H_CLOCK_KIND]
    if tab[H_CLOCK_HZ] <= 0:
        return 0.0
    if kind == CLOCK_POSIX:
        _call_posix_clock(tab[H_CLOCK_FN], tab[H_CLOCK_ID], _ptr(tab[A_CLOCKBUF]))
        return buf[0] + buf[1] * 1e-9
    if kind == CLOCK_QPC:
        _call_qpc(tab[H_CLOCK_FN], _ptr(tab[A_CLOCKBUF]))
        return buf[0] / tab[H_CLOCK_HZ]
    return 0.0


# -- arrays back from the table
@njit(nogil=True, cache=True)
def _f8_1(tab, k):
    return carray(_ptr(tab[k]), (tab[k + 1],), np.float64)


@njit(nogil=True, cache=True)
def _f8_2(tab, k):
    return carray(_ptr(tab[k]), (tab[k + 1], tab[k + 2]), np.float64)


@njit(nogil=True, cache=True)
def _f8_3(tab, k):
    return carray(_ptr(tab[k]), (tab[k + 1], tab[k + 2], tab[k + 3]), np.float64)


@njit(nogil=True, cache=True)
def _i8_1(tab, k):
    return carray(_ptr(tab[k]), (tab[k + 1],), np.int64)


@njit(nogil=True, cache=True)
def _f4_1(tab, k):
    return carray(_ptr(tab[k]), (tab[k + 1],), np.float32)


@njit(nogil=True, cache=True)
def _f4_2(tab, k):
    return carray(_ptr(tab[k]), (tab[k + 1], tab[k + 2]), np.float32)


@njit(nogil=True, cache=True)
def _synth(tab):
    b = A_SYNTH
    return (_f8_2(tab, b), _f8_1(tab, b + 4), _f8_2(tab, b + 8), _f8_2(tab, b + 12), _f8_2(tab, b + 16),
            _i8_1(tab, b + 20), _f8_1(tab, b + 24), _f8_1(tab, b + 28), _f8_1(tab, b + 32),
            _i8_1(tab, b + 36), _i8_1(tab, b + 40))


@njit(nogil=True, cache=True)
def _master(tab):
    b = A_MASTER
    return (_f8_1(tab, b), _f8_2(tab, b + 4), _f8_3(tab, b + 8), _f8_1(tab, b + 12), _f8_1(tab, b + 16),
            _f8_2(tab, b + 20), _f8_1(tab, b + 24), _f8_1(tab, b + 28), _f8_1(tab, b + 32),
            _i8_1(tab, b + 36), _f8_1(tab, b + 40), _f8_1(tab, b + 44), _f8_1(tab, b + 48))


@njit(nogil=True, cache=True)
def _meter(tab):
    b = A_METER
    return (_f8_3(tab, b), _f8_1(tab, b + 4), _f8_1(tab, b + 8), _f8_1(tab, b + 12), _f8_1(tab, b + 16),
            _f8_1(tab, b + 20))


@njit(nogil=True, cache=True)
def _render(tab, out, frames, status, channels):
    """Mailbox and config in, one block out (frames x channels interleaved float32)."""
    staging = _f4_1(tab, A_STAGING)
    target = _f4_1(tab, A_TARGET)
    if seq_read(_f4_2(tab, A_PSLOTS), _i8_1(tab, A_PSEQ), _i8_1(tab, A_PLATEST), staging):
        for i in range(target.shape[0]):
            target[i] = staging[i]
    cstaging = _f8_1(tab, A_CSTAGING)
    cfg = _f8_1(tab, A_CFG)
    if seq_read(_f8_2(tab, A_CSLOTS), _i8_1(tab, A_CSEQ), _i8_1(tab, A_CLATEST), cstaging):
        for i in range(cfg.shape[0]):
            cfg[i] = cstaging[i]
    table = _f8_1(tab, A_TABLE)
    counters = _i8_1(tab, A_COUNTERS)
    meters = _f8_1(tab, A_METERS)
    synth = _synth(tab)
    master = _master(tab)
    meter = _meter(tab)
    underflow = 1 if status & PA_OUTPUT_UNDERFLOW else 0
    # Stereo renders straight into PortAudio's buffer; mono (or more than two channels)
    # renders into scratch, a whole number of engine blocks long, and folds or spreads.
    o = carray(out, (frames, channels), np.float32)
    scratch = _f4_2(tab, A_SCRATCH)
    step = frames if channels == 2 else scratch.shape[0]
    done = 0
    calls = 0
    while done < frames:
        n = min(step, frames - done)
        buf = o[done:done + n] if channels == 2 else scratch[:n]
        render_kernel(target, buf, underflow if calls == 0 else 0, cfg, table, synth, master, meter,
                      counters, meters)
        if channels == 1:
            for i in range(n):
                o[done + i, 0] = 0.5 * (buf[i, 0] + buf[i, 1])
        elif channels > 2:
            for i in range(n):
                o[done + i, 0] = buf[i, 0]
                o[done + i, 1] = buf[i, 1]
                for c in range(2, channels):
                    o[done + i, c] = 0.0
        done += n
        calls += 1
    if calls > 1:                       # the kernel counts each of its calls as a callback
        counters[C_CALLBACKS] -= calls - 1


@njit(nogil=True, cache=True)
def render_block(tab, out, frames, status):
    """One PortAudio block into `out` from the state the table describes. Returns 0, or 1
    when anything inside raised and `out` was silenced instead. (The try covers one call:
    numba's try/except makes a large body slow to compile.)"""
    channels = tab[H_CHANNELS]
    try:
        _render(tab, out, frames, status, channels)
    except Exception:
        flat = carray(out, (frames * channels,), np.float32)
        for i in range(flat.shape[0]):
            flat[i] = 0.0
        return 1
    return 0


def _callback(input_, output, frames, time_info, status, user):
    tab = carray(user, (TABLE_SIZE,), np.int64)
    clockbuf = _i8_1(tab, A_CLOCKBUF)
    t0 = _now(tab, clockbuf)
    failed = render_block(tab, output, np.int64(frames), np.int64(status))
    native = _i8_1(tab, A_NATIVE)
    native[N_ERRORS] += failed
    # how long this block took, against how long it lasts (the "% of one core" figure)
    k = native[N_TIMED] % TIMES
    _f8_1(tab, A_TIMES)[k] = _now(tab, clockbuf) - t0
    _f8_1(tab, A_FRAMES)[k] = frames
    native[N_TIMED] += 1
    return PA_CONTINUE


_compiled = None


def _ulong():
    """PortAudio's `unsigned long`: 64 bits on Linux and macOS, 32 on Windows."""
    return types.uint64 if ctypes.sizeof(ctypes.c_ulong) == 8 else types.uint32


def callback():
    """The compiled PaStreamCallback (numba CFunc; `.address` is the C function pointer).
    Compiled, or loaded from numba's cache, on first use."""
    global _compiled
    if _compiled is None:
        ensure_fresh_cache()
        ul = _ulong()
        sig = types.int32(types.voidptr, types.voidptr, ul, types.voidptr, ul, types.voidptr)
        _compiled = cfunc(sig, nopython=True, cache=True)(_callback)
    return _compiled


def ensure_fresh_cache() -> bool:
    """numba keys the cfunc's cache on this file alone, yet it links the engine's kernels:
    drop its cache files whenever this file or any kernel module changed (jitcache.py does
    the same for the kernels themselves)."""
    from .jitcache import ensure_fresh_cache as kernels_fresh, refresh, sources_hash
    kernels_fresh()
    digest = hashlib.sha256((sources_hash() + Path(__file__).read_text()).encode()).hexdigest()
    return refresh("living-mosaic-native.stamp", digest, ("native_callback",))


def _clock() -> tuple[int, int, int, int]:
    """(kind, function address, clock id, ticks per second) of a clock the callback can call."""
    try:
        if sys.platform == "win32":
            k32 = ctypes.windll.kernel32
            hz = ctypes.c_int64()
            if k32.QueryPerformanceFrequency(ctypes.byref(hz)) and hz.value > 0:
                return CLOCK_QPC, ctypes.cast(k32.QueryPerformanceCounter, ctypes.c_void_p).value, 0, hz.value
        elif hasattr(time, "CLOCK_MONOTONIC"):
            libc = ctypes.CDLL(None)
            return CLOCK_POSIX, ctypes.cast(libc.clock_gettime, ctypes.c_void_p).value, time.CLOCK_MONOTONIC, 10**9
    except (AttributeError, OSError):
        pass
    return CLOCK_NONE, 0, 0, 1


class Binding:
    """Everything one engine's stream callback reads and writes, and the table of it.

    The parameter mailbox is the output's (the main loop publishes once per tick); the engine
    config comes through its own seqlock, so a scene's settings reach the callback without a
    lock. The channel count may only change while no stream of this binding runs."""

    def __init__(self, engine: Engine, box: P.Mailbox, channels: int = 2, scratch_blocks: int = 4):
        self.engine = engine
        self.box = box
        block = engine.settings.blocksize
        self.cfg = engine.cfg.copy()
        self.cfg_box = SeqBox(self.cfg)
        own = {
            "pslots": box.slots, "pseq": box.seq, "platest": box.latest,
            "staging": np.zeros(P.SIZE, np.float32), "target": box.initial(),
            "cslots": self.cfg_box.slots, "cseq": self.cfg_box.seq, "clatest": self.cfg_box.latest,
            "cstaging": np.zeros_like(self.cfg), "cfg": self.cfg,
            "table": engine.table, "counters": engine.counters, "meters": engine.meters,
            "scratch": np.zeros((scratch_blocks * block, 2), np.float32),
            "native": np.zeros(N_SIZE, np.int64), "times": np.zeros(TIMES), "frames": np.zeros(TIMES),
            "clockbuf": np.zeros(4, np.int64),
        }
        arrays = [own[name] for name, _, _ in OWN_SPEC]
        for state, spec, what in ((engine.synth, SYNTH_SPEC, "synth"), (engine.master, MASTER_SPEC, "master"),
                                  (engine.meter, METER_SPEC, "meter")):
            if len(state) != len(spec):
                raise RuntimeError(f"the engine's {what} state has {len(state)} arrays, the native callback "
                                   f"knows {len(spec)}: update native_callback.{what.upper()}_SPEC")
            arrays.extend(state)
        self.arrays = arrays          # the table points into these: keep them alive
        shared = {id(box.slots), id(box.seq), id(box.latest)}     # the main loop writes these
        for arr in arrays:
            # Write every page once now: a first touch inside the callback is a page fault,
            # which waits for the process's memory map lock whenever the main thread maps or
            # unmaps memory (a large numpy allocation), realtime priority or not.
            if id(arr) not in shared:
                pages = arr.reshape(-1).view(np.uint8)
                pages[::4096] = pages[::4096]
        self.table = np.zeros(TABLE_SIZE, np.int64)
        for (name, dtype, ndim), arr in zip(SPEC, arrays):
            if arr.dtype != np.dtype(dtype) or arr.ndim != ndim or not arr.flags.c_contiguous:
                raise RuntimeError(f"native callback: array {name!r} is {arr.dtype} {arr.ndim}-d "
                                   f"(contiguous {arr.flags.c_contiguous}), expected {dtype} {ndim}-d contiguous")
            b = A[name]
            self.table[b] = arr.ctypes.data
            self.table[b + 1:b + 1 + ndim] = arr.shape
        kind, fn, clock_id, hz = _clock()
        self.table[H_CLOCK_KIND] = kind
        self.table[H_CLOCK_FN] = fn
        self.table[H_CLOCK_ID] = clock_id
        self.table[H_CLOCK_HZ] = hz
        self.timed = kind != CLOCK_NONE
        self.channels = channels
        self.native = own["native"]
        self.times = own["times"]
        self.frames = own["frames"]

    @property
    def channels(self) -> int:
        return int(self.table[H_CHANNELS])

    @channels.setter
    def channels(self, n: int) -> None:
        self.table[H_CHANNELS] = max(1, int(n))

    @property
    def userdata(self) -> int:
        """The address PortAudio passes back as the callback's userData."""
        return int(self.table.ctypes.data)

    def publish_config(self) -> None:
        """The engine's current config (after `Engine.set_settings`), from the next block on."""
        self.cfg_box.publish(self.engine.cfg)

    @property
    def errors(self) -> int:
        return int(self.native[N_ERRORS])

    def load(self) -> tuple[np.ndarray, np.ndarray]:
        """(seconds, frames) of the last callbacks, newest not necessarily last."""
        n = min(int(self.native[N_TIMED]), TIMES)
        return self.times[:n].copy(), self.frames[:n].copy()

    def call(self, out: np.ndarray, status: int = 0) -> int:
        """Run the callback once on `out` ((frames, channels) float32), as PortAudio would;
        for tests and warm-up. Returns the callback's return value."""
        f = ctypes.CFUNCTYPE(ctypes.c_int32, ctypes.c_void_p, ctypes.c_void_p, ctypes.c_ulong, ctypes.c_void_p,
                             ctypes.c_ulong, ctypes.c_void_p)(callback().address)
        assert out.dtype == np.float32 and out.flags.c_contiguous and out.shape[1] == self.channels
        return f(None, out.ctypes.data, out.shape[0], None, status, self.userdata)
