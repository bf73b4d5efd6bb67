"""A real stream: PortAudio's JACK host API against JACK's dummy backend, played by the
native callback (a numba cfunc that never takes the GIL).

The fixture uses the JACK server already running (CI starts `jackd --no-realtime -d dummy
-r 48000 -p 256`), or starts that command itself under a private server name and points
PortAudio's JACK client at it with JACK_DEFAULT_SERVER. The test that kills a server only
ever kills one it started for itself.
"""
from __future__ import annotations

import ctypes
import dataclasses
import os
import shutil
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest

from installation.audio import output as audio_output
from installation.audio import params as P
from installation.audio.jitcache import ensure_fresh_cache
from installation.audio.output import AudioOutput, list_devices, load_sounddevice, rescan
from installation.audio.params import AudioParams
from installation.audio.settings import AudioSettings

ensure_fresh_cache()
# A call stuck inside PortAudio cannot be interrupted by a signal: the thread method ends the
# run with every thread's stack printed, instead of leaving CI to hang until its own limit.
pytestmark = [pytest.mark.audio, pytest.mark.timeout(240, method="thread")]
ROOT = Path(__file__).resolve().parents[1]
SERVER = f"living-mosaic-test-{os.getpid()}"
JACKD = ["jackd", "-n", SERVER, "--no-realtime", "-d", "dummy", "-r", "48000", "-p", "256"]


def _server_up(name: str) -> bool:
    env = dict(os.environ, JACK_DEFAULT_SERVER=name, JACK_NO_START_SERVER="1")
    try:
        return subprocess.run(["jack_lsp"], env=env, capture_output=True, timeout=5).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


# resolved here, not in the forked child: a lookup there could wait on a loader lock that
# another thread of this process held at the fork
_prctl = ctypes.CDLL(None, use_errno=True).prctl if sys.platform.startswith("linux") else None


def _die_with_parent() -> None:
    """In the child: SIGTERM when the test process ends, also by os._exit (pytest-timeout's
    thread method), so no private server outlives the run."""
    _prctl(1, signal.SIGTERM)                  # PR_SET_PDEATHSIG


def start_jackd(name: str) -> subprocess.Popen:
    proc = subprocess.Popen(["jackd", "-n", name] + JACKD[3:], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                            preexec_fn=_die_with_parent if _prctl is not None else None)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"jackd exited: {proc.stderr.read().decode(errors='replace')[-300:]}")
        if _server_up(name):
            return proc
        time.sleep(0.1)
    proc.terminate()
    raise RuntimeError("jackd did not come up in 10 s")


@pytest.fixture(scope="module")
def jack(request):
    from conftest import need
    need(shutil.which("jackd") is not None and shutil.which("jack_lsp") is not None,
         "JACK (apt install jackd2) for the real-stream tests")
    try:
        sd = load_sounddevice()
    except Exception as exc:
        need(False, f"PortAudio: {exc}")
    saved = {k: os.environ.get(k) for k in ("JACK_DEFAULT_SERVER", "JACK_NO_START_SERVER")}
    # a server already running (CI starts the default one) is used as it is
    name = saved["JACK_DEFAULT_SERVER"] or "default"
    proc = None
    if not _server_up(name):
        name = SERVER
        proc = start_jackd(SERVER)
    os.environ["JACK_DEFAULT_SERVER"] = name
    os.environ["JACK_NO_START_SERVER"] = "1"
    rescan(sd)
    apis = [a["name"] for a in sd.query_hostapis()]
    try:
        need(any("JACK" in a for a in apis), f"PortAudio with its JACK host API (host APIs here: {apis})")
        yield sd
    finally:
        # Drop PortAudio's JACK client while the server still runs: a client whose server
        # died cannot be terminated cleanly (see output.py). Bounded: a PortAudio left stuck
        # by a failed test must fail the teardown, not hang the suite.
        terminated = audio_output._bounded(sd._terminate, 20.0, "test-terminate")[0]
        if not terminated:                     # nor may it hang the interpreter's exit
            audio_output._forget_portaudio()
        if proc is not None:
            proc.terminate()
            proc.wait(timeout=10)
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
        assert terminated, "PortAudio did not terminate in 20 s: a stream of these tests is stuck in it"
        sd._initialize()


