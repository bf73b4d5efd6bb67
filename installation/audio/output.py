"""The real-time driver: a PortAudio output stream whose callback is native code.

Without PortAudio, without a device, or when the device refuses, it says so in one line and
runs silent (`backend == "none"`); a background thread keeps trying, and reopens the stream
whenever it dies (a USB interface unplugged, the JACK server restarted). That thread owns every
PortAudio call that can block (initialise, open, start, abort, close, rescan): PortAudio's JACK
host API waits on the server in each of them, up to ten minutes a wait or for good, and two
threads driving one stream can leave one of them inside it for good. The caller's waits are
bounded (START_WAIT_S, CLOSE_WAIT_S, ANSWER_WAIT_S), so a hung sound server never holds up a
start, a quit or an operator's command.

The callback is a numba cfunc (native_callback.py) that reads the mailbox, runs the engine's
nogil kernel and never takes the GIL, so a busy main loop cannot make it late; it allocates
nothing and nothing inside it can raise: an unhandled error would silence PortAudio's stream
for good. The stream itself is sounddevice's (`_StreamBase` with a C callback and userdata,
the route sounddevice offers library authors), so device lookup and error messages stay its own.
"""
from __future__ import annotations

import atexit
import dataclasses
import logging
import os
import sys
import threading

import numpy as np

from .engine import Engine
from .native_callback import PA_OUTPUT_UNDERFLOW, Binding, callback as native_callback
from .params import AudioParams, Mailbox
from .settings import AudioSettings

log = logging.getLogger("installation.audio")

PORTAUDIO_HINT = ("PortAudio is not installed: install it (Debian/Ubuntu: apt install libportaudio2; "
                  "macOS: brew install portaudio; Windows: pip install sounddevice ships it)")
RETRY_S = (1.0, 2.0, 4.0, 8.0)
REAP_TIMEOUT_S = 2.0
START_WAIT_S = 10.0          # how long start() waits for the first stream before running silent
CLOSE_WAIT_S = 5.0           # how long close() waits for PortAudio to let go
ANSWER_WAIT_S = 15.0         # how long an operator's command waits for PortAudio
RESCAN_WAIT_S = 10.0         # how long the reopen thread waits for PortAudio to re-read its devices
_stranded: list = []         # (stream, binding) PortAudio never let go of: the callback's memory stays


def _dup_stderr() -> int | None:
    try:
        return os.dup(2)
    except OSError:          # started with stderr closed
        return None


# stderr as this process had it, to put back when PortAudio's initialisation (which points
# fd 2 at /dev/null while it runs) never comes back
_STDERR = _dup_stderr()


def _restore_stderr() -> None:
    if _STDERR is not None:
        try:
            os.dup2(_STDERR, 2)
        except OSError:
            pass


def _bounded(fn, seconds: float, name: str) -> tuple[bool, object, BaseException | None]:
    """fn() on a daemon thread: (finished, result, exception). A call stuck inside PortAudio
    cannot be interrupted, so the caller gives up on it instead of waiting."""
    box: list = []

    def run():
        try:
            box.append((fn(), None))
        except BaseException as exc:
            box.append((None, exc))

    t = threading.Thread(target=run, name=name, daemon=True)
    t.start()
    t.join(seconds)
    if not box:
        return False, None, None
    return True, box[0][0], box[0][1]


def _forget_portaudio() -> None:
    """PortAudio is stuck inside a call: sounddevice's exit handler (Pa_Terminate) would wait
    on the same thing at interpreter exit, so it goes; and stderr comes back."""
    _restore_stderr()
    sd = sys.modules.get("sounddevice")     # also while its import is what is stuck
    if sd is not None and hasattr(sd, "_exit_handler"):
        atexit.unregister(sd._exit_handler)


class AudioUnavailable(RuntimeError):
    """No way to make sound here; the message is one line naming what is missing."""


def load_sounddevice():
    """The sounddevice module, or AudioUnavailable naming what to install. The first import
    initialises PortAudio, which asks every host API (a hung JACK server holds it) and points
    stderr at /dev/null meanwhile, to hide ALSA's and JACK's chatter."""
    try:
        import sounddevice
    except OSError as exc:   # sounddevice raises OSError when libportaudio cannot be loaded
        raise AudioUnavailable(f"{PORTAUDIO_HINT} ({exc})") from None
    except ImportError as exc:
        raise AudioUnavailable(f"the Python package sounddevice is missing: pip install sounddevice ({exc})") from None
    except Exception as exc:  # PortAudioError: Pa_Initialize itself failed
        raise AudioUnavailable(f"PortAudio could not start ({exc})") from None
    return sounddevice


