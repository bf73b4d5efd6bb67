"""The whole configuration: one frozen dataclass per TOML section, loaded in one order."""
from __future__ import annotations

import dataclasses
import json
import logging
import os
import types
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
from .names import fixed_scene_name, scene_name_problem, unknown_scene

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
    # Every scene's overlay, read and checked once at start-up (`scene_library`) or taken from
    # a session's header: a switch never reads the disk on the frame loop, and a replay
    # switches to the scenes the recording had, wherever and whenever it runs. None: read the
    # scenes folder when asked. Not a TOML key.
    scenes: SceneLibrary | None = dataclasses.field(default=None, compare=False)
    # Where each key the loader was given came from ("sim.particles" -> "venue.toml [sim]
    # particles", "environment LIVING_MOSAIC__SIM__PARTICLES", "--set sim.particles"), so a
    # later check (the schedule's scenes) names the place to fix. Not a TOML key.
    origins: Mapping[str, str] = dataclasses.field(default_factory=lambda: types.MappingProxyType({}),
                                                   compare=False)
    # Warnings of the loading itself (the file's edits the start scene overrides): `run` logs
    # them and `check-config` prints them, with the pre-flight's. Not a TOML key.
    notices: tuple[str, ...] = dataclasses.field(default=(), compare=False)
    # A replay's config, as a session recorded it: the checks a version added since (the
    # loader's `validate()`) warn instead of refusing, at start and at every scene switch, so
    # the replay runs what the recording ran. Not a TOML key.
    recorded: bool = dataclasses.field(default=False, compare=False)


NOT_TOML = ("base_dir", "scenes", "origins", "notices", "recorded")
# Audience safety is the config file's alone: a scene sets none of it, neither at a switch
# (ops/scenes.py) nor at start-up, nor does /param.
SAFETY_KEYS = frozenset({
    "audio.ceiling_dbtp", "audio.lufs_ceiling", "audio.ride_attack_s", "audio.ride_release_s",
    "audio.quiet_lufs",
})
SAFETY_SECTIONS = ("safety",)
SECTION_NAMES = tuple(f.name for f in dataclasses.fields(Config) if f.name not in NOT_TOML)


def _section_classes() -> dict[str, type]:
    return {f.name: f.type if isinstance(f.type, type) else type(getattr(Config(), f.name))
            for f in dataclasses.fields(Config) if f.name not in NOT_TOML}


def to_dict(config: Config) -> dict:
    """The resolved configuration as plain TOML/JSON-able data (tuples become lists)."""
    out = {}
    for name in SECTION_NAMES:
        section = getattr(config, name)
        out[name] = {k: (list(v) if isinstance(v, tuple) else v)
                     for k, v in dataclasses.asdict(section).items()}
    return out


def from_tree(tree: Mapping, where: str, base_dir: str | None = None,
              relaxed: list[tuple[str, str]] | None = None) -> Config:
    kwargs = check_tree(Config, tree, where, relaxed)
    if base_dir is not None:
        kwargs["base_dir"] = base_dir
    return Config(**kwargs)


def scenes_dir(base_dir: str, folder: str) -> Path:
    """The scenes folder: relative to the config file; a relative folder that is not there
    falls back to the shipped one (as alias files do), so a copy of configs/default.toml
    edited elsewhere still finds the shipped scenes."""
    here = Path(base_dir) / Path(folder).expanduser()
    shipped = PACKAGE_ROOT / "configs" / folder
    try:
        if Path(folder).expanduser().is_absolute() or here.is_dir() or not shipped.is_dir():
            return here
    except OSError as exc:      # a name too long, a folder we may not look into
        raise ConfigError(f"[scene] folder = {folder!r}: cannot use {here}: {exc.strerror or exc}") from None
    return shipped


def scene_path(base_dir: str, folder: str, name: str) -> Path:
    return scenes_dir(base_dir, folder) / f"{name}.toml"


def list_scenes(config: Config) -> list[str]:
    if config.scenes is not None:
        return sorted(config.scenes)
    return sorted(p.stem for p in scenes_dir(config.base_dir, config.scene.folder).glob("*.toml"))


