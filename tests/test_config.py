"""Configuration: every error path is one line naming file, key and what is allowed."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from installation.config import ConfigError, load_config, to_dict
from installation.config.default_toml import render
from installation.config.model import config_from_session, list_scenes

from conftest import ROOT


def write(tmp_path: Path, text: str) -> Path:
    p = tmp_path / "c.toml"
    p.write_text(text)
    return p


def test_default_toml_lists_exactly_the_schema():
    assert (ROOT / "configs" / "default.toml").read_text() == render(), \
        "regenerate: python -m installation.config.default_toml > configs/default.toml"


def test_default_config_loads_with_default_scene():
    cfg = load_config(env={})
    assert cfg.sim.particles >= 50000
    assert cfg.scene.name == "living-mosaic"


@pytest.mark.parametrize("text, needles", [
    ("[sim]\nparticels = 10\n", ["c.toml", "particels", "did you mean 'particles'"]),
    ("[simm]\nparticles = 10\n", ["unknown section [simm]", "did you mean 'sim'"]),
    ("[sim]\nparticles = 'many'\n", ["particles", "expected a whole number", "16..1000000"]),
    ("[sim]\nparticles = 5\n", ["particles = 5", "out of range", "16..1000000"]),
    ("[sim]\nboundary = 'wall'\n", ["boundary", "did you mean 'walls'"]),
    ("[render]\npalette = ['red']\n", ["palette", "#rrggbb"]),
    ("[window]\nvsync = 1\n", ["vsync", "true or false"]),
    ("[sim\n", ["not valid TOML"]),
    ("sim = 3\n", ["[sim] must be a table"]),
])
def test_config_errors_name_file_key_and_allowed(tmp_path, text, needles):
    with pytest.raises(ConfigError) as exc:
        load_config(write(tmp_path, text), env={})
    msg = str(exc.value)
    assert "\n" not in msg
    for n in needles:
        assert n in msg, msg


def test_missing_file_and_missing_scene(tmp_path):
    with pytest.raises(ConfigError, match="no such config file"):
        load_config(tmp_path / "nope.toml", env={})
    with pytest.raises(ConfigError, match="scene 'living-mosiac'.*did you mean 'living-mosaic'"):
        load_config(scene="living-mosiac", env={})


def test_override_order_file_env_flags(tmp_path):
    p = write(tmp_path, "[scene]\nname = ''\n[sim]\nparticles = 1000\nseed = 5\n")
    assert load_config(p, env={}).sim.particles == 1000
    env = {"LIVING_MOSAIC__SIM__PARTICLES": "2000"}
    assert load_config(p, env=env).sim.particles == 2000
    cfg = load_config(p, env=env, sets=["sim.particles=3000", "render.palette=['#ffffff']", "osc.host=localhost"])
    assert cfg.sim.particles == 3000 and cfg.sim.seed == 5
    assert cfg.render.palette == ("#ffffff",)
    assert cfg.osc.host == "localhost"  # a bare word is a string
    with pytest.raises(ConfigError, match="--set.*unknown key 'particle'"):
        load_config(p, env={}, sets=["sim.particle=3"])
    with pytest.raises(ConfigError, match="environment.*particles"):
        load_config(p, env={"LIVING_MOSAIC__SIM__PARTICLES": "lots"})


def test_session_round_trip_of_resolved_config():
    cfg = load_config(env={})
    again = config_from_session(to_dict(cfg), cfg.base_dir)
    assert again == cfg


def run_cli(*args, env=None):
    return subprocess.run([sys.executable, str(ROOT / "run_installation.py"), *args],
                          capture_output=True, text=True, env=env, timeout=120)


def test_check_config_every_shipped_config_and_scene(cli_env):
    configs = sorted((ROOT / "configs").glob("*.toml"))
    assert configs
    for path in configs:
        r = run_cli("check-config", str(path), env=cli_env)
        assert r.returncode == 0, r.stderr
        assert "ok" in r.stdout
    for scene in list_scenes(load_config(env={})):
        r = run_cli("check-config", str(ROOT / "configs" / "default.toml"), "--scene", scene, env=cli_env)
        assert r.returncode == 0, (scene, r.stderr)


def test_bad_config_is_one_line_exit_2(tmp_path, cli_env):
    p = write(tmp_path, "[sim]\nparticles = -1\n")
    for args in (("check-config", str(p)), ("run", "--config", str(p), "--headless", "--frames", "1")):
        r = run_cli(*args, env=cli_env)
        assert r.returncode == 2
        assert "Traceback" not in r.stderr
        lines = [line for line in r.stderr.splitlines() if line.strip()]
        assert len(lines) == 1 and "particles" in lines[0] and str(p) in lines[0], r.stderr


def test_bad_usage_exit_2(cli_env):
    r = run_cli("run", "--size", "big", env=cli_env)
    assert r.returncode == 2 and "WIDTHxHEIGHT" in r.stderr and "Traceback" not in r.stderr
    # a dedicated flag's value out of range is blamed on that flag, not on --set
    for args in (("--duration", "nan"), ("--duration", "inf"), ("--frames", "0")):
        r = run_cli("run", "--headless", *args, env=cli_env)
        assert r.returncode == 2 and "must be a finite number > 0" in r.stderr, r.stderr
    for args, needle in ((("--seed", "-1"), "error: --seed [sim]: seed = -1"),
                         (("--osc-port", "70000"), "error: --osc-port [osc]: port = 70000")):
        r = run_cli("run", "--headless", "--frames", "1", *args, env=cli_env)
        assert r.returncode == 2 and r.stderr.strip() == r.stderr.strip().splitlines()[0], r.stderr
        assert r.stderr.startswith(needle), r.stderr


def test_a_copy_of_the_default_config_runs_anywhere(tmp_path, cli_env):
    """Copied out of configs/ to be edited, it still finds the shipped scenes (as alias files
    do); a folder of the venue's own beside it wins."""
    copy = tmp_path / "venue.toml"
    copy.write_text((ROOT / "configs" / "default.toml").read_text())
    r = run_cli("check-config", str(copy), env=cli_env)
    assert r.returncode == 0 and "scene 'living-mosaic'" in r.stdout, r.stderr
    (tmp_path / "scenes").mkdir()
    (tmp_path / "scenes" / "living-mosaic.toml").write_text("[sim]\nflow_strength = 2.5\n")
    assert load_config(copy, env={}).sim.flow_strength == 2.5
    assert list_scenes(load_config(copy, env={})) == ["living-mosaic"]


