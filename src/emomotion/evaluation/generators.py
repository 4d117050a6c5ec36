"""Checkpoints as generators for evaluation: ``generate_fn(texts, lengths, seed) -> [features]``.

The evaluator takes motions, not models; this module is the one place that turns a checkpoint
(MDM with a sampler and step count, or MMM with its decoding settings) into that function. Each
call is one batch: the texts are encoded once, clips of different lengths are padded and masked,
and the features come back de-normalised with the model's own statistics, cut to each length.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from emomotion.checkpoint import Checkpoint, load_checkpoint
from emomotion.data.emotions import EMOTION_INDEX, emotions_in_caption
from emomotion.errors import ConfigError
from emomotion.skeleton import FEATURE_DIM

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class GeneratorSettings:
    """How a checkpoint generates during evaluation. MDM: ``sampler`` and ``steps`` (0 = as trained);
    MMM: ``steps`` decoding iterations (0 = the model's default), ``temperature`` (0 = greedy), ``top_k``."""

    sampler: str = "ddpm"
    steps: int = 0
    guidance: float = 2.5
    emotion_scale: float | None = None  # models with emotion labels: label taken from the caption
    temperature: float = 1.0
    top_k: int = 0

    def label(self, kind: str) -> str:
        if kind == "mdm":
            return f"{self.sampler} {self.steps or 'as trained'}"
        decoding = "greedy" if self.temperature == 0 else f"T={self.temperature:g}"
        return f"{self.steps or 'default'} steps, {decoding}" + (f", top-{self.top_k}" if self.top_k else "")


def caption_emotion(text: str) -> int:
    """The emotion index a caption names (-1 when none or several)."""
    found = emotions_in_caption(text)
    return EMOTION_INDEX[next(iter(found))] if len(found) == 1 else -1


class CheckpointGenerator:
    """A loaded checkpoint with its text encoder, callable as an evaluation ``generate_fn``."""

    def __init__(
        self,
        checkpoint: str | Path | Checkpoint,
        settings: GeneratorSettings,
        device: str | torch.device = "cpu",
    ) -> None:
        from emomotion.text import build_text_encoder

        self.ckpt = checkpoint if isinstance(checkpoint, Checkpoint) else load_checkpoint(checkpoint)
        if self.ckpt.kind not in ("mdm", "mmm"):
            raise ConfigError(f"cannot generate with a {self.ckpt.kind!r} checkpoint", path=self.ckpt.path)
        self.settings = settings
        self.device = torch.device(device)
        self.model = self.ckpt.build_model(use_ema=True).to(self.device)
        self.encoder = build_text_encoder(self.ckpt.text_encoder)
        self.mean = self.ckpt.mean.numpy()
        self.std = self.ckpt.std.numpy()
        if self.ckpt.kind == "mdm":
            from emomotion.sampling.diffusion import DiffusionConfig, GaussianDiffusion

            self.diffusion = GaussianDiffusion(
                DiffusionConfig(**(self.ckpt.extra or {}).get("diffusion", {}))
            )
            if settings.steps > self.diffusion.num_steps:
                raise ConfigError(
                    f"steps {settings.steps} exceed the {self.diffusion.num_steps} the model was trained with",
                    path=self.ckpt.path,
                )

    @property
    def label(self) -> str:
        return self.settings.label(self.ckpt.kind)

    def __call__(self, texts: list[str], lengths: list[int], seed: int) -> list[np.ndarray]:
        if len(texts) != len(lengths):
            raise ConfigError("one length per text")
        with torch.no_grad():
            if self.ckpt.kind == "mdm":
                feats = self._mdm(texts, lengths, seed)
            else:
                feats = self._mmm(texts, lengths, seed)
        return [f[:n] * self.std + self.mean for f, n in zip(feats, lengths, strict=True)]

    def _mdm(self, texts: Sequence[str], lengths: Sequence[int], seed: int) -> list[np.ndarray]:
        from emomotion.models.condition import MotionCondition
        from emomotion.sampling.diffusion import sample
        from emomotion.sampling.guidance import classifier_free_guidance

        s = self.settings
        t = max(lengths)
        mask = (
            torch.arange(t, device=self.device)[None, :] < torch.tensor(lengths, device=self.device)[:, None]
        )
        emotion = None
        if self.ckpt.config.get("num_emotions", 0) and s.emotion_scale is not None:
            emotion = torch.tensor([caption_emotion(x) for x in texts], device=self.device)
        cond = MotionCondition(self.encoder.encode(list(texts), device=self.device), emotion=emotion)
        denoise = classifier_free_guidance(
            self.model, cond, text_scale=s.guidance, emotion_scale=s.emotion_scale if emotion is not None else None,
            mask=mask,
        )  # fmt: skip
        x = sample(
            self.diffusion,
            denoise,
            (len(texts), t, FEATURE_DIM),
            sampler=s.sampler,
            steps=s.steps or None,
            seed=seed,
            device=self.device,
            mask=mask,
        )
        return list(x.float().cpu().numpy())

    def _mmm(self, texts: Sequence[str], lengths: Sequence[int], seed: int) -> list[np.ndarray]:
        from emomotion.sampling.masked import (
            MaskedDecodingConfig,
            decode_motion,
            decode_tokens,
            frames_to_tokens,
        )

        s = self.settings
        decoding = MaskedDecodingConfig(
            steps=s.steps or MaskedDecodingConfig.steps,
            temperature=s.temperature,
            top_k=s.top_k or None,
            guidance=s.guidance,
        )
        text = self.encoder.encode(list(texts), device=self.device)
        ids = decode_tokens(
            self.model, text, [frames_to_tokens(self.model, n) for n in lengths], decoding, seed=seed
        )
        out = []
        for motion, n in zip(decode_motion(self.model, ids), lengths, strict=True):
            m = motion.float().cpu().numpy()  # (4 (n // 4), 263): tokens cover whole 4-frame units
            out.append(
                np.concatenate([m, np.repeat(m[-1:], n - m.shape[0], axis=0)]) if m.shape[0] < n else m
            )
        return out
