"""`replay --export` and `--wav`: H.264 video through the ffmpeg of the imageio-ffmpeg wheel,
WAV audio with the standard library, and a progress bar for long exports.

Frames are the renderer's (h, w) uint32 arrays whose bytes are B, G, R, A in memory; `yuv.py`
turns each into the yuv420p the mp4 stores (what every player decodes) in one numba pass, so
ffmpeg only encodes. Odd sizes are padded by one pixel. A feeder thread writes the converted
frames into ffmpeg's pipe, so the next frame is simulated and rendered while the last one
travels to the encoder.
"""
from __future__ import annotations

import os
import queue
import struct
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

from ..parallel import in_pieces
from . import yuv
from .errors import ExportError
from .settings import SessionSettings

IN_FLIGHT = 3   # converted frames between the frame loop and ffmpeg's pipe


def ffmpeg_exe() -> str:
    """The ffmpeg binary the imageio-ffmpeg wheel carries (or IMAGEIO_FFMPEG_EXE)."""
    try:
        import imageio_ffmpeg
        return imageio_ffmpeg.get_ffmpeg_exe()
    except Exception as e:  # ImportError, or RuntimeError when the wheel has no binary
        raise ExportError(f"ffmpeg is not available ({e}); install it with: "
                          "python -m pip install imageio-ffmpeg") from None


def _last_line(text: str) -> str:
    lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
    return lines[-1] if lines else "no message"


