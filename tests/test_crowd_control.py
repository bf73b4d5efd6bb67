"""The control state: participants, the collective mood, the mapping, pulses, attract mode.

Time is the tick index everywhere, so every expectation here is computed by hand from the
config and the ticks, and a replay of the same ticked events must give the same state.
"""
from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest

from installation.config.model import Config
from installation.crowd.control import CrowdControl
from installation.events import InputEvent
from installation.render.look import LookParams
from installation.sim.params import MAX_PULSES, StepParams

HZ = 60


def make_config(**sections) -> Config:
    c = Config()
    return dataclasses.replace(c, **{name: dataclasses.replace(getattr(c, name), **values)
                                     for name, values in sections.items()})


QUIET = dict(attract=dict(enabled=False))          # no virtual crowd in the way


def ev(addr: str, *args, src: str = "10.0.0.2:5000") -> InputEvent:
    types = "".join("s" if isinstance(a, str) else "i" if isinstance(a, int) else "f" for a in args)
    return InputEvent(addr, types, tuple(args), src, 0.0)


class Rig:
    """A CrowdControl with the step and look it fills, driven tick by tick."""

    def __init__(self, config: Config):
        self.config = config
        self.cc = CrowdControl(config)
        self.step = StepParams.from_settings(config.sim)
        self.look = LookParams.from_settings(config.render)
        self.tick = 0

    def run(self, events=(), ticks: int = 1):
        """Apply `events` on the next tick, then advance `ticks` ticks in all."""
        for i in range(ticks):
            if i == 0:
                for e in events:
                    self.cc.apply(e, self.tick)
            self.cc.update(self.tick)
            self.cc.fill(self.step, self.look)
            self.tick += 1
        return self


# ---- the mood ------------------------------------------------------------------------------
def test_emotion_changes_the_mood_and_the_engine_within_two_ticks():
    cfg = make_config()                          # the default: attract mode on
    with_msg, without = Rig(cfg), Rig(cfg)
    with_msg.run(ticks=300)
    without.run(ticks=300)
    base = (with_msg.cc.mood, with_msg.step.flow_strength, with_msg.look.warmth)
    assert base == (without.cc.mood, without.step.flow_strength, without.look.warmth)
    with_msg.run([ev("/crowd/alice/emotion", 1.0, 1.0)])
    without.run()
    changed_at = None
    for k in range(2):
        a, b = with_msg.cc.mood, without.cc.mood
        if a.arousal > b.arousal and a.valence > b.valence and \
                with_msg.step.flow_strength > without.step.flow_strength and \
                with_msg.look.warmth > without.look.warmth:
            changed_at = k
            break
        with_msg.run()
        without.run()
    assert changed_at is not None and changed_at <= 1


def test_mood_aggregation_against_hand_computed_values():
    r = Rig(make_config(crowd=dict(fade_s=0.0, mood_smoothing_s=0.0), **QUIET))
    r.run([ev("/crowd/a/emotion", 0.5, 0.2), ev("/crowd/b/emotion", -0.5, 0.6),
           ev("/crowd/a/motion", 0.8),
           ev("/crowd/c/touch", 0.5, 0.5),        # touches only: no say in the feelings
           ev("/sensor/mic/level", 0.2), ev("/sensor/door/level", 0.6)])
    m = r.cc.mood
    # valence (0.5 - 0.5) / 2 = 0; arousal (0.2 + 0.6) / 2 = 0.4
    # var(valence) = 0.25, var(arousal) = 0.04 -> agreement = 1 - sqrt((0.25 + 4 * 0.04) / 2)
    assert m.valence == pytest.approx(0.0, abs=1e-12)
    assert m.arousal == pytest.approx(0.4)
    assert m.agreement == pytest.approx(1.0 - math.sqrt((0.25 + 4 * 0.04) / 2))
    assert m.energy == pytest.approx(0.8)         # only a sent a motion
    assert m.count == 3
    assert m.sensor == pytest.approx(0.4)


def test_agreement_is_one_when_alike_and_zero_at_opposite_corners():
    r = Rig(make_config(crowd=dict(fade_s=0.0, mood_smoothing_s=0.0), **QUIET))
    r.run([ev(f"/crowd/p{i}/emotion", 0.3, 0.7) for i in range(5)])
    assert r.cc.mood.agreement == pytest.approx(1.0)
    r2 = Rig(make_config(crowd=dict(fade_s=0.0, mood_smoothing_s=0.0), **QUIET))
    r2.run([ev("/crowd/x/emotion", -1.0, 0.0), ev("/crowd/y/emotion", 1.0, 1.0)])
    assert r2.cc.mood.agreement == pytest.approx(0.0)


