"""The whole configuration: one frozen dataclass per TOML section, loaded in one order."""
from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

from ..audio.settings import AudioSettings
from ..crowd.settings import AttractSettings, CrowdSettings, MappingSettings
from ..ops.settings import (LogSettings, SceneSettings, ScheduleSettings, StatusSettings,
                            VoteSettings, WatchdogSettings)
from ..osc.settings import OscSettings
from ..render.settings import RenderSettings, WindowSettings
from ..safety.settings import SafetySettings
from ..session.settings import SessionSettings
from ..sim.settings import SimSettings
from .loader import (ConfigError, check_tree, merge, overrides_from_env, overrides_from_sets,
                     read_toml)

PACKAGE_ROOT = Path(__file__).resolve().parents[2]
DEFAULT_CONFIG = PACKAGE_ROOT / "configs" / "default.toml"


@dataclass(frozen=True)
class Config:
    scene: SceneSettings = SceneSettings()
    sim: SimSettings = SimSettings()
    render: RenderSettings = RenderSettings()
    window: WindowSettings = WindowSettings()
    osc: OscSettings = OscSettings()
    crowd: CrowdSettings = CrowdSettings()
    attract: AttractSettings = AttractSettings()
    mapping: MappingSettings = MappingSettings()
    audio: AudioSettings = AudioSettings()
    safety: SafetySettings = SafetySettings()
    session: SessionSettings = SessionSettings()
    log: LogSettings = LogSettings()
    schedule: ScheduleSettings = ScheduleSettings()
    votes: VoteSettings = VoteSettings()
    status: StatusSettings = StatusSettings()
    watchdog: WatchdogSettings = WatchdogSettings()
    # Where relative paths in the file (scenes, aliases) are resolved; not a TOML key.
    base_dir: str = dataclasses.field(default=str(PACKAGE_ROOT / "configs"), compare=False)


SECTION_NAMES = tuple(f.name for f in dataclasses.fields(Config) if f.name != "base_dir")


def _section_classes() -> dict[str, type]:
    return {f.name: f.type if isinstance(f.type, type) else type(getattr(Config(), f.name))
            for f in dataclasses.fields(Config) if f.name != "base_dir"}


def to_dict(config: Config) -> dict:
    """The resolved configuration as plain TOML/JSON-able data (tuples become lists)."""
    out = {}
    for name in SECTION_NAMES:
        section = getattr(config, name)
        out[name] = {k: (list(v) if isinstance(v, tuple) else v)
                     for k, v in dataclasses.asdict(section).items()}
    return out


def from_tree(tree: Mapping, where: str, base_dir: str | None = None) -> Config:
    kwargs = check_tree(Config, tree, where)
    if base_dir is not None:
        kwargs["base_dir"] = base_dir
    return Config(**kwargs)


def scene_path(base_dir: str, folder: str, name: str) -> Path:
    return Path(base_dir) / folder / f"{name}.toml"


def list_scenes(config: Config) -> list[str]:
    folder = Path(config.base_dir) / config.scene.folder
    return sorted(p.stem for p in folder.glob("*.toml"))


def read_scene(config: Config, name: str) -> dict:
    """A scene's overlay tree, checked against the schema; ConfigError names a missing scene."""
    if not name:
        return {}
    if not all(c.isalnum() or c in "-_" for c in name):
        raise ConfigError(f"scene '{name}': a scene name is letters, digits, - and _ only")
    path = scene_path(config.base_dir, config.scene.folder, name)
    if not path.is_file():
        known = list_scenes(config)
        from .loader import _suggest
        raise ConfigError(f"scene '{name}': no file {path}{_suggest(name, known)}; known scenes: {', '.join(known) or 'none'}")
    tree = read_toml(path)
    if "scene" in tree:
        raise ConfigError(f"{path}: a scene file cannot set the [scene] section")
    check_tree(Config, tree, str(path))
    return tree


def load_config(path: str | os.PathLike | None = None, *, scene: str | None = None,
                sets: list[str] | None = None, env: Mapping[str, str] | None = None) -> Config:
    """defaults → file → scene → environment → --set, each layer checked with its origin named."""
    path = Path(path) if path else DEFAULT_CONFIG
    file_tree = read_toml(path)
    check_tree(Config, file_tree, str(path))
    env_tree = overrides_from_env(os.environ if env is None else env)
    check_tree(Config, env_tree, "environment")
    set_tree = overrides_from_sets(sets or [])
    check_tree(Config, set_tree, "--set")

    base_dir = str(path.resolve().parent)
    head = from_tree(merge(merge(file_tree, env_tree), set_tree), str(path), base_dir)
    scene_name = scene if scene is not None else head.scene.name
    scene_tree = read_scene(head, scene_name)
    tree = merge(merge(merge(file_tree, scene_tree), env_tree), set_tree)
    tree = merge(tree, {"scene": {"name": scene_name}})
    where = f"{path} (with scene '{scene_name}')" if scene_name else str(path)
    return from_tree(tree, where, base_dir)


def config_from_session(data: Mapping[str, Any], base_dir: str | None = None) -> Config:
    """The config recorded in a session header, checked like a file."""
    return from_tree(data, "session header config", base_dir)