def rescan(sd) -> None:
    """Re-read PortAudio's device list (a server or device that appeared since start-up).
    Only call with no stream of ours open: PortAudio closes every stream on terminate."""
    try:
        sd._terminate()
    except Exception as exc:  # not initialised (an earlier initialise failed): initialise anyway
        log.debug("audio: could not terminate PortAudio: %s", exc)
    try:
        sd._initialize()
    except Exception as exc:  # the next rescan tries again
        log.debug("audio: could not initialise PortAudio: %s", exc)


def _outputs(sd) -> list[tuple[int, dict, str]]:
    apis = sd.query_hostapis()
    out = []
    for i, dev in enumerate(sd.query_devices()):
        if dev["max_output_channels"] > 0:
            out.append((i, dev, apis[dev["hostapi"]]["name"]))
    return out


def find_device(sd, spec: str) -> tuple[int, dict, str] | None:
    """An output device by index ("3"), by name or host API substring ("USB", "JACK"), or the
    default ("")."""
    outs = _outputs(sd)
    if not outs:
        return None
    spec = spec.strip()
    if spec.isdigit():
        for entry in outs:
            if entry[0] == int(spec):
                return entry
        return None
    if spec:
        low = spec.lower()
        for entry in outs:
            if low in entry[1]["name"].lower():
                return entry
        for entry in outs:
            if low in entry[2].lower():
                return entry
        return None
    try:
        default = sd.default.device[1]
        if default is None or default < 0:
            default = sd.query_devices(kind="output")["index"]
    except Exception:
        default = -1
    for entry in outs:
        if entry[0] == default:
            return entry
    return outs[0]


def _answered(fn, what: str, extra: float = 0.0):
    """fn() for an operator's command: its result, its exception, or AudioUnavailable when
    PortAudio has not answered in ANSWER_WAIT_S (plus `extra`, the command's own playing
    time; Ctrl-C cannot reach a call stuck inside PortAudio)."""
    wait = ANSWER_WAIT_S + extra
    finished, value, exc = _bounded(fn, wait, "audio-answer")
    if not finished:
        _forget_portaudio()
        raise AudioUnavailable(f"the audio system did not answer {what} in {wait:g} s "
                               "(a hung JACK server? jack_lsp tells; restart it)")
    if exc is not None:
        raise exc
    return value


def list_devices() -> str:
    """Text for the operator's `list-audio-devices`. Raises AudioUnavailable (one line) when
    there is no PortAudio or it does not answer: the operator's script must see a failure,
    not a listing that happens to name no device."""
    return _answered(_list_devices, "the device list")


def _list_devices() -> str:
    sd = load_sounddevice()
    rescan(sd)
    outs = _outputs(sd)
    if not outs:
        apis = ", ".join(a["name"] for a in sd.query_hostapis()) or "none"
        return f"no audio output devices (PortAudio host APIs: {apis})"
    default = find_device(sd, "")
    lines = ["output devices (use [audio] device = index or part of the name):"]
    for i, dev, api in outs:
        mark = "*" if default and default[0] == i else " "
        lines.append(f"{mark} {i:3d}  {dev['name']}  [{api}]  {dev['max_output_channels']} ch, "
                     f"{dev['default_samplerate']:.0f} Hz")
    return "\n".join(lines)


def test_tone(settings: AudioSettings, seconds: float = 2.0, frequency: float = 440.0) -> str:
    """Play A440 at -18 dBFS, first on the left channel then on the right, on the configured
    device, for the operator's `test-tone`. Raises AudioUnavailable (one line)."""
    return _answered(lambda: _test_tone(settings, seconds, frequency), "the test tone", extra=2 * max(0.1, seconds))