def test_mood_smoothing_follows_the_time_constant():
    r = Rig(make_config(crowd=dict(fade_s=0.0, mood_smoothing_s=1.0), **QUIET))
    r.run([ev("/crowd/a/emotion", 0.6, 0.3)])
    assert r.cc.mood.valence == pytest.approx(0.6 * (1.0 - math.exp(-1.0 / HZ)))
    r.run(ticks=29)                                # 30 updates in all
    assert r.cc.mood.valence == pytest.approx(0.6 * (1.0 - math.exp(-30.0 / HZ)))
    assert r.cc.mood.arousal == pytest.approx(0.3 * (1.0 - math.exp(-30.0 / HZ)))
    r.run([ev("/crowd/a/leave")], ticks=60)         # gone: the mood relaxes towards 0
    v30 = 0.6 * (1.0 - math.exp(-30.0 / HZ))
    assert r.cc.mood.valence == pytest.approx(v30 * math.exp(-60.0 / HZ))


def test_motion_energy_decays_without_new_motion():
    r = Rig(make_config(crowd=dict(fade_s=0.0, mood_smoothing_s=0.0, energy_decay_s=0.5), **QUIET))
    r.run([ev("/crowd/a/motion", 0.8)])
    assert r.cc.mood.energy == pytest.approx(0.8)   # the tick it arrives: undecayed
    r.run(ticks=30)
    assert r.cc.mood.energy == pytest.approx(0.8 * math.exp(-30.0 / (0.5 * HZ)))


# ---- participants --------------------------------------------------------------------------
def test_participants_expire_after_the_timeout_and_fade_out():
    r = Rig(make_config(crowd=dict(timeout_s=1.0, fade_s=0.5), **QUIET))
    r.run([ev("/crowd/a/emotion", 0.5, 0.5)], ticks=60)          # ticks 0..59
    assert r.cc.mood.count == 1 and len(r.cc.participants) == 1
    species = r.cc.participants[0].species
    r.run()                                                      # tick 60: 1 s of silence
    assert r.cc.mood.count == 0
    p = r.cc.participants[0]
    assert p.leaving and p.fade == pytest.approx(1.0 - 1.0 / 30)
    r.run(ticks=28)
    assert len(r.cc.participants) == 1
    r.run()                                                      # 30 ticks of fading: gone
    assert r.cc.participants == ()
    assert r.cc.participants_peak == 1
    # coming back while fading keeps the tile
    r.run([ev("/crowd/b/motion", 0.1)], ticks=61)
    r.run([ev("/crowd/b/motion", 0.1)])
    assert [(p.id, p.leaving) for p in r.cc.participants] == [("b", False)]


def test_species_are_the_least_held_then_the_lowest():
    r = Rig(make_config(crowd=dict(fade_s=1.0), **QUIET))
    r.run([ev(f"/crowd/p{i}/motion", 0.1) for i in range(10)])
    assert [p.species for p in r.cc.participants] == [0, 1, 2, 3, 4, 5, 6, 7, 0, 1]
    r.run([ev("/crowd/p3/leave")])
    r.run([ev("/crowd/new/motion", 0.2)])
    assert {p.id: p.species for p in r.cc.participants}["new"] == 3
    r.run([ev("/crowd/newer/motion", 0.2)])
    assert {p.id: p.species for p in r.cc.participants}["newer"] == 2


def test_participant_cap_refuses_newcomers():
    r = Rig(make_config(crowd=dict(max_participants=2), **QUIET))
    r.run([ev("/crowd/a/motion", 0.1), ev("/crowd/b/motion", 0.1), ev("/crowd/c/motion", 0.1)])
    assert [p.id for p in r.cc.participants] == ["a", "b"] and r.cc.refused == 1
    r.run([ev("/crowd/a/emotion", 0.1, 0.1)])
    assert r.cc.refused == 1 and r.cc.participants_peak == 2


