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
STATE = ("_sums", "_ext", "_ext_old", "_dirs", "_hist", "_chunk_risk", "_chunk_mask", "_tiles",
         "_cand", "_ncand", "_fmap", "_prev_px", "_keep_px", "_chunk_next")
TWIN_KEEPS = ("_chunk_next",)   # the kernels' own shortcut: the twins do without it


def busy_guard(w, h, deg, frames=24, seed=0):
    """A guard whose detectors have seen `frames` frames of noise: many regions sit at 5 or 6
    detections in the window, so the next frame has candidates, detections and quiet ones."""
    guard = FlashGuard(SafetySettings(image_width_deg=deg), w, h, 24)
    for f in S.noise(frames, w, h, seed=seed, hold=2):
        guard.process(f.copy())
    return guard


def measure(kernels, g, frame, t, stamp):
    """One frame's measuring pass, as `FlashGuard.process` runs it (before the limiter)."""
    kernels.measure_track(frame, g._keep_px, g._lut, g._lv, False, t, t - g.window, stamp,
                          g._sums, g._ext_old, g._ext, g._dirs, g._hist, g._chunk_risk,
                          g._chunk_mask, g._chunk_next, g._tiles, g._cand, g._cons, g._ncand,
                          g._fmap, g._fired, THR_LUM, THR_RED)


def tile_regions(g, ty, tx):
    """Indices of every region (all levels) of tile (ty, tx)."""
    tys, txs, _ = R.region_tiles(g._lv)
    return np.nonzero((tys == ty) & (txs == tx))[0]


def snapshot(g):
    return {name: getattr(g, name).copy() for name in STATE}


def restore(g, snap):
    for name, value in snap.items():
        np.copyto(getattr(g, name), value)


@pytest.mark.parametrize("w,h,deg", [(23, 17, 30.0), (61, 42, 10.0), (70, 44, 3.5)])
def test_measure_track_matches_its_twin(w, h, deg):
    g = busy_guard(w, h, deg)
    g._ext, g._ext_old = g._ext_old, g._ext     # as process() does before measuring
    frame = S.noise(1, w, h, seed=99)[0]
    snap = snapshot(g)
    outs = []
    for kernels in (K, R):
        restore(g, snap)
        measure(kernels, g, frame, 30, g._stamp + 1)
        outs.append(snapshot(g))
    for name in outs[0]:
        if name not in TWIN_KEEPS:
            assert np.array_equal(outs[0][name], outs[1][name]), name
    out = outs[0]
    # the busy state exercises every path: candidates (tiles left pending), detections
    # recorded, flashing regions in the area check's map, pixels kept for the next frame
    assert (out["_cand"] == K.CAND).any() and (out["_tiles"] == K.PENDING).any()
    assert (out["_hist"][..., 0] == 30).any() and out["_fmap"].any()
    assert not np.array_equal(out["_keep_px"], snap["_keep_px"])
    assert g.geometry.block == {30.0: 1, 10.0: 1, 3.5: 2}[deg]


