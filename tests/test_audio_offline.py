"""One engine, two drivers: the offline renderer is deterministic and makes exactly the
samples the real-time callback makes for the same publishes; the mailbox plays every hit
once; WAV export round-trips."""
from __future__ import annotations

import threading
import wave

import numpy as np
import pytest

from installation.audio import params as P
from installation.audio.jitcache import ensure_fresh_cache
from installation.audio.offline import OfflineAudio
from installation.audio.output import AudioOutput
from installation.audio.params import AudioParams, Mailbox
from installation.audio.settings import AudioSettings
from installation.session.export import WavWriter, write_wav

ensure_fresh_cache()
SR = 48000


def scripted(p: AudioParams, tick: int, rng: np.random.Generator) -> None:
    """A deterministic little show: voices come and go, the mood drifts, pulses hit."""
    if tick % 20 == 0:
        p.clear_voices()
        for i in range(int(rng.integers(1, 40))):
            p.set_voice(i, True, *rng.random(2), rng.uniform(-1, 1), *rng.random(2), i % 8, rng.uniform(-1, 1))
        p.set_mood(rng.uniform(-1, 1), *rng.random(3), 10)
        p.set_texture(*rng.random(3))
    if tick % 9 == 0:
        p.hit(float(rng.random()), float(rng.uniform(-1, 1)))


def offline_run(s: AudioSettings, ticks: int, seed: int = 5) -> np.ndarray:
    rng = np.random.default_rng(seed)
    audio = OfflineAudio(s)
    p = AudioParams(s.volume)
    out = []
    for tick in range(ticks):
        scripted(p, tick, rng)
        audio.publish(p)
        out.append(audio.render_to_tick(tick, 60))
    return np.concatenate(out)


def test_offline_render_is_deterministic():
    s = AudioSettings()
    a = offline_run(s, 150)
    b = offline_run(s, 150)
    assert len(a) == 150 * SR // 60
    assert np.abs(a).max() > 0.01
    assert np.array_equal(a, b)
    assert not np.array_equal(a, offline_run(s, 150, seed=6))


def test_how_frames_are_asked_for_does_not_change_them():
    s = AudioSettings()
    p = AudioParams()
    p.set_voice(0, True, 0.5, 0.5, 0.2, 0.8, 0.7, 1, 0.0)
    p.set_texture(0.8, 0.7, 0.1)
    one = OfflineAudio(s)
    one.publish(p)
    whole = one.render(10000)
    pieces = OfflineAudio(s)
    pieces.publish(p)
    parts = [pieces.render(n) for n in (1, 255, 256, 257, 3000, 6231)]
    assert np.array_equal(whole, np.concatenate(parts))


def test_frames_due_follows_the_tick_clock_exactly():
    audio = OfflineAudio(AudioSettings(samplerate=44100))
    total = 0
    for tick in range(600):
        total += len(audio.render_to_tick(tick, 60))
    assert total == 600 * 44100 // 60 == audio.frames_out


class _Status:
    def __init__(self, underflow: bool = False):
        self.output_underflow = underflow