def test_a_leaving_participant_fades_their_tile():
    r = Rig(make_config(crowd=dict(fade_s=1.0, idle_gain=0.4), **QUIET))
    r.run([ev("/crowd/a/motion", 0.1), ev("/crowd/b/motion", 0.1)], ticks=60)
    gains = r.look.species_gain
    assert gains[0] == pytest.approx(1.0) and gains[1] == pytest.approx(1.0)
    assert gains[2] == pytest.approx(0.4)                         # nobody holds it
    r.run([ev("/crowd/b/leave")], ticks=30)                        # halfway through the fade
    assert r.look.species_gain[1] == pytest.approx(0.4 + 0.6 * 0.5)
    assert r.look.species_gain[0] == pytest.approx(1.0)
    r.run(ticks=30)
    assert r.look.species_gain[1] == pytest.approx(0.4)
    assert all(g == 1.0 for g in r.look.species_gain[r.config.sim.species:])


def test_an_empty_room_shows_the_whole_mosaic():
    r = Rig(make_config(**QUIET)).run(ticks=3)
    assert np.all(r.look.species_gain == 1.0)


# ---- touches and pulses -----------------------------------------------------------------------
def test_touches_reach_the_engine_in_world_coordinates_and_are_held_briefly():
    cfg = make_config(crowd=dict(fade_s=0.0, touch_hold_s=0.5), **QUIET)
    r = Rig(cfg)
    r.run([ev("/crowd/a/motion", 0.1), ev("/crowd/b/touch", 0.25, 0.75, 0.5)])
    assert r.step.n_touches == 1
    np.testing.assert_allclose(r.step.touches[0], [0.25 * cfg.sim.aspect, 0.75, 0.5, 1.0], rtol=1e-6)
    r.run(ticks=29)
    assert r.step.n_touches == 1
    r.run()                                                        # 30 ticks without touch: lifted
    assert r.step.n_touches == 0
    r.run([ev("/crowd/b/touch", 0.5, 0.5, 1.0)])
    assert r.step.n_touches == 1
    r.run([ev("/crowd/b/touch", 0.5, 0.5, 0.0)])                   # pressure 0: released at once
    assert r.step.n_touches == 0


def test_operator_pulse_ages_in_seconds_of_ticks_and_expires():
    cfg = make_config(crowd=dict(pulse_life_s=3.0), **QUIET)
    r = Rig(cfg).run(ticks=10)
    r.run([ev("/pulse", 0.8)])
    assert r.cc.new_pulses == [(0.5, 0.5, 0.8)]
    assert r.step.n_pulses == 1
    np.testing.assert_allclose(r.step.pulses[0], [0.5 * cfg.sim.aspect, 0.5, 0.0, 0.8], rtol=1e-6)
    r.run()
    assert r.cc.new_pulses == []
    r.run(ticks=29)                                                # 30 ticks after it started
    assert r.step.pulses[0, 2] == pytest.approx(0.5)
    r.run(ticks=150)                                               # 180 ticks: 3 s, still there
    assert r.step.n_pulses == 1 and r.step.pulses[0, 2] == pytest.approx(3.0)
    r.run()
    assert r.step.n_pulses == 0
    r.run([ev("/pulse", 0.0)])                                     # a button's release: nothing
    assert r.step.n_pulses == 0 and r.cc.new_pulses == []
    r.run([ev("/pulse", 0.1 * i) for i in range(1, 21)])
    assert r.step.n_pulses == MAX_PULSES
    assert r.step.pulses[0, 3] == pytest.approx(0.5)               # the 4 oldest gave way


def test_a_surge_raises_pulses_when_hand_computed():
    thr, tau = 0.25, 0.2
    r = Rig(make_config(crowd=dict(fade_s=0.0, mood_smoothing_s=tau, surge_threshold=thr,
                                   surge_window_s=1.0), **QUIET))
    ids = [f"p{i}" for i in range(4)]
    r.run([ev(f"/crowd/{p}/emotion", 0.0, 0.1) for p in ids], ticks=600)   # settled
    pulses = []
    jump = r.tick
    for k in range(60):
        r.run([ev(f"/crowd/{p}/emotion", 0.0, 0.9) for p in ids] if k == 0 else ())
        pulses += [(r.tick - 1 - jump, s) for _, _, s in r.cc.new_pulses]
    # smoothed arousal n updates after the jump: a(n) = 0.1 + 0.8 (1 - exp(-n / 12)). A pulse
    # fires when a(n) - a(baseline) >= 0.25, and the baseline moves to that n: crossings at
    # n = 5 (exp(-n/12) <= 0.6875), n = 13 (<= exp(-5/12) - 0.3125) and n = 44
    # (<= exp(-13/12) - 0.3125); k = n - 1 counts ticks from the jump's own tick.
    a = lambda n: 0.1 + 0.8 * (1.0 - math.exp(-n / (tau * HZ)))
    assert [k for k, _ in pulses] == [4, 12, 43]
    assert pulses[0][1] == pytest.approx(min(1.0, (a(5) - a(0)) / (2 * thr)), rel=1e-4)
    assert pulses[1][1] == pytest.approx(min(1.0, (a(13) - a(5)) / (2 * thr)), rel=1e-4)
    assert pulses[2][1] == pytest.approx(min(1.0, (a(44) - a(13)) / (2 * thr)), rel=1e-4)


