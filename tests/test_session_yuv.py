"""The BGRA → yuv420p conversion export hands to the encoder (BT.601, limited range)."""
from __future__ import annotations

import subprocess

import numpy as np
import pytest

from installation.session import yuv
from installation.session.export import VideoWriter

from test_session_export import bgra, ffmpeg_or_skip


def planes(buf: np.ndarray, w: int, h: int):
    pw, ph = yuv.padded_size(w, h)
    n = pw * ph
    c = (pw // 2) * (ph // 2)
    return (buf[:n].reshape(ph, pw), buf[n:n + c].reshape(ph // 2, pw // 2),
            buf[n + c:].reshape(ph // 2, pw // 2))


@pytest.mark.parametrize("w,h", [(64, 48), (65, 49), (1280, 720), (3, 1)])
def test_the_kernel_equals_its_numpy_twin(w, h):
    rng = np.random.default_rng(w * h)
    frame = rng.integers(0, 1 << 32, (h, w), dtype=np.uint64).astype(np.uint32)
    out = np.full(yuv.frame_bytes(w, h), 7, np.uint8)
    yuv.bgra_to_i420(frame, out)
    np.testing.assert_array_equal(out, yuv.bgra_to_i420_reference(frame))


@pytest.mark.parametrize("rgb,want", [
    ((0, 0, 0), (16, 128, 128)),
    ((255, 255, 255), (235, 128, 128)),
    ((255, 0, 0), (81, 90, 240)),        # BT.601 primaries, limited range
    ((0, 255, 0), (145, 54, 34)),
    ((0, 0, 255), (41, 240, 110)),
])
def test_flat_colours_get_the_bt601_limited_range_values(rgb, want):
    frame = np.full((4, 6), bgra(*rgb), np.uint32)
    out = np.empty(yuv.frame_bytes(6, 4), np.uint8)
    yuv.bgra_to_i420(frame, out)
    y, u, v = planes(out, 6, 4)
    assert (int(y[0, 0]), int(u[0, 0]), int(v[0, 0])) == want
    assert (y == y[0, 0]).all() and (u == u[0, 0]).all() and (v == v[0, 0]).all()


def test_odd_sizes_repeat_the_last_column_and_row():
    frame = np.full((3, 3), bgra(0, 0, 0), np.uint32)
    frame[:, 2] = bgra(255, 255, 255)
    frame[2, :] = bgra(255, 255, 255)
    out = np.empty(yuv.frame_bytes(3, 3), np.uint8)
    yuv.bgra_to_i420(frame, out)
    y, u, v = planes(out, 3, 3)
    assert y.shape == (4, 4)
    assert (y[:, 2:] == 235).all() and (y[2:, :] == 235).all() and y[0, 0] == 16
    assert u[1, 1] == 128 and v[1, 1] == 128


def test_the_mp4_says_its_matrix_so_players_decode_the_same_colours(tmp_path, require):
    exe = ffmpeg_or_skip(require)
    with VideoWriter(tmp_path / "t.mp4", 64, 48, 30) as vw:
        for _ in range(3):
            vw.write(np.full((48, 64), bgra(200, 40, 90), np.uint32))
    r = subprocess.run([exe, "-hide_banner", "-i", str(tmp_path / "t.mp4")], capture_output=True, text=True)
    assert "yuv420p(tv, smpte170m/bt709/iec61966-2-1" in r.stderr, r.stderr[-800:]