def test_the_sweep_moves_every_extreme_and_flags_exactly_the_detections():
    """The vectorised sweep against the detector rules, value by value, with changes that land
    exactly on the thresholds (a detection: >=) and a hair under them (none)."""
    rng = np.random.default_rng(3)
    n, i0, inv = 203, 5, np.float32(1.0 / 9.0)
    sums = rng.uniform(0.0, 9.0, (n + i0, 3)).astype(np.float32)
    lc, q = R.signals(sums[:, 0] * inv, sums[:, 1] * inv, sums[:, 2] * inv)
    dirs = rng.choice(np.array([-1, 1], np.int8), (n + i0, 2))
    ext_old = np.stack([lc, q], axis=1) + rng.uniform(-0.3, 0.3, (n + i0, 2)).astype(np.float32) \
        * np.array([1.0, 60.0], np.float32)
    thr = (np.float32(0.25), np.float32(20.0))
    ext_old[i0 + 7:i0 + 11] = np.stack([lc, q], axis=1)[i0 + 7:i0 + 11]   # quiet, but for:
    for k, x in ((0, 7), (1, 8)):       # a change of exactly the threshold: it fires
        ext_old[i0 + x, k] = (lc, q)[k][i0 + x] + dirs[i0 + x, k] * thr[k]
        assert (ext_old[i0 + x, k] - (lc, q)[k][i0 + x]) * dirs[i0 + x, k] == thr[k]
    for k, x in ((0, 9), (1, 10)):      # the nearest extreme under it: it does not
        v, d = (lc, q)[k][i0 + x], dirs[i0 + x, k]
        e = v + d * thr[k]
        while (e - v) * d >= thr[k]:
            e = np.nextafter(e, v)
        ext_old[i0 + x, k] = e
    ext = np.zeros_like(ext_old)
    fired = np.full(n + 1, 7, np.uint8)
    K.sweep_row(sums.reshape(-1), ext_old.reshape(-1), ext.reshape(-1), dirs.reshape(-1), i0, n,
                inv, thr[0], thr[1], fired)
    want = np.zeros(n, bool)
    for k, v in enumerate((lc, q)):
        e, d, v = ext_old[i0:, k], dirs[i0:, k].astype(np.float32), v[i0:]
        want |= (e - v) * d >= thr[k]
        assert np.array_equal(ext[i0:, k], np.where((v - e) * d > 0, v, e)), k
    assert np.array_equal(fired[:n], want) and fired[n] == 7
    assert want[[7, 8]].all() and not want[[9, 10]].any()
    assert not ext[:i0].any()                # nothing outside the span written