def test_a_calm_room_raises_no_pulses():
    r = Rig(make_config(**QUIET))
    for i in range(300):
        r.run([ev(f"/crowd/p{i % 5}/emotion", 0.2, 0.2 + 0.001 * (i % 7))] if i % 20 == 0 else ())
        assert r.cc.new_pulses == []


# ---- the mapping and the operator ---------------------------------------------------------------
def test_mood_maps_onto_the_engine_and_the_look():
    cfg = make_config(crowd=dict(fade_s=0.0, mood_smoothing_s=0.0), **QUIET)
    r = Rig(cfg)
    r.run([ev("/crowd/a/emotion", 0.5, 0.4), ev("/crowd/b/emotion", 0.5, 0.4),
           ev("/crowd/a/motion", 0.5)])
    m, s, sim = cfg.mapping, r.step, cfg.sim
    assert r.cc.mood.agreement == pytest.approx(1.0)
    assert s.mosaic_pull == pytest.approx(sim.mosaic_pull + m.agreement_to_mosaic)
    assert s.alignment == pytest.approx(sim.alignment + m.agreement_to_alignment)
    assert s.flow_strength == pytest.approx(sim.flow_strength + m.arousal_to_flow * 0.4 + m.energy_to_flow * 0.5)
    assert s.max_speed == pytest.approx(sim.max_speed + m.arousal_to_speed * 0.4)
    assert s.friction == sim.friction
    assert r.look.warmth == pytest.approx(cfg.render.warmth + m.valence_to_warmth * 0.5)
    # the same again: filling twice does not add twice
    r.cc.fill(r.step, r.look)
    assert s.mosaic_pull == pytest.approx(sim.mosaic_pull + m.agreement_to_mosaic)
    # reset=False adds to the base the caller wrote (e.g. a scene crossfade)
    s.mosaic_pull = 10.0
    r.look.warmth = -0.5
    r.cc.fill(s, r.look, reset=False)
    assert s.mosaic_pull == pytest.approx(10.0 + m.agreement_to_mosaic)
    assert r.look.warmth == pytest.approx(-0.5 + m.valence_to_warmth * 0.5)


def test_set_config_changes_the_mapping_at_once():
    cfg = make_config(crowd=dict(fade_s=0.0, mood_smoothing_s=0.0), **QUIET)
    r = Rig(cfg).run([ev("/crowd/a/emotion", 0.0, 1.0)])
    r.cc.set_config(dataclasses.replace(cfg, mapping=dataclasses.replace(cfg.mapping, arousal_to_speed=2.0)))
    r.run()
    assert r.step.max_speed == pytest.approx(cfg.sim.max_speed + 2.0)


def test_operator_addresses_set_master_values_and_are_routed():
    cfg = make_config(mapping=dict(sensor_to_brightness=-0.5), crowd=dict(mood_smoothing_s=0.0), **QUIET)
    r = Rig(cfg)
    vote = ev("/crowd/a/vote", "night")
    requests = [ev("/scene", "night", 2.0), ev("/param/flow_strength", 0.3), ev("/record/start", "x"),
                ev("/record/stop"), vote]
    r.run([ev("/master/volume", 0.3), ev("/master/brightness", 0.8), ev("/sensor/s/level", 0.2), *requests])
    assert r.cc.volume == 0.3 and r.cc.brightness == 0.8
    assert r.look.brightness == pytest.approx(0.8 - 0.5 * 0.2)
    assert r.cc.operator_requests == requests
    assert not r.look.blackout
    r.run([ev("/blackout", 1)])
    assert r.look.blackout and r.cc.operator_requests == []
    r.run([ev("/blackout", 0)])
    assert not r.look.blackout


