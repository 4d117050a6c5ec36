"""A motion emotion classifier: which of Emilya's eight emotions a motion expresses.

Scores emotional expressiveness of generated motion the way related work does (L3EM, ES-MoE:
accuracy / weighted F1 of a classifier trained on real emotional mocap). The network is small
on purpose: a strided temporal conv front-end (local dynamics: tempo, jerk, tremor), a bi-GRU (phrasing
over the clip), masked mean pooling, and a two-layer head. Like the evaluator it normalises with
its own statistics (buffers ``mean``/``std``): callers give de-normalised features.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import torch
from torch import nn

from emomotion.configs import dataclass_from
from emomotion.data.emotions import EMOTIONS
from emomotion.errors import ConfigError
from emomotion.skeleton import FEATURE_DIM

STRIDE = 4
"""The conv front-end halves the frame rate twice; the GRU runs at 5 steps per second."""


@dataclass(frozen=True)
class EmotionClassifierConfig:
    hidden: int = 128
    kernel: int = 5
    dropout: float = 0.1
    num_classes: int = len(EMOTIONS)
    input_dim: int = FEATURE_DIM

    def __post_init__(self) -> None:
        if self.hidden < 1 or self.num_classes < 2 or self.input_dim < 1:
            raise ConfigError("classifier hidden >= 1, num_classes >= 2 and input_dim >= 1 are required")
        if self.kernel < 1 or self.kernel % 2 == 0:
            raise ConfigError(f"classifier kernel must be a positive odd number, got {self.kernel}")
        if not 0.0 <= self.dropout < 1.0:
            raise ConfigError(f"classifier dropout must be in [0, 1), got {self.dropout}")


PRESETS: dict[str, dict[str, Any]] = {
    "tiny": {"hidden": 48},
    "small": {"hidden": 128},
    "base": {"hidden": 256, "dropout": 0.2},
}


def preset(name: str, **overrides: Any) -> EmotionClassifierConfig:
    if name not in PRESETS:
        raise ConfigError(f"unknown emotion classifier preset {name!r}; known: {', '.join(PRESETS)}")
    return replace(EmotionClassifierConfig(**PRESETS[name]), **overrides)


class EmotionClassifier(nn.Module):
    """Normalised features ``(B, T, 263)`` with lengths ``(B,)`` -> emotion logits ``(B, C)``."""

    def __init__(self, cfg: EmotionClassifierConfig) -> None:
        super().__init__()
        self.cfg = cfg
        h, k = cfg.hidden, cfg.kernel
        self.conv = nn.Sequential(
            nn.Conv1d(cfg.input_dim, h, k, stride=2, padding=k // 2),
            nn.GELU(),
            nn.Conv1d(h, h, k, stride=2, padding=k // 2),
            nn.GELU(),
        )
        self.gru = nn.GRU(h, h, batch_first=True, bidirectional=True)
        self.head = nn.Sequential(
            nn.Linear(2 * h, h), nn.GELU(), nn.Dropout(cfg.dropout), nn.Linear(h, cfg.num_classes)
        )
        self.register_buffer("mean", torch.zeros(cfg.input_dim))
        self.register_buffer("std", torch.ones(cfg.input_dim))

    @property
    def device(self) -> torch.device:
        return self.mean.device

    def set_stats(self, mean: np.ndarray | torch.Tensor, std: np.ndarray | torch.Tensor) -> None:
        self.mean.copy_(torch.as_tensor(np.asarray(mean, dtype=np.float32)))
        self.std.copy_(torch.as_tensor(np.asarray(std, dtype=np.float32)))

    def forward(self, motion: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        frames = torch.arange(motion.shape[1], device=motion.device)[None, :] < lengths[:, None]  # (B, T)
        h = self.conv((motion * frames[..., None]).permute(0, 2, 1)).permute(0, 2, 1)  # (B, T/4, H)
        steps = (lengths + STRIDE - 1) // STRIDE  # (B,) steps covering real frames
        m = (torch.arange(h.shape[1], device=h.device)[None, :] < steps[:, None])[..., None].to(h.dtype)
        h, _ = self.gru(h)  # (B, T/4, 2H)
        pooled = (h * m).sum(1) / m.sum(1).clamp(min=1.0)  # (B, 2H)
        return self.head(pooled)  # (B, C)

    @torch.no_grad()
    def predict(
        self, features: np.ndarray | torch.Tensor, lengths: Sequence[int] | torch.Tensor
    ) -> np.ndarray:
        """De-normalised features ``(B, T, 263)`` and frame counts -> probabilities ``(B, C)``."""
        x = torch.as_tensor(np.asarray(features, dtype=np.float32)).to(self.device)
        if x.ndim != 3 or x.shape[-1] != self.cfg.input_dim:
            raise ConfigError(f"motions must have shape (B, T, {self.cfg.input_dim}), got {tuple(x.shape)}")
        n = torch.as_tensor(np.asarray(lengths), dtype=torch.long).to(self.device).clamp(max=x.shape[1])
        logits = self((x - self.mean) / self.std, n)
        return torch.softmax(logits.float(), dim=-1).cpu().numpy()

    def num_parameters(self) -> int:
        return sum(p.numel() for p in self.parameters())


def build_from_config(config: Mapping[str, Any]) -> EmotionClassifier:
    """The checkpoint factory of kind ``"emotion_classifier"``."""
    return EmotionClassifier(dataclass_from(EmotionClassifierConfig, config))
