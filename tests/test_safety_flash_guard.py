"""The flash guard against an independent WCAG checker: adversarial inputs fail without it
and pass with it, at the guard's 0.1° blocks and at every coarser scale it holds the rule at
(blocks of 2, 4 and 8 times as many pixels per side); calm content goes through untouched."""
from __future__ import annotations

import numpy as np
import pytest

import flash_scenes as S
from flash_checker import check_flashes
from installation.config import ConfigError
from installation.safety import flash_guard
from installation.safety.flash_guard import FlashGuard, check_flash_settings, flash_geometry
from installation.safety.settings import OVERRIDE_PHRASE, SafetySettings


def guarded(frames, fps, deg):
    n, h, w = frames.shape
    guard = FlashGuard(SafetySettings(image_width_deg=deg), w, h, fps)
    out = frames.copy()
    flags = [guard.process(f) for f in out]
    assert sum(flags) == guard.limited_frames
    return out, guard


def check(frames, fps, guard, block=None):
    g = guard.geometry
    return check_flashes(frames, fps, g.field_w, g.field_h, block or g.block)


def assert_every_scale_passes(frames, fps, guard):
    """The checker at the guard's block and at 2, 4 and 8 times it (`guard.scales`)."""
    assert guard.scales == tuple(guard.geometry.block << n for n in range(len(guard.scales)))
    for block in guard.scales:
        report = check(frames, fps, guard, block)
        assert report.ok, f"points of {block} px: {report.summary()}"


def assert_guard_fixes(frames, fps, deg, kinds=("general",)):
    out, guard = guarded(frames, fps, deg)
    before = check(frames, fps, guard)
    failing = {f.kind for f in before.failures}
    assert set(kinds) <= failing, f"the input should fail the checker ({kinds}): {before.summary()}"
    assert_every_scale_passes(out, fps, guard)
    assert guard.limited_frames > 0
    assert guard.crossings == 0
    return out, guard


def test_geometry_matches_the_wcag_reference_and_the_setting():
    # 1024 px seen as 30° wide: the 341 x 256 rectangle of WCAG's note, blocks of 0.1° = 3 px
    ref = flash_geometry(1024, 768, 30.0)
    assert (ref.block, ref.field_w, ref.field_h) == (3, 341, 256)
    g = flash_geometry(1920, 1080, 60.0)
    assert (g.block, g.field_w, g.field_h) == (3, 320, 240)
    wide = flash_geometry(1920, 1080, 120.0)   # a closer viewer: the field covers fewer pixels
    assert wide.field_w < g.field_w and wide.block == 1
    tiny = flash_geometry(64, 48, 5.0)         # a field larger than the image is the image
    assert (tiny.field_w, tiny.field_h) == (64, 48)


def test_a_narrow_viewing_angle_is_warned_about_at_start_up(tmp_path):
    """At image_width_deg = 5 (allowed: a screen seen from afar) a 10-degree field is the whole
    image: only whole-screen flashes are limited. Set wrongly, that loosens the guard without
    the override phrase, so check-config and run say it."""
    import dataclasses
    from installation.config import load_config
    from installation.ops.preflight import preflight
    from installation.safety.flash_guard import narrow_image_warning
    from installation.safety.settings import SafetySettings
    assert narrow_image_warning(SafetySettings()) is None
    assert narrow_image_warning(dataclasses.replace(SafetySettings(), image_width_deg=25.0)) is None
    cfg = load_config(env={}, sets=["safety.image_width_deg=5"])
    said = [w for w in preflight(cfg, strict=True) if "image_width_deg = 5" in w]
    assert said and "100% of the image's width" in said[0] and "nearest place a visitor can stand" in said[0]


def test_the_rule_holds_at_four_scales():
    settings = SafetySettings(image_width_deg=60.0)
    assert FlashGuard(settings, 1920, 1080, 60).scales == (3, 6, 12, 24)
    assert FlashGuard(settings, 1280, 720, 60).scales == (2, 4, 8, 16)
    assert FlashGuard(settings, 192, 108, 60).scales == (1, 2, 4, 8)
    # no level coarser than the whole image
    assert FlashGuard(settings, 2, 2, 60).scales == (1, 2)


def test_white_black_at_10hz_full_screen():
    frames = S.alternation(150, 60, 10, (1, 1, 1), (0, 0, 0), 48, 32)
    out, guard = assert_guard_fixes(frames, 60, 30.0)
    # it limits before the fourth flash: the first second keeps at most 5 full transitions
    changed = np.any(out != frames, axis=(1, 2))
    assert not changed[:12].any() and changed[12:30].any()