PREFLIGHT_FAILURES = [
    ('[osc]\nalias_files = ["nosuch.toml"]\n', "nosuch.toml: no such file"),
    ('[schedule]\nentries = ["09:00=nosuchscene"]\n', "unknown scene 'nosuchscene'"),
    ('[schedule]\nplaylist = ["calm-sanctuary", "nosuchscene"]\n', "unknown scene 'nosuchscene'"),
    # key names were checked only when a window opened: "ok", then a windowed start refused them
    ('[window]\nhud_key = "notakey"\n', "c.toml [window]: hud_key: unknown key name 'notakey'"),
    ('[window]\nquit_keys = ["left ctrl", "nokey"]\n', "c.toml [window]: quit_keys: unknown key name 'nokey'"),
]


@pytest.mark.parametrize("text, needle", PREFLIGHT_FAILURES)
def test_check_config_fails_where_run_would(tmp_path, cli_env, text, needle):
    """A pre-flight "ok" means `run` starts: check-config runs run's own start-up checks."""
    p = write(tmp_path, '[scene]\nfolder = "' + str(ROOT / "configs" / "scenes") + '"\n' + text)
    for args in (("check-config", str(p)), ("run", "--config", str(p), "--headless", "--no-audio", "--frames", "1")):
        r = run_cli(*args, env=cli_env)
        lines = [line for line in r.stderr.splitlines() if line.strip()]
        assert r.returncode == 2 and len(lines) == 1 and needle in lines[0], (args, r.stderr)