def _check_scene(tree: Mapping, where: str, layers: tuple[Mapping, Mapping] | None = None,
                 relaxed: list[tuple[str, str]] | None = None) -> dict:
    """A scene's overlay, checked as it would run: over the config's own keys (`layers`: the
    file's below it, the environment's and --set's above), so a scene that is fine alone but
    not with the config (a root_hz that the config's octaves take past Nyquist) is refused,
    and one that only works with the config is not. Without layers, over the defaults."""
    if not isinstance(tree, Mapping):
        raise ConfigError(f"{where}: a scene must be a table of sections")
    if "scene" in tree:
        raise ConfigError(f"{where}: a scene file cannot set the [scene] section")
    under, over = layers or ({}, {})
    check_tree(Config, merge(merge(under, tree), over), where, relaxed)
    return dict(tree)


def _valid_name(name: str, where: str = "") -> None:
    """The one scene-name rule (config/names.py): ConfigError saying what breaks it."""
    problem = scene_name_problem(name)
    if problem:
        raise ConfigError(f"{where or 'scene'} {name!r}: {problem}")


def broken_scenes(config: Config) -> dict[str, str]:
    """Scene name → why its file cannot be used, for the scenes read at start-up."""
    return config.scenes.broken if isinstance(config.scenes, SceneLibrary) else {}


def read_scene(config: Config, name: str, origin: str = "") -> dict:
    """A scene's overlay tree, checked against the schema; ConfigError names a missing scene
    (and, given `origin`, where it was named: "venue.toml [scene] name", "--scene")."""
    if not name:
        return {}
    broken = broken_scenes(config)
    if name in broken:
        raise ConfigError(f"{origin}: scene '{name}' cannot be used: {broken[name]}" if origin else broken[name])
    _valid_name(name, f"{origin}: scene" if origin else "scene")
    if config.scenes is not None:
        if name not in config.scenes:
            raise ConfigError(unknown_scene(origin, name, config.scenes,
                                            scenes_dir(config.base_dir, config.scene.folder)))
        return dict(config.scenes[name])
    path = scene_path(config.base_dir, config.scene.folder, name)
    if not path.is_file():
        raise ConfigError(unknown_scene(origin, name, list_scenes(config), path.parent)
                          + " (set [scene] folder, or name = \"\" for the file as is)")
    return _check_scene(read_toml(path), str(path))


class SceneLibrary(Mapping):
    """Scene name → overlay, read and checked once. A scene file that fails its check is kept
    out, with the reason in `broken`: the run starts and says so, a switch to it is refused
    with that reason (as it would be live), and `check-config` fails on it."""

    def __init__(self, scenes: Mapping[str, Mapping], broken: Mapping[str, str] | None = None):
        self._scenes = {k: types.MappingProxyType(dict(v)) for k, v in scenes.items()}
        self.broken = dict(broken or {})

    def __getitem__(self, name: str) -> Mapping:
        return self._scenes[name]

    def __iter__(self):
        return iter(self._scenes)

    def __len__(self) -> int:
        return len(self._scenes)

    def checked_over(self, base: Mapping, where: str) -> "SceneLibrary":
        """The library with each scene checked again over `base`, the config a switch builds
        it on (the start config, start scene included): one that only fails there (a root_hz
        the start scene's octaves take past Nyquist) is broken now, not refused at 21:00."""
        scenes, broken = {}, dict(self.broken)
        for name, tree in self._scenes.items():
            try:
                scenes[name] = _check_scene(tree, f"{where} scene '{name}'", (base, {}))
            except ConfigError as exc:
                broken[name] = str(exc)
        return SceneLibrary(scenes, broken)


