"""Each numba kernel of the CPU renderer against its NumPy twin, on seeded inputs."""
from __future__ import annotations

import numpy as np
import pytest

from installation.render import kernels as K
from installation.render import reference as R
from installation.render.cpu_renderer import CpuRenderer
from installation.render.look import MAX_SPECIES, LookParams
from installation.render.plan import (LUMA, TONE_MAPS, WARM_TINT, bloom_plan, column_taps,
                                      curve_params, encode, framing, linear_to_srgb,
                                      palette_linear, particle_gain, splat_footprint, tone_curve)
from installation.render.reference import ReferenceRenderer
from installation.render.settings import RenderSettings
from installation.render.synthetic import make_swarm

F = np.float32


def channels(frame: np.ndarray) -> np.ndarray:
    """(h, w) 0xAARRGGBB → (h, w, 4) int levels A, R, G, B."""
    return np.stack([(frame >> s) & 0xFF for s in (24, 16, 8, 0)], axis=-1).astype(np.int64)


def assert_frames_close(a: np.ndarray, b: np.ndarray, atol: int = 1) -> None:
    """compare_render-style: every channel of every pixel within atol levels."""
    diff = np.abs(channels(a) - channels(b))
    assert diff.max() <= atol, f"max channel difference {diff.max()} > {atol} at {np.argwhere(diff > atol)[:5]}"


def random_particles(rng, n, w, h, k, broken=0):
    """Positions in pixels scaled 1:1 (scale=1), some on and beyond the borders."""
    x = rng.uniform(-3, w + 3, n).astype(F)
    y = rng.uniform(-3, h + 3, n).astype(F)
    vx = rng.normal(0, 0.2, n).astype(F)
    vy = rng.normal(0, 0.2, n).astype(F)
    e = rng.uniform(-0.5, 1.5, n).astype(F)
    s = rng.integers(0, k, n).astype(np.int32)
    if broken:
        idx = rng.choice(n, broken, replace=False)
        x[idx[0::4]] = np.nan
        vy[idx[1::4]] = np.inf
        e[idx[2::4]] = np.nan
        s[idx[3::4]] = k + 3
    return x, y, vx, vy, e, s


def test_species_colours_match_twin():
    rng = np.random.default_rng(1)
    base = rng.random((MAX_SPECIES, 3)).astype(F)
    gains = rng.uniform(-0.5, 1.5, MAX_SPECIES).astype(F)
    gains[3] = np.nan
    warm, luma = np.array(WARM_TINT, F), np.array(LUMA, F)
    for warmth in (-1.0, -0.3, 0.0, 0.7, 1.0):
        for k in (1, 5, MAX_SPECIES):
            fast = np.zeros((MAX_SPECIES, 3), F)
            ref = np.zeros((MAX_SPECIES, 3), F)
            K.species_colours(base, k, F(warmth), warm, luma, gains, fast)
            R.species_colours(base, k, F(warmth), warm, luma, gains, ref)
            np.testing.assert_allclose(fast[:k], ref[:k], rtol=1e-5, atol=1e-7)
            assert np.isfinite(fast).all() and (fast >= 0).all()


NEUTRAL = np.array(curve_params("aces", 1.0, 1.0), F)