def _test_tone(settings: AudioSettings, seconds: float, frequency: float) -> str:
    sd = load_sounddevice()
    entry = find_device(sd, settings.device)
    if entry is None:
        rescan(sd)
        entry = find_device(sd, settings.device)
    if entry is None:
        raise AudioUnavailable(f"no audio output device{' matching ' + repr(settings.device) if settings.device else ''}; "
                               "see list-audio-devices")
    index, dev, api = entry
    channels = min(2, dev["max_output_channels"])
    rates = (settings.samplerate, int(dev["default_samplerate"]))
    total = max(0.1, float(seconds))
    last = None
    for sr in rates:
        n_total = int(total * sr)
        state = {"i": 0}
        amp = 10 ** (-18 / 20)
        fade = max(1, int(0.02 * sr))
        done = threading.Event()

        def callback(outdata, frames, _time, _status, state=state, sr=sr, n_total=n_total):
            i0 = state["i"]
            idx = np.arange(i0, i0 + frames)
            env = np.clip(np.minimum(idx + 1, n_total - idx) / fade, 0.0, 1.0) * amp
            tone = (np.sin(2 * np.pi * frequency * idx / sr) * env).astype(np.float32)
            outdata.fill(0)
            left = idx < n_total // 2
            if channels == 1:
                outdata[:, 0] = tone
            else:
                outdata[:, 0] = np.where(left, tone, 0)
                outdata[:, 1] = np.where(left, 0, tone)
            state["i"] = i0 + frames
            if state["i"] >= n_total:
                raise sd.CallbackStop

        try:
            with sd.OutputStream(device=index, samplerate=sr, channels=channels, dtype="float32",
                                 blocksize=settings.blocksize, callback=callback,
                                 finished_callback=done.set):
                done.wait(total + 2.0)
            side = "left then right" if channels == 2 else "mono"
            return f"played {total:g} s of {frequency:g} Hz at -18 dBFS ({side}) on {dev['name']} [{api}] at {sr} Hz"
        except Exception as exc:
            last = exc
    raise AudioUnavailable(f"audio device {dev['name']!r} could not play: {last}")


