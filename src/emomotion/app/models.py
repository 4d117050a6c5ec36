"""The models a demo serves: each checkpoint loaded once, with what its controls may offer."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from emomotion.app.config import AppLimits
from emomotion.checkpoint import load_checkpoint, resolve_checkpoint
from emomotion.errors import ConfigError
from emomotion.generate import MotionGenerator
from emomotion.sampling.diffusion import SAMPLERS

log = logging.getLogger(__name__)

DIFFUSION_KINDS = frozenset({"mdm"})
DEFAULT_DIFFUSION_STEPS = 50  # DDIM at 50 steps: close to full sampling, seconds on a CPU
DEFAULT_DIFFUSION_SAMPLER = "ddim"
DEFAULT_DECODING_STEPS = 10  # iterative (masked) decoding


@dataclass(frozen=True)
class ModelEntry:
    """One loaded model and the choices its controls offer."""

    name: str
    path: Path
    generator: MotionGenerator
    kind: str
    emotions: bool  # trained with emotion conditioning: the emotion picker applies
    samplers: tuple[str, ...]  # empty: the model has no sampler choice (only steps)
    default_sampler: str | None
    max_steps: int
    default_steps: int

    def describe(self) -> str:
        parts = [f"{self.kind} model", f"up to {self.max_steps} steps"]
        parts.append("emotion conditioning" if self.emotions else "text only (no emotion conditioning)")
        return ", ".join(parts)


def _entry(name: str, path: Path, generator: MotionGenerator, limits: AppLimits) -> ModelEntry:
    kind = generator.ckpt.kind
    emotions = generator.num_emotions > 0  # MDM or MMM with an emotion-label table
    diffusion = getattr(generator, "diffusion", None)
    if kind in DIFFUSION_KINDS and diffusion is not None:
        samplers = tuple(SAMPLERS)
        top = min(int(diffusion.num_steps), limits.max_steps)
        default = min(DEFAULT_DIFFUSION_STEPS, top)
        return ModelEntry(
            name, path, generator, kind, emotions, samplers, DEFAULT_DIFFUSION_SAMPLER, top, default
        )
    top = min(int(getattr(generator, "max_steps", limits.max_steps)), limits.max_steps)
    default = min(int(getattr(generator, "default_steps", DEFAULT_DECODING_STEPS)), top)
    return ModelEntry(name, path, generator, kind, emotions, (), None, top, max(1, default))


def _unique_name(path: Path, taken: set[str]) -> str:
    base = path.parent.name + "/" + path.stem if path.parent.name else path.stem
    name, i = base, 2
    while name in taken:
        name, i = f"{base} ({i})", i + 1
    return name


def load_models(
    paths: Sequence[str | Path],
    limits: AppLimits | None = None,
    device: str = "cpu",
    text_encoder_path: str | Path | None = None,
) -> dict[str, ModelEntry]:
    """Load every checkpoint (or run directory) once; keys are the names the page shows.
    ``text_encoder_path`` gives or overrides their text-encoder files."""
    limits = limits or AppLimits()
    if not paths:
        raise ConfigError("the demo needs at least one model checkpoint")
    entries: dict[str, ModelEntry] = {}
    for raw in paths:
        path = resolve_checkpoint(raw)
        name = _unique_name(path, set(entries))
        source = load_checkpoint(path, text_encoder_path=text_encoder_path) if text_encoder_path else path
        generator = MotionGenerator(source, device=device)
        entries[name] = _entry(name, path, generator, limits)
        log.info("loaded %s from %s (%s)", name, path, entries[name].describe())
    return entries