def test_blackout_toggled_at_8hz_over_a_bright_swarm():
    bright = S.swarm(100, 48, 64, 40, count=80, gain=1.5, seed=1)
    assert_guard_fixes(S.blackout_toggle(bright, 48, 8), 48, 20.0)


def test_saturated_red_black_alternation():
    frames = S.alternation(90, 30, 7.5, (1, 0, 0), (0, 0, 0), 48, 32)
    assert_guard_fixes(frames, 30, 30.0, kinds=("general", "red"))


def test_red_flash_below_the_luminance_threshold_is_still_caught():
    # dark red against black: a luminance change under 0.1, a red change far over 20
    frames = S.alternation(90, 30, 7.5, (0.55, 0, 0), (0, 0, 0), 48, 32)
    out, guard = assert_guard_fixes(frames, 30, 30.0, kinds=("red",))
    assert not {f.kind for f in check(frames, 30, guard).failures} & {"general"}


@pytest.mark.parametrize("colour,hold", [(False, 1), (True, 2)])
def test_random_noise_flicker(colour, hold):
    frames = S.noise(75, 64, 40, seed=3, colour=colour, hold=hold)
    assert_guard_fixes(frames, 30, 30.0)


def test_localized_patch_is_limited_and_the_rest_left_alone():
    fps, w, h = 30, 64, 40
    background = S.swarm(90, fps, w, h, count=25, seed=2)
    x0, y0, pw, ph = 6, 6, 20, 14        # 280 px: 36% of a 32 x 24 field
    frames = S.patch(background, fps, 10, x0, y0, pw, ph)
    out, guard = assert_guard_fixes(frames, fps, 20.0)
    # the coarsest regions the guard holds are 8 px squares: beyond those the patch
    # touches, calm content is not touched
    far = np.ones((h, w), bool)
    far[:y0 + ph + 8, :x0 + pw + 8] = False
    assert np.array_equal(out[:, far], frames[:, far]), "the guard touched calm content far from the patch"


def test_a_patch_under_a_quarter_of_the_field_at_every_scale_may_flash():
    fps = 30
    background = S.swarm(90, fps, 64, 40, count=25, seed=2)
    # 16 x 8 px on the 8 px grid: 17% of a 32 x 24 field, at every scale the guard measures
    frames = S.patch(background, fps, 10, 8, 8, 16, 8)
    out, guard = guarded(frames, fps, 20.0)
    assert_every_scale_passes(frames, fps, guard)
    assert guard.limited_frames == 0 and np.array_equal(out, frames)


def test_a_patch_straddling_coarse_regions_is_measured_by_them():
    # 12 x 10 px (16% of the field) across the 8 px grid: averaged over 8 px squares, the four
    # it touches all flash, a third of the field. Held at that scale, it passes every scale.
    fps = 30
    background = S.swarm(90, fps, 64, 40, count=25, seed=2)
    frames = S.patch(background, fps, 10, 6, 6, 12, 10)
    out, guard = guarded(frames, fps, 20.0)
    assert check(frames, fps, guard).ok and not check(frames, fps, guard, 8).ok
    assert guard.limited_frames > 0
    assert_every_scale_passes(out, fps, guard)


