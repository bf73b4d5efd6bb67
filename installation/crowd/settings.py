"""Settings of participants, the collective mood, its mapping and the attract crowd."""
from __future__ import annotations

from dataclasses import dataclass

from ..config.fields import setting


@dataclass(frozen=True)
class CrowdSettings:
    max_participants: int = setting(256, "most participants at once; newcomers beyond it are rejected", unit="count", lo=1, hi=10000)
    max_per_sender: int = setting(16, "most participants at once from one sender (host:port, one app's socket), so that one phone or script inventing ids cannot take every place; raise it, or 0 for no limit, when a relay (a web bridge, a Max patch) forwards many phones through one socket", unit="count", lo=0, hi=10000)
    timeout_s: float = setting(30.0, "a participant silent this long has left", unit="s", lo=1.0, hi=3600.0)
    fade_s: float = setting(3.0, "how long a leaving participant's part fades", unit="s", lo=0.0, hi=60.0)
    mood_smoothing_s: float = setting(1.0, "time constant of the collective mood", unit="s", lo=0.0, hi=60.0)
    surge_threshold: float = setting(0.25, "rise of arousal or energy within the surge window that raises a pulse", lo=0.01, hi=1.0)
    surge_window_s: float = setting(1.0, "window over which a surge is measured", unit="s", lo=0.1, hi=10.0)
    touch_hold_s: float = setting(0.5, "a touch stays down this long after its last message (phones send while the finger moves)", unit="s", lo=0.02, hi=10.0)
    energy_decay_s: float = setting(1.5, "time constant with which a participant's motion energy falls when no motion arrives", unit="s", lo=0.05, hi=60.0)
    idle_gain: float = setting(0.4, "light of a species tile that no participant holds while others are present", lo=0.0, hi=1.0)
    pulse_life_s: float = setting(3.0, "how long a pulse's shock-wave lives", unit="s", lo=0.1, hi=30.0)


@dataclass(frozen=True)
class AttractSettings:
    enabled: bool = setting(True, "run a built-in virtual crowd when nobody is there")
    after_s: float = setting(20.0, "seconds without a real participant before attract mode starts", unit="s", lo=0.0, hi=86400.0)
    participants: int = setting(10, "size of the virtual crowd", unit="count", lo=1, hi=256)
    mood: str = setting("mixed", "the virtual crowd's mood", choices=("calm", "joyful", "tense", "surge", "mixed"))
    handover_s: float = setting(4.0, "crossfade between attract mode and the real crowd", unit="s", lo=0.0, hi=60.0)


@dataclass(frozen=True)
class MappingSettings:
    """How the collective mood moves the engine: each target gets base + gain * mood value."""
    agreement_to_mosaic: float = setting(3.0, "mosaic pull added at full agreement", lo=0.0, hi=20.0)
    agreement_to_alignment: float = setting(0.6, "alignment added at full agreement", lo=0.0, hi=5.0)
    arousal_to_flow: float = setting(1.2, "flow strength added at full arousal", lo=0.0, hi=10.0)
    arousal_to_speed: float = setting(0.5, "speed limit added at full arousal", unit="world/s", lo=0.0, hi=5.0)
    energy_to_flow: float = setting(0.8, "flow strength added at full motion energy", lo=0.0, hi=10.0)
    valence_to_warmth: float = setting(0.6, "palette warmth added at full valence (negative valence cools)", lo=0.0, hi=1.0)
    sensor_to_brightness: float = setting(0.0, "brightness added by the ambient sensor level", lo=-1.0, hi=1.0)