def light_and_splat(kern, x, y, vx, vy, e, s, n, colours, k, w, h, f, band_rows, chunk=64,
                    low_band_rows=3, foot=1):
    """particle_light, splat_low and splat_compose (no bloom, decay 1) on one set of particles,
    the full-resolution splat `foot` pixels each way."""
    px, py = np.zeros(n, F), np.zeros(n, F)
    light, row, low_row = np.zeros((3, n), F), np.zeros(n, np.int32), np.zeros(n, np.int32)
    spans = np.zeros((-(-n // chunk), 4), np.int32)
    bad = kern.particle_light(x, y, vx, vy, e, s, n, colours, k, F(1.0), F(0.0), F(0.0), F(0.3),
                              F(1.0), F(1.5), F(1 / f), px, py, light, row, low_row, chunk, spans, foot)
    hdr = np.zeros((3, h, w), F)
    low = np.zeros((3, -(-h // f), -(-w // f)), F)
    out = np.zeros((h, w), np.uint32)
    scratch = np.zeros_like(low), np.zeros_like(low)
    # decay 1 and a threshold above any light: bloom_rows leaves the splatted source as it is
    kern.bloom_rows(px, py, light, low_row, n, chunk, spans, low, *scratch, F(1 / f), F(1e9), F(1.0),
                    np.ones(1, F), low_band_rows)
    up = np.zeros((3, low.shape[1], w), F)
    kern.splat_compose(px, py, light, row, n, chunk, spans, hdr, up, F(1 / f), NEUTRAL, F(1.0), out,
                       band_rows, foot)
    return bad, (px, py, light, row, low_row, spans), hdr, low, out


@pytest.mark.parametrize("foot", [1, 2, 3])
def test_particle_light_and_splats_match_twins_including_borders_and_broken_particles(foot):
    rng = np.random.default_rng(2)
    w, h, k, n, f = 96, 54, 5, 4000, 4
    args = random_particles(rng, n, w, h, k, broken=40)
    colours = rng.random((MAX_SPECIES, 3)).astype(F)
    bad_f, per_f, hdr_f, low_f, out_f = light_and_splat(K, *args, n, colours, k, w, h, f, 8, foot=foot)
    bad_r, per_r, hdr_r, low_r, out_r = light_and_splat(R, *args, n, colours, k, w, h, f, 8, foot=foot)
    assert bad_f == bad_r == 40
    for a, b in zip(per_f, per_r):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(hdr_f, hdr_r, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(low_f, low_r, rtol=1e-5, atol=1e-6)
    assert_frames_close(out_f, out_r, atol=1)
    assert hdr_f.sum() > 0 and np.isfinite(hdr_f).all()


@pytest.mark.parametrize("band_rows,low_band_rows,chunk,ordered,foot", [
    (1, 1, 64, False, 1), (8, 2, 1, True, 1), (11, 5, 128, True, 1), (56, 14, 7, False, 1),
    (1000, 1000, 5000, True, 1), (1, 1, 64, False, 3), (5, 2, 128, True, 3), (11, 5, 7, True, 2)])
def test_splats_do_not_depend_on_bands_or_chunks(band_rows, low_band_rows, chunk, ordered, foot):
    """Each pixel gets its additions in particle order whatever the bands and chunks:
    bit-identical to one band walking every particle."""
    rng = np.random.default_rng(8)
    w, h, k, n, f = 80, 56, 3, 3000, 4
    args = random_particles(rng, n, w, h, k, broken=12)
    if ordered:      # as the engine hands them: sorted by row, so chunks span few rows
        order = np.argsort(np.nan_to_num(args[1]), kind="stable")
        args = tuple(a[order] for a in args)
    colours = rng.random((MAX_SPECIES, 3)).astype(F)
    _, _, hdr_one, low_one, out_one = light_and_splat(K, *args, n, colours, k, w, h, f, h,
                                                      chunk=n, low_band_rows=h, foot=foot)
    _, _, hdr, low, out = light_and_splat(K, *args, n, colours, k, w, h, f, band_rows, chunk=chunk,
                                          low_band_rows=low_band_rows, foot=foot)
    np.testing.assert_array_equal(hdr, hdr_one)
    np.testing.assert_array_equal(low, low_one)
    np.testing.assert_array_equal(out, out_one)


@pytest.mark.parametrize("foot", [1, 2, 3, 5])
def test_splats_conserve_each_particles_light(foot):
    """Bilinear (and tent) weights sum to one: an inside particle adds exactly its light, over
    (2·foot)² pixels centred on it; the low buffer holds the same light averaged over factor x
    factor pixels."""
    colours = np.array([[1.0, 0.5, 0.25]], F)
    one = np.ones(1, F)
    bad, _, hdr, low, _ = light_and_splat(K, one * F(17.3), one * F(21.8), one * 0, one * 0, one * 0,
                                          np.zeros(1, np.int32), 1, colours, 1, 40, 40, 4, 8, foot=foot)
    assert bad == 0
    light = 0.3 * np.array([1.0, 0.5, 0.25])
    np.testing.assert_allclose(hdr.sum(axis=(1, 2)), light, rtol=1e-5)
    np.testing.assert_allclose(low.sum(axis=(1, 2)) * 16, light, rtol=1e-6)
    lit_rows, lit_cols = np.nonzero(hdr[0])
    assert lit_rows.max() - lit_rows.min() + 1 == lit_cols.max() - lit_cols.min() + 1 == 2 * foot
    # centred: the light's centre of mass is the particle's position (pixel centres at +0.5)
    ys, xs = np.mgrid[:40, :40] + 0.5
    total = hdr[0].sum()
    assert abs((hdr[0] * xs).sum() / total - 17.3) < 1e-3 and abs((hdr[0] * ys).sum() / total - 21.8) < 1e-3


def test_mean_span_matches_twin():
    spans = np.array([[3, 9, 0, 2], [5, 5, 1, 1], [2 ** 30, -(2 ** 30), 2 ** 30, -(2 ** 30)]], np.int32)
    assert K.mean_span(spans, 3) == R.mean_span(spans, 3) == pytest.approx((7 + 1) / 3)


def test_bright_pass_and_decay_match_twin():
    rng = np.random.default_rng(3)
    low = (rng.random((3, 30, 50)) ** 3 * 2).astype(F)
    low[:, :3, :3] = 1e-7            # decays below the flush level
    a, b = low.copy(), low.copy()
    bright_a, bright_b = np.zeros_like(low), np.zeros_like(low)
    for j in range(low.shape[1]):
        K._bright_row(a, bright_a, j, F(0.6), F(0.8))
    R.bright_pass(b, bright_b, F(0.6), F(0.8))
    np.testing.assert_allclose(bright_a, bright_b, rtol=1e-5, atol=1e-7)
    np.testing.assert_array_equal(a, b)
    assert (a[:, :3, :3] == 0).all()
    # hue kept: the bright part is the pixel's colour scaled by one factor
    sel = low.max(axis=0) > 0.6
    ratio = bright_a[:, sel] / low[:, sel]
    np.testing.assert_allclose(ratio, np.broadcast_to(ratio[0], ratio.shape), rtol=1e-5)


@pytest.mark.parametrize("shape,radius_px", [((3, 45, 80), 3.0), ((3, 7, 5), 4.5), ((3, 1, 1), 2.0)])
def test_blur_row_matches_twin(shape, radius_px):
    rng = np.random.default_rng(4)
    src = rng.random(shape).astype(F)
    weights = bloom_plan(shape[2] * 2, shape[1] * 2, radius_px / (shape[1] * 2)).weights
    a, b = np.zeros_like(src), np.zeros_like(src)
    for c in range(3):
        for j in range(shape[1]):
            K._blur_row(src[c, j], a[c, j], weights)
    R.blur_rows(src, b, weights)
    np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
    const = np.full(shape[2], 0.7, F)
    out = np.zeros_like(const)
    K._blur_row(const, out, weights)
    np.testing.assert_allclose(out, 0.7, rtol=1e-5)     # a normalised blur keeps a flat image


def make_bloom_case(seed, n, w, h, f, k=4):
    rng = np.random.default_rng(seed)
    args = random_particles(rng, n, w, h, k, broken=8)
    order = np.argsort(np.nan_to_num(args[1]), kind="stable")
    args = tuple(a[order] for a in args)
    colours = (rng.random((MAX_SPECIES, 3)) * 3).astype(F)
    chunk = 32
    px, py = np.zeros(n, F), np.zeros(n, F)
    light, row, low_row = np.zeros((3, n), F), np.zeros(n, np.int32), np.zeros(n, np.int32)
    spans = np.zeros((-(-n // chunk), 4), np.int32)
    K.particle_light(*args, n, colours, k, F(1.0), F(0.0), F(0.0), F(0.5), F(1.0), F(1.5), F(1 / f),
                     px, py, light, row, low_row, chunk, spans)
    low = (rng.random((3, -(-h // f), -(-w // f))) ** 2).astype(F)     # last frame's trail
    return (px, py, light, low_row, n, chunk, spans), low


@pytest.mark.parametrize("w,h,f,radius", [(96, 54, 4, 3.0), (40, 30, 2, 1.0), (33, 17, 8, 2.5)])
def test_bloom_matches_twin(w, h, f, radius):
    particles, low0 = make_bloom_case(5, 3000, w, h, f)
    weights = bloom_plan(w, h, radius * f / h).weights
    ix0, ix1, wx = column_taps(w, f, low0.shape[2])
    results = []
    for kern in (K, R):
        low = low0.copy()
        bright, blurred, tmp = np.zeros_like(low), np.zeros_like(low), np.zeros_like(low)
        up = np.zeros((3, low.shape[1], w), F)
        kern.bloom_rows(*particles, low, bright, blurred, F(1 / f), F(0.6), F(0.8), weights, 3)
        kern.bloom_cols(blurred, tmp, up, weights, ix0, ix1, wx, F(0.7))
        results.append((low, blurred, up))
    for a, b in zip(*results):
        np.testing.assert_allclose(a, b, rtol=2e-5, atol=1e-6)
    assert results[0][2].max() > 0


def test_bloom_rows_do_not_depend_on_the_bands():
    particles, low0 = make_bloom_case(9, 2000, 64, 48, 4)
    weights = bloom_plan(64, 48, 0.1).weights
    outs = []
    for band_rows in (1, 5, 100):
        low = low0.copy()
        bright, blurred = np.zeros_like(low), np.zeros_like(low)
        K.bloom_rows(*particles, low, bright, blurred, F(0.25), F(0.6), F(0.8), weights, band_rows)
        outs.append((low, blurred))
    for low, blurred in outs[1:]:
        np.testing.assert_array_equal(low, outs[0][0])
        np.testing.assert_array_equal(blurred, outs[0][1])


def test_upsample_interpolates_between_low_pixel_centres():
    """bloom_cols with a one-tap blur is the upsample alone: check it against np.interp."""
    rng = np.random.default_rng(5)
    f, w = 4, 70
    wl = -(-w // f)
    bloom = rng.random((3, 6, wl)).astype(F)
    ix0, ix1, wx = column_taps(w, f, wl)
    up = np.zeros((3, 6, w), F)
    K.bloom_cols(bloom, np.zeros_like(bloom), up, np.ones(1, F), ix0, ix1, wx, F(0.8))
    centres = (np.arange(wl) + 0.5) * f
    expect = np.stack([[np.interp(np.arange(w) + 0.5, centres, bloom[c, j]) for j in range(6)]
                       for c in range(3)]) * 0.8
    np.testing.assert_allclose(up, expect, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("tone", TONE_MAPS)
def test_compose_matches_twin(tone):
    """The full-resolution pass without particles: tone-map, pack and decay."""
    rng = np.random.default_rng(6)
    h, w, f = 37, 61, 4
    hdr = (rng.random((3, h, w)) ** 4 * 6).astype(F)
    hdr[:, 5, :] = 0.0
    hdr[:, 6, :] = 500.0        # far past white
    hdr[:, 7, :3] = 1e-6        # decays below the flush level
    up = (rng.random((3, -(-h // f), w)) * 0.3).astype(F)
    none = (np.zeros(0, F), np.zeros(0, F), np.zeros((3, 0), F), np.zeros(0, np.int32), 0, 64,
            np.zeros((0, 4), np.int32))
    for exposure, brightness in ((1.2, 1.0), (0.3, 0.5), (8.0, 0.05), (1.0, 0.0)):
        curve = np.array(curve_params(tone, exposure, brightness), F)
        a, b = hdr.copy(), hdr.copy()
        out_a, out_b = np.zeros((h, w), np.uint32), np.zeros((h, w), np.uint32)
        K.splat_compose(*none, a, up, F(1 / f), curve, F(0.82), out_a, 5)
        R.splat_compose(*none, b, up, F(1 / f), curve, F(0.82), out_b, 5)
        assert_frames_close(out_a, out_b, atol=1)
        np.testing.assert_allclose(a, b, rtol=1e-6)
        assert (a[:, 7, :3] == 0).all()
        assert (channels(out_a)[..., 0] == 255).all()
        if brightness == 0.0:
            assert (out_a == 0xFF000000).all()


def test_encode_is_srgb_within_one_and_a_half_levels():
    t = np.concatenate([np.geomspace(1e-8, 1.0, 20001), np.linspace(0, 1, 20001)])
    err = np.abs(encode(t) - linear_to_srgb(t)) * 255
    assert err.max() < 1.5
    assert np.all(np.diff(encode(np.linspace(0, 1, 10001))) >= 0)   # monotonic
    assert encode(0.0) == 0.0 and abs(encode(1.0) - 1.0) < 1e-6


@pytest.mark.parametrize("tone", TONE_MAPS)
def test_tone_curves_are_monotonic_and_bounded(tone):
    v = np.geomspace(1e-6, 1e4, 5001)
    t = tone_curve(v, tone)
    assert np.all(np.diff(t) >= 0) and t[0] < 1e-5 and t[-1] > 0.98 and t.max() <= 1.0


def test_bloom_plan_keeps_the_glow_the_same_size_at_any_resolution():
    for h in (180, 360, 720, 1080, 2160):
        plan = bloom_plan(h * 16 // 9, h, 0.015)
        sigma_low = np.sqrt(np.sum(plan.weights * (np.arange(len(plan.weights)) - plan.radius) ** 2))
        assert abs(sigma_low * plan.factor / h - 0.015) < 0.0015
        assert abs(plan.weights.sum() - 1) < 1e-6
        assert plan.low_height * plan.factor >= h > (plan.low_height - 1) * plan.factor


def test_framing_letterboxes_and_gain_follows_pixel_density():
    fr = framing(16 / 9, 1280, 720)
    assert (fr.scale, fr.ox, fr.oy) == (720.0, 0.0, 0.0)
    fr = framing(1.0, 1280, 720)
    assert fr.scale == 720 and fr.ox == 280 and fr.oy == 0
    fr = framing(4.0, 1000, 1000)
    assert fr.scale == 250 and fr.ox == 0 and fr.oy == 375
    assert particle_gain(0.2, 720) == pytest.approx(0.2)
    assert particle_gain(0.2, 1080) == pytest.approx(0.2 * 2.25)


def test_a_render_looks_the_same_at_any_multiple_of_720_rows():
    """A particle covers the same share of the picture at any render size (its splat spreads
    splat_footprint pixels each way): 1440p and 4K frames of a swarm read as bright as 720p,
    where a fixed two-pixel splat made 4K a third darker (light squeezed into the tone curve's
    shoulder)."""
    assert [splat_footprint(s) for s in (360, 720, 1080, 1439, 1440, 2159.997, 2160, 4320)] == [1, 1, 1, 1, 2, 3, 3, 6]
    look = LookParams.from_settings(RenderSettings())
    # a world aspect written with five decimals frames 4K at 2159.997 pixels per unit
    for aspect in (16 / 9, 1.77778):
        swarm = make_swarm(30000, species_count=6, aspect=aspect, seed=3, spread=0.05)
        means = {}
        for w, h in ((1280, 720), (2560, 1440), (3840, 2160)):
            r = CpuRenderer(RenderSettings(), 6, swarm.aspect, w, h)
            for _ in range(3):
                frame = r.render(swarm, look)
            means[h] = channels(frame)[..., 1:].mean()
        assert means[720] > 3
        assert abs(means[1440] / means[720] - 1) < 0.02 and abs(means[2160] / means[720] - 1) < 0.02, (aspect, means)


def test_palette_repeats_and_is_linear():
    pal = palette_linear(("#ffffff", "#000000", "#808080"), 7)
    assert pal.shape == (7, 3)
    np.testing.assert_allclose(pal[0], 1.0)
    np.testing.assert_allclose(pal[3], 1.0)
    np.testing.assert_allclose(pal[2], 0.2158605, rtol=1e-5)   # sRGB 128 → linear


def test_whole_frames_match_the_reference_renderer():
    settings = RenderSettings()
    swarm = make_swarm(5000, species_count=6, seed=7)
    fast = CpuRenderer(settings, 6, swarm.aspect, 200, 120)
    ref = ReferenceRenderer(settings, 6, swarm.aspect, 200, 120)
    look = LookParams.from_settings(settings)
    look.warmth = 0.4
    look.species_gain[2] = 0.3
    for i in range(6):
        look.brightness = 1.0 - 0.1 * i
        a = fast.render(swarm, look)
        b = ref.render(swarm, look)
        assert_frames_close(a, b, atol=1)
        swarm.drift()
    assert (channels(a)[..., 1:] > 0).any()
