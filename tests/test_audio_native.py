"""The native stream callback, called the way PortAudio calls it (a C function pointer with
a userData table), without a sound device: same samples as the engine, channel folding,
counters, and the exception-proof promise."""
from __future__ import annotations

import dataclasses
import threading

import numpy as np
import pytest

from installation.audio import params as P
from installation.audio.engine import C_CALLBACKS, C_NONFINITE, C_UNDERFLOWS, Engine
from installation.audio.jitcache import ensure_fresh_cache
from installation.audio.native_callback import N_ERRORS, TIMES, Binding
from installation.audio.params import AudioParams, Mailbox, SeqBox, seq_read
from installation.audio.reference import sanitize_ref
from installation.audio.settings import AudioSettings

ensure_fresh_cache()
BLOCK = 256


def crowd(seed: int) -> AudioParams:
    rng = np.random.default_rng(seed)
    p = AudioParams(0.8)
    p.set_mood(float(rng.uniform(-1, 1)), float(rng.random()), float(rng.random()), float(rng.random()), 12)
    p.set_texture(float(rng.random()), float(rng.random()), float(rng.random()))
    for i in range(12):
        p.set_voice(i, True, float(rng.random()), float(rng.random()), float(rng.uniform(-1, 1)), float(rng.random()),
                    float(rng.random()), i % 8, float(rng.uniform(-1, 1)))
    p.hit(0.9, -0.3)
    return p


def pair(settings: AudioSettings | None = None, channels: int = 2):
    """An engine run by Engine.render and a twin run by the native callback."""
    s = settings or AudioSettings()
    box = Mailbox(s.volume)
    ref, nat = Engine(s), Engine(s)
    return box, ref, Binding(nat, box, channels=channels), nat


def test_native_blocks_equal_the_engines_blocks():
    box, ref, binding, nat = pair()
    staging = np.zeros(P.SIZE, np.float32)
    target = box.initial()
    want = np.zeros((BLOCK, 2), np.float32)
    got = np.zeros((BLOCK, 2), np.float32)
    for k in range(40):
        if k % 7 == 0:                                 # new targets between some blocks
            box.publish(crowd(k))
        if box.read_into(staging):
            target[:] = staging
        ref.render(target, want)
        assert binding.call(got) == 0
        np.testing.assert_array_equal(got, want)
    assert np.abs(got).max() > 1e-3                     # it played something
    assert nat.stats()["audio_callbacks"] == 40 and binding.errors == 0
    np.testing.assert_array_equal(nat.counters, ref.counters)
    np.testing.assert_array_equal(nat.meters, ref.meters)


def test_config_reaches_the_callback_through_its_seqlock():
    box, ref, binding, nat = pair()
    box.publish(crowd(1))
    target = box.initial()
    staging = np.zeros(P.SIZE, np.float32)
    box.read_into(staging)
    target[:] = staging
    want = np.zeros((BLOCK, 2), np.float32)
    got = np.zeros((BLOCK, 2), np.float32)
    new = AudioSettings(root_hz=220.0, voice_gain=1.2, blocksize=1024)    # the block size stays
    for k in range(30):
        if k == 10:
            ref.set_settings(new)
            nat.set_settings(new)
            binding.publish_config()
        ref.render(target, want)
        binding.call(got)
        np.testing.assert_array_equal(got, want)
    np.testing.assert_array_equal(binding.cfg, ref.cfg)


@pytest.mark.parametrize("channels", [1, 3])
def test_other_channel_counts_fold_or_spread_the_stereo_mix(channels):
    box, ref, binding, nat = pair(channels=channels)
    box.publish(crowd(2))
    target = box.initial()
    stereo = np.zeros((BLOCK, 2), np.float32)
    out = np.full((BLOCK, channels), 9.0, np.float32)
    for _ in range(10):
        ref.render(target, stereo)
        binding.call(out)
    if channels == 1:
        np.testing.assert_array_equal(out[:, 0], (0.5 * (stereo[:, 0] + stereo[:, 1])).astype(np.float32))
    else:
        np.testing.assert_array_equal(out[:, :2], stereo)
        assert (out[:, 2:] == 0.0).all()
    assert nat.counters[C_CALLBACKS] == 10


def test_a_block_longer_than_the_scratch_is_one_callback_and_the_same_samples():
    box, ref, binding, nat = pair(channels=1)
    box.publish(crowd(3))
    target = box.initial()
    frames = 5 * BLOCK + 64                               # the scratch holds 4 blocks
    stereo = np.zeros((frames, 2), np.float32)
    out = np.zeros((frames, 1), np.float32)
    ref.render(target, stereo)
    binding.call(out, status=0x4)                         # paOutputUnderflow
    np.testing.assert_array_equal(out[:, 0], (0.5 * (stereo[:, 0] + stereo[:, 1])).astype(np.float32))
    assert nat.counters[C_CALLBACKS] == 1 and nat.counters[C_UNDERFLOWS] == 1


