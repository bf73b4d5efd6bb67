"""What a run checks before it opens anything, and `check-config` checks without running.

Loading a config checks every key of the file, the start scene, the environment and --set.
A run needs more than that to start, and more again to last the day: the alias files must
read, the schedule must name scenes that exist, and every scene the schedule, the votes or the
operator may switch to must be usable. `check-config` runs these same checks, so a
technician's pre-flight "ok" means that `run` starts, and that nothing in the folder fails
at 21:00 when the schedule reaches it.
"""
from __future__ import annotations

from ..config.loader import ConfigError
from ..config.model import Config, broken_scenes, list_scenes
from .settings import PLAYLIST_WORD, parse_entry


def preflight(cfg: Config, *, strict: bool) -> list[str]:
    """Warnings to show at start-up; ConfigError (one line) for what stops it.

    `strict` (check-config): a scene file that fails its check is an error. A run only warns:
    a typo in a scene nobody has asked for must not leave an exhibit dark; a switch to that
    scene is refused with the same reason, and counted.
    """
    from ..osc.aliases import AliasMap
    from ..safety.flash_guard import check_flash_settings
    from .schedule import Schedule
    warnings = []
    flash = check_flash_settings(cfg.safety)      # ConfigError without the override phrase
    if flash:
        warnings.append(flash)
    broken = broken_scenes(cfg)
    named = list(cfg.schedule.playlist) + [parse_entry(e)[1] for e in cfg.schedule.entries]
    for name in named:
        if name != PLAYLIST_WORD and name in broken:
            raise ConfigError(f"[schedule] names scene '{name}', which cannot be used: {broken[name]}")
    for name, why in sorted(broken.items()):
        if strict:
            raise ConfigError(why)
        warnings.append(f"scene '{name}' cannot be used until its file is fixed: {why}")
    Schedule(cfg.schedule, cfg.sim.tick_hz, list_scenes(cfg))      # its scenes exist
    AliasMap.load(cfg.osc.alias_files, cfg.base_dir)                # every alias file reads
    return warnings
