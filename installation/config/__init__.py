from .loader import ConfigError
from .model import Config, DEFAULT_CONFIG, config_from_session, load_config, to_dict

__all__ = ["Config", "ConfigError", "DEFAULT_CONFIG", "config_from_session", "load_config", "to_dict"]