def test_stream_calls_back_at_real_time_rate_without_underflow(jack):
    from conftest import need
    s = AudioSettings(device="JACK")
    out = AudioOutput(s).start()
    windows = []
    try:
        assert "JACK" in out.stats()["audio_backend"]
        p = AudioParams()
        p.set_mood(0.4, 0.6, 0.5, 0.5, 8)
        p.set_texture(0.6, 0.5, 0.4)
        for i in range(8):
            p.set_voice(i, True, i / 8, (i * 3 % 8) / 8, 0.3, 0.6, 0.6, i, i / 3.5 - 1)

        def pump(seconds):
            end = time.monotonic() + seconds
            while time.monotonic() < end:
                out.publish(p)
                time.sleep(1 / 60)

        pump(0.5)                                   # the first callbacks of a fresh client
        # A few seconds, in windows: a non-realtime JACK server on a busy machine has xruns
        # of its own (it is simply not scheduled), so one clean window is the evidence.
        for _ in range(5):
            a, t0 = out.stats(), time.monotonic()
            pump(2.0)
            b, t1 = out.stats(), time.monotonic()
            windows.append(((b["audio_callbacks"] - a["audio_callbacks"]) * s.blocksize / (t1 - t0),
                            b["audio_underflows"] - a["audio_underflows"], b))
            if windows[-1][1] == 0:
                break
    finally:
        out.close()
    rate, underflows, b = windows[-1]
    assert abs(rate - 48000) / 48000 < 0.05, rate
    assert b["audio_errors"] == 0 and b["nonfinite_blocks"] == 0
    assert b["lufs"] > -60 and b["true_peak_max_db"] <= s.ceiling_dbtp     # it made sound, within bounds
    assert b["audio_load_p50"] < 0.5                                      # our share of each block
    assert out.stats()["audio_backend"] == "none"                        # after close
    if underflows:
        load = os.getloadavg()[0]
        cores = os.cpu_count() or 1
        assert load > cores, f"underflows in every window on an idle machine: {[w[1] for w in windows]}"
        need(False, f"a clean window: the machine is oversubscribed (load {load:.1f} on {cores} cores), "
                    f"underflows per 2 s window {[w[1] for w in windows]}")


def _voices(p: AudioParams, n: int = 64) -> AudioParams:
    p.set_mood(0.4, 0.8, 0.5, 0.8, n)
    p.set_texture(0.8, 0.7, 0.4)
    for i in range(n):
        p.set_voice(i, True, (i * 7 % n) / n, (i * 3 % n) / n, 0.3, 0.7, 0.7, i % 8, i / (n / 2) - 1)
    return p


def _window(out, seconds, work):
    """(callback rate in Hz of frames, underflows) over `seconds` of `work()` in a loop that
    publishes about once per tick."""
    p = _voices(AudioParams(0.8))
    a, t0 = out.stats(), time.monotonic()
    next_pub = t0
    while time.monotonic() - t0 < seconds:
        if time.monotonic() >= next_pub:
            out.publish(p)
            next_pub += 1 / 60
        work()
    b, t1 = out.stats(), time.monotonic()
    return ((b["audio_callbacks"] - a["audio_callbacks"]) * out.settings.blocksize / (t1 - t0),
            b["audio_underflows"] - a["audio_underflows"])


def _hold_gil_sleeping(_usleep=[]):
    """Sleep 20 ms WITHOUT releasing the GIL (a PyDLL call keeps it): the whole interpreter
    stops, and no CPU is burnt, so the machine's load cannot be what the callback suffers."""
    if not _usleep:
        _usleep.append(ctypes.PyDLL(None).usleep)
    _usleep[0](20000)