def test_a_broken_scene_fails_the_check_but_not_the_show(tmp_path, cli_env):
    """A typo in a scene nobody has asked for yet: check-config fails on it (exit 2, naming
    the file and key); a run says so and starts; the schedule naming it stops the start."""
    (tmp_path / "scenes").mkdir()
    (tmp_path / "scenes" / "dawn.toml").write_text("[sim]\nparticles = 3000\n")
    (tmp_path / "scenes" / "dusk.toml").write_text("[sim]\nflow_strenght = 1.0\n")
    p = write(tmp_path, '[scene]\nname = "dawn"\n[render]\nwidth = 320\nheight = 180\n')
    r = run_cli("check-config", str(p), env=cli_env)
    assert r.returncode == 2 and "dusk.toml" in r.stderr and "did you mean 'flow_strength'" in r.stderr, r.stderr
    r = run_cli("run", "--config", str(p), "--headless", "--no-audio", "--frames", "3", "--osc-port", "0", env=cli_env)
    assert r.returncode == 0, r.stderr
    assert "scene 'dusk' cannot be used until its file is fixed" in r.stderr
    p.write_text(p.read_text() + '[schedule]\nentries = ["21:00=dusk"]\n')
    r = run_cli("run", "--config", str(p), "--headless", "--no-audio", "--frames", "3", env=cli_env)
    assert r.returncode == 2 and "[schedule] names scene 'dusk', which cannot be used" in r.stderr, r.stderr


def test_editor_encodings_and_environment_errors_are_one_line(tmp_path):
    bom = tmp_path / "bom.toml"
    bom.write_bytes(b"\xef\xbb\xbf[scene]\nname = ''\n[sim]\nparticles = 1000\n")
    assert load_config(bom, env={}).sim.particles == 1000          # Notepad's UTF-8 is fine
    latin = tmp_path / "latin.toml"
    latin.write_bytes(b"# caf\xe9 lights\n[scene]\nname = ''\n")
    with pytest.raises(ConfigError, match=r"latin.toml: line 1: byte 0xe9 is not UTF-8 text \(save the file as UTF-8\)"):
        load_config(latin, env={})
    with pytest.raises(ConfigError, match="environment LIVING_MOSAIC__SIM__SEED.*seed"):
        load_config(bom, env={"LIVING_MOSAIC__SIM__PARTICLES": "2000", "LIVING_MOSAIC__SIM__SEED": "x"})


def test_odd_files_in_the_scenes_folder(tmp_path):
    """A file name that is no scene name is a broken scene (named, refused), never a session
    that cannot replay; with folder = "." the config itself and alias files are not scenes."""
    from installation.config.model import recorded_scenes, scenes_to_dict
    (tmp_path / "scenes").mkdir()
    (tmp_path / "scenes" / "Night Show.toml").write_text("[sim]\nflow_strength = 1.0\n")
    (tmp_path / "scenes" / "dawn.toml").write_text("[sim]\nflow_strength = 0.5\n")
    cfg = load_config(write(tmp_path, "[scene]\nname = 'dawn'\n"), env={})
    assert list_scenes(cfg) == ["dawn"] and "letters, digits" in cfg.scenes.broken["Night Show"]
    again = recorded_scenes(scenes_to_dict(cfg), "s.jsonl")
    assert list(again) == ["dawn"]
    odd = recorded_scenes({"dawn": {"sim": {"flow_strength": 0.5}}, "gone": {"sim": {"no_such": 1}}}, "s.jsonl")
    assert list(odd) == ["dawn"] and "no_such" in odd.broken["gone"]
    flat = tmp_path / "flat"
    flat.mkdir()
    (flat / "aliases.toml").write_text('[[alias]]\naddress = "/1/xy1"\nto = "/crowd/{sender}/touch"\n'
                                       'args = [{ arg = 0 }, { arg = 1 }]\n')
    (flat / "calm.toml").write_text("[sim]\nflow_strength = 0.2\n")
    conf = flat / "venue.toml"
    conf.write_text('[scene]\nname = "calm"\nfolder = "."\n[osc]\nalias_files = ["aliases.toml"]\n')
    cfg = load_config(conf, env={})
    assert list_scenes(cfg) == ["calm"] and cfg.scenes.broken == {}
    from installation.ops.preflight import preflight
    assert preflight(cfg, strict=True) == []


