"""deploy/README.md agrees with the program and the unit: every config key it names exists
where it says, and the kernels it precompiles land where the service looks for them."""
from __future__ import annotations

import re
from pathlib import Path

from installation.config import load_config, to_dict

DEPLOY = Path(__file__).resolve().parents[1] / "deploy"
README = (DEPLOY / "README.md").read_text()
UNIT = (DEPLOY / "living-mosaic.service").read_text()


def schema() -> dict[str, set[str]]:
    return {section: set(keys) for section, keys in to_dict(load_config(env={})).items() if isinstance(keys, dict)}


def named_keys(text: str) -> list[tuple[str, str]]:
    """(section, key) for `[section] key`, `[section] key/key2`, `[section] key = ...`,
    `[section]` (`key`, `key2`) and LIVING_MOSAIC__SECTION__KEY."""
    found = []
    for section, keys in re.findall(r"`\[(\w+)\] ([\w/]+)", text):
        found += [(section, k) for k in keys.split("/")]
    for section, keys in re.findall(r"`\[(\w+)\]` \(((?:`\w+`(?:, )?)+)\)", text):
        found += [(section, k) for k in re.findall(r"`(\w+)`", keys)]
    for section, key in re.findall(r"LIVING_MOSAIC__([A-Z]+)__([A-Z_]+)", text):
        found.append((section.lower(), key.lower()))
    return found


def test_every_config_key_the_guide_names_exists_in_its_section():
    keys = schema()
    named = named_keys(README)
    assert len(named) >= 15, named                  # the patterns still find what the guide says
    wrong = [f"[{s}] {k}" for s, k in named if k not in keys.get(s, ())]
    assert not wrong, f"deploy/README.md names config keys that do not exist there: {wrong}"
    assert ("safety", "quiet_hours") in named       # where quiet hours really are


def test_the_precompile_step_fills_the_cache_the_service_reads():
    cache = re.search(r"^Environment=NUMBA_CACHE_DIR=(\S+)$", UNIT, re.M).group(1)
    step = README[README.index("## 1. Install"):README.index("## 2.")]
    command = re.search(r"^ +(sudo[^\n]*(?:\\\n[^\n]*)*run --headless[^\n]*)", step, re.M)
    assert command, step
    assert f"NUMBA_CACHE_DIR={cache}" in command.group(1), command.group(1)
    # the cache folder exists for the service user before the service ever made it
    assert re.search(rf"install -d -o mosaic -g mosaic {re.escape(str(Path(cache).parent))}\b", step)