def _python_busy():
    x = 0
    for k in range(2000):
        x += k * k


def test_the_callback_keeps_real_time_while_the_main_thread_holds_the_gil(jack):
    """Measured with the old Python callback on this test: with the GIL held it got 18 % of
    its callbacks (8,570 frames/s) and 45-48 underflows per 2 s window; with a pure-Python
    busy loop about 140 underflows per 2 s window."""

    def until_clean(work, tries):
        windows = []
        for _ in range(tries):
            windows.append(_window(out, 2.0, work))
            if windows[-1][1] == 0:
                break
        return windows

    out = AudioOutput(AudioSettings(device="JACK")).start()
    try:
        assert "JACK" in out.stats()["audio_backend"]
        _window(out, 0.5, lambda: time.sleep(0.002))        # the first callbacks of a fresh client
        held = until_clean(_hold_gil_sleeping, 3)
        busy = until_clean(_python_busy, 5)
        s = out.stats()
    finally:
        out.close()
    assert s["audio_errors"] == 0 and s["nonfinite_blocks"] == 0
    # The interpreter frozen: callbacks keep coming (a JACK xrun drops a cycle or two, not
    # four out of five) ...
    assert all(rate > 0.85 * 48000 for rate, _ in held + busy), (held, busy)
    # ... and underflows stay at the machine's own xruns: a non-realtime JACK server on a
    # busy 2-core machine drops a few cycles a window (0-7 measured under load 3), where the
    # Python callback lost 45-140 a window to the GIL. The best window decides, so a moment
    # of someone else's load cannot fail it; a callback that needs the GIL fails every one.
    for name, windows in (("GIL held", held), ("busy", busy)):
        best = min(u for _, u in windows)
        assert best <= 8, f"{name}: underflows per 2 s window {[u for _, u in windows]}"


def test_published_parameters_and_settings_reach_the_native_callback(jack):
    s = AudioSettings(device="JACK")
    out = AudioOutput(s).start()
    p = _voices(AudioParams(0.8))

    def pump(seconds):
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            out.publish(p)
            time.sleep(1 / 60)
        return out.stats()

    try:
        loud = pump(1.5)
        assert loud["lufs"] > -50 and loud["true_peak_max_db"] <= s.ceiling_dbtp
        # bad numbers from the main loop: counted by the mailbox, never heard
        p.data[P.VOICES + 3] = np.nan
        p.data[P.AROUSAL] = np.inf
        bad = pump(0.3)
        assert bad["audio_bad_params"] >= 2 and bad["nonfinite_blocks"] == 0
        p = _voices(AudioParams(0.8))
        # a scene's settings that make the engine produce NaN: silent blocks, counted, and
        # the stream plays on
        out.apply_settings(dataclasses.replace(s, voice_gain=float("nan")))
        nan = pump(0.3)
        assert nan["nonfinite_blocks"] > bad["nonfinite_blocks"]
        # settings that make a kernel raise (a division by zero): silence, counted, and the
        # stream plays on
        out.apply_settings(dataclasses.replace(s, limiter_release_ms=0.0))
        err = pump(0.3)
        assert err["audio_errors"] > 0
        out.apply_settings(s)
        back = pump(0.5)
        assert back["audio_callbacks"] - err["audio_callbacks"] > 50
        assert back["audio_errors"] - err["audio_errors"] <= 2      # the block in flight at most
        assert "JACK" in back["audio_backend"] and back["audio_reopens"] == 0
        # volume 0: the short-term loudness (a 3 s window) falls to near silence
        p.volume = 0.0
        quiet = pump(3.5)
        assert quiet["lufs"] < -70, quiet["lufs"]
        p.volume = 0.8
        assert pump(1.0)["lufs"] > -50
    finally:
        out.close()