class VideoWriter:
    """Pipe BGRA frames to ffmpeg; H.264 mp4 at `fps`, with the WAV muxed in as AAC if given.

    The video has exactly the frames written; audio longer than the video is cut at its end,
    shorter audio is padded with silence. `close()` waits for ffmpeg and raises ExportError
    with ffmpeg's last message if it failed.
    """

    def __init__(self, path: str | os.PathLike, width: int, height: int, fps: float,
                 audio_wav: str | os.PathLike | None = None, settings: SessionSettings | None = None):
        s = settings or SessionSettings()
        self.path = Path(path)
        self.width, self.height, self.fps = int(width), int(height), float(fps)
        if self.width < 2 or self.height < 2 or not self.fps > 0:
            raise ExportError(f"{self.path}: bad video size {width}x{height} at {fps} fps")
        if audio_wav is not None and not Path(audio_wav).is_file():
            raise ExportError(f"{audio_wav}: no such audio file to mux into the video")
        if not self.path.parent.is_dir():
            raise ExportError(f"{self.path}: the folder {self.path.parent} does not exist")
        self.frames = 0
        # buffers go round: free → converted by write() → fed to the pipe → free again
        self._free: queue.SimpleQueue = queue.SimpleQueue()
        for _ in range(IN_FLIGHT):
            self._free.put(np.empty(yuv.frame_bytes(self.width, self.height), np.uint8))
        self._fed: queue.SimpleQueue = queue.SimpleQueue()
        self._broken = threading.Event()
        self._settings = s
        # With audio, the picture is encoded first and the sound muxed in on close, cut to the
        # exact frame count: ffmpeg's -shortest is only approximately short (it overran by
        # half a second here), and the video's frame count must decide the length.
        self._audio = Path(audio_wav) if audio_wav is not None else None
        self._tmpdir = tempfile.TemporaryDirectory(prefix="living-mosaic-video-") if self._audio else None
        self._video_path = Path(self._tmpdir.name) / "video.mp4" if self._tmpdir else self.path
        pw, ph = yuv.padded_size(self.width, self.height)
        cmd = [ffmpeg_exe(), "-hide_banner", "-nostdin", "-loglevel", "error", "-y",
               "-f", "rawvideo", "-pix_fmt", "yuv420p", "-s", f"{pw}x{ph}",
               "-framerate", f"{self.fps:g}", "-i", "pipe:0", "-map", "0:v:0"]
        cmd += ["-c:v", "libx264", "-preset", s.video_preset, "-crf", str(s.video_crf),
                "-pix_fmt", "yuv420p", *yuv.FFMPEG_TAGS, "-r", f"{self.fps:g}"]
        cmd += ["-movflags", "+faststart", str(self._video_path)]
        self.cmd = cmd
        # ffmpeg's messages go to a file, not a pipe nobody reads (a full pipe would hang it).
        self._err = tempfile.TemporaryFile()
        try:
            # its own session: a terminal's Ctrl-C goes to the whole foreground group, and an
            # encoder killed with us would take the video so far with it; we stop, it finishes
            self._proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.DEVNULL,
                                          stderr=self._err, bufsize=0, start_new_session=True)
        except OSError as e:
            self._err.close()
            raise ExportError(f"cannot start ffmpeg ({cmd[0]}): {e.strerror or e}") from None
        self._grow_pipe()
        self._closed = False
        self._feeder = threading.Thread(target=self._feed, name="export-pipe", daemon=True)
        self._feeder.start()

    def _grow_pipe(self) -> None:
        # A 64 KiB pipe makes each 1.4 MB frame (720p) 21 round trips; 1 MiB (the unprivileged
        # maximum on Linux) lets the encoder's reader take bigger bites.
        try:
            import fcntl
            fcntl.fcntl(self._proc.stdin.fileno(), getattr(fcntl, "F_SETPIPE_SZ", 1031), 1 << 20)
        except (ImportError, OSError):
            pass  # not Linux, or limited: the default pipe works, only a little slower

    def write(self, frame: np.ndarray) -> None:
        if self._closed:
            raise ExportError(f"{self.path}: write after close")
        if frame.shape != (self.height, self.width) or frame.dtype != np.uint32:
            raise ExportError(f"{self.path}: frame is {frame.dtype}{frame.shape}, expected uint32"
                              f"({self.height}, {self.width}) BGRA")
        if self._broken.is_set():
            self._fail()
        buf = self._free.get()      # waits only while the encoder is IN_FLIGHT frames behind
        with in_pieces(self.height // 2):
            yuv.bgra_to_i420(np.ascontiguousarray(frame), buf)
        self._fed.put(buf)
        self.frames += 1

    def _feed(self) -> None:
        """The feeder thread: converted frames into ffmpeg's pipe, in order. After a broken
        pipe it only hands the buffers back; write() or close() reports ffmpeg's message."""
        while True:
            buf = self._fed.get()
            if buf is None:
                return
            if not self._broken.is_set():
                try:
                    view = memoryview(buf)
                    while view.nbytes:
                        view = view[self._proc.stdin.write(view):]
                except (OSError, ValueError):   # BrokenPipeError, or the pipe closed by abort()
                    self._broken.set()
            self._free.put(buf)

    def _stop_feeder(self) -> None:
        """Let the feeder write what is queued, then end it."""
        if self._feeder.is_alive():
            self._fed.put(None)
            self._feeder.join()

    def _fail(self):
        self._stop_feeder()
        self._closed = True
        try:
            self._proc.stdin.close()
        except OSError:
            pass  # already broken: ffmpeg's own message is the one to show
        rc = self._proc.wait()
        msg = self._stderr()
        self._err.close()
        raise ExportError(f"ffmpeg failed writing {self.path} (exit {rc}): {msg}")

    def _stderr(self) -> str:
        self._err.seek(0)
        return _last_line(self._err.read().decode("utf-8", errors="replace"))

    def close(self) -> None:
        if self._closed:
            return
        self._stop_feeder()
        self._closed = True
        try:
            self._proc.stdin.close()
        except OSError:
            pass  # reported below through ffmpeg's exit status
        rc = self._proc.wait()
        msg = self._stderr()
        self._err.close()
        if rc != 0:
            raise ExportError(f"ffmpeg failed writing {self.path} (exit {rc}): {msg}")
        if self.frames == 0:
            raise ExportError(f"{self.path}: no frames were written")
        if self._audio is not None:
            try:
                mux_audio(self._video_path, self._audio, self.path, self.frames / self.fps, self._settings)
            finally:
                self._tmpdir.cleanup()

    def abort(self) -> None:
        """Stop ffmpeg without finishing the file (Ctrl-C during an export)."""
        if not self._closed:
            self._closed = True
            self._proc.kill()       # first: a feeder blocked on the pipe gets a broken pipe
            self._stop_feeder()
            self._proc.wait()
            self._err.close()

    def __enter__(self):
        return self

    def __exit__(self, exc_type, exc, tb):
        if exc_type is None:
            self.close()
        else:
            self.abort()


# AAC adds to the peaks of what it encodes (a show limited to -1 dBTP decoded at -0.79, bright
# noise at -0.16): the video's sound is this much below the show's, so that its true peak
# keeps the ceiling too.
AAC_HEADROOM_DB = 1.5


def mux_audio(video: Path, wav: Path, out: Path, duration_s: float, settings: SessionSettings | None = None) -> None:
    """Add a WAV track (AAC, AAC_HEADROOM_DB down) to an encoded video without re-encoding the
    picture; the audio is padded or cut to exactly `duration_s`, the video's length."""
    s = settings or SessionSettings()
    cmd = [ffmpeg_exe(), "-hide_banner", "-nostdin", "-loglevel", "error", "-y", "-i", str(video),
           "-i", str(wav), "-map", "0:v:0", "-map", "1:a:0", "-c:v", "copy",
           "-af", f"volume={-AAC_HEADROOM_DB}dB,apad",
           "-t", f"{duration_s:.6f}", "-c:a", "aac", "-b:a", f"{s.audio_kbps}k", "-movflags", "+faststart", str(out)]
    r = subprocess.run(cmd, capture_output=True, text=True, start_new_session=True)   # as the encoder
    if r.returncode != 0:
        raise ExportError(f"ffmpeg could not add the audio to {out}: {_last_line(r.stderr)}")


# ---- WAV ------------------------------------------------------------------------------------

_PCM, _FLOAT = 1, 3


class WavWriter:
    """Streams (n, channels) float32 blocks to a WAV file: 16-bit PCM or 32-bit float.

    Blocks are appended as they are rendered, so an hour of audio never sits in memory; the
    sizes in the header are written at `close()`. 16-bit samples are clipped to [-1, 1] and
    rounded (no dither: the synth's master bus already limits to -1 dBFS); NaN becomes 0."""

    def __init__(self, path: str | os.PathLike, samplerate: int, channels: int = 2, *, float32: bool = False):
        self.path = Path(path)
        self.samplerate, self.channels, self.float32 = int(samplerate), int(channels), bool(float32)
        self.frames = 0
        try:
            self._f = open(self.path, "wb")
        except OSError as e:
            raise ExportError(f"{self.path}: cannot write the WAV file: {e.strerror or e}") from None
        self._f.write(self._header(0))

    def _header(self, frames: int) -> bytes:
        width = 4 if self.float32 else 2
        data = frames * self.channels * width
        block = self.channels * width
        fmt = struct.pack("<HHIIHH", _FLOAT if self.float32 else _PCM, self.channels,
                          self.samplerate, self.samplerate * block, block, 8 * width)
        if self.float32:
            # Non-PCM WAV: a cbSize field and a fact chunk, as the format requires.
            fmt += struct.pack("<H", 0)
            extra = b"fact" + struct.pack("<II", 4, frames)
        else:
            extra = b""
        body = b"WAVE" + b"fmt " + struct.pack("<I", len(fmt)) + fmt + extra + b"data" + struct.pack("<I", data)
        return b"RIFF" + struct.pack("<I", len(body) + data) + body

    def write(self, block: np.ndarray) -> None:
        a = np.asarray(block, dtype=np.float32)
        if a.ndim == 1 and self.channels == 1:
            a = a[:, None]
        if a.ndim != 2 or a.shape[1] != self.channels:
            raise ExportError(f"{self.path}: audio block {a.shape}, expected (n, {self.channels})")
        if not np.isfinite(a).all():        # a NaN must not reach a loudspeaker as a full-scale click
            a = np.nan_to_num(a, nan=0.0, posinf=1.0, neginf=-1.0)
        if self.float32:
            out = a.astype("<f4", copy=False)
        else:
            out = np.rint(np.clip(a, -1.0, 1.0) * 32767.0).astype("<i2")
        self._f.write(out.tobytes())
        self.frames += a.shape[0]

    def close(self) -> None:
        if self._f.closed:
            return
        self._f.seek(0)
        self._f.write(self._header(self.frames))
        self._f.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def write_wav(path: str | os.PathLike, samples: np.ndarray, samplerate: int, *, float32: bool = False) -> None:
    """Write (n, 2) float32 samples in -1..1 as a 16-bit (default) or 32-bit float WAV."""
    a = np.asarray(samples)
    channels = a.shape[1] if a.ndim == 2 else 1
    with WavWriter(path, samplerate, channels, float32=float32) as w:
        w.write(a)


# ---- progress -------------------------------------------------------------------------------

def _clock(seconds: float) -> str:
    seconds = max(0, int(round(seconds)))
    h, rem = divmod(seconds, 3600)
    m, s = divmod(rem, 60)
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m}:{s:02d}"