def test_a_start_up_scene_cannot_loosen_audience_safety(tmp_path, caplog):
    """As at a switch: the flash guard's geometry, quiet hours and the loudness limits are the
    config file's alone, whichever scene the show starts in."""
    import logging
    (tmp_path / "scenes").mkdir()
    (tmp_path / "scenes" / "loud.toml").write_text(
        "[safety]\nquiet_brightness = 1.0\nimage_width_deg = 5.0\n"
        "[audio]\nceiling_dbtp = 0.0\nlufs_ceiling = 0.0\nvolume = 0.4\n")
    p = write(tmp_path, "[scene]\nname = 'loud'\n")
    with caplog.at_level(logging.WARNING):
        cfg = load_config(p, env={})
    base = load_config(write(tmp_path, "[scene]\nname = ''\n"), env={})
    assert cfg.safety == base.safety
    assert (cfg.audio.ceiling_dbtp, cfg.audio.lufs_ceiling) == (base.audio.ceiling_dbtp, base.audio.lufs_ceiling)
    assert cfg.audio.volume == 0.4                       # the rest of the scene applies
    said = " ".join(r.getMessage() for r in caplog.records)
    assert "safety.quiet_brightness is audience safety" in said and "audio.lufs_ceiling is audience safety" in said


# -- review fixes: pitch range, scene names, list-scenes, typos, stray keys, lost edits -------

def test_a_pitch_range_above_nyquist_is_refused_naming_both_keys(tmp_path):
    """root_hz = 880 and octaves = 5 are each in range, together the top note is ~35 kHz."""
    p = write(tmp_path, "[scene]\nname = ''\n[audio]\nroot_hz = 880.0\noctaves = 5.0\n")
    with pytest.raises(ConfigError) as exc:
        load_config(p, env={})
    msg = str(exc.value)
    assert "\n" not in msg
    for needle in ("c.toml", "[audio]", "root_hz = 880", "octaves = 5", "samplerate 48000",
                   "lower root_hz to at most", "or octaves to at most"):
        assert needle in msg, msg
    # the fix it names works: each suggested value loads
    import re
    root = re.search(r"root_hz to at most ([\d.]+)", msg).group(1)
    octaves = re.search(r"octaves to at most ([\d.]+)", msg).group(1)
    for fixed in (f"root_hz = {root}\noctaves = 5.0\n", f"root_hz = 880.0\noctaves = {octaves}\n"):
        load_config(write(tmp_path, "[scene]\nname = ''\n[audio]\n" + fixed), env={})
    # a lower sample rate lowers the ceiling: fine at 96 kHz, refused at 44.1 kHz
    ok = write(tmp_path, "[scene]\nname = ''\n[audio]\nroot_hz = 880.0\noctaves = 3.0\nsamplerate = 96000\n")
    load_config(ok, env={})
    with pytest.raises(ConfigError, match=r"^--set \[audio\]: root_hz = 880 .*samplerate 44100"):
        load_config(ok, env={}, sets=["audio.samplerate=44100"])


def test_the_pitch_bound_is_the_synth_s_own_top_note():
    """top_voice_hz is the highest pitch voice_frequency can give (degree steps + 2, the
    brightest mode, full surge detune), for every octave setting."""
    import numpy as np
    from installation.audio import reference as R
    from installation.audio.engine import make_config
    from installation.audio.music import MODES
    from installation.audio.settings import _TOP_SEMITONES, AudioSettings, top_voice_hz
    assert tuple(MODES.max(axis=0)) == _TOP_SEMITONES
    for octaves in np.arange(0.5, 5.01, 0.25):
        s = AudioSettings(root_hz=30.0, octaves=float(octaves), tension_cents=100.0)
        cfg = make_config(s, 48000)
        top = int(cfg[R.S.CF_STEPS]) + 2
        highest = max(R.voice_frequency_ref(cfg, d, m, v, 1.0)
                      for d in range(top + 1) for m in range(len(MODES)) for v in range(64))
        bound = top_voice_hz(s.root_hz, s.octaves, s.tension_cents)
        assert highest <= bound + 1e-9 and highest > bound * 2 ** (-0.5 / 12), (octaves, highest, bound)


