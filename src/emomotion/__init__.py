"""emomotion: emotionally expressive text-to-motion."""

__version__ = "0.1.0"
