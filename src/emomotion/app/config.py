"""Configuration of the web demo: input limits and where/how it is served."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from emomotion import skeleton as sk
from emomotion.errors import ConfigError
from emomotion.limits import MAX_PROMPT_CHARS


@dataclass(frozen=True)
class AppLimits:
    """What one request may ask for; anything beyond gets a clear message, not a slow server."""

    max_prompt_chars: int = MAX_PROMPT_CHARS  # the shared limit; a server may only lower it
    max_seconds: float = sk.MAX_FRAMES / sk.FPS  # 9.8 s, the longest motion the models saw
    max_steps: int = 1000
    max_samples: int = 4
    queue_size: int = 16  # requests waiting; more are refused with "queue full"
    keep_runs: int = 100  # output folders kept; older ones are deleted

    def __post_init__(self) -> None:
        if not 1 <= self.max_prompt_chars <= MAX_PROMPT_CHARS:
            raise ConfigError(
                f"max_prompt_chars must be in [1, {MAX_PROMPT_CHARS}], got {self.max_prompt_chars}"
            )
        lo, hi = sk.MIN_FRAMES / sk.FPS, sk.MAX_FRAMES / sk.FPS
        if not lo <= self.max_seconds <= hi:
            raise ConfigError(f"max_seconds must be in [{lo:g}, {hi:g}], got {self.max_seconds:g}")
        if self.max_steps < 1:
            raise ConfigError(f"max_steps must be at least 1, got {self.max_steps}")
        if not 1 <= self.max_samples <= 16:
            raise ConfigError(f"max_samples must be in [1, 16], got {self.max_samples}")
        if self.queue_size < 1:
            raise ConfigError(f"queue_size must be at least 1, got {self.queue_size}")
        if self.keep_runs < 1:
            raise ConfigError(f"keep_runs must be at least 1, got {self.keep_runs}")

    @property
    def min_seconds(self) -> float:
        return sk.MIN_FRAMES / sk.FPS


@dataclass(frozen=True)
class ServeConfig:
    """``emomotion serve``: the checkpoints to load and where the page listens."""

    models: tuple[Path, ...]
    host: str = "127.0.0.1"
    port: int = 7860
    out: Path | None = None  # generated files; default: a fresh temporary folder
    device: str = "cpu"
    limits: AppLimits = field(default_factory=AppLimits)
    text_encoder_path: Path | None = None  # gives or overrides every model's text-encoder files

    def __post_init__(self) -> None:
        if not self.models:
            raise ConfigError("serve needs at least one --model checkpoint")
        if not 0 <= self.port <= 65535:
            raise ConfigError(f"port must be in [0, 65535], got {self.port}")
        if not self.host.strip():
            raise ConfigError("host must not be empty")
