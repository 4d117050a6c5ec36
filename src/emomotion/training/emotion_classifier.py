"""Training the motion emotion classifier on the emotion-labelled clips of a HumanML3D-layout dataset.

Cross-entropy over Emilya's eight emotions; clips without an emotion (label -1) are ignored. The
classifier stores the training set's Mean/Std as its own statistics. ``shuffle_labels`` permutes
the labels across clips once (seeded): the permutation control, whose accuracy on held-out data
must stay at chance.
"""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from emomotion.checkpoint import Checkpoint
from emomotion.configs import config_dict
from emomotion.data.dataset import DatasetConfig, MotionBatch, MotionDataset
from emomotion.data.emotions import EMOTIONS
from emomotion.errors import ConfigError, DatasetError
from emomotion.models.emotion_classifier import EmotionClassifier, preset
from emomotion.text import TextEncoderSpec
from emomotion.training.config import TrainConfig
from emomotion.training.loop import train_loop

log = logging.getLogger(__name__)


class EmotionClassifierTrainStep:
    """Cross-entropy on the labelled clips of a batch (label -1 ignored)."""

    def __init__(self, model: torch.nn.Module) -> None:
        self.model = model

    def loss(self, batch: MotionBatch) -> tuple[torch.Tensor, dict[str, float]]:
        logits = self.model(batch.motion, batch.lengths).float()  # (B, C)
        labelled = batch.emotion >= 0
        if not bool(labelled.any()):  # keeps the graph (and DDP) intact on an unlabelled batch
            return logits.sum() * 0.0, {"labelled": 0.0, "accuracy": 0.0}
        loss = F.cross_entropy(logits, batch.emotion, ignore_index=-1)
        hits = (logits.argmax(-1) == batch.emotion)[labelled].float().mean()
        return loss, {"labelled": float(labelled.sum()), "accuracy": float(hits)}


@dataclass(frozen=True)
class EmotionClassifierRun:
    """Everything a training run of the emotion classifier is, saved in its checkpoints."""

    data: Path
    out: Path
    preset: str = "small"
    train: TrainConfig = field(default_factory=lambda: TrainConfig(lr=3e-4, batch_size=32, ema_decay=0.0))
    max_frames: int = 196
    stats_from: Path | None = None
    shuffle_labels: bool = False

    def __post_init__(self) -> None:
        if self.max_frames < 1:
            raise ConfigError(f"max_frames must be >= 1, got {self.max_frames}")


def run_emotion_classifier(
    run: EmotionClassifierRun, *, resume: bool = False, stop_after: int | None = None
) -> Path:
    """Train the emotion classifier on ``run.data``; returns the last checkpoint."""
    dataset = MotionDataset(
        DatasetConfig(
            run.data, split="train", max_frames=run.max_frames, stats_root=run.stats_from, seed=run.train.seed
        )
    )
    labelled = int((dataset.emotions >= 0).sum())
    if labelled == 0:
        raise DatasetError(
            "no training clip has an emotion label (manifest.json clips.*.emotion)", path=run.data
        )
    if run.shuffle_labels:
        dataset.emotions = np.random.default_rng(run.train.seed).permutation(dataset.emotions)
        log.info("emotion labels permuted across clips (control run)")
    counts = np.bincount(dataset.emotions[dataset.emotions >= 0], minlength=len(EMOTIONS))
    log.info(
        "emotion classifier: %d of %d clips labelled, per emotion %s", labelled, len(dataset), counts.tolist()
    )
    torch.manual_seed(run.train.seed)
    cfg = preset(run.preset)
    model = EmotionClassifier(cfg)
    model.set_stats(dataset.mean, dataset.std)
    mean, std = model.mean.clone(), model.std.clone()
    step = EmotionClassifierTrainStep(model)
    extra = {
        "train": asdict(run.train),
        "data": str(run.data),
        "emotions": list(EMOTIONS),
        "shuffle_labels": run.shuffle_labels,
        "max_frames": run.max_frames,
    }

    def make_checkpoint(
        done: int, state: dict[str, torch.Tensor], ema: dict[str, torch.Tensor] | None
    ) -> Checkpoint:
        return Checkpoint(
            "emotion_classifier", config_dict(cfg), state, mean, std, TextEncoderSpec(), done, ema, extra
        )

    log.info("emotion classifier %s: %.2fM parameters", run.preset, model.num_parameters() / 1e6)
    return train_loop(
        step, dataset, run.train, run.out, make_checkpoint, resume=resume, stop_after=stop_after
    )
