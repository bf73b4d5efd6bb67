"""The schedule picks the scene for an injected clock; the playlist rotates by ticks."""
from __future__ import annotations

from datetime import datetime

import pytest

from installation.config import ConfigError
from installation.config.loader import build_section
from installation.ops.schedule import Schedule
from installation.ops.settings import ScheduleSettings

DAY = ScheduleSettings(entries=("21:00=night", "09:00=calm-sanctuary", "12:00=living-mosaic"))


def at(hh: int, mm: int, ss: int = 0, day: int = 1) -> datetime:
    return datetime(2024, 3, day, hh, mm, ss)


@pytest.mark.parametrize("clock, scene", [
    (at(9, 0), "calm-sanctuary"),        # an entry's own minute belongs to it
    (at(11, 59, 59), "calm-sanctuary"),
    (at(12, 0), "living-mosaic"),
    (at(20, 59, 59), "living-mosaic"),
    (at(21, 0), "night"),
    (at(23, 59, 59), "night"),
    (at(0, 0), "night"),                 # across midnight: yesterday's last entry holds
    (at(8, 59, 59), "night"),
])
def test_time_of_day(clock, scene):
    assert Schedule(DAY).scene_for(clock) == scene


def test_update_reports_changes_only_across_midnight():
    s = Schedule(DAY)
    seen = [s.update(tick, clock) for tick, clock in enumerate(
        [at(20, 59), at(20, 59, 30), at(21, 0), at(23, 59), at(0, 1, day=2), at(8, 0, day=2), at(9, 0, day=2)])]
    assert seen == ["living-mosaic", None, "night", None, None, None, "calm-sanctuary"]


def test_playlist_rotates_by_ticks_all_day_without_entries():
    s = Schedule(ScheduleSettings(playlist=("surge", "night", "calm-sanctuary"), playlist_minutes=0.5), tick_hz=60)
    period = 30 * 60
    assert s.period_ticks == period
    assert [s.scene_for(at(3, 0), t) for t in (0, period - 1, period, 2 * period, 3 * period)] == \
        ["surge", "surge", "night", "calm-sanctuary", "surge"]
    changes = [(t, s.update(t, at(3, 0))) for t in range(0, 3 * period + 1, 600)]
    assert [c for c in changes if c[1]] == [(0, "surge"), (period, "night"), (2 * period, "calm-sanctuary"),
                                            (3 * period, "surge")]


def test_playlist_slot_inside_a_day():
    s = Schedule(ScheduleSettings(entries=("10:00=playlist", "18:00=night"), playlist=("surge", "living-mosaic"),
                                  playlist_minutes=1.0), tick_hz=10)
    assert s.scene_for(at(11, 0), tick=0) == "surge"
    assert s.scene_for(at(11, 0), tick=600) == "living-mosaic"
    assert s.scene_for(at(19, 0), tick=600) == "night"
    assert s.scene_for(at(2, 0), tick=600) == "night"


def test_no_schedule_wants_nothing():
    s = Schedule(ScheduleSettings())
    assert not s.active and s.scene_for(at(12, 0)) is None and s.update(0, at(12, 0)) is None


@pytest.mark.parametrize("values, words", [
    ({"entries": ["25:00=night"]}, "HH:MM=scene"),
    ({"entries": ["9=night"]}, "HH:MM=scene"),
    ({"entries": ["09:00 night"]}, "HH:MM=scene"),
    ({"entries": ["09:00=a", "09:00=b"]}, "same time"),
    ({"playlist": ["a b"]}, "letters, digits"),
    ({"playlist": ["playlist"]}, "names the playlist slot"),
])
def test_bad_settings_name_the_key(values, words):
    with pytest.raises(ConfigError, match=words) as exc:
        build_section(ScheduleSettings, values, "cfg.toml [schedule]")
    assert "[schedule]" in str(exc.value)


def test_unknown_scenes_and_an_empty_playlist_slot_are_config_errors():
    with pytest.raises(ConfigError, match="unknown scene 'nigth'"):
        Schedule(ScheduleSettings(entries=("21:00=nigth",)), scenes=["night", "surge"])
    with pytest.raises(ConfigError, match="\"playlist\" slot needs"):
        Schedule(ScheduleSettings(entries=("21:00=playlist",)))


@pytest.mark.parametrize("entry, bad", [("09:00=../x", "'.'"), ("09:00=nuit-été", "'é'"),
                                        ("21:30:15=late night", "a space"), ("09:00=", "empty")])
def test_an_entry_with_a_good_time_and_a_bad_name_says_what_is_wrong_with_the_name(entry, bad):
    """Not "expected HH:MM=scene": the time is fine; the name breaks the one scene-name rule."""
    with pytest.raises(ConfigError) as exc:
        build_section(ScheduleSettings, {"entries": [entry]}, "cfg.toml [schedule]")
    msg = str(exc.value)
    assert "HH:MM" not in msg and "letters, digits" in msg and bad in msg and "cfg.toml [schedule]" in msg, msg


def test_an_unknown_scene_is_named_with_where_it_was_set_and_the_nearest_one():
    with pytest.raises(ConfigError) as exc:
        Schedule(ScheduleSettings(entries=("09:00=calm-sanctury", "21:00=night")), scenes=["night", "calm-sanctuary"],
                 where="venue.toml [schedule]")
    assert str(exc.value).startswith("venue.toml [schedule] entries: unknown scene 'calm-sanctury' "
                                     "(did you mean 'calm-sanctuary'?); known scenes: calm-sanctuary, night")
    with pytest.raises(ConfigError, match=r"^\[schedule\] playlist: unknown scene 'surg' \(did you mean 'surge'\?\)"):
        Schedule(ScheduleSettings(playlist=("night", "surg")), scenes=["night", "surge"])