def scene_library(base_dir: str, folder: str, config_file: Path | None = None,
                  layers: tuple[Mapping, Mapping] | None = None,
                  relaxed: list[tuple[str, str]] | None = None) -> SceneLibrary:
    """Every scene of the folder, read and checked now, so a switch never reads the disk.
    `layers`: the config's trees each scene is checked between (see `_check_scene`);
    `relaxed`: as in loader.build_section (a replay's recorded config).

    A folder shared with the config (`folder = "."`) also holds the config itself and alias
    files: they are not scenes, so they are passed over, not reported as broken ones. A file
    whose name breaks the scene-name rule is a broken scene, with the name to rename it to:
    it could be started, but never reached by /scene, the schedule or a vote."""
    where = scenes_dir(base_dir, folder)
    try:
        paths = sorted(where.glob("*.toml"))
    except OSError as exc:
        raise ConfigError(f"[scene] folder = {folder!r}: cannot read {where}: {exc.strerror or exc}") from None
    own = config_file.resolve() if config_file is not None else None
    scenes, broken = {}, {}
    for path in paths:
        if own is not None and path.resolve() == own:
            continue
        try:
            tree = read_toml(path)
            if set(tree) == {"alias"}:
                continue
            problem = scene_name_problem(path.stem)
            if problem:
                raise ConfigError(f"{path}: the file name '{path.stem}' is no scene name: {problem}; "
                                  f"rename it to {fixed_scene_name(path.stem)}.toml")
            scenes[path.stem] = _check_scene(tree, str(path), layers, relaxed)
        except ConfigError as exc:
            broken[path.stem] = str(exc)
    return SceneLibrary(scenes, broken)


def recorded_scenes(data: Any, where: str, base: Mapping | None = None,
                    relaxed: list[tuple[str, str]] | None = None) -> SceneLibrary:
    """A session header's `scenes` (name → overlay), each checked like a scene file, over
    `base` (the recorded config, which the replay's switches build on, as the live ones did).
    One this version cannot use is refused if the session switches to it, as a broken file is
    live; the rest of the session still replays."""
    if not isinstance(data, Mapping):
        raise ConfigError(f"{where}: \"scenes\" must be an object of scene name → settings")
    out, broken = {}, {}
    for name, tree in data.items():
        name = str(name)
        try:
            _valid_name(name, f"{where} scene")
            out[name] = _check_scene(tree, f"{where} scene '{name}'", (base or {}, {}), relaxed)
        except ConfigError as exc:
            broken[name] = str(exc)
    return SceneLibrary(out, broken)


def scenes_to_dict(config: Config) -> dict:
    """The scene library as plain JSON-able data, for a session header."""
    return {name: {sec: dict(table) for sec, table in tree.items()}
            for name, tree in (config.scenes or {}).items()}


def load_config(path: str | os.PathLike | None = None, *, scene: str | None = None,
                sets: list[str] | None = None, env: Mapping[str, str] | None = None) -> Config:
    """defaults → file → scene → environment → --set, each layer checked with its origin named.

    A layer is checked over the file (the file over the defaults), so a cross-field check (the
    pitch range against the samplerate) sees the values the run will have, and blames the
    layer that broke it."""
    path = Path(path) if path else DEFAULT_CONFIG
    file_tree = read_toml(path)
    check_tree(Config, file_tree, str(path))
    origins = {dotted: f"{path} [{dotted.split('.')[0]}] {dotted.split('.', 1)[1]}"
               for dotted in _dotted_keys(file_tree)}
    env_tree = {}
    for name, value in sorted((os.environ if env is None else env).items()):
        one = overrides_from_env({name: value})
        if not one:             # not one of ours
            continue
        check_tree(Config, merge(merge(file_tree, env_tree), one), f"environment {name}")   # names the variable
        env_tree = merge(env_tree, one)
        origins.update((dotted, f"environment {name}") for dotted in _dotted_keys(one))
    set_tree = overrides_from_sets(sets or [])
    top = merge(env_tree, set_tree)
    check_tree(Config, merge(file_tree, top), "--set")
    origins.update((dotted, f"--set {dotted}") for dotted in _dotted_keys(set_tree))

    base_dir = str(path.resolve().parent)
    head = from_tree(merge(file_tree, top), str(path), base_dir)
    library = scene_library(base_dir, head.scene.folder, config_file=path, layers=(file_tree, top))
    head = dataclasses.replace(head, scenes=library)
    scene_name = scene if scene is not None else head.scene.name
    named_by = ("--scene" if scene is not None else
                origins.get("scene.name", f"{path} [scene] name (not set: the default)"))
    scene_tree = _without_safety(read_scene(head, scene_name, named_by), scene_name)
    scene_file = scene_path(base_dir, head.scene.folder, scene_name) if scene_name else None
    for dotted in _dotted_keys(scene_tree):
        if dotted not in origins or not origins[dotted].startswith(("environment ", "--set ")):
            origins[dotted] = f"{scene_file} [{dotted.split('.')[0]}] {dotted.split('.', 1)[1]}"
    tree = merge(merge(file_tree, scene_tree), top)
    tree = merge(tree, {"scene": {"name": scene_name}})
    where = f"{path} (with scene '{scene_name}')" if scene_name else str(path)
    cfg = from_tree(tree, where, base_dir)
    library = library.checked_over(to_dict(cfg), where)      # as a switch builds them
    notices = _lost_to_the_scene(path, file_tree, scene_tree, top, cfg, scene_name, scene_file)
    return dataclasses.replace(cfg, scenes=library, origins=types.MappingProxyType(origins),
                               notices=notices)


