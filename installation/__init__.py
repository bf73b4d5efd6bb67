"""Living Mosaic: a real-time generative light-and-sound installation."""

__version__ = "0.1.0"
