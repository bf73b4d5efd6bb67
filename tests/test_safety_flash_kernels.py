"""The flash-guard kernels against their NumPy twins (seeded), and against brute force."""
from __future__ import annotations

import numba
import numpy as np
import pytest

import flash_scenes as S
from installation.safety import flash_kernels as K
from installation.safety import reference as R
from installation.safety.flash_guard import (THR_LUM, THR_RED, FlashGuard, linear_to_srgb_table,
                                             srgb_to_linear_lut)
from installation.safety.settings import SafetySettings

LUT = srgb_to_linear_lut()
ENC = linear_to_srgb_table(LUT)


def random_state(rng, nby, nbx):
    ext = np.empty((2, nby, nbx), np.float32)
    ext[0] = rng.random((nby, nbx)) * 0.9
    ext[1] = rng.random((nby, nbx)) * 320 * (rng.random((nby, nbx)) < 0.3)
    dirs = rng.choice(np.array([-1, 1], np.int8), size=(2, nby, nbx))
    return ext, dirs


@pytest.mark.parametrize("b,h,w", [(1, 17, 23), (2, 21, 30), (3, 20, 31)])
def test_measure_track_matches_its_twin(b, h, w):
    rng = np.random.default_rng(b)
    frame = rng.integers(0, 2 ** 32, size=(h, w), dtype=np.uint64).astype(np.uint32)
    nby, nbx = -(-h // b), -(-w // b)
    ext, dirs = random_state(rng, nby, nbx)
    # histories with 0..6 detections inside the window (frames 71..100)
    hist = np.full((2, nby, nbx, K.HIST), K.NEVER, np.int32)
    recent = rng.integers(0, K.HIST + 1, size=(2, nby, nbx))
    for i in range(K.HIST):
        hist[..., i] = np.where(i < recent, 99 - 4 * i, K.NEVER)
    outs = []
    for fn in (K.measure_track, R.measure_track):
        rgb = np.zeros((3, nby, nbx), np.float32)
        e, d, hi = ext.copy(), dirs.copy(), hist.copy()
        pend = np.zeros((nby, nbx), np.uint8)
        rows = np.zeros(nby, np.int64)
        cand = np.zeros((2, nby, nbx), np.uint8)
        cand_rows = np.zeros((2, nby), np.int64)
        fn(frame, LUT, b, False, 100, 70, rgb, e, d, hi, pend, rows, cand, cand_rows,
           THR_LUM, THR_RED)
        outs.append((rgb, e, d, hi, pend, rows, cand, cand_rows))
    for a, z in zip(*outs):
        assert np.array_equal(a, z)
    rgb, e, d, hi, pend, rows, cand, cand_rows = outs[0]
    # the seeded state exercises every path: quiet, committed, and left for the area check
    assert (pend != 0).any() and (hi[..., 0] == 100).any() and (cand == K.CAND).any()
    assert np.array_equal(rows, (pend != 0).sum(1)) and np.array_equal(cand_rows, (cand != 0).sum(2))
    # and the means are right: compare one block with float64 arithmetic
    lin = LUT[(frame[:b, :b] >> 16) & 255].astype(np.float64)
    assert rgb[0, 0, 0] == pytest.approx(lin.mean(), rel=1e-6)


def brute_area(k, since, hist, cand, rh, rw, limit):
    nby, nbx = cand.shape[1:]
    flashing = (hist[k, :, :, K.FLAG_AT - 1] > since) | (cand[k] == K.CAND)
    out = cand[k].copy()
    for by, bx in zip(*np.nonzero(cand[k] == K.CAND)):
        over = False
        for py in range(max(0, by - rh + 1), min(nby - rh, by) + 1):
            for px in range(max(0, bx - rw + 1), min(nbx - rw, bx) + 1):
                over |= flashing[py:py + rh, px:px + rw].sum() > limit
        out[by, bx] = K.REJECT if over else K.ADMIT
    return out


def test_area_check_matches_its_twin_and_brute_force():
    rng = np.random.default_rng(4)
    nby, nbx, rh, rw, limit = 14, 19, 5, 7, 8
    for trial in range(5):
        hist = np.full((2, nby, nbx, K.HIST), K.NEVER, np.int32)
        hist[..., K.FLAG_AT - 1] = np.where(rng.random((2, nby, nbx)) < 0.1, 95, K.NEVER)
        cand = (rng.random((2, nby, nbx)) < 0.15).astype(np.uint8) * K.CAND
        expect = brute_area(1, 90, hist, cand, rh, rw, limit)
        got = []
        for fn in (K.area_check, R.area_check):
            c = cand.copy()
            fn(1, 90, hist, c, rh, rw, limit, np.zeros((nby + 1, nbx + 1), np.int32),
               np.zeros((nby - rh + 2, nbx - rw + 2), np.int32))
            got.append(c[1])
            assert np.array_equal(c[0], cand[0])
        assert np.array_equal(got[0], got[1]) and np.array_equal(got[0], expect)
        assert (expect == K.ADMIT).any() or (expect == K.REJECT).any()


def test_encode_picks_the_nearest_byte_in_linear_light():
    rng = np.random.default_rng(8)
    v = np.concatenate([rng.random(3000), LUT, (LUT[1:] + LUT[:-1]) / 2, [-0.1, 0.0, 1.0, 1.3]]).astype(np.float32)
    twin = R.encode(v, ENC)
    fast = np.array([K.encode(x, ENC) for x in v])
    assert np.array_equal(twin, fast)
    assert np.array_equal(fast[np.arange(3000, 3256)], np.arange(256))   # bytes round-trip
    err = np.abs(LUT[fast].astype(np.float64) - np.clip(v, 0, 1))
    best = np.min(np.abs(LUT[None, :].astype(np.float64) - np.clip(v, 0, 1)[:, None]), axis=1)
    # the table samples linear light every 1/65535: at most that far from the true nearest
    assert np.all(err <= best + 1.0 / 65535)
    assert err.max() < 0.0045      # the rounding margin the guard's limiting relies on


def stripes(n, fps, w, h):
    """Flat stripes a block wide, flashing in three phases: neighbours share pixel values
    but not plans (exercises the kernel's per-row memo of blended pixels and plans)."""
    out = np.empty((n, h, w), np.uint32)
    on, off = S.pack(np.array([1.0, 0.2, 0.2])), S.pack(np.zeros(3))
    cols = np.arange(w) % 3
    for i in range(n):
        phase = S.toggles(n + 3, fps, 9)[i:i + 3]
        out[i] = np.where(phase[cols], on, off)[None, :]
    return out


@pytest.mark.parametrize("w,h,deg,kind", [(40, 28, 20.0, "mix"), (80, 52, 4.0, "mix"),
                                          (30, 20, 30.0, "stripes")])
def test_the_whole_guard_matches_its_twin_bit_for_bit(w, h, deg, kind):
    frames = S.random_mix(32, 24, w, h, seed=5) if kind == "mix" else stripes(40, 24, w, h)
    fast = FlashGuard(SafetySettings(image_width_deg=deg), w, h, 24)
    twin = FlashGuard(SafetySettings(image_width_deg=deg), w, h, 24, kernels=R)
    a, z = frames.copy(), frames.copy()
    for i in range(len(frames)):
        assert fast.process(a[i]) == twin.process(z[i]), i
        assert np.array_equal(a[i], z[i]), i
    assert fast.limited_frames > 0
    assert fast.geometry.block == (2 if w == 80 else 1)
    assert np.array_equal(fast._hist, twin._hist) and np.array_equal(fast._ext, twin._ext)


def test_same_output_whatever_the_thread_count():
    frames = S.random_mix(30, 24, 64, 40, seed=9)
    results = []
    saved = numba.get_num_threads()
    try:
        for n in sorted({1, numba.config.NUMBA_NUM_THREADS}):
            numba.set_num_threads(n)
            out = frames.copy()
            guard = FlashGuard(SafetySettings(image_width_deg=20.0), 64, 40, 24)
            for f in out:
                guard.process(f)
            results.append(out)
    finally:
        numba.set_num_threads(saved)
    assert all(np.array_equal(results[0], r) for r in results[1:])