def test_odd_events_from_a_file_are_ignored_and_counted_never_raised():
    r = Rig(make_config(**QUIET))
    r.run([InputEvent("/crowd/a/emotion", "ff", (math.nan, 0.5), "x", 0.0),
           InputEvent("/crowd/a/emotion", "sf", ("x", 0.5), "x", 0.0),
           InputEvent("/crowd/a/touch", "f", (0.5,), "x", 0.0),
           InputEvent("/not/ours", "", (), "x", 0.0),
           InputEvent("/crowd/a/fly", "", (), "x", 0.0),
           InputEvent("/master/volume", "f", (7.0,), "x", 0.0)])
    assert r.cc.ignored == 5
    assert r.cc.volume == 1.0                                       # clamped


# ---- attract mode ----------------------------------------------------------------------------
def test_attract_mode_is_alive_at_start_and_hands_over_both_ways():
    cfg = make_config(attract=dict(enabled=True, after_s=2.0, handover_s=1.0, participants=6),
                      crowd=dict(timeout_s=1.0, fade_s=0.5))
    r = Rig(cfg).run(ticks=120)
    cc = r.cc
    assert cc.attract_active and cc.attract_level == 1.0
    assert cc.participants and all(p.virtual for p in cc.participants)
    assert cc.participants_peak == 0 and cc.mood.count == 0
    assert cc.mood.arousal > 0.0                                    # the virtual crowd feels
    r.run([ev("/crowd/alice/emotion", 0.5, 0.5)])
    assert not cc.attract_active
    assert cc.attract_level == pytest.approx(1.0 - 1.0 / HZ)
    r.run(ticks=30)
    assert cc.attract_level == pytest.approx(1.0 - 31.0 / HZ)
    virtual_fades = [p.fade for p in cc.participants if p.virtual]
    assert virtual_fades and max(virtual_fades) <= cc.attract_level + 1e-12
    r.run(ticks=29)                                                 # 60 ticks: handed over
    assert cc.attract_level == 0.0
    assert [p.id for p in cc.participants] == ["alice"]
    # alice's only message was on tick 120; with a 1 s timeout she is last present on tick
    # 179, and attract mode returns after 2 s of ticks without anyone: on tick 299
    last_present = 120 + 60 - 1
    while r.tick < last_present + 120:
        r.run()
        assert not cc.attract_active
        assert cc.mood.count == (1 if r.tick - 1 <= last_present else 0)
    r.run()                                                          # tick 299
    assert cc.attract_active and cc.attract_level == pytest.approx(1.0 / HZ)
    assert cc.participants_peak == 1


def test_attract_disabled_leaves_an_empty_room_empty():
    r = Rig(make_config(**QUIET)).run(ticks=200)
    assert not r.cc.attract_active and r.cc.participants == () and r.step.n_touches == 0


def _trace(config: Config, script: dict[int, list[InputEvent]], ticks: int):
    r = Rig(config)
    out = []
    for t in range(ticks):
        r.run(script.get(t, ()))
        out.append((r.cc.mood, tuple((p.id, p.species, p.x, p.y, p.touching, p.fade) for p in r.cc.participants),
                    r.step.n_touches, r.step.touches[:r.step.n_touches].tobytes(),
                    r.step.n_pulses, r.step.pulses[:r.step.n_pulses].tobytes(),
                    r.step.flow_strength, r.look.species_gain.tobytes(), r.look.warmth,
                    tuple(r.cc.new_pulses)))
    return out


def test_the_same_ticked_events_reproduce_the_same_state():
    cfg = make_config(attract=dict(after_s=1.0, handover_s=0.5))
    script = {100: [ev("/crowd/a/emotion", 0.9, 0.9), ev("/crowd/a/touch", 0.2, 0.3)],
              101: [ev("/crowd/b/motion", 1.0)], 150: [ev("/pulse", 1.0, src="127.0.0.1:1")],
              200: [ev("/crowd/a/leave"), ev("/crowd/b/leave")]}
    one, two = _trace(cfg, script, 500), _trace(cfg, script, 500)
    assert one == two
    other_seed = _trace(dataclasses.replace(cfg, sim=dataclasses.replace(cfg.sim, seed=cfg.sim.seed + 1)), script, 500)
    assert other_seed != one
    assert any(row[2] for row in one)                                # touches happened
    assert any(row[9] for row in one)                                # and pulses