def test_a_scene_s_audio_is_checked_over_the_config_it_runs_with(tmp_path):
    """A scene that raises root_hz is refused when the config's octaves take it past Nyquist:
    named by its file, the show still starts, check-config fails on it."""
    (tmp_path / "scenes").mkdir()
    (tmp_path / "scenes" / "dawn.toml").write_text("[sim]\nflow_strength = 0.5\n")
    (tmp_path / "scenes" / "shrill.toml").write_text("[audio]\nroot_hz = 880.0\n")
    p = write(tmp_path, "[scene]\nname = 'dawn'\n[audio]\noctaves = 4.0\n")
    cfg = load_config(p, env={})
    why = cfg.scenes.broken["shrill"]
    assert "shrill.toml" in why and "root_hz = 880" in why and "octaves = 4" in why, why
    from installation.ops.preflight import preflight
    with pytest.raises(ConfigError, match="shrill.toml"):
        preflight(cfg, strict=True)
    with pytest.raises(ConfigError, match="shrill.toml.*root_hz"):
        load_config(p, env={}, scene="shrill")
    # the same scene over a narrower range is fine
    assert "shrill" in list_scenes(load_config(write(tmp_path, "[scene]\nname = 'dawn'\n"), env={}))


def test_a_scene_is_checked_over_the_start_scene_a_switch_builds_it_on(tmp_path):
    """A switch builds the new scene over the start config, start scene included: a scene
    that only fails there is broken at start-up (check-config fails), not refused at 21:00.
    A replay checks the recorded scenes over the recorded config, as its switches build them."""
    from installation.config.model import recorded_scenes
    from installation.ops.preflight import preflight
    from installation.ops.scenes import SceneMixer
    (tmp_path / "scenes").mkdir()
    (tmp_path / "scenes" / "wide.toml").write_text("[audio]\noctaves = 5.0\n")
    (tmp_path / "scenes" / "high.toml").write_text("[audio]\nroot_hz = 300.0\n")
    cfg = load_config(write(tmp_path, "[scene]\nname = 'wide'\n"), env={})
    assert "high" in cfg.scenes.broken and "root_hz" in cfg.scenes.broken["high"]
    with pytest.raises(ConfigError, match="high"):
        preflight(cfg, strict=True)
    assert SceneMixer(cfg).switch("high", 0.0, tick=1) is not None      # refused, as said at start
    # at 96 kHz the same range fits: the recorded config decides, not the defaults
    rate96 = to_dict(load_config(env={}, sets=["audio.samplerate=96000"]))
    scenes = recorded_scenes({"high": {"audio": {"root_hz": 300.0, "octaves": 5.0}}}, "s.jsonl", rate96)
    assert "high" in scenes and not scenes.broken
    assert "high" in recorded_scenes({"high": {"audio": {"root_hz": 300.0, "octaves": 5.0}}}, "s.jsonl").broken


@pytest.mark.parametrize("stem, fixed", [("late night", "late-night"), ("night.v2", "night-v2"),
                                         ("nuit-été", "nuit-ete")])
def test_a_scene_file_whose_name_osc_cannot_carry_says_how_to_rename_it(tmp_path, stem, fixed):
    """One rule for scene names everywhere: a file that could be started but never switched
    to by /scene, scheduled or voted for is refused, naming the file and a name that works."""
    (tmp_path / "scenes").mkdir()
    bad = tmp_path / "scenes" / f"{stem}.toml"
    bad.write_text("[sim]\nflow_strength = 1.0\n")
    (tmp_path / "scenes" / "dawn.toml").write_text("[sim]\nflow_strength = 0.5\n")
    cfg = load_config(write(tmp_path, "[scene]\nname = 'dawn'\n"), env={})
    assert list_scenes(cfg) == ["dawn"]
    why = cfg.scenes.broken[stem]
    assert str(bad) in why and f"rename it to {fixed}.toml" in why and "letters, digits" in why, why
    assert "\n" not in why
    with pytest.raises(ConfigError, match=f"rename it to {fixed}.toml"):
        load_config(write(tmp_path, f"[scene]\nname = '{stem}'\n"), env={})


def test_list_scenes_reads_a_venue_config(tmp_path, cli_env):
    (tmp_path / "scenes").mkdir()
    (tmp_path / "scenes" / "harbour.toml").write_text("[sim]\nflow_strength = 0.5\n")
    (tmp_path / "scenes" / "dusk.toml").write_text("[sim]\nflow_strenght = 1.0\n")
    p = write(tmp_path, "[scene]\nname = 'harbour'\n")
    r = run_cli("list-scenes", "--config", str(p), env=cli_env)
    assert r.returncode == 0 and r.stdout.split() == ["harbour"], (r.stdout, r.stderr)
    assert "scene 'dusk' cannot be used" in r.stderr
    r = run_cli("list-scenes", "--config", str(tmp_path / "nope.toml"), env=cli_env)
    assert r.returncode == 2 and "nope.toml" in r.stderr and "Traceback" not in r.stderr


