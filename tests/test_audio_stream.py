"""A real stream: PortAudio's JACK host API against JACK's dummy backend.

The fixture uses the JACK server already running (CI starts `jackd --no-realtime -d dummy
-r 48000 -p 256`), or starts that command itself under a private server name and points
PortAudio's JACK client at it with JACK_DEFAULT_SERVER. The test that kills a server only
ever kills one it started for itself.
"""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from installation.audio.jitcache import ensure_fresh_cache
from installation.audio import output as audio_output
from installation.audio.output import AudioOutput, list_devices, load_sounddevice, rescan
from installation.audio.params import AudioParams
from installation.audio.settings import AudioSettings

ensure_fresh_cache()
pytestmark = pytest.mark.audio
ROOT = Path(__file__).resolve().parents[1]
SERVER = f"living-mosaic-test-{os.getpid()}"
JACKD = ["jackd", "-n", SERVER, "--no-realtime", "-d", "dummy", "-r", "48000", "-p", "256"]


def _server_up(name: str) -> bool:
    env = dict(os.environ, JACK_DEFAULT_SERVER=name, JACK_NO_START_SERVER="1")
    try:
        return subprocess.run(["jack_lsp"], env=env, capture_output=True, timeout=5).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


def start_jackd(name: str) -> subprocess.Popen:
    proc = subprocess.Popen(["jackd", "-n", name] + JACKD[3:], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
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
        # died cannot be terminated cleanly (see output.py).
        sd._terminate()
        if proc is not None:
            proc.terminate()
            proc.wait(timeout=10)
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
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