def staggered_dots(n, fps, width, height, *, density, hz, seed, size=1):
    """Dots of `size` px lighting up one after another over black, the whole image blacked
    out at `hz`: each dot reaches its 6th transition at its own time, so a guard that counts
    only its own points admits them first come, first served, scattered through the field."""
    rng = np.random.default_rng(seed)
    gy, gx = height // size, width // size
    lit_from = np.where(rng.random((gy, gx)) < density, rng.integers(0, n // 2, (gy, gx)), n)
    colour = 0.6 + 0.4 * rng.random((gy, gx, 3))
    on = S.toggles(n, fps, hz)
    out = np.full((n, height, width), S.OPAQUE, np.uint32)
    for i in np.nonzero(on)[0]:
        lit = (lit_from <= i)[..., None] * colour
        img = np.zeros((height, width, 3))
        img[:gy * size, :gx * size] = np.repeat(np.repeat(lit, size, 0), size, 1)
        out[i] = S.pack(img)
    return out


def test_scattered_flashing_points_are_held_at_coarser_scales(monkeypatch):
    fps, w, h = 30, 64, 40
    frames = staggered_dots(60, fps, w, h, density=0.6, hz=8, seed=1)
    assert_guard_fixes(frames, fps, 20.0)
    # what counting only 0.1° points lets through: a quarter of the points flash, one here
    # and one there, and 2 x 2 px squares (0.6°) flash over most of the field
    monkeypatch.setattr(flash_guard, "LEVELS", 1)
    fine_only, single = guarded(frames, fps, 20.0)
    assert single.scales == (1,)
    assert check(fine_only, fps, single).ok and not check(fine_only, fps, single, 2).ok


@pytest.mark.parametrize("make", [
    lambda: staggered_dots(48, 24, 330, 240, density=0.6, hz=8, seed=3, size=3),
    lambda: np.repeat(np.repeat(S.noise(48, 110, 80, seed=5), 3, 1), 3, 2),
])
def test_full_hd_blocks_every_scale(make):
    # 30 px per degree: blocks of 3 px as at 1920 x 1080 across 60°, a 300 x 225 field
    frames = make()
    out, guard = assert_guard_fixes(frames, 24, 11.0)
    assert guard.scales == (3, 6, 12, 24) and guard.geometry.field_w == 300


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_random_mixtures_never_fail(seed):
    frames = S.random_mix(75, 30, 56, 36, seed=seed)
    for deg in (20.0, 60.0):
        out, guard = guarded(frames, 30, deg)
        for block in guard.scales:
            report = check(out, 30, guard, block)
            assert report.ok, f"seed {seed}, {deg}°, {block} px: {report.summary()}"
        assert guard.crossings == 0


def point_series(rng, n):
    """One colour per frame, drawn to probe the transition bookkeeping: jumps, random walks,
    ramps that straddle window edges, flicker near the 0.8 bright limit, and reds."""
    kind = rng.integers(0, 5)
    if kind == 0:
        v = rng.random((n, 3))
    elif kind == 1:
        v = np.clip(0.5 + np.cumsum(rng.normal(0, 0.12, (n, 1)), 0), 0, 1) * np.ones(3)
    elif kind == 2:
        v, x, level = np.zeros((n, 3)), 0, 0.0
        while x < n:
            steps, target = int(rng.integers(1, 8)), rng.random()
            v[x:x + steps] = np.linspace(level, target, steps)[:n - x, None]
            level, x = target, x + steps
    elif kind == 3:
        v = (0.85 + 0.15 * rng.random((n, 1))) * np.ones(3)
    else:
        v = np.stack([rng.random(n), rng.random(n) * 0.2, rng.random(n) * 0.2], 1)
    return (S.pack(v)[:, None, None] * np.ones((1, 2, 2), np.uint32)).astype(np.uint32)


def test_random_single_point_series_never_fail():
    # a 2 x 2 image is all one field: every 6th transition in a second must be refused
    rng = np.random.default_rng(12)
    limited = 0
    for trial in range(120):
        fps = (24.0, 30.0, 50.0)[trial % 3]
        frames = point_series(rng, 100)
        out, guard = guarded(frames, fps, 60.0)
        report = check(out, fps, guard)
        assert report.ok, f"trial {trial}: {report.summary()}"
        assert guard.crossings == 0
        limited += guard.limited_frames > 0
    assert limited > 60      # most of these series needed limiting


def test_blocks_coarser_than_a_pixel():
    # 240 px seen as 12° wide: 0.1° = 2 px, so the guard and the checker average 2 x 2 blocks,
    # and a 10° field (200 x 150 px) is smaller than the image
    frames = S.patch(S.noise(60, 240, 160, seed=7, hold=2), 24, 8, 20, 20, 120, 90,
                     on=(1.0, 0.1, 0.1))
    out, guard = guarded(frames, 24, 12.0)
    assert guard.geometry.block == 2 and guard.geometry.field_w == 200
    assert not check(frames, 24, guard).ok
    assert_every_scale_passes(out, 24, guard)


def test_the_window_follows_ticks_when_frames_are_sparse():
    # the loop fell behind: 15 frames a second reach the screen, 4 ticks apart at 60 Hz.
    # 2 flashes a second are fine; counted per frame the window would span 4 seconds.
    frames = S.alternation(60, 15, 2, (1, 1, 1), (0, 0, 0), 24, 16)
    guard = FlashGuard(SafetySettings(image_width_deg=30.0), 24, 16, 60)
    out = frames.copy()
    assert not any(guard.process(f, tick=4 * i + 7) for i, f in enumerate(out))
    assert np.array_equal(out, frames) and check(out, 15, guard).ok
    per_frame = FlashGuard(SafetySettings(image_width_deg=30.0), 24, 16, 60)
    assert any(per_frame.process(f) for f in frames.copy())
    # and real flashing at that frame rate is still caught
    fast = S.alternation(60, 15, 5, (1, 1, 1), (0, 0, 0), 24, 16)
    guard.reset()
    out = fast.copy()
    for i, f in enumerate(out):
        guard.process(f, tick=4 * i)
    assert not check(fast, 15, guard).ok and check(out, 15, guard).ok
    with pytest.raises(ValueError, match="never decreases"):
        guard.process(out[0].copy(), tick=3)


def test_fractional_frame_rate():
    frames = S.alternation(120, 59.94, 9, (1, 1, 1), (0.1, 0.1, 0.1), 48, 32)
    assert_guard_fixes(frames, 59.94, 30.0)


@pytest.mark.parametrize("make", [
    lambda: S.drifting_gradient(90, 30, 64, 40),
    lambda: S.slow_fade(90, 30, 64, 40, hz=0.5),
    lambda: S.slow_fade(90, 30, 64, 40, hz=1.4, colour=(1.0, 0.0, 0.0)),
    lambda: S.swarm(90, 30, 64, 40, count=120, seed=4),
])
def test_calm_content_is_untouched(make):
    frames = make()
    for deg in (20.0, 60.0):
        out, guard = guarded(frames, 30, deg)
        assert guard.limited_frames == 0
        assert np.array_equal(out, frames)


def test_five_transitions_a_second_pass_through():
    # the guard keeps one transition in hand (a swing may straddle a window's start), so
    # 2.5 flashes a second over the whole screen are left alone
    frames = S.alternation(120, 30, 2.5, (1, 1, 1), (0, 0, 0), 32, 24)
    out, guard = guarded(frames, 30, 30.0)
    assert check(frames, 30, guard).ok
    assert guard.limited_frames == 0 and np.array_equal(out, frames)


def test_scene_cuts_and_brightness_steps_are_counted_like_any_change():
    # brightness stepping between two levels 5 times a second: limited like a flash
    frames = S.alternation(90, 30, 5, (0.9, 0.9, 0.9), (0.45, 0.45, 0.45), 40, 30)
    assert_guard_fixes(frames, 30, 30.0)


def test_alpha_is_kept_and_reset_starts_afresh():
    frames = S.alternation(60, 30, 10, (1, 1, 1), (0, 0, 0), 16, 12)
    frames = (frames & np.uint32(0x00FFFFFF)) | np.uint32(0x7F000000)
    out, guard = guarded(frames, 30, 30.0)
    assert np.all(out >> np.uint32(24) == 0x7F)
    assert guard.limited_frames > 0
    guard.reset()
    assert guard.limited_frames == 0
    again = frames[:8].copy()   # five transitions: allowed to a guard with no history
    assert not any(guard.process(f) for f in again)


def test_bad_frames_are_refused_with_a_clear_message():
    guard = FlashGuard(SafetySettings(), 16, 12, 30)
    with pytest.raises(ValueError, match="uint32"):
        guard.process(np.zeros((12, 16), np.float32))
    with pytest.raises(ValueError, match="16x12"):
        guard.process(np.zeros((16, 12), np.uint32))
    with pytest.raises(ValueError, match="contiguous"):
        guard.process(np.zeros((12, 32), np.uint32)[:, ::2])
    with pytest.raises(ValueError, match="fps"):
        FlashGuard(SafetySettings(), 16, 12, float("nan"))


def test_turning_the_guard_off_needs_the_exact_phrase():
    assert check_flash_settings(SafetySettings()) is None
    with pytest.raises(ConfigError, match="flash_guard_override"):
        check_flash_settings(SafetySettings(flash_guard=False))
    with pytest.raises(ConfigError):
        check_flash_settings(SafetySettings(flash_guard=False, flash_guard_override="yes"))
    with pytest.raises(ConfigError):
        FlashGuard(SafetySettings(flash_guard=False), 16, 12, 30)
    off = SafetySettings(flash_guard=False, flash_guard_override=OVERRIDE_PHRASE)
    warning = check_flash_settings(off)
    assert "OFF" in warning and "seizure" in warning


def test_a_disabled_guard_leaves_frames_alone():
    off = SafetySettings(flash_guard=False, flash_guard_override=OVERRIDE_PHRASE)
    frames = S.alternation(60, 30, 10, (1, 1, 1), (0, 0, 0), 16, 12)
    guard = FlashGuard(off, 16, 12, 30)
    out = frames.copy()
    assert not any(guard.process(f) for f in out)
    assert guard.warning and guard.limited_frames == 0
    assert np.array_equal(out, frames)
    assert not check(out, 30, guard).ok
