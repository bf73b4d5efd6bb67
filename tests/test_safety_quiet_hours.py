"""Quiet hours: the schedule, its smooth ramps, and its settings."""
from __future__ import annotations

import datetime as dt

import pytest

from installation.config import ConfigError, load_config
from installation.safety.quiet_hours import QuietHours, parse_ranges
from installation.safety.settings import SafetySettings


def at(h, m=0, s=0):
    return dt.time(h, m, s)


def test_parse_ranges_across_midnight():
    assert parse_ranges(["22:00-07:00", "12:30-13:15", "00:00-24:00"]) == (
        (22 * 60, 7 * 60), (12 * 60 + 30, 13 * 60 + 15), (0, 24 * 60))


@pytest.mark.parametrize("bad", ["22:00", "25:00-07:00", "22:60-07:00", "ab-cd", "7-8",
                                 "10:00-10:00", "24:30-01:00", "22:00-07:00-08:00"])
def test_parse_ranges_rejects_bad_items(bad):
    with pytest.raises(ValueError, match="quiet_hours"):
        parse_ranges([bad])


def test_full_quiet_inside_and_none_far_outside():
    q = QuietHours(["22:00-07:00"], ramp_minutes=30)
    for t in (at(22), at(23, 59), at(0), at(3, 30), at(7)):
        assert q.amount(t) == 1.0, t
    for t in (at(12), at(21, 29), at(7, 31), at(15)):
        assert q.amount(t) == 0.0, t


def test_ramps_lie_outside_the_period_and_are_smooth():
    q = QuietHours(["22:00-07:00"], ramp_minutes=30)
    assert q.amount(at(21, 45)) == pytest.approx(0.5)
    assert q.amount(at(7, 15)) == pytest.approx(0.5)
    # rising before the start, falling after the end, no jumps anywhere in the day
    day = [q.amount(dt.time(h, m, s)) for h in range(24) for m in range(60) for s in (0, 30)]
    steps = [abs(b - a) for a, b in zip(day, day[1:] + day[:1])]
    assert max(steps) < 0.03
    rising = [q.amount(dt.time(21, m)) for m in range(30, 60)]
    assert rising == sorted(rising)


def test_datetimes_and_several_ranges():
    q = QuietHours(["12:00-13:00", "22:00-06:00"], ramp_minutes=0)
    assert q.amount(dt.datetime(2024, 5, 1, 12, 30)) == 1.0
    assert q.amount(dt.datetime(2024, 5, 1, 13, 1)) == 0.0
    assert q.amount(dt.datetime(2024, 5, 1, 23, 0, tzinfo=dt.timezone.utc)) == 1.0
    assert QuietHours([], 10).amount(at(3)) == 0.0
    with pytest.raises(TypeError):
        q.amount(12.0)


def test_scale_goes_from_normal_to_the_quiet_level():
    q = QuietHours(["22:00-07:00"], ramp_minutes=20)
    assert q.scale(at(12), 0.4) == 1.0
    assert q.scale(at(23), 0.4) == pytest.approx(0.4)
    assert 0.4 < q.scale(at(21, 50), 0.4) < 1.0


def test_settings_hold_the_schedule(tmp_path):
    s = SafetySettings(quiet_hours=("22:00-07:00",), quiet_brightness=0.3, quiet_ramp_min=10)
    q = QuietHours.from_settings(s)
    assert q.scale(at(23), s.quiet_brightness) == pytest.approx(0.3)
    cfg = tmp_path / "c.toml"
    cfg.write_text('[safety]\nquiet_hours = ["22:00-07:00"]\nquiet_ramp_min = 5.0\n')
    loaded = load_config(cfg, scene="", env={})
    assert loaded.safety.quiet_hours == ("22:00-07:00",)
    cfg.write_text('[safety]\nquiet_hours = ["22:00-7"]\n')
    with pytest.raises(ConfigError, match="quiet_hours"):
        load_config(cfg, scene="", env={})


def test_a_start_inside_quiet_hours_is_quiet_from_the_first_block():
    """The live stream renders blocks before the frame loop's first tick publishes anything:
    they must already hold the night's loudness ceiling, not the day's (which the rider would
    then take 10 s and more to leave, at 1 dB/s)."""
    from datetime import datetime
    from installation.app import open_audio
    from installation.pipeline import Pipeline
    cfg = load_config(env={}, sets=['safety.quiet_hours=["00:00-24:00"]', "safety.quiet_ramp_min=0",
                                    "sim.particles=2000", "render.width=128", "render.height=72"])
    pipeline = Pipeline(cfg, time_of_day=lambda tick: datetime(2026, 11, 26, 3, 0))
    assert pipeline.quiet_amount == 1.0 and pipeline.audio.quiet == 1.0
    audio = open_audio(cfg, headless=True, no_audio=False, first=pipeline.audio)
    audio.render(cfg.audio.blocksize)           # a block before any tick
    assert audio.stats()["loudness_ceiling_lufs"] == pytest.approx(cfg.audio.quiet_lufs, abs=0.1)
    day = open_audio(cfg, headless=True, no_audio=False)     # nothing published: the day's ceiling
    day.render(cfg.audio.blocksize)
    assert day.stats()["loudness_ceiling_lufs"] > cfg.audio.quiet_lufs + 5


def test_a_jump_of_the_wall_clock_still_fades_the_quiet_in():
    """NTP, a change of daylight-saving time or a hand on the clock can jump the time of day
    into (or out of) quiet hours: the amount then moves at twice a ramp's steepest slope at
    most (on the monotonic clock), never in one tick; a normal ramp passes untouched."""
    from installation.safety.quiet_hours import QuietClock
    clock = QuietClock(QuietHours(["22:00-07:00"], ramp_minutes=10.0))
    day = dt.datetime(2026, 10, 25, 20, 0)
    assert clock.poll(day, 0.0) == 0.0 and clock.event_value() == 0.0
    assert clock.event_value() is None                  # nothing new: no event
    night = dt.datetime(2026, 10, 25, 23, 0)            # the clock jumps three hours ahead
    assert clock.poll(night, 1.0) == pytest.approx(2.0 / 600.0)
    assert clock.poll(night, 150.0) == pytest.approx(0.5)
    assert clock.event_value() == pytest.approx(0.5)
    assert clock.poll(night, 400.0) == 1.0
    # a normal evening ramp, a second at a time, is followed exactly
    ramp = QuietClock(QuietHours(["22:00-07:00"], ramp_minutes=10.0))
    start = dt.datetime(2026, 10, 25, 21, 49)
    for s in range(0, 12 * 60):
        now = start + dt.timedelta(seconds=s)
        assert ramp.poll(now, float(s)) == ramp.quiet.amount(now)


def test_without_a_ramp_the_jump_is_immediate_as_configured():
    from installation.safety.quiet_hours import QuietClock
    clock = QuietClock(QuietHours(["22:00-07:00"], ramp_minutes=0.0))
    assert clock.poll(dt.datetime(2026, 3, 29, 21, 59), 0.0) == 0.0
    assert clock.poll(dt.datetime(2026, 3, 29, 22, 0), 1.0) == 1.0