# ---- one sender, many ids; limits that change while people are there ---------------------------
def test_one_sender_inventing_ids_cannot_take_every_place():
    rig = Rig(make_config(crowd=dict(max_participants=20, max_per_sender=4), **QUIET))
    squat = [ev(f"/crowd/fake{i}/motion", 0.5, src="10.0.0.9:4000") for i in range(40)]
    rig.run(squat)
    assert rig.cc.mood.count == 4 and rig.cc.refused_sender == 36 and rig.cc.refused == 0
    # visitors from their own phones still get in, and a participant already there keeps sending
    rig.run([ev(f"/crowd/real{i}/motion", 0.5, src=f"10.0.1.{i}:5000") for i in range(10)]
            + [ev("/crowd/fake0/motion", 0.9, src="10.0.0.9:4000")])
    assert rig.cc.mood.count == 14 and rig.cc.refused_sender == 36
    # 0: no limit per sender, only max_participants
    rig = Rig(make_config(crowd=dict(max_participants=20, max_per_sender=0), **QUIET))
    rig.run(squat)
    assert rig.cc.mood.count == 20 and rig.cc.refused == 20 and rig.cc.refused_sender == 0


def test_crowd_limits_and_times_follow_a_scene_change():
    cfg = make_config(crowd=dict(timeout_s=30.0), **QUIET)
    rig = Rig(cfg)
    rig.run([ev("/crowd/a/motion", 0.5)], ticks=2)
    assert rig.cc.mood.count == 1
    rig.cc.set_config(dataclasses.replace(cfg, crowd=dataclasses.replace(cfg.crowd, timeout_s=1.0,
                                                                          max_participants=1)))
    rig.run([ev("/crowd/b/motion", 0.5, src="10.0.0.3:5000")])       # full at the new cap
    assert rig.cc.refused == 1
    rig.run(ticks=HZ)                                                  # silent for the new timeout
    assert rig.cc.mood.count == 0


def test_attract_crowd_follows_a_scene_that_changes_its_size_or_turns_it_on():
    cfg = make_config(attract=dict(enabled=False, after_s=0.0, participants=4, handover_s=0.0))
    rig = Rig(cfg)
    rig.run(ticks=HZ)
    assert not rig.cc.attract_active and not [p for p in rig.cc.participants if p.virtual]
    on = dataclasses.replace(cfg, attract=dataclasses.replace(cfg.attract, enabled=True, participants=7))
    rig.cc.set_config(on)
    rig.run(ticks=5 * HZ)
    assert rig.cc.attract_active
    present = [p for p in rig.cc.participants if p.virtual and not p.leaving]
    assert 0 < len(present) <= 7
    fewer = dataclasses.replace(on, attract=dataclasses.replace(on.attract, participants=2, mood="calm"))
    rig.cc.set_config(fewer)
    rig.run(ticks=5 * HZ)
    assert 0 < len([p for p in rig.cc.participants if p.virtual and not p.leaving]) <= 2


def test_an_operator_pulse_is_not_a_surge_of_the_crowd():
    """analyze counts the crowd's own surges: an operator's /pulse makes a pulse, not a surge."""
    rig = Rig(make_config(**QUIET))
    rig.run([ev("/pulse", 1.0)])
    assert rig.cc.surged is False
    rig.run(ticks=HZ)
    calm = [ev(f"/crowd/p{i}/emotion", 0.0, 0.05, src=f"10.0.2.{i}:9") for i in range(6)]
    rig.run(calm, ticks=2 * HZ)
    surged = []
    rig.run([ev(f"/crowd/p{i}/emotion", 0.0, 1.0, src=f"10.0.2.{i}:9") for i in range(6)])
    for _ in range(2 * HZ):
        rig.run()
        surged.append(rig.cc.surged)
    assert any(surged)                # the crowd's arousal jumped: its own surge


def test_leaving_and_coming_back_gets_past_neither_limit():
    """A script sending /leave then a message again for each invented id: the one coming back
    during its fade is held to both limits, as a newcomer is."""
    rig = Rig(make_config(crowd=dict(max_participants=50, max_per_sender=4), **QUIET))
    src = "10.0.0.9:4000"
    for i in range(40):
        rig.run([ev(f"/crowd/p{i}/emotion", 0.1, 0.2, src=src), ev(f"/crowd/p{i}/leave", src=src)])
    rig.run([ev(f"/crowd/p{i}/emotion", 0.1, 0.2, src=src) for i in range(40)])
    assert rig.cc.mood.count <= 4 and rig.cc.refused_sender >= 36
