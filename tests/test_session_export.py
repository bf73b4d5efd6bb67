"""Video and audio export through the real ffmpeg of the imageio-ffmpeg wheel."""
from __future__ import annotations

import io
import re
import subprocess
import time
import wave

import numpy as np
import pytest

from installation.session.errors import ExportError
from installation.session.export import Progress, VideoWriter, WavWriter, write_wav


def ffmpeg_or_skip(require) -> str:
    try:
        import imageio_ffmpeg
        exe = imageio_ffmpeg.get_ffmpeg_exe()
    except Exception:
        exe = None
    require(exe is not None, "the imageio-ffmpeg wheel with its ffmpeg binary (pip install imageio-ffmpeg)")
    return exe


def probe(exe: str, path) -> dict:
    """Decode every frame (ffprobe is not in the wheel) and read what ffmpeg reports."""
    r = subprocess.run([exe, "-hide_banner", "-nostdin", "-i", str(path), "-map", "0:v:0", "-f", "null", "-"],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr[-2000:]
    frames = int(re.findall(r"frame=\s*(\d+)", r.stderr)[-1])
    h, m, s = re.search(r"Duration: (\d+):(\d+):([\d.]+)", r.stderr).groups()
    video = re.search(r"Stream #0:\d.*Video: (\w+).*?, (\w+)\(?.*?, (\d+)x(\d+)", r.stderr)
    return {"frames": frames, "duration": int(h) * 3600 + int(m) * 60 + float(s),
            "codec": video.group(1), "pix_fmt": video.group(2), "size": (int(video.group(3)), int(video.group(4))),
            "audio": re.search(r"Stream #0:\d.*Audio: (\w+)", r.stderr)}


def bgra(r: int, g: int, b: int) -> np.uint32:
    return np.uint32(0xFF000000 | r << 16 | g << 8 | b)     # memory order B, G, R, A


def test_frames_and_audio_make_an_h264_mp4_of_the_right_length(tmp_path, require):
    exe = ffmpeg_or_skip(require)
    fps, n, w, h = 30, 45, 96, 64
    sr = 48000
    t = np.arange(int(sr * n / fps)) / sr
    tone = (0.3 * np.sin(2 * np.pi * 440 * t)).astype(np.float32)
    write_wav(tmp_path / "a.wav", np.stack([tone, tone], axis=1), sr)
    out = tmp_path / "out.mp4"
    with VideoWriter(out, w, h, fps, audio_wav=tmp_path / "a.wav") as vw:
        for i in range(n):
            frame = np.full((h, w), bgra(4 * i, 128, 255 - 4 * i), dtype=np.uint32)
            vw.write(frame)
    info = probe(exe, out)
    assert info["frames"] == n
    assert abs(info["duration"] - n / fps) < 0.05
    assert (info["codec"], info["pix_fmt"], info["size"]) == ("h264", "yuv420p", (w, h))
    assert info["audio"] is not None and info["audio"].group(1) == "aac"


def test_longer_audio_never_lengthens_the_video(tmp_path, require):
    exe = ffmpeg_or_skip(require)
    write_wav(tmp_path / "long.wav", np.zeros((48000 * 3, 2), np.float32), 48000)
    with VideoWriter(tmp_path / "v.mp4", 64, 64, 60, audio_wav=tmp_path / "long.wav") as vw:
        for _ in range(30):
            vw.write(np.zeros((64, 64), np.uint32))
    info = probe(exe, tmp_path / "v.mp4")
    assert info["frames"] == 30 and abs(info["duration"] - 0.5) < 0.05


def test_colours_keep_their_channels_and_odd_sizes_are_padded(tmp_path, require):
    ffmpeg_or_skip(require)
    import imageio_ffmpeg
    w, h = 65, 49
    frame = np.empty((h, w), np.uint32)
    frame[:, : w // 3] = bgra(230, 20, 20)         # red
    frame[:, w // 3: 2 * w // 3] = bgra(20, 230, 20)
    frame[:, 2 * w // 3:] = bgra(20, 20, 230)      # blue
    with VideoWriter(tmp_path / "c.mp4", w, h, 25) as vw:
        for _ in range(5):
            vw.write(frame)
    gen = imageio_ffmpeg.read_frames(str(tmp_path / "c.mp4"))
    meta = next(gen)
    assert tuple(meta["size"]) == (66, 50)
    rgb = np.frombuffer(next(gen), np.uint8).reshape(50, 66, 3).astype(int)
    gen.close()
    for x, want in ((10, (230, 20, 20)), (32, (20, 230, 20)), (55, (20, 20, 230))):
        assert np.abs(rgb[24, x] - want).max() < 16, (x, rgb[24, x])


def test_a_written_frame_is_kept_as_it_was_while_the_caller_reuses_its_buffer(tmp_path, require):
    """write() returns before ffmpeg has the frame (the renderer then draws the next one into
    the same array): what was written must be what is encoded, frame by frame."""
    ffmpeg_or_skip(require)
    import imageio_ffmpeg
    w, h = 64, 48
    frame = np.empty((h, w), np.uint32)
    colours = [(230, 20, 20), (20, 230, 20), (20, 20, 230)] * 4
    with VideoWriter(tmp_path / "r.mp4", w, h, 30) as vw:
        for c in colours:
            frame[:] = bgra(*c)
            vw.write(frame)
    gen = imageio_ffmpeg.read_frames(str(tmp_path / "r.mp4"))
    next(gen)
    got = [np.frombuffer(f, np.uint8).reshape(h, w, 3)[24, 32].astype(int) for f in gen]
    assert len(got) == len(colours)
    for rgb, want in zip(got, colours):
        assert np.abs(rgb - want).max() < 24, (rgb, want)


def test_ffmpeg_failure_and_bad_frames_are_one_line_errors(tmp_path, require):
    ffmpeg_or_skip(require)
    vw = VideoWriter(tmp_path / "x.not-a-format", 64, 64, 30)
    with pytest.raises(ExportError) as e:
        for _ in range(200):                        # ffmpeg exits at once; the pipe breaks
            vw.write(np.zeros((64, 64), np.uint32))
        vw.close()
    assert "ffmpeg failed" in str(e.value) and "\n" not in str(e.value)
    with pytest.raises(ExportError, match="does not exist"):
        VideoWriter(tmp_path / "no" / "dir.mp4", 64, 64, 30)
    with pytest.raises(ExportError, match="no such audio"):
        VideoWriter(tmp_path / "a.mp4", 64, 64, 30, audio_wav=tmp_path / "missing.wav")
    with VideoWriter(tmp_path / "ok.mp4", 64, 64, 30) as vw:
        with pytest.raises(ExportError, match="expected uint32"):
            vw.write(np.zeros((64, 64, 4), np.uint8))
        vw.write(np.zeros((64, 64), np.uint32))


def test_abort_ends_the_encoder_and_the_feeder_at_once(tmp_path, require):
    """Ctrl-C during an export: frames still queued for the pipe are dropped, nothing hangs."""
    ffmpeg_or_skip(require)
    vw = VideoWriter(tmp_path / "a.mp4", 640, 480, 30)
    for _ in range(10):
        vw.write(np.zeros((480, 640), np.uint32))
    t0 = time.monotonic()
    vw.abort()
    assert time.monotonic() - t0 < 5.0
    assert not vw._feeder.is_alive() and vw._proc.poll() is not None
    vw.close()                                  # after abort: nothing more to do, no error


def test_wav_16_bit_and_float(tmp_path):
    from scipy.io import wavfile
    rng = np.random.default_rng(3)
    x = rng.uniform(-1.2, 1.2, size=(4801, 2)).astype(np.float32)
    write_wav(tmp_path / "i16.wav", x, 48000)
    with wave.open(str(tmp_path / "i16.wav")) as wf:
        assert (wf.getnchannels(), wf.getsampwidth(), wf.getframerate(), wf.getnframes()) == (2, 2, 48000, 4801)
        pcm = np.frombuffer(wf.readframes(4801), "<i2").reshape(-1, 2)
    assert np.abs(pcm / 32767.0 - np.clip(x, -1, 1)).max() <= 0.5 / 32767 + 1e-7
    with WavWriter(tmp_path / "f32.wav", 44100, 2, float32=True) as ww:   # streamed in blocks
        for block in np.array_split(x, 7):
            ww.write(block)
    sr, back = wavfile.read(tmp_path / "f32.wav")
    assert sr == 44100 and back.dtype == np.float32 and np.array_equal(back, x)


def test_progress_line_is_throttled_and_has_an_eta():
    now = [0.0]
    out = io.StringIO()
    p = Progress(1000, "export", stream=out, log_every_s=5.0, clock=lambda: now[0])
    for i in range(1, 1001):
        now[0] = i * 0.02                          # 50 frames/s
        p.update(i)
    p.close()
    lines = out.getvalue().splitlines()
    assert 4 <= len(lines) <= 6                    # 20 s at one line per 5 s, plus the last
    for ln in lines:                               # every line: the rate and a consistent ETA
        done = int(re.search(r"(\d+)/1000 frames", ln).group(1))
        m, s = map(int, re.search(r"ETA (\d+):(\d+)", ln).groups())
        assert "50.0/s" in ln and abs(60 * m + s - (1000 - done) / 50) <= 0.5
    assert lines[-1].startswith("export [" + "#" * 28 + "] 100.0% 1000/1000 frames") and "ETA 0:00" in lines[-1]
    half = Progress(100, stream=io.StringIO(), clock=lambda: 10.0)
    half.start = 0.0
    assert "ETA 0:10" in half.line(50, 10.0)


def test_the_video_s_sound_keeps_the_true_peak_ceiling(tmp_path, require):
    """AAC adds to the peaks of what it encodes: a show limited to -1 dBTP came out of the
    export at -0.79 dBTP (this harsher noise: at -0.16). The video's sound is muxed with
    headroom (AAC_HEADROOM_DB)."""
    from scipy import signal
    from installation.audio.settings import AudioSettings
    from installation.session.export import AAC_HEADROOM_DB, mux_audio
    exe = ffmpeg_or_skip(require)
    sr, seconds = 48000, 3.0
    rng = np.random.default_rng(4)
    # dense, bright and limited to the ceiling: what a surge at full volume sends to the bus
    x = signal.lfilter([1.0], [1.0, -0.6], rng.standard_normal((int(sr * seconds), 2)), axis=0)
    ceiling = 10 ** (AudioSettings().ceiling_dbtp / 20)
    x *= ceiling / max(np.abs(signal.resample_poly(x[:, c], 4, 1)).max() for c in range(2))
    write_wav(tmp_path / "show.wav", x.astype(np.float32), sr, float32=True)
    with VideoWriter(tmp_path / "v.mp4", 64, 64, 60) as vw:
        for _ in range(int(60 * seconds)):
            vw.write(np.zeros((64, 64), np.uint32))
    mux_audio(tmp_path / "v.mp4", tmp_path / "show.wav", tmp_path / "out.mp4", seconds)
    r = subprocess.run([exe, "-hide_banner", "-nostdin", "-loglevel", "error", "-i", str(tmp_path / "out.mp4"),
                        "-map", "0:a:0", "-f", "f32le", "-ac", "2", "-ar", str(sr), "-"], capture_output=True, timeout=120)
    assert r.returncode == 0, r.stderr[-2000:]
    y = np.frombuffer(r.stdout, np.float32).reshape(-1, 2).astype(np.float64)
    peak_db = 20 * np.log10(max(np.abs(signal.resample_poly(y[:, c], 4, 1)).max() for c in range(2)))
    assert peak_db <= AudioSettings().ceiling_dbtp, peak_db
    assert peak_db > AudioSettings().ceiling_dbtp - AAC_HEADROOM_DB - 0.5     # not muted to get there
