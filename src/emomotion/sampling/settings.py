"""How a generator samples: one typed value for every sampler and lever (text and label guidance, classifier
guidance, intensity, masked decoding), checked when made; and emotion names resolved to labels."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from emomotion.data.emotions import EMOTION_INDEX, EMOTIONS, canonical_label, emotions_in_caption
from emomotion.errors import ConfigError
from emomotion.limits import MAX_GUIDANCE
from emomotion.sampling.diffusion import MAX_NOISE_SCALE, SAMPLERS

MAX_INTENSITY = 3.0
MAX_SMOOTHING = 10.0


@dataclass(frozen=True)
class SamplingSettings:
    """How a generator samples. ``None`` (and 0 for ``steps``/``top_k``) means the checkpoint's default."""

    sampler: str = "ddpm"
    steps: int | None = None
    guidance: float | None = None
    eta: float | None = None  # ddim: 0 deterministic .. 1 as stochastic as DDPM
    emotion_scale: float | None = None  # the label's own guidance scale (models with emotion labels)
    intensity: float = 1.0
    emotion_guidance: Path | None = None  # an emotion classifier checkpoint steering the sampler
    emotion_guidance_scale: float = 0.0
    temperature: float = 1.0  # masked models: sampling temperature (0 = greedy)
    top_k: int | None = None  # masked models: sample among the k most likely codes
    smoothing: float | None = None  # Gaussian low-pass of the output in time, sigma in frames (0 = off)
    noise_scale: float = 1.0  # diffusion: the starting noise's sd (< 1 trades spread for fidelity)

    def __post_init__(self) -> None:
        if self.sampler not in SAMPLERS:
            raise ConfigError(f"unknown sampler {self.sampler!r}; choose from {', '.join(SAMPLERS)}")
        check_finite(
            guidance=self.guidance, eta=self.eta, emotion_scale=self.emotion_scale, intensity=self.intensity,
            emotion_guidance_scale=self.emotion_guidance_scale, temperature=self.temperature,
            smoothing=self.smoothing, noise_scale=self.noise_scale,
        )  # fmt: skip
        if self.steps is not None and self.steps < 0:
            raise ConfigError(f"steps must be >= 1, got {self.steps}")
        if self.guidance is not None and not 0.0 <= self.guidance <= MAX_GUIDANCE:
            raise ConfigError(f"guidance must be in [0, {MAX_GUIDANCE:g}], got {self.guidance:g}")
        if self.eta is not None and not 0.0 <= self.eta <= 1.0:
            raise ConfigError(f"eta must be in [0, 1], got {self.eta:g}")
        if self.emotion_scale is not None and not 0.0 <= self.emotion_scale <= MAX_GUIDANCE:
            raise ConfigError(f"emotion scale must be in [0, {MAX_GUIDANCE:g}], got {self.emotion_scale:g}")
        if not 0.0 <= self.intensity <= MAX_INTENSITY:
            raise ConfigError(f"intensity must be in [0, {MAX_INTENSITY:g}], got {self.intensity:g}")
        if self.emotion_guidance_scale < 0:
            raise ConfigError(f"emotion guidance scale must be >= 0, got {self.emotion_guidance_scale:g}")
        if self.emotion_guidance_scale > 0 and self.emotion_guidance is None:
            raise ConfigError("an emotion guidance scale needs an emotion classifier (--emotion-guidance)")
        if not 0.0 <= self.temperature <= 100.0:
            raise ConfigError(f"temperature must be in [0, 100], got {self.temperature:g}")
        if self.smoothing is not None and not 0.0 <= self.smoothing <= MAX_SMOOTHING:
            raise ConfigError(f"smoothing must be in [0, {MAX_SMOOTHING:g}] frames, got {self.smoothing:g}")
        if not 0.0 < self.noise_scale <= MAX_NOISE_SCALE:
            raise ConfigError(f"noise scale must be in (0, {MAX_NOISE_SCALE:g}], got {self.noise_scale:g}")
        if self.top_k is not None and self.top_k < 0:
            raise ConfigError(f"top_k must be >= 1, got {self.top_k}")

    @property
    def classifier_guided(self) -> bool:
        """Whether an emotion classifier steers sampling (a scale > 0 always comes with a classifier)."""
        return self.emotion_guidance is not None and self.emotion_guidance_scale > 0

    @property
    def steers_emotion(self) -> bool:
        return self.emotion_scale != 0.0 or self.classifier_guided

    def label(self, kind: str) -> str:
        """A short description for reports."""
        if kind != "mdm":
            decoding = "greedy" if self.temperature == 0 else f"T={self.temperature:g}"
            top = f", top-{self.top_k}" if self.top_k else ""
            label = f", label x{self.emotion_scale:g}" if self.emotion_scale is not None else ""
            guided = f", cls guidance {self.emotion_guidance_scale:g}" if self.classifier_guided else ""
            level = f", intensity {self.intensity:g}" if self.intensity != 1.0 else ""
            return f"{self.steps or 'default'} steps, {decoding}{top}{label}{guided}{level}"
        parts = [f"{self.sampler} {self.steps or 'as trained'}"]
        if self.eta is not None and self.sampler == "ddim":
            parts.append(f"eta {self.eta:g}")
        if self.emotion_scale is not None:
            parts.append(f"label x{self.emotion_scale:g}")
        if self.classifier_guided:
            parts.append(f"cls guidance {self.emotion_guidance_scale:g}")
        if self.intensity != 1.0:
            parts.append(f"intensity {self.intensity:g}")
        if self.smoothing is not None:
            parts.append(f"smoothing {self.smoothing:g}")
        if self.noise_scale != 1.0:
            parts.append(f"noise x{self.noise_scale:g}")
        return ", ".join(parts)


def check_finite(**values: float | None) -> None:
    for name, value in values.items():
        if value is not None and not np.isfinite(value):
            raise ConfigError(f"{name.replace('_', ' ')} must be a finite number, got {value}")


def emotion_index(name: str) -> int:
    """An emotion name or a word for it (``Sadness``, ``sad``, ``happy``) -> its index in :data:`EMOTIONS`."""
    try:
        label = canonical_label(name).emotion
    except KeyError as exc:
        words = emotions_in_caption(name)
        if len(words) != 1:
            raise ConfigError(f"unknown emotion {name!r}; choose from {', '.join(EMOTIONS)}") from exc
        label = next(iter(words))
    if label is None:
        raise ConfigError(f"{name!r} is a style, not an emotion; choose from {', '.join(EMOTIONS)}")
    return EMOTION_INDEX[label]
