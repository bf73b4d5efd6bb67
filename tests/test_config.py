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
