"""The virtual crowd: believable, seeded, valid OSC; and as N phones over real UDP."""
from __future__ import annotations

import collections
import dataclasses
import time
from pathlib import Path

import pytest

from installation.config.model import Config
from installation.crowd.control import CrowdControl
from installation.crowd.virtual import MOODS, VirtualCrowd, run_crowd
from installation.events import InputEvent
from installation.osc.listener import OscListener
from installation.osc.settings import OscSettings
from installation.osc.validate import Validator

CONFIGS = str(Path(__file__).resolve().parents[1] / "configs")


def messages(mood: str, seed: int, steps: int, n: int = 10, rate: float = 60.0):
    c = VirtualCrowd(n, mood, seed, rate)
    return [m for _ in range(steps) for m in c.step()], c


def test_the_same_seed_gives_the_same_crowd_and_another_seed_another():
    a, _ = messages("mixed", 5, 600)
    b, _ = messages("mixed", 5, 600)
    c, _ = messages("mixed", 6, 600)
    assert a == b and a != c


@pytest.mark.parametrize("mood", MOODS)
def test_every_message_is_valid_contract_osc(mood):
    v = Validator(OscSettings(), CONFIGS)
    msgs, crowd = messages(mood, 1, 1800, n=12)
    kinds = collections.Counter(addr.rsplit("/", 1)[1] for _, addr, _ in msgs)
    assert set(kinds) >= {"emotion", "motion", "touch"}
    for _, addr, args in msgs:
        out = v.check(addr, list(args), "10.1.1.1:4000", 0.0)
        assert isinstance(out, InputEvent), (addr, args, out)
        assert out.args[:len(args)] == tuple(float(a) for a in args)   # in range: nothing clamped


def _means(mood: str):
    msgs, _ = messages(mood, 11, 60 * 45, n=20)
    em = [args for _, addr, args in msgs if addr.endswith("/emotion")]
    mo = [args[0] for _, addr, args in msgs if addr.endswith("/motion")]
    touches = sum(1 for _, addr, _ in msgs if addr.endswith("/touch"))
    return sum(v for v, _ in em) / len(em), sum(a for _, a in em) / len(em), sum(mo) / len(mo), touches


def test_moods_feel_different():
    calm, joyful, tense = _means("calm"), _means("joyful"), _means("tense")
    assert joyful[0] > calm[0] > tense[0]              # valence
    assert tense[1] > joyful[1] > calm[1]              # arousal
    assert joyful[2] > calm[2] and tense[2] > calm[2]  # motion
    assert joyful[3] > calm[3]                         # touches


def test_visitors_come_and_go_with_new_ids():
    c = VirtualCrowd(8, "tense", seed=2, rate_hz=10.0)
    leaves, ids = [], set()
    for _ in range(10 * 600):                           # ten minutes at 10 steps a second
        for _, addr, _ in c.step():
            ids.add(addr.split("/")[2])
            if addr.endswith("/leave"):
                leaves.append(addr)
    assert c.leaves == len(leaves) > 8
    assert c.joins > 8 and len(ids) == c.joins
    assert len(c.present_ids()) <= 8


def _run_control(msgs_by_tick, config: Config, ticks: int) -> list:
    cc = CrowdControl(config)
    pulses = []
    for t in range(ticks):
        for _, addr, args in msgs_by_tick[t]:
            cc.apply(InputEvent(addr, "f" * len(args), tuple(float(a) for a in args), "v:1", 0.0), t)
        cc.update(t)
        pulses += cc.new_pulses
    return pulses


@pytest.mark.parametrize("mood,surges", [("surge", True), ("calm", False)])
def test_the_surge_crowd_raises_pulses_and_the_calm_one_does_not(mood, surges):
    c = Config()
    cfg = dataclasses.replace(c, attract=dataclasses.replace(c.attract, enabled=False))
    crowd = VirtualCrowd(12, mood, seed=4, rate_hz=60.0)
    by_tick = [crowd.step() for _ in range(60 * 40)]
    pulses = _run_control(by_tick, cfg, len(by_tick))
    assert (len(pulses) > 0) == surges


def test_unknown_mood_is_refused():
    with pytest.raises(ValueError, match="mood 'sad'"):
        VirtualCrowd(3, "sad", 0)


def test_run_crowd_is_n_phones_over_real_udp():
    lst = OscListener(OscSettings(host="127.0.0.1", port=0), CONFIGS).start()
    try:
        counts: dict = {}
        t0 = time.perf_counter()
        sent = run_crowd("127.0.0.1", lst.port, participants=4, duration=1.0, mood="joyful", seed=3,
                         counts=counts)
        assert 0.9 < time.perf_counter() - t0 < 3.0
        deadline = time.monotonic() + 3.0
        while lst.received < sent and time.monotonic() < deadline:
            time.sleep(0.01)
        events = lst.drain()
    finally:
        lst.stop()
    assert sent == counts["sent"] > 15 and counts["errors"] == 0     # ~6 messages/s a phone at least
    assert lst.received == sent and lst.rejected == 0 and len(events) == sent
    assert len({e.src for e in events}) == 4                     # four phones, four source ports
    cc = CrowdControl(Config())
    by_src: dict[str, set] = {}
    goodbyes = [e for e in events if e.addr.endswith("/leave")]
    for e in events:
        by_src.setdefault(e.src, set()).add(e.addr.split("/")[2])
        if e not in goodbyes:
            cc.apply(e, 0)
    cc.update(0)
    assert cc.participants_peak == 4 and cc.mood.count == 4
    assert all(len(ids) >= 1 for ids in by_src.values())
    # the phones said goodbye on the way out
    assert len(goodbyes) >= 4
    for e in goodbyes:
        cc.apply(e, 1)
    cc.update(1)
    assert cc.mood.count == 0
    # all of it on one tick (a frame loop that started late): they were still there
    late = CrowdControl(Config())
    for e in events:
        late.apply(e, 0)
    late.update(0)
    assert late.participants_peak == 4 and late.mood.count == 0


def test_run_crowd_names_a_host_it_cannot_resolve():
    with pytest.raises(OSError, match="cannot resolve 'no-such-host.invalid'"):
        run_crowd("no-such-host.invalid", 9000, participants=1, duration=0.1)