def test_a_stopped_stream_is_reopened_and_a_closed_output_can_open_again(jack):
    s = AudioSettings(device="JACK")
    out = AudioOutput(s).start()
    p = AudioParams()
    try:
        out.publish(p)
        time.sleep(0.5)
        before = out.stats()["audio_callbacks"]
        assert before > 20
        with out._lock:                           # one thread drives a stream at a time, as in the output:
            out._stream.abort()                   # PortAudio's JACK API hangs when two abort one stream
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and out.reopens == 0:
            out.publish(p)
            time.sleep(0.05)
        assert out.reopens == 1
        time.sleep(0.5)
        st = out.stats()
        assert st["audio_callbacks"] > before + 20 and "JACK" in st["audio_backend"]
        assert st["audio_errors"] == 0
    finally:
        out.close()
    assert out.stats()["audio_backend"] == "none"
    again = AudioOutput(s).start()
    try:
        time.sleep(0.5)
        assert again.stats()["audio_callbacks"] > 20 and "JACK" in again.stats()["audio_backend"]
    finally:
        again.close()


def test_operator_commands_see_and_play_on_jack(jack):
    text = list_devices()
    assert "JACK" in text and "system" in text
    msg = audio_output.test_tone(AudioSettings(device="JACK"), seconds=0.3)
    assert msg.startswith("played") and "JACK" in msg


DEATH_SCRIPT = textwrap.dedent("""
    import logging, os, subprocess, sys, time
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    name = sys.argv[1]
    os.environ["JACK_DEFAULT_SERVER"] = name
    os.environ["JACK_NO_START_SERVER"] = "1"
    sys.path.insert(0, sys.argv[2])
    jack = subprocess.Popen(["jackd", "-n", name, "--no-realtime", "-d", "dummy", "-r", "48000", "-p", "256"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    env = dict(os.environ)
    for _ in range(100):
        if subprocess.run(["jack_lsp"], env=env, capture_output=True).returncode == 0:
            break
        time.sleep(0.1)
    from installation.audio.output import AudioOutput, rescan, load_sounddevice
    from installation.audio.params import AudioParams
    from installation.audio.settings import AudioSettings
    rescan(load_sounddevice())
    out = AudioOutput(AudioSettings(device="JACK")).start()
    p = AudioParams()
    for _ in range(60):
        out.publish(p); time.sleep(1 / 60)
    before = out.stats()["audio_callbacks"]
    jack.terminate(); jack.wait()
    for _ in range(200):
        out.publish(p); time.sleep(1 / 60)
    print("STATS", before, out.stats()["audio_backend"], flush=True)
    out.close()
    print("CLOSED", flush=True)
""")


def test_a_dying_jack_server_never_hangs_or_crashes_the_installation(jack, tmp_path):
    """In its own process: PortAudio cannot recover a JACK client whose server died, so the
    output must notice, say so once, carry on silent, and still close and exit cleanly."""
    script = tmp_path / "death.py"
    script.write_text(DEATH_SCRIPT)
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    r = subprocess.run([sys.executable, str(script), SERVER + "-death", str(ROOT)], env=env,
                       capture_output=True, text=True, timeout=90)
    assert r.returncode == 0, r.stderr[-2000:]
    assert "CLOSED" in r.stdout
    stats = r.stdout.split("STATS", 1)[1].split()
    assert int(stats[0]) > 50 and stats[1] == "none"
    log = r.stderr
    assert "playing on system (JACK" in log
    assert "stopped" in log and "running silent" in log


