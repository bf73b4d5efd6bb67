"""The typed configuration. Names are loaded on first use: every area's settings module
imports `config.fields`, and the model imports every area's settings, so an eager import
here would find half-loaded modules whichever side is imported first."""
from .loader import ConfigError

_MODEL_NAMES = ("Config", "DEFAULT_CONFIG", "config_from_session", "load_config", "to_dict")
__all__ = ["ConfigError", *_MODEL_NAMES]


def __getattr__(name):
    if name in _MODEL_NAMES:
        from . import model
        return getattr(model, name)
    raise AttributeError(name)
