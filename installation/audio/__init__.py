"""The symphony: synth kernels, master bus and meters, the real-time stream, the offline driver."""
# audio/settings.py imports config.fields, whose package imports config.model, which imports
# audio/settings.py: loading the config package first keeps `import installation.audio.engine`
# working on its own.
from .. import config as _config  # noqa: F401