HUNG_SCRIPT = textwrap.dedent("""
    import logging, os, signal, sys, time
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    name, root, jack_pid, when = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
    os.environ["JACK_DEFAULT_SERVER"] = name
    os.environ["JACK_NO_START_SERVER"] = "1"
    sys.path.insert(0, root)
    from installation.audio import output
    from installation.audio.params import AudioParams
    from installation.audio.settings import AudioSettings
    output.START_WAIT_S, output.CLOSE_WAIT_S, output.ANSWER_WAIT_S = 3.0, 2.0, 2.0
    if when != "unlisted":                     # the JACK device is listed while the server answers
        output.rescan(output.load_sounddevice())
    os.kill(jack_pid, signal.SIGSTOP)          # then the server hangs
    if when == "tone":                         # the operator's test tone, alone in its process
        t0 = time.monotonic()
        try:
            print("TONE played", output.test_tone(AudioSettings(device="JACK"), seconds=0.3), flush=True)
        except output.AudioUnavailable as exc:
            print("TONE", time.monotonic() - t0, exc, flush=True)
        sys.exit(0)                            # and the exit must not wait on PortAudio
    t0 = time.monotonic()
    out = output.AudioOutput(AudioSettings(device="JACK")).start()
    out.publish(AudioParams())
    print("START", time.monotonic() - t0, out.stats()["audio_backend"], flush=True)
    t0 = time.monotonic()
    out.close()
    print("CLOSE", time.monotonic() - t0, flush=True)
    t0 = time.monotonic()
    from installation import cli
    status = cli.main(["list-audio-devices"])   # as the operator types it: one line, exit 2
    print("LIST", time.monotonic() - t0, status, flush=True)
""")


def _run_hung(tmp_path, when: str) -> tuple[subprocess.CompletedProcess, float]:
    """HUNG_SCRIPT against a private server it stops; the result and its wall time."""
    script = tmp_path / "hung.py"
    script.write_text(HUNG_SCRIPT)
    name = f"{SERVER}-hung-{when}"
    server = start_jackd(name)
    t0 = time.monotonic()
    try:
        r = subprocess.run([sys.executable, str(script), name, str(ROOT), str(server.pid), when],
                           env=dict(os.environ, PYTHONPATH=str(ROOT)), capture_output=True, text=True, timeout=90)
        return r, time.monotonic() - t0
    finally:
        # woken and terminated, not killed: a killed jackd keeps its slot in JACK's server
        # registry, and after eight of them no server starts on this machine
        server.send_signal(signal.SIGCONT)
        server.terminate()
        try:
            server.wait(timeout=10)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait(timeout=10)


@pytest.mark.parametrize("when", ["listed", "unlisted"])
def test_a_hung_sound_server_never_holds_up_start_quit_or_an_operator(jack, tmp_path, when):
    """A JACK server that stops answering (here: SIGSTOP) leaves PortAudio waiting inside its
    initialisation (the import of sounddevice) or inside open, for good or ten minutes a
    call. The installation must still start (silent, saying so where the operator sees it:
    PortAudio's initialisation points stderr at /dev/null while it runs), quit on time, and
    the operator's device list must answer."""
    r, _ = _run_hung(tmp_path, when)
    assert r.returncode == 0, r.stderr[-2000:]
    start = r.stdout.split("START", 1)[1].split()
    close = r.stdout.split("CLOSE", 1)[1].split()
    listing = r.stdout.split("LIST", 1)[1].split()
    assert float(start[0]) < 3.0 + 2 and start[1] == "none", r.stdout
    assert float(close[0]) < 2.0 + 2, r.stdout
    assert float(listing[0]) < 2.0 + 2, r.stdout
    assert "did not open in 3 s" in r.stderr, r.stderr[-2000:]
    assert listing[1] == "2", r.stdout
    assert "error: the audio system did not answer the device list" in r.stderr, r.stderr[-2000:]


def test_a_hung_sound_server_never_holds_up_the_test_tone_or_its_exit(jack, tmp_path):
    """The operator's test tone answers in bounded time, and the process then exits: the
    exit handler of sounddevice (Pa_Terminate) would otherwise wait on the stuck stream."""
    r, wall = _run_hung(tmp_path, "tone")
    assert r.returncode == 0, r.stderr[-2000:]
    tone = r.stdout.split("TONE", 1)[1].split(None, 1)
    assert float(tone[0]) < 2.0 + 2 * 0.3 + 2, r.stdout
    assert "did not answer the test tone" in tone[1], r.stdout
    assert wall < 30, wall                     # interpreter start, the numba cache, 2.6 s, exit