def test_underflow_flags_are_counted_and_callbacks_timed():
    box, ref, binding, nat = pair()
    out = np.zeros((BLOCK, 2), np.float32)
    for status in (0, 0x4, 0, 0x4 | 0x8, 0x2):           # other flags are not underflows
        binding.call(out, status)
    assert nat.counters[C_CALLBACKS] == 5 and nat.counters[C_UNDERFLOWS] == 2
    times, frames = binding.load()
    assert binding.timed and times.size == 5 and (frames == BLOCK).all()
    assert (times > 0).all() and (times < 1.0).all()


def test_timing_ring_wraps_without_growing():
    box, ref, binding, nat = pair(AudioSettings(blocksize=32))
    out = np.zeros((32, 2), np.float32)
    for _ in range(TIMES + 5):
        binding.call(out)
    times, _ = binding.load()
    assert times.size == TIMES and nat.counters[C_CALLBACKS] == TIMES + 5


def test_an_exception_inside_is_silence_and_counted_and_the_next_block_plays():
    # a zero limiter release divides by zero inside the kernel: numba raises ZeroDivisionError,
    # which must never leave the C callback (PortAudio would get garbage, or the GIL be taken)
    box, ref, binding, nat = pair()
    box.publish(crowd(4))
    out = np.zeros((BLOCK, 2), np.float32)
    for _ in range(4):
        binding.call(out)
    assert np.abs(out).max() > 0
    good = nat.settings
    nat.set_settings(dataclasses.replace(good, limiter_release_ms=0.0))
    binding.publish_config()
    out[:] = 1.0
    assert binding.call(out) == 0                         # paContinue: the stream lives on
    assert (out == 0.0).all() and binding.errors == 1 and binding.native[N_ERRORS] == 1
    nat.set_settings(good)
    binding.publish_config()
    for _ in range(4):
        binding.call(out)
    assert np.abs(out).max() > 0 and binding.errors == 1


def test_non_finite_config_is_a_silent_counted_block():
    box, ref, binding, nat = pair()
    box.publish(crowd(5))
    out = np.zeros((BLOCK, 2), np.float32)
    binding.call(out)
    nat.set_settings(dataclasses.replace(nat.settings, voice_gain=float("inf"), texture_gain=float("nan")))
    binding.publish_config()
    out[:] = 1.0
    binding.call(out)
    assert (out == 0.0).all() and nat.counters[C_NONFINITE] >= 1 and binding.errors == 0


def test_binding_refuses_an_engine_layout_it_does_not_know():
    e = Engine(AudioSettings())
    e.synth = e.synth[:-1]
    with pytest.raises(RuntimeError, match="synth state has 10 arrays"):
        Binding(e, Mailbox())
    e = Engine(AudioSettings())
    e.master = e.master[:3] + (np.zeros((2, 2, 4), np.float32),) + e.master[4:]
    with pytest.raises(RuntimeError, match="ring_rider"):
        Binding(e, Mailbox())


def test_mailbox_publish_matches_the_sanitize_twin_and_the_seqlock_reader():
    rng = np.random.default_rng(11)
    box = Mailbox()
    p = AudioParams()
    dst = np.zeros(P.SIZE, np.float32)
    for k in range(20):
        p.data[:] = rng.normal(0, 3, P.SIZE).astype(np.float32)
        p.data[rng.integers(0, P.SIZE, 5)] = np.nan
        box.publish(p)
        want, bad = sanitize_ref(p.data, p.lo, p.hi, p.default)
        assert box.read_into(dst)
        np.testing.assert_array_equal(dst, want)
        np.testing.assert_array_equal(box.initial(), want)
        assert box.seq[box.latest[0]] % 2 == 0
    assert box.bad_values == 100


def test_seqbox_serves_whole_configs_under_a_racing_writer():
    base = np.zeros(40)
    box = SeqBox(base)
    stop = threading.Event()

    def writer():
        v = base.copy()
        k = 0
        while not stop.is_set():
            k += 1
            v[:] = k                              # every value of one publish is the same
            box.publish(v)

    t = threading.Thread(target=writer)
    t.start()
    dst = np.zeros(40)
    good = 0
    try:
        for _ in range(20000):
            if seq_read(box.slots, box.seq, box.latest, dst):
                good += 1
                assert np.all(dst == dst[0]), "a torn config was served as good"
    finally:
        stop.set()
        t.join()
    assert good > 1000

