"""The swarm engine: numba kernels, their NumPy twins, and `Swarm`."""
# sim/settings.py imports config.fields, whose package imports config.model, which imports
# sim/settings.py: loading the config package first keeps `import installation.sim.swarm`
# working on its own.
from .. import config as _config  # noqa: F401
