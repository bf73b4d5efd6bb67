"""The independent flash checker is itself checked against the definitions."""
from __future__ import annotations

import itertools

import numpy as np
import pytest

import flash_scenes as S
from flash_checker import block_average, check_flashes, could_flash, latest_chain_start, linear_rgb


def brute_latest_start(values, ok_up, ok_down, need):
    """Exhaustive search: latest start of an alternating chain of `need` changes ending at j."""
    n = len(values)
    best = np.full(n, -1)
    for idx in itertools.combinations(range(n), need + 1):
        for first_up in (True, False):
            ups = [(i % 2 == 0) == first_up for i in range(need)]
            if all((ok_up if up else ok_down)(values[a], values[b])
                   for up, a, b in zip(ups, idx, idx[1:])):
                best[idx[-1]] = max(best[idx[-1]], idx[0])
    return best


def test_chain_search_matches_exhaustive_search():
    rng = np.random.default_rng(11)
    ok_up = lambda a, b: b - a >= 0.1 and a < 0.8     # noqa: E731
    ok_down = lambda a, b: a - b >= 0.1 and b < 0.8   # noqa: E731
    for _ in range(40):
        n = int(rng.integers(3, 10))
        v = rng.choice([0.0, 0.05, 0.3, 0.75, 0.85, 0.95], size=n)
        up = {d: ((v[d:] - v[:-d] >= 0.1) & (v[:-d] < 0.8))[:, None] for d in range(1, n)}
        down = {d: ((v[:-d] - v[d:] >= 0.1) & (v[d:] < 0.8))[:, None] for d in range(1, n)}
        for need in (1, 2, 3):
            got = latest_chain_start(up, down, n, n, need)[:, 0]
            assert np.array_equal(got, brute_latest_start(v, ok_up, ok_down, need)), (v, need)


def test_three_flashes_a_second_pass_and_more_fail():
    fps = 30
    for hz, ok in ((2.9, True), (3.0, True), (3.4, False), (10.0, False)):
        frames = S.alternation(90, fps, hz, (1, 1, 1), (0, 0, 0), 24, 16)
        assert check_flashes(frames, fps, 8, 6).ok is ok, hz


def test_seven_transitions_fail_only_inside_one_second():
    fps, w, h = 30, 16, 12
    for span, ok in ((30, False), (31, True)):
        # 7 alternating steps, the first at frame 1 and the last at frame `span`
        steps = np.round(np.linspace(1, span, 7)).astype(int)
        level = np.zeros(span + 10, int)
        for s in steps:
            level[s:] = 1 - level[s - 1]
        frames = np.where(level[:, None, None] == 1, S.pack(np.ones(3)), S.pack(np.zeros(3)))
        frames = frames.astype(np.uint32) * np.ones((1, h, w), np.uint32)
        assert check_flashes(frames, fps, 8, 6).ok is ok, span


def test_the_area_rule():
    fps = 30
    calm = np.full((60, 40, 40), S.pack(np.full(3, 0.2)), np.uint32)
    small = S.patch(calm, fps, 8, 0, 0, 8, 9)      # 72 px of a 16 x 16 field: 28%
    tiny = S.patch(calm, fps, 8, 0, 0, 8, 7)       # 56 px: 22%
    assert not check_flashes(small, fps, 16, 16).ok
    assert check_flashes(tiny, fps, 16, 16).ok


def test_the_darker_state_rule():
    fps = 30
    bright = S.alternation(60, fps, 8, (1, 1, 1), (0.93, 0.93, 0.93), 16, 12)  # Y 0.85 .. 1
    assert check_flashes(bright, fps, 8, 6).ok
    lower = S.alternation(60, fps, 8, (1, 1, 1), (0.89, 0.89, 0.89), 16, 12)   # Y 0.77 .. 1
    assert not check_flashes(lower, fps, 8, 6).ok


def test_red_needs_a_saturated_red_state():
    fps = 30
    red = check_flashes(S.alternation(60, fps, 8, (0.55, 0, 0), (0, 0, 0), 16, 12), fps, 8, 6)
    assert {f.kind for f in red.failures} == {"red"}
    # orange: R/(R+G+B) < 0.8 in linear light, so no red flash (it still flashes in luminance)
    orange = check_flashes(S.alternation(60, fps, 8, (1, 0.55, 0), (0, 0, 0), 16, 12), fps, 8, 6)
    assert {f.kind for f in orange.failures} == {"general"}


def test_fine_balanced_patterns_are_exempt_at_block_scale():
    fps, n, w, h = 30, 60, 16, 12
    yy, xx = np.mgrid[0:h, 0:w]
    board = ((xx + yy) % 2).astype(bool)
    frames = np.empty((n, h, w), np.uint32)
    on, off = S.pack(np.ones(3)), S.pack(np.zeros(3))
    for i, s in enumerate(S.toggles(n, fps, 10)):
        frames[i] = np.where(board ^ s, on, off)
    assert not check_flashes(frames, fps, 8, 6, block=1).ok
    assert check_flashes(frames, fps, 8, 6, block=2).ok


@pytest.mark.parametrize("seed", [0, 1])
def test_skipping_points_that_cannot_flash_changes_nothing(seed):
    # mixtures of flashing patches, noise and calm drifting dots: many points pruned, some not
    fps = 30
    frames = np.concatenate([S.random_mix(45, fps, 40, 28, seed=seed),
                             S.swarm(45, fps, 40, 28, count=30, seed=seed)], axis=2)
    pruned_some = False
    for block in (1, 2, 3):
        fast = check_flashes(frames, fps, 20, 14, block)
        full = check_flashes(frames, fps, 20, 14, block, prune=False)
        assert fast.failures == full.failures and fast.worst == full.worst, block
        assert fast.failures
        rgb = block_average(linear_rgb(frames), block)
        sig = 0.2126 * rgb[..., 0] + 0.7152 * rgb[..., 1] + 0.0722 * rgb[..., 2]
        kept = could_flash(sig.reshape(len(frames), -1), fps + 1, 7, 0.1)
        pruned_some |= 0 < kept.sum() < kept.size
    assert pruned_some