def test_region_sums_are_the_means_of_their_pixels():
    w, h = 45, 29                              # edge regions narrower and shorter than whole ones
    g = FlashGuard(SafetySettings(image_width_deg=7.0), w, h, 24)   # blocks of 2 px
    frame = S.noise(1, w, h, seed=4, colour=True)[0]
    g.process(frame.copy())
    lin = np.stack([LUT[(frame >> s) & 255] for s in (16, 8, 0)], -1).astype(np.float64)
    inv = R.region_inv(g._lv, h, w)
    assert len(g._lv) == 4
    for row in g._lv:
        base, ny, nx, size = (int(row[c]) for c in (K.LV_BASE, K.LV_NY, K.LV_NX, K.LV_SIZE))
        for (y, x) in ((0, 0), (ny - 1, nx - 1), (ny // 2, nx // 3)):
            i = base + y * nx + x
            want = lin[y * size:(y + 1) * size, x * size:(x + 1) * size].reshape(-1, 3).mean(0)
            assert g._sums[i] * inv[i] == pytest.approx(want, rel=1e-5, abs=1e-7)


def brute_area(k, fmap, cand, rh, rw, limit):
    ny, nx = cand.shape[:2]
    out = cand[:, :, k].copy()
    for y, x in zip(*np.nonzero(cand[:, :, k] == K.CAND)):
        over = False
        for py in range(max(0, y - rh + 1), min(ny - rh, y) + 1):
            for px in range(max(0, x - rw + 1), min(nx - rw, x) + 1):
                over |= fmap[py:py + rh, px:px + rw].sum() > limit
        out[y, x] = K.REJECT if over else K.ADMIT
    return out


def pending_tiles(cand, shift):
    """The tile map as measuring leaves it: the tiles holding a candidate are PENDING."""
    ny, nx = cand.shape[:2]
    tiles = np.zeros((-(-ny >> shift), -(-nx >> shift)), np.uint8)
    ys, xs = np.nonzero((cand == K.CAND).any(axis=2))
    tiles[ys >> shift, xs >> shift] = K.PENDING
    return tiles


def test_area_check_matches_its_twin_and_brute_force():
    rng = np.random.default_rng(4)
    ny, nx, rh, rw, limit, shift = 14, 19, 5, 7, 9, 2
    for _ in range(5):
        cand = (rng.random((ny, nx, 2)) < 0.08).astype(np.uint8) * K.CAND
        fmap = ((rng.random((ny, nx)) < 0.1) | (cand[:, :, 1] == K.CAND)).astype(np.uint8)
        expect = brute_area(1, fmap, cand, rh, rw, limit)
        got = []
        for fn in (K.area_check, R.area_check):
            c = cand.copy()
            tiles = pending_tiles(cand, shift)
            fn(1, fmap, c, rh, rw, limit, np.zeros((ny + 1, nx + 1), np.int32),
               np.zeros((ny - rh + 2, nx - rw + 2), np.int32), tiles, shift,
               np.zeros(ny, np.int64))
            got.append((c[:, :, 1], tiles))
            assert np.array_equal(c[:, :, 0], cand[:, :, 0])
        assert np.array_equal(got[0][0], got[1][0]) and np.array_equal(got[0][0], expect)
        assert np.array_equal(got[0][1], got[1][1])
        rejected = np.argwhere(expect == K.REJECT)
        assert len(rejected) and (expect == K.ADMIT).any()
        # a rejection hands its tile to the limiter
        assert all(got[0][1][y >> shift, x >> shift] == K.CAREFUL for y, x in rejected)


def run_area_check(fn, k, fmap, cand, rh, rw, limit, shift):
    ny, nx = fmap.shape
    c = cand.copy()
    tiles = pending_tiles(cand, shift)
    fn(k, fmap, c, rh, rw, limit, np.zeros((ny + 1, nx + 1), np.int32),
       np.zeros((ny - rh + 2, nx - rw + 2), np.int32), tiles, shift, np.zeros(ny, np.int64))
    return c, tiles


@pytest.mark.parametrize("dense", [False, True])
def test_the_quick_bound_admits_only_what_the_tables_admit(dense):
    """Candidates far from any crowd of flashing regions are admitted by the coarse bound
    alone; with a dense patch the rest go through the tables. Either way the decisions are
    the twin's (the exact summed-area check)."""
    rng = np.random.default_rng(11 + dense)
    ny, nx, rh, rw, limit, shift = 96, 160, 20, 30, 150, 3
    fmap = (rng.random((ny, nx)) < 0.005).astype(np.uint8)
    if dense:
        fmap[30:60, 60:100] |= (rng.random((30, 40)) < 0.6).astype(np.uint8)
    cand = np.zeros((ny, nx, 2), np.uint8)
    cand[:, :, 1] = (rng.random((ny, nx)) < 0.01) * K.CAND
    cand[:, :, 0] = (rng.random((ny, nx)) < 0.01) * K.CAND
    fmap |= (cand[:, :, 1] == K.CAND).astype(np.uint8)
    got, tiles = run_area_check(K.area_check, 1, fmap, cand, rh, rw, limit, shift)
    want, want_tiles = run_area_check(R.area_check, 1, fmap, cand, rh, rw, limit, shift)
    assert np.array_equal(got, want) and np.array_equal(tiles, want_tiles)
    assert (got[:, :, 1] == K.ADMIT).any()
    assert ((got[:, :, 1] == K.REJECT).any()) == dense
    quick = cand.copy()
    done = K._admit_by_bound(1, fmap, quick, rh, rw, limit, np.zeros((ny + 1, nx + 1), np.int32),
                             np.ones(ny, np.int64), pending_tiles(cand, shift), shift)
    assert done == (not dense)
    admitted = quick[:, :, 1] == K.ADMIT
    assert admitted.any() and (got[:, :, 1][admitted] == K.ADMIT).all()
    assert ((quick[:, :, 1] == K.CAND).any()) == dense
    assert np.array_equal(quick[:, :, 0], cand[:, :, 0])


@pytest.mark.parametrize("ny,nx", [(96, 160), (37, 45), (1, 70), (16, 16)])
def test_the_bound_counts_every_mark_of_every_cell(ny, nx):
    """The quick bound's cell counts against NumPy: whole and partial cells, and a level of a
    single row (no spare row of scratch to add down in)."""
    rng = np.random.default_rng(ny * nx)
    fmap = (rng.random((ny, nx)) < 0.3).astype(np.uint8)
    fmap[:, -1] = 1      # a full column: a band's count reaches COARSE
    sat = np.full((ny + 1, nx + 1), 77, np.int32)
    K._cell_counts(fmap, sat)
    cy, cx = -(-ny // K.COARSE), -(-nx // K.COARSE)
    want = np.zeros((cy + 1, cx + 1), np.int64)
    np.add.at(want, (np.arange(ny)[:, None] // K.COARSE + 1, np.arange(nx)[None, :] // K.COARSE + 1),
              fmap)
    assert np.array_equal(sat[:cy + 1, :cx + 1], want)


def test_settle_undoes_the_frame_in_a_tile_the_limiter_takes_over():
    w, h = 48, 32
    g = busy_guard(w, h, 30.0, seed=5)
    g._ext, g._ext_old = g._ext_old, g._ext
    stamp = g._stamp + 1
    before = snapshot(g)
    frame = S.noise(1, w, h, seed=7)[0]
    measure(K, g, frame, 30, stamp)
    pending = np.argwhere(g._tiles == K.PENDING)
    assert len(pending) >= 2
    (ty, tx), (ty2, tx2) = pending[0], pending[1]
    g._tiles[ty, tx] = K.CAREFUL               # as a rejection in the area check would
    g._cand[g._cand == K.CAND] = K.ADMIT
    careful = np.zeros((g._tiles.size, 2), np.int64)
    m = K.settle(frame, g._keep_px, g._lv, 30, 30 - g.window, stamp, g._sums, g._ext_old, g._ext,
                 g._dirs, g._hist, g._chunk_risk, g._chunk_mask, g._tiles, g._cand, careful,
                 THR_LUM, THR_RED)
    assert m == 1 and tuple(careful[0]) == (ty, tx)
    idx = tile_regions(g, ty, tx)
    for name in ("_dirs",):
        assert np.array_equal(getattr(g, name)[idx], before[name][idx]), name
    # the detections (not the undo records beside them) are back as they were
    assert np.array_equal(g._hist[idx, :, :K.HIST], before["_hist"][idx, :, :K.HIST])
    assert np.array_equal(g._ext[idx], before["_ext_old"][idx])
    # another pending tile recorded its admitted candidates: their 6th detection is now
    assert (g._hist[tile_regions(g, ty2, tx2), :, 0] == 30).any()
    assert not g._cand.any() and not (g._tiles == K.PENDING).any()


def test_encode_picks_the_nearest_byte_in_linear_light():
    rng = np.random.default_rng(8)
    v = np.concatenate([rng.random(3000), LUT, (LUT[1:] + LUT[:-1]) / 2,
                        [-0.1, 0.0, 1.0, 1.3]]).astype(np.float32)
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
    but not blends (exercises the per-block memo of blended pixels)."""
    out = np.empty((n, h, w), np.uint32)
    on, off = S.pack(np.array([1.0, 0.2, 0.2])), S.pack(np.zeros(3))
    cols = np.arange(w) % 3
    for i in range(n):
        phase = S.toggles(n + 3, fps, 9)[i:i + 3]
        out[i] = np.where(phase[cols], on, off)[None, :]
    return out


SCENES = {
    "mix": lambda w, h: S.random_mix(32, 24, w, h, seed=5),
    "stripes": lambda w, h: stripes(40, 24, w, h),
    "blackout": lambda w, h: S.blackout_toggle(S.swarm(40, 24, w, h, count=60, gain=1.5,
                                                       seed=1), 24, 8),
}


@pytest.mark.parametrize("w,h,deg,kind", [(40, 28, 20.0, "mix"), (80, 52, 4.0, "mix"),
                                          (30, 20, 30.0, "stripes"), (64, 40, 20.0, "blackout")])
def test_the_whole_guard_matches_its_twin_bit_for_bit(w, h, deg, kind):
    frames = SCENES[kind](w, h)
    fast = FlashGuard(SafetySettings(image_width_deg=deg), w, h, 24)
    twin = FlashGuard(SafetySettings(image_width_deg=deg), w, h, 24, kernels=R)
    a, z = frames.copy(), frames.copy()
    for i in range(len(frames)):
        assert fast.process(a[i]) == twin.process(z[i]), i
        assert np.array_equal(a[i], z[i]), i
    assert fast.limited_frames > 0 and fast.held_regions > 0
    assert fast.geometry.block == (2 if w == 80 else 1)
    for name in STATE:
        if name not in TWIN_KEEPS:
            assert np.array_equal(getattr(fast, name), getattr(twin, name)), name
    for name in ("limited_frames", "limited_blocks", "held_regions", "frozen_regions", "crossings"):
        assert getattr(fast, name) == getattr(twin, name), name
    if kind == "blackout":
        # a held region whose previous output lies near its band's edge becomes an exact copy
        assert fast.frozen_regions > 0


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
            results.append((out, guard._hist.copy(), guard._ext.copy()))
    finally:
        numba.set_num_threads(saved)
    assert all(np.array_equal(results[0][k], r[k]) for r in results[1:] for k in range(3))