@pytest.mark.parametrize("text, needles", [
    ('[schedule]\nentries = ["09:00=calm-sanctury", "21:00=night"]\n',
     ["[schedule] entries", "unknown scene 'calm-sanctury'", "did you mean 'calm-sanctuary'", "known scenes"]),
    ('[schedule]\nplaylist = ["surge", "nigth"]\n',
     ["[schedule] playlist", "unknown scene 'nigth'", "did you mean 'night'"]),
    ("[scene]\nname = 'calm-sanctury'\n",
     ["[scene] name", "scene 'calm-sanctury'", "did you mean 'calm-sanctuary'"]),
])
def test_a_misspelt_scene_name_names_the_file_and_the_nearest_scene(tmp_path, text, needles):
    from installation.ops.preflight import preflight
    p = write(tmp_path, text)
    with pytest.raises(ConfigError) as exc:
        preflight(load_config(p, env={}), strict=True)
    msg = str(exc.value)
    assert "\n" not in msg and msg.startswith(str(p)), msg
    for n in needles:
        assert n in msg, msg


def test_a_misspelt_scene_name_from_a_flag_or_the_environment_names_that(tmp_path):
    from installation.ops.preflight import preflight
    p = write(tmp_path, "[scene]\nname = ''\n")
    with pytest.raises(ConfigError, match=r"^--scene: unknown scene 'nigth' \(did you mean 'night'\?\)"):
        load_config(p, env={}, scene="nigth")
    with pytest.raises(ConfigError, match=r"^--set schedule.playlist: unknown scene 'nigth'"):
        preflight(load_config(p, env={}, sets=['schedule.playlist=["nigth"]']), strict=True)
    env = {"LIVING_MOSAIC__SCHEDULE__ENTRIES": '["21:00=nigth"]'}
    with pytest.raises(ConfigError, match=r"^environment LIVING_MOSAIC__SCHEDULE__ENTRIES: unknown scene 'nigth'"):
        preflight(load_config(p, env=env), strict=True)


@pytest.mark.parametrize("text, needles", [
    ("bloom = 1.0\n[render]\nexposure = 1.0\n", ["c.toml", "key 'bloom' is outside any section",
                                                 "put it under [render]"]),
    ("crossfade_s = 3.0\n", ["key 'crossfade_s' is outside any section", "[scene]", "[schedule]", "[votes]"]),
    ("blom = 1.0\n", ["key 'blom' is outside any section", "did you mean 'bloom' under [render]"]),
])
def test_a_key_above_every_section_is_said_to_be_one(tmp_path, text, needles):
    with pytest.raises(ConfigError) as exc:
        load_config(write(tmp_path, text), env={})
    msg = str(exc.value)
    assert "\n" not in msg and "unknown section" not in msg, msg
    for n in needles:
        assert n in msg, msg


def test_sim_seed_is_documented_as_what_it_seeds():
    """The species matrix comes from matrix_seed alone; sim.seed's doc (and default.toml,
    written from it) must say what the seed does change and not claim the matrix."""
    import dataclasses
    from installation.sim.settings import SimSettings
    from installation.sim.swarm import Swarm
    a, b = Swarm(SimSettings(particles=64, seed=1)), Swarm(SimSettings(particles=64, seed=2))
    assert (a.matrix == b.matrix).all()                      # what the seed does not touch
    assert not (a.x == b.x).all() and not (a.target_x == b.target_x).all()
    assert not (a.flow.angle0 == b.flow.angle0).all()
    c = Swarm(SimSettings(particles=64, seed=1, matrix_seed=8))
    assert not (a.matrix == c.matrix).all() and (a.x == c.x).all()
    docs = {f.name: f.metadata["doc"] for f in dataclasses.fields(SimSettings)}
    seeds, _, rest = docs["seed"].partition(";")
    assert "matrix" not in seeds and "matrix_seed" in rest, docs["seed"]
    for needle in ("initial swarm", "home in the mosaic", "flow field", "attract crowd"):
        assert needle in seeds, docs["seed"]
    assert "interaction matrix and the attract crowd" not in (ROOT / "configs" / "default.toml").read_text()


