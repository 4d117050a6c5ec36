"""Checkpoints as generators for evaluation: ``generate_fn(texts, lengths, seed) -> [features]``.

The evaluator takes motions, not models; this module adapts the one generation path
(:class:`emomotion.generate.MotionGenerator`) to that function. Each call is one batch: clips of
different lengths are padded and masked, and come back de-normalised, cut to each length. The
emotion a caption names is the label of models with emotion conditioning and the target of
classifier guidance; text-only models read the caption alone. A model that kept its base
(``keep_base``) is asked for the caption's emotion only where the settings use one (a label scale or
classifier guidance); otherwise its base copy answers, as it does for any request without an emotion.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import torch

from emomotion.checkpoint import Checkpoint
from emomotion.data.emotions import EMOTION_INDEX, emotions_in_caption
from emomotion.generate import MotionGenerator, SamplingSettings

log = logging.getLogger(__name__)


def caption_emotion(text: str) -> int:
    """The emotion index a caption names (-1 when none or several)."""
    found = emotions_in_caption(text)
    return EMOTION_INDEX[next(iter(found))] if len(found) == 1 else -1


class CheckpointGenerator:
    """A loaded checkpoint with its sampling settings, callable as an evaluation ``generate_fn``."""

    def __init__(
        self,
        checkpoint: str | Path | Checkpoint,
        settings: SamplingSettings,
        device: str | torch.device = "cpu",
    ) -> None:
        self.generator = MotionGenerator(checkpoint, device)
        self.ckpt = self.generator.ckpt
        self.settings = self.generator.check(settings)
        if self.generator.keeps_base and not self.uses_emotion:
            log.warning(
                "%s keeps its base and these settings ask for no emotion (no label scale, no classifier "
                "guidance): every prompt is answered by the base copy",
                self.ckpt.path,
            )

    @property
    def label(self) -> str:
        return self.settings.label(self.ckpt.kind)

    @property
    def uses_emotion(self) -> bool:
        s = self.settings
        return (self.generator.num_emotions > 0 and s.emotion_scale != 0.0) or s.classifier_guided

    def __call__(self, texts: list[str], lengths: list[int], seed: int) -> list[np.ndarray]:
        emotions = [caption_emotion(t) for t in texts] if self.uses_emotion else None
        return self.generator.sample(texts, lengths, seed, self.settings, emotions=emotions)
