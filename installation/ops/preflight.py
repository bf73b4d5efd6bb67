"""What a run checks before it opens anything, and `check-config` checks without running.

Loading a config checks every key of the file, the start scene, the environment and --set.
A run needs more than that to start, and more again to last the day: the alias files must
read, the schedule must name scenes that exist, and every scene the schedule, the votes or the
operator may switch to must be usable. `check-config` runs these same checks, so a
technician's pre-flight "ok" means that `run` starts, and that nothing in the folder fails
at 21:00 when the schedule reaches it.
"""
from __future__ import annotations

import math

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
    from ..safety.flash_guard import check_flash_settings, narrow_image_warning
    from .schedule import Schedule
    warnings = list(cfg.notices)      # the loading's own: file edits the start scene overrides
    _swarm_cost(cfg, warnings)
    flash = check_flash_settings(cfg.safety)      # ConfigError without the override phrase
    if flash:
        warnings.append(flash)
    narrow = narrow_image_warning(cfg.safety)
    if narrow:
        warnings.append(narrow)
    broken = broken_scenes(cfg)
    named = list(cfg.schedule.playlist) + [parse_entry(e)[1] for e in cfg.schedule.entries]
    for name in named:
        if name != PLAYLIST_WORD and name in broken:
            raise ConfigError(f"[schedule] names scene '{name}', which cannot be used: {broken[name]}")
    for name, why in sorted(broken.items()):
        if strict:
            raise ConfigError(why)
        warnings.append(f"scene '{name}' cannot be used until its file is fixed: {why}")
    Schedule(cfg.schedule, cfg.sim.tick_hz, list_scenes(cfg), cfg.origins)      # its scenes exist
    AliasMap.load(cfg.osc.alias_files, cfg.base_dir)                # every alias file reads
    return warnings


# A tick costs about particles x (PER_PARTICLE + neighbours): bench's 25k-200k rows fit it
# within a few percent (the per-particle work, sort, flow, integration, weighs as much as 60
# neighbours). The default scene takes ~4 ms a tick on two cores: WORK_WARN times that no
# longer holds 60 fps there. Only a warning: a machine with many cores may carry it.
PER_PARTICLE = 60.0
WORK_WARN = 4


def _swarm_cost(cfg: Config, warnings: list[str]) -> None:
    """Refuse a swarm no machine can tick in time (a slideshow, then the watchdog's exit 3 and
    a restart loop under systemd): neighbours beyond NEIGHBOURS_MAX; warn of one far heavier
    than the default scene."""
    from ..sim.grid import NEIGHBOURS_MAX, expected_neighbours
    from ..sim.settings import SimSettings
    s, d = cfg.sim, SimSettings()
    nb = expected_neighbours(s.particles, s.radius, s.aspect)
    key = "sim.radius" if s.radius != d.radius or s.particles == d.particles else "sim.particles"
    where = cfg.origins.get(key) or "[sim]"
    if nb > NEIGHBOURS_MAX:
        radius_max = (NEIGHBOURS_MAX * s.aspect / (math.pi * max(s.particles - 1, 1))) ** 0.5
        particles_max = int(NEIGHBOURS_MAX * s.aspect / (math.pi * s.radius ** 2)) + 1
        raise ConfigError(f"{where}: sim.radius = {s.radius:g} with sim.particles = {s.particles} gives each particle "
                          f"about {nb:.0f} neighbours (the default scene: {expected_neighbours(d.particles, d.radius, d.aspect):.0f}); "
                          f"above {NEIGHBOURS_MAX} no machine keeps the frame rate: lower sim.radius to at most "
                          f"{radius_max:.4f} or sim.particles to at most {particles_max}")
    work = s.particles * (PER_PARTICLE + nb)
    default = d.particles * (PER_PARTICLE + expected_neighbours(d.particles, d.radius, d.aspect))
    if work > WORK_WARN * default:
        warnings.append(f"{where}: sim.particles = {s.particles} at sim.radius = {s.radius:g} is about "
                        f"{work / default:.0f}x the default scene's simulation work per tick (the default takes "
                        f"~4 ms on two cores): check the frame rate; `python run_installation.py bench` measures "
                        f"this machine")