def test_a_file_value_the_start_scene_overrides_is_warned_about(tmp_path, cli_env):
    """particles = 20000 in the file, and the start scene sets 50000: the file's value is lost;
    say so, with the scene's file and how to keep it. --set and the environment win over the
    scene: nothing is lost and nothing said. Values equal to the built-in defaults (the shipped
    default.toml) are not the technician's edits: nothing said."""
    p = write(tmp_path, "[sim]\nparticles = 20000\nflow_strength = 0.25\n[render]\nbloom = 1.5\n")
    cfg = load_config(p, env={})
    assert cfg.sim.particles == 50000
    assert len(cfg.notices) == 1
    note = cfg.notices[0]
    for needle in (str(p), "sim.particles = 20000", "render.bloom = 1.5", "living-mosaic.toml",
                   "start scene 'living-mosaic'", "--scene"):
        assert needle in note, note
    assert "flow_strength" not in note          # the file's value is the default: not an edit
    assert load_config(p, env={}, sets=["sim.particles=20000", "render.bloom=1.5"]).notices == ()
    alone = tmp_path / "alone.toml"
    alone.write_text("[scene]\nname = ''\n[sim]\nparticles = 20000\n")
    assert load_config(alone, env={}).notices == ()
    assert load_config(env={}).notices == ()
    for name in list_scenes(load_config(env={})):
        assert load_config(env={}, scene=name).notices == (), name
    r = run_cli("check-config", str(p), env=cli_env)
    assert r.returncode == 0 and "warning: " + note in r.stdout, (r.stdout, r.stderr)


def test_a_swarm_no_machine_can_tick_in_time_is_refused_before_it_starts(tmp_path):
    """sim.radius 0.2 with 50k particles is ~3,500 neighbours each: under 1 fps, then the
    watchdog's exit 3 and a restart loop under systemd. Refused at check-config and run, with
    the largest values that work; a swarm far heavier than the default is a warning."""
    import subprocess
    import sys
    from installation.ops.preflight import preflight
    from installation.sim.grid import NEIGHBOURS_MAX, expected_neighbours
    cfg = load_config(env={}, sets=["sim.radius=0.2"])
    with pytest.raises(ConfigError) as e:
        preflight(cfg, strict=False)
    msg = str(e.value)
    assert "--set sim.radius" in msg and "3534 neighbours" in msg and "\n" not in msg
    r_max = float(msg.split("sim.radius to at most ")[1].split()[0])
    assert expected_neighbours(50000, r_max, cfg.sim.aspect) <= NEIGHBOURS_MAX * 1.001
    heavy = load_config(env={}, sets=["sim.particles=400000"])
    warnings = preflight(heavy, strict=True)
    assert any("16x the default scene's simulation work" in w for w in warnings), warnings
    assert preflight(load_config(env={}), strict=True) == []
    from conftest import ROOT
    run = subprocess.run([sys.executable, str(ROOT / "run_installation.py"), "run", "--headless", "--no-audio",
                          "--frames", "5", "--set", "sim.radius=0.2"], capture_output=True, text=True, timeout=60)
    assert run.returncode == 2 and "neighbours" in run.stderr and "Traceback" not in run.stderr


def test_keep_gb_must_leave_room_for_two_parts(tmp_path):
    """The part being written counts as full (rotate_mb): a keep_gb below two parts deleted
    every older session at every start, and check-config said ok."""
    with pytest.raises(ConfigError, match=r"keep_gb = 0.1 leaves no room for two parts of rotate_mb = 256 MiB.*at least 0.54"):
        load_config(write(tmp_path, "[session]\nkeep_gb = 0.1\n"), env={})
    assert load_config(write(tmp_path, "[session]\nkeep_gb = 0.1\nrotate_mb = 16\n"), env={}).session.keep_gb == 0.1
    assert load_config(write(tmp_path, "[session]\nkeep_gb = 0.1\nrotate_mb = 0\n"), env={}).session.keep_gb == 0.1