class Progress:
    """A one-line progress bar with rate and ETA on stderr, redrawn at most every `every_s`.

    On a terminal the line is redrawn in place; into a log file (not a tty) a plain line is
    printed every `log_every_s`, so logs do not fill with carriage returns."""

    def __init__(self, total: int, label: str = "export", unit: str = "frames", *, stream=None,
                 every_s: float = 0.2, log_every_s: float = 10.0, clock=time.monotonic, width: int = 28):
        self.total, self.label, self.unit = max(0, int(total)), label, unit
        self.stream = stream if stream is not None else sys.stderr
        self.tty = bool(getattr(self.stream, "isatty", lambda: False)())
        self.every_s = every_s if self.tty else log_every_s
        self.clock, self.width = clock, width
        self.start = clock()
        self._last = -1e18
        self.done = 0
        self.lines = 0

    def line(self, done: int, now: float) -> str:
        elapsed = max(now - self.start, 1e-9)
        rate = done / elapsed
        frac = done / self.total if self.total else 1.0
        filled = int(round(self.width * min(frac, 1.0)))
        eta = (self.total - done) / rate if rate > 0 and self.total else 0.0
        return (f"{self.label} [{'#' * filled}{'-' * (self.width - filled)}] {100 * frac:5.1f}% "
                f"{done}/{self.total} {self.unit}  {rate:.1f}/s  elapsed {_clock(elapsed)}  ETA {_clock(eta)}")

    def update(self, done: int) -> None:
        self.done = done
        now = self.clock()
        if now - self._last < self.every_s and done < self.total:
            return
        self._last = now
        self._emit(self.line(done, now))

    def _emit(self, text: str) -> None:
        self.lines += 1
        if self.tty:
            self.stream.write("\r" + text + "\033[K")
        else:
            self.stream.write(text + "\n")
        self.stream.flush()

    def close(self) -> None:
        self._emit(self.line(self.done, self.clock()))
        if self.tty:
            self.stream.write("\n")
            self.stream.flush()