def _dotted_keys(tree: Mapping) -> list[str]:
    """'section.key' for every key of a (section → table) tree."""
    return [f"{sec}.{key}" for sec, table in tree.items() if isinstance(table, Mapping) for key in table]


def _lost_to_the_scene(path: Path, file_tree: Mapping, scene_tree: Mapping, top: Mapping, cfg: Config,
                       scene_name: str, scene_file: Path | None) -> tuple[str, ...]:
    """The file's edits the start scene overrides, said once: a key the file sets to something
    other than the built-in default (so the shipped default.toml, which lists the defaults, says
    nothing), that the scene sets to something else, and that neither the environment nor
    --set sets (they come after the scene, so nothing of theirs is lost)."""
    if not scene_tree:
        return ()
    own, builtin = from_tree(file_tree, str(path)), Config()
    lost = []
    for dotted in _dotted_keys(scene_tree):
        sec, key = dotted.split(".", 1)
        if key not in file_tree.get(sec, {}) or key in top.get(sec, {}):
            continue
        mine, scenes = getattr(getattr(own, sec), key), getattr(getattr(cfg, sec), key)
        if mine != getattr(getattr(builtin, sec), key) and scenes != mine:
            lost.append(f"{dotted} = {_shown(mine)} (the scene's: {_shown(scenes)})")
    if not lost:
        return ()
    return (f"{path}: {', '.join(lost)} {'is' if len(lost) == 1 else 'are'} overridden by the start scene "
            f"'{scene_name}' ({scene_file}); to keep the file's value, remove the key from that scene file, "
            f"start with another scene ([scene] name, or --scene), or set it with --set or the environment "
            f"(they come after the scene)",)


def _shown(value: Any) -> str:
    """A value as TOML writes it."""
    return json.dumps(list(value) if isinstance(value, tuple) else value)


def _without_safety(tree: dict, name: str) -> dict:
    """A start-up scene's overlay less what audience safety keeps for the config file (each
    key dropped is said once: a scene written to loosen a limit must not do so silently)."""
    out = {}
    for sec, table in tree.items():
        for key in table:
            if sec in SAFETY_SECTIONS or f"{sec}.{key}" in SAFETY_KEYS:
                logging.getLogger(__name__).warning(
                    "scene '%s': %s.%s is audience safety, set in the config file only; ignored", name, sec, key)
        if sec in SAFETY_SECTIONS:
            continue
        kept = {k: v for k, v in table.items() if f"{sec}.{k}" not in SAFETY_KEYS}
        if kept:
            out[sec] = kept
    return out


def config_from_session(data: Mapping[str, Any], base_dir: str | None = None) -> Config:
    """The config recorded in a session header, checked like a file."""
    return from_tree(data, "session header config", base_dir)