def test_the_stream_callback_makes_the_offline_samples():
    """Drive the real callback the way PortAudio does (one blocksize buffer per call) with
    the same publishes between the same blocks: bit-identical to the offline driver."""
    s = AudioSettings()
    rng_a, rng_b = np.random.default_rng(9), np.random.default_rng(9)
    off = OfflineAudio(s)
    live = AudioOutput(s)
    live._engine = live._engine_for(s.samplerate)
    pa, pb = AudioParams(), AudioParams()
    got, want = [], []
    for block in range(300):
        if block % 3 == 0:                          # a tick every three blocks or so
            scripted(pa, block // 3, rng_a)
            scripted(pb, block // 3, rng_b)
            off.publish(pa)
            live.publish(pb)
        want.append(off.render(s.blocksize))
        buf = np.empty((s.blocksize, 2), np.float32)
        live._callback(buf, s.blocksize, None, _Status(underflow=(block == 7)))
        got.append(buf)
    assert np.array_equal(np.concatenate(got), np.concatenate(want))
    st = live.stats()
    assert st["audio_callbacks"] == 300 and st["audio_underflows"] == 1 and st["audio_errors"] == 0


def test_an_exception_in_the_callback_is_silence_and_a_count():
    s = AudioSettings()
    live = AudioOutput(s)
    live._engine = None                        # anything inside the callback that raises
    buf = np.ones((s.blocksize, 2), np.float32)
    live._callback(buf, s.blocksize, None, _Status())
    assert (buf == 0).all() and live.stats()["audio_errors"] == 1


def test_every_hit_plays_once_however_publishes_and_blocks_interleave():
    s = AudioSettings(texture_gain=0.0)
    from installation.audio.engine import C_HITS_DROPPED
    audio = OfflineAudio(s)
    p = AudioParams()
    audio.publish(p)
    audio.render(256)
    # three publishes before the next block, hits in each: all five must start
    for k in range(3):
        p.hit(0.5, 0.0)
        if k == 1:
            p.hit(0.5, 0.0)
            p.hit(0.5, 0.0)
        audio.publish(p)
    audio.render(256)
    drums = audio.engine.synth[4]
    from installation.audio.synth import DR_ON, DR_T
    assert int((drums[:, DR_ON] > 0.5).sum()) == 5
    # the same targets again (no new hits): nothing restarts
    before = drums.copy()
    audio.publish(p)
    audio.render(256)
    assert int((drums[:, DR_ON] > 0.5).sum()) == 5
    on = drums[:, DR_ON] > 0.5
    assert (drums[on, DR_T] == before[on, DR_T] + 256).all()      # kept counting: no restart
    # a flood beyond the ring: the newest 16 play, the rest are counted as dropped
    for _ in range(40):
        p.hit(1.0, 0.0)
    audio.publish(p)
    audio.render(256)
    assert audio.engine.counters[C_HITS_DROPPED] == 24


def test_mailbox_serves_whole_publishes_under_a_racing_writer():
    box = Mailbox()
    p = AudioParams()
    stop = threading.Event()

    def writer():
        k = 0
        while not stop.is_set():
            k += 1
            p.data[:] = (k % 1000) / 1000.0        # every value of one publish is the same
            box.publish(p)

    t = threading.Thread(target=writer)
    t.start()
    dst = np.zeros(P.SIZE, np.float32)
    good = 0
    try:
        for _ in range(20000):
            if box.read_into(dst):
                good += 1
                body = dst[P.VOICES:]             # voice fields are not clamped below 1
                assert np.all(body == body[0]), "a torn copy was served as good"
    finally:
        stop.set()
        t.join()
    assert good > 1000


def test_scene_settings_apply_from_the_next_block():
    s = AudioSettings(texture_gain=0.0)
    audio = OfflineAudio(s)
    p = AudioParams(1.0)
    p.set_voice(0, True, 0.3, 0.0, 0.0, 0.0, 0.5, 0, 0.0)
    audio.publish(p)
    audio.render(SR)
    audio.apply_settings(AudioSettings(texture_gain=0.0, root_hz=220.0, blocksize=1024))
    assert audio.engine.settings.blocksize == s.blocksize          # fixed once opened
    y = audio.render(2 * SR)[SR:, 0].astype(np.float64)
    spec = np.abs(np.fft.rfft(y * np.hanning(len(y))))
    assert abs(np.argmax(spec) * SR / len(y) - 220.0) < 2.0       # glided an octave up


def test_wav_round_trip(tmp_path):
    rng = np.random.default_rng(3)
    x = (rng.standard_normal((4800, 2)) * 0.3).astype(np.float32)
    x[0] = [1.5, -1.5]                               # clipped, not wrapped
    x[1] = [np.nan, 0.0]                             # never reaches a file as garbage
    path = tmp_path / "a.wav"
    write_wav(path, x, SR)
    with wave.open(str(path)) as w:
        assert (w.getnchannels(), w.getsampwidth(), w.getframerate(), w.getnframes()) == (2, 2, SR, 4800)
        data = np.frombuffer(w.readframes(4800), "<i2").reshape(-1, 2)
    assert list(data[0]) == [32767, -32767] and data[1, 0] == 0   # symmetric: no DC from clipping
    np.testing.assert_allclose(data[2:] / 32767.0, np.clip(x[2:], -1, 1), atol=2 / 32767)
    with WavWriter(tmp_path / "b.wav", SR) as w:
        w.write(x[:100])
        w.write(x[100:])
    assert (tmp_path / "b.wav").read_bytes() == path.read_bytes()


def test_no_device_means_backend_none_and_one_line(caplog):
    s = AudioSettings(device="no-such-device-anywhere")
    out = AudioOutput(s)
    with caplog.at_level("WARNING", logger="installation.audio"):
        out.start()
        out.publish(AudioParams())
        st = out.stats()
        out.close()
    assert st["audio_backend"] == "none" and st["audio_callbacks"] == 0
    lines = [r.getMessage() for r in caplog.records if r.name == "installation.audio"]
    assert len(lines) == 1 and "no-such-device-anywhere" in lines[0]


def test_disabled_audio_is_silent_without_touching_portaudio(caplog):
    out = AudioOutput(AudioSettings(enabled=False))
    with caplog.at_level("WARNING", logger="installation.audio"):
        out.start()
    assert out.stats()["audio_backend"] == "none" and out._sd is None
    out.close()


@pytest.mark.parametrize("blocksize", [32, 4096])
def test_extreme_block_sizes_render(blocksize):
    s = AudioSettings(blocksize=blocksize)
    audio = OfflineAudio(s)
    p = AudioParams()
    p.set_mood(0.2, 1.0, 0.3, 1.0, 5)
    for i in range(8):
        p.set_voice(i, True, i / 8, i / 8, 0, 1, 1, i, 0)
    audio.publish(p)
    y = audio.render(SR)
    assert np.isfinite(y).all() and np.abs(y).max() > 0.01


def test_presence_scales_a_voice_and_zero_releases_it():
    s = AudioSettings(texture_gain=0.0, compressor_threshold_db=0.0, lufs_ceiling=0.0)

    def level(presence):
        audio = OfflineAudio(s)
        p = AudioParams(1.0)
        p.set_voice(0, presence, 0.3, 0.4, 0.0, 0.0, 0.5, 0, 0.0)
        audio.publish(p)
        return float(np.sqrt(np.mean(audio.render(2 * SR)[SR:] ** 2)))

    full, faded = level(1.0), level(0.25)
    assert abs(faded / full - 0.25) < 0.02
    assert level(0.0) < 1e-6


def test_clear_voices_from_silences_the_unfilled_slots():
    p = AudioParams()
    for i in range(10):
        p.set_voice(i, True, 0.5, 0.5, 0, 0, 0, 0, 0)
    p.clear_voices_from(4)
    assert list(p.voices[:, P.V_ACTIVE][:10]) == [1.0] * 4 + [0.0] * 6
    assert p.max_voices == P.MAX_VOICES == 64


def test_a_touch_is_heard_within_one_block_of_its_tick():
    """Input-to-sound: the tick that publishes a new touch is followed, at the next block
    boundary, by the voice's onset (plus only the limiter's look-ahead)."""
    s = AudioSettings(texture_gain=0.0)
    audio = OfflineAudio(s)
    p = AudioParams(1.0)
    audio.publish(p)
    audio.render(s.blocksize * 4)
    p.set_voice(0, True, 0.5, 0.5, 0.0, 0.0, 0.5, 0, 0.0)         # the calmest, slowest attack
    audio.publish(p)
    y = audio.render(s.blocksize * 4)
    onset = int(np.argmax(np.abs(y[:, 0]) > 1e-5))                # the sound has begun
    assert 0 < onset <= audio.engine.latency_frames + 16            # the limiter's look-ahead only
    latency_ms = (s.blocksize + onset) / SR * 1e3                    # worst case: published just after a block began
    assert latency_ms + 1000 / 60 <= 25.0


def test_a_fresh_params_object_does_not_replay_old_hits():
    s = AudioSettings(texture_gain=0.0)
    audio = OfflineAudio(s)
    old = AudioParams()
    for _ in range(5):
        old.hit(1.0)
        audio.publish(old)
        audio.render(256)
    from installation.audio.synth import DR_ON
    drums = audio.engine.synth[4]
    audio.render(SR * 5)                         # let them ring out
    assert not (drums[:, DR_ON] > 0.5).any()
    audio.publish(AudioParams())                 # a new numbering from zero
    audio.render(256)
    assert not (drums[:, DR_ON] > 0.5).any()
