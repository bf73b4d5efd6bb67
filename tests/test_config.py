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