def bench_frames(width: int, height: int, count: int = 8, seed: int = 1) -> list[np.ndarray]:
    """Moving frames that look like the installation's: dark, soft colour fields and
    scattered bright points (x264's speed depends on the content; pure noise is unfairly slow)."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:height, 0:width].astype(np.float32)
    out = []
    pts = rng.random((4000, 2)) * (width, height)
    for i in range(count):
        phase = 0.3 * i
        r = 40 + 40 * np.sin(x / 97.0 + phase) * np.cos(y / 61.0)
        g = 30 + 30 * np.sin((x + y) / 143.0 - phase)
        b = 60 + 50 * np.cos(x / 53.0 - y / 89.0 + phase)
        img = np.stack([b, g, r], axis=-1)
        p = (pts + i * 2.0).astype(int) % (width, height)
        img[p[:, 1], p[:, 0]] = 255.0
        bgr = np.clip(img, 0, 255).astype(np.uint32)
        out.append((bgr[..., 0] | bgr[..., 1] << 8 | bgr[..., 2] << 16 | np.uint32(0xFF000000)).astype(np.uint32))
    return out


def measure_throughput(width: int = 1280, height: int = 720, frames: int = 120, fps: float = 60.0,
                       settings: SessionSettings | None = None) -> float:
    """Frames per second VideoWriter sustains at width x height (for `bench` and the report)."""
    pics = bench_frames(width, height)
    with tempfile.TemporaryDirectory() as d:
        w = VideoWriter(Path(d) / "bench.mp4", width, height, fps, settings=settings)
        t0 = time.perf_counter()
        for i in range(frames):
            w.write(pics[i % len(pics)])
        w.close()
        return frames / (time.perf_counter() - t0)