class AudioOutput:
    """The symphony on a real device. `start()`, then `publish()` once per tick, `stats()`,
    `close()`. Never raises for lack of sound; `backend` says what it got."""

    def __init__(self, settings: AudioSettings):
        self.settings = settings
        self._box = Mailbox(settings.volume)
        self._engines: dict[int, Engine] = {}
        self._bindings: dict[int, Binding] = {}
        self._engine: Engine | None = None
        self._binding: Binding | None = None
        self._sd = None
        self._stream = None
        self._lock = threading.Lock()          # held by whoever drives the stream; never the callback
        self._config_lock = threading.Lock()   # the engines' settings: main loop vs the reopen thread
        self._closing = threading.Event()
        self._first = threading.Event()        # the first open attempt is over
        self._thread: threading.Thread | None = None
        self._last_note = ""
        self._stuck = False                    # a PortAudio call never came back: never call it again
        self._cpu_load = 0.0                   # PortAudio's figure, where no native clock times the callback
        self.backend = "none"
        self.device_name = ""
        self.reopens = 0
        self.opened = 0
        self._driven_errors = 0

    # -- main loop side
    def start(self) -> "AudioOutput":
        if not self.settings.enabled:
            self._note("audio: disabled in the config ([audio] enabled = false); running silent")
            return self
        try:
            # The kernels compile or load here (CPU work, no PortAudio) so that the wait
            # below is PortAudio's alone.
            self._engine_for(self.settings.samplerate)
        except Exception as exc:
            self._note(f"audio: the synthesizer could not be built ({exc}); running silent")
            return self
        self._thread = threading.Thread(target=self._watch, name="audio-reopen", daemon=True)
        self._thread.start()
        if not self._first.wait(START_WAIT_S):
            _restore_stderr()           # a PortAudio stuck in its initialisation hid stderr
            self._note(f"audio: the device did not open in {START_WAIT_S:g} s; running silent until it does")
        return self

    def publish(self, params: AudioParams) -> None:
        self._box.publish(params)

    def apply_settings(self, settings: AudioSettings) -> None:
        """A scene's [audio] values from the next block on (device, rate and sizes stay). The
        new config reaches each callback through its binding's seqlock."""
        with self._config_lock:
            self.settings = dataclasses.replace(settings, enabled=self.settings.enabled, device=self.settings.device,
                                                samplerate=self.settings.samplerate, blocksize=self.settings.blocksize,
                                                limiter_lookahead_ms=self.settings.limiter_lookahead_ms)
            for sr, engine in self._engines.items():
                engine.set_settings(settings)
                self._bindings[sr].publish_config()

    @property
    def errors(self) -> int:
        """Blocks the callback could not render (silenced instead)."""
        return self._driven_errors + sum(b.errors for b in list(self._bindings.values()))

    def stats(self) -> dict:
        totals = {"audio_callbacks": 0, "audio_underflows": 0, "nonfinite_blocks": 0,
                  "audio_hits_dropped": 0, "loudness_guard_chunks": 0}
        latest = {"lufs": -200.0, "true_peak_db": -200.0, "true_peak_max_db": -200.0}
        for engine in list(self._engines.values()):
            s = engine.stats()
            for k in totals:
                totals[k] += s[k]
            if engine is self._engine:
                latest = s
        out = dict(latest)
        out.update(totals)
        out["audio_backend"] = self.backend
        out["audio_errors"] = self.errors
        out.update(self.load())
        out["audio_reopens"] = self.reopens
        out["audio_bad_params"] = self._box.bad_values
        return out

    def load(self) -> dict:
        """Callback time / block duration over the last callbacks: median and worst. Timed
        inside the callback; where no native clock exists, PortAudio's own CPU load figure."""
        binding, engine = self._binding, self._engine
        zero = {"audio_load_p50": 0.0, "audio_load_max": 0.0, "audio_callback_ms_max": 0.0}
        if binding is None or engine is None:
            return zero
        if not binding.timed:           # sampled by the reopen thread: the stream is its alone
            cpu = self._cpu_load
            return {"audio_load_p50": cpu, "audio_load_max": cpu, "audio_callback_ms_max": 0.0}
        times, frames = binding.load()
        if times.size == 0:
            return zero
        load = times / np.maximum(frames, 1) * engine.samplerate
        return {"audio_load_p50": round(float(np.median(load)), 4), "audio_load_max": round(float(load.max()), 4),
                "audio_callback_ms_max": round(float(times.max()) * 1e3, 3)}

    def close(self) -> None:
        """Stop the stream (the reopen thread does it) and wait for that at most CLOSE_WAIT_S:
        an installation that is asked to quit quits, whatever PortAudio is stuck on."""
        self._closing.set()
        if self._thread is not None:
            self._thread.join(timeout=CLOSE_WAIT_S)
            if self._thread.is_alive():
                self._note(f"audio: PortAudio did not let go of {self.device_name or 'the device'} "
                           f"in {CLOSE_WAIT_S:g} s; leaving it to the operating system")
                self._strand(self._stream)
        self.backend = "none"

    # -- the callback, driven from Python
    def _callback(self, outdata: np.ndarray, frames: int, _time, status) -> None:
        """Run the native callback once on `outdata` ((frames, channels) float32), exactly as
        PortAudio runs it, with sounddevice's CallbackFlags-like `status`. For tests that
        compare the stream's samples with the offline driver's; only while no stream is open
        (the stream itself never calls Python). A failure here is silence and an error."""
        try:
            if self._stream is not None:
                raise RuntimeError("the open stream owns the callback")
            binding = self._bindings[self._engine.samplerate]
            self._binding = binding
            binding.channels = outdata.shape[1]
            binding.call(outdata[:frames], PA_OUTPUT_UNDERFLOW if status.output_underflow else 0)
        except Exception:
            outdata.fill(0)
            self._driven_errors += 1

    # -- opening, watching, reopening (never on the audio thread)
    def _note(self, line: str, level: int = logging.WARNING) -> None:
        """Log a state change once, not once per retry."""
        if line != self._last_note:
            self._last_note = line
            log.log(level, line)

    def _engine_for(self, samplerate: int) -> Engine:
        """The engine (and its callback binding, `_bindings[samplerate]`) for this rate."""
        if samplerate not in self._engines:
            engine = Engine(self.settings, samplerate)      # compiles or loads the kernels: no lock held
            binding = Binding(engine, self._box)
            native_callback()                             # the cfunc too, before any stream exists
            with self._config_lock:                       # a scene change may have come meanwhile
                engine.set_settings(self.settings)
                binding.publish_config()
                self._bindings[samplerate] = binding
                self._engines[samplerate] = engine
        return self._engines[samplerate]

    def _open(self) -> bool:
        sd = self._sd
        spec = self.settings.device
        entry = find_device(sd, spec)
        if entry is None:
            if not self._rescan():
                return False
            entry = find_device(sd, spec)
        if entry is None:
            what = f"no audio output device matching {spec!r}" if spec else "no audio output device"
            self._note(f"audio: {what}; running silent (list-audio-devices shows what there is)")
            return False
        index, dev, api = entry
        channels = min(2, dev["max_output_channels"])
        last = None
        for sr in dict.fromkeys((self.settings.samplerate, int(dev["default_samplerate"]))):
            stream = None
            try:
                engine = self._engine_for(sr)
                binding = self._bindings[sr]
                binding.channels = channels          # no stream of this binding runs now
                stream = sd._StreamBase("output", samplerate=sr, blocksize=self.settings.blocksize, device=index,
                                        channels=channels, dtype="float32", latency="low",
                                        callback=sd._ffi.cast("PaStreamCallback *", native_callback().address),
                                        userdata=sd._ffi.cast("void *", binding.userdata))
                self._engine, self._binding = engine, binding
                stream.start()
            except Exception as exc:
                last = exc
                # an opened stream that would not start still holds the device (and may yet
                # start): it goes before the next rate is tried
                if stream is not None and not self._reap(stream):
                    return False
                continue
            self._stream = stream
            self.device_name = f"{dev['name']} ({api})"
            self.backend = self.device_name
            if self.opened:
                self.reopens += 1
            self.opened += 1
            rate_note = "" if sr == self.settings.samplerate else f" (the device refused {self.settings.samplerate} Hz)"
            self._note(f"audio: playing on {self.device_name} at {sr} Hz, {channels} ch{rate_note}", logging.INFO)
            return True
        self._note(f"audio: device {dev['name']!r} [{api}] could not be opened ({last}); running silent")
        return False

    def _try_open(self) -> bool:
        try:
            return self._open()
        except Exception as exc:     # PortAudio's device list itself failed: the next try may not
            self._note(f"audio: could not look for an output device ({exc}); running silent")
            return False

    def _rescan(self) -> bool:
        """rescan(), bounded; False when PortAudio did not come back from it."""
        finished, _, _ = _bounded(lambda: rescan(self._sd), RESCAN_WAIT_S, "audio-rescan")
        if not finished:
            self._strand(None)
            self._note(f"audio: PortAudio did not come back from re-reading its devices in {RESCAN_WAIT_S:g} s "
                       "(a hung JACK server?); running silent until the installation restarts")
        return finished

    def _close_stream(self) -> bool:
        """Abort and close our stream; False when PortAudio hung doing it."""
        stream, self._stream = self._stream, None
        return stream is None or self._reap(stream)

    def _reap(self, stream) -> bool:
        """Abort and close a stream, bounded; False when PortAudio hung doing it.

        PortAudio's JACK host API cannot let go of a stream whose server died: abort never
        returns and Pa_Terminate asserts. So the work runs on a throwaway thread, and a hang
        strands the stream."""
        def reap():
            stream.abort(ignore_errors=True)
            stream.close(ignore_errors=True)

        finished, _, _ = _bounded(reap, REAP_TIMEOUT_S, "audio-reap")
        if not finished:
            self._strand(stream)
        return finished

    def _strand(self, stream) -> None:
        """PortAudio is stuck inside a call: never call it again from this process (the reopen
        thread ends), not even from sounddevice's exit handler."""
        self._stuck = True
        _stranded.append((stream, self._binding))   # PortAudio may still hold their addresses
        _forget_portaudio()

    def _watch(self) -> None:
        """The reopen thread: PortAudio's initialisation and the first open, then a check every
        half second, then the close."""
        try:
            try:
                self._sd = load_sounddevice()
            except AudioUnavailable as exc:
                self._note(f"audio: {exc}; running silent")
                return
            with self._lock:
                if not self._closing.is_set():     # a quit while PortAudio initialised
                    self._try_open()
        finally:
            self._first.set()
        try:
            self._keep_open()
        finally:
            with self._lock:
                # also when close() gave up on this thread: an open that came back late
                # leaves a stream, which must not play on after the quit
                self._close_stream()
                self.backend = "none"

    def _keep_open(self) -> None:
        attempt = 0
        wait = 0.5
        while not self._closing.wait(wait):
            with self._lock:
                if self._closing.is_set() or self._stuck:
                    return
                stream = self._stream
                try:
                    active = stream is not None and stream.active
                    if active and not self._binding.timed:
                        self._cpu_load = round(float(stream.cpu_load), 4)
                except Exception:         # PortAudio lost the stream under us: reopen it
                    active = False
                if active:
                    attempt = 0
                    wait = 0.5
                    continue
                if stream is not None:
                    self._note(f"audio: the stream on {self.device_name} stopped; reopening")
                self.backend = "none"
                if not self._close_stream():
                    self._note(f"audio: PortAudio cannot release the dead stream on {self.device_name} "
                               "(a restarted JACK server needs a restart of the installation); running silent")
                    return
                if not self._rescan():
                    return
                if self._try_open():
                    attempt = 0
                    wait = 0.5
                else:
                    wait = RETRY_S[min(attempt, len(RETRY_S) - 1)]
                    attempt += 1
