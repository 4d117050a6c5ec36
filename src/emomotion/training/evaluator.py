"""Training a text-motion matching evaluator (Guo et al. 2022) on any HumanML3D-layout dataset.

The loss is the official contrastive margin loss: matched (text, motion) pairs are pulled
together (squared distance) and mismatched pairs, made by shifting the motions of the batch by
a random non-zero offset, are pushed beyond a margin (10 in the official training). Clips are cut
to a multiple of 4 frames (the movement encoder's downsampling). Unlike the official recipe,
which pre-trains the movement encoder as an autoencoder and freezes it, the movement encoder is
trained jointly here: one stage, and it works on datasets without a pre-trained front-end.
The evaluator stores the training set's Mean/Std as its own statistics.
"""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch
import torch.nn.functional as F

from emomotion.checkpoint import Checkpoint
from emomotion.configs import config_dict
from emomotion.data.dataset import DatasetConfig, MotionBatch, MotionDataset
from emomotion.errors import ConfigError
from emomotion.models.evaluator import Evaluator, preset
from emomotion.text import TextEncoderSpec, build_text_encoder
from emomotion.training.config import TrainConfig
from emomotion.training.loop import train_loop

log = logging.getLogger(__name__)


def contrastive_margin_loss(
    text: torch.Tensor, motion: torch.Tensor, margin: float, shift: int
) -> tuple[torch.Tensor, dict[str, float]]:
    """Official loss on co-embeddings ``(B, D)``: ``mean d(t_i, m_i)^2 + mean relu(margin - d(t_i, m_{i+s}))^2``."""
    positive = F.pairwise_distance(text, motion).pow(2).mean()
    shifted = torch.roll(motion, shifts=-shift, dims=0)  # row i holds motion i + shift
    negative = (margin - F.pairwise_distance(text, shifted)).clamp(min=0.0).pow(2).mean()
    return positive + negative, {"positive": float(positive.detach()), "negative": float(negative.detach())}


class EvaluatorTrainStep:
    """Contrastive margin loss between text and motion co-embeddings of one batch."""

    def __init__(self, model: Evaluator, margin: float = 10.0) -> None:
        self.model = model
        self.margin = margin

    def loss(self, batch: MotionBatch) -> tuple[torch.Tensor, dict[str, float]]:
        b = batch.motion.shape[0]
        if b < 2:
            raise ConfigError("evaluator training needs batches of at least 2 clips (negatives)")
        net = self.model
        unit = 4
        lengths = (batch.lengths // unit) * unit  # (B,) cropped to a multiple of 4 frames
        keep = torch.arange(batch.motion.shape[1], device=lengths.device)[None, :] < lengths[:, None]
        motion = batch.motion * keep[..., None]  # (B, T, 263) normalised, as the evaluator's stats
        unwrapped = getattr(net, "module", net)
        motion_emb = unwrapped.encode_motion(motion, lengths)  # (B, D)
        text_emb = unwrapped.encode_text(batch.texts)  # (B, D)
        shift = int(torch.randint(1, b, (1,)))  # the global RNG: saved and restored on resume
        loss, extra = contrastive_margin_loss(text_emb.float(), motion_emb.float(), self.margin, shift)
        return loss, extra


@dataclass(frozen=True)
class EvaluatorRun:
    """Everything a training run of the evaluator is, saved in its checkpoints."""

    data: Path
    out: Path
    preset: str = "tiny"
    train: TrainConfig = field(default_factory=lambda: TrainConfig(lr=1e-4, batch_size=32, ema_decay=0.0))
    text_encoder: TextEncoderSpec = field(default_factory=TextEncoderSpec)
    margin: float = 10.0
    max_frames: int = 196
    stats_from: Path | None = None

    def __post_init__(self) -> None:
        if self.margin <= 0:
            raise ConfigError(f"margin must be positive, got {self.margin}")
        if self.max_frames < 4:
            raise ConfigError(f"max_frames must be >= 4, got {self.max_frames}")


def run_evaluator(run: EvaluatorRun, *, resume: bool = False, stop_after: int | None = None) -> Path:
    """Train the evaluator (MiniLM text front-end) on ``run.data``; returns the last checkpoint."""
    dataset = MotionDataset(
        DatasetConfig(
            run.data, split="train", max_frames=run.max_frames, stats_root=run.stats_from, seed=run.train.seed
        )
    )
    torch.manual_seed(run.train.seed)  # initial weights are part of the run's seed
    encoder = build_text_encoder(run.text_encoder)
    cfg = preset(
        run.preset,
        text_frontend="minilm",
        text_model=run.text_encoder.name,
        text_model_path=run.text_encoder.path,
        word_dim=encoder.dim,
    )
    model = Evaluator(cfg)
    model.use_text_model(encoder)
    model.set_stats(dataset.mean, dataset.std)
    mean, std = model.mean.clone(), model.std.clone()
    step = EvaluatorTrainStep(model, run.margin)
    extra = {
        "train": asdict(run.train),
        "data": str(run.data),
        "margin": run.margin,
        "max_frames": run.max_frames,
    }

    def make_checkpoint(
        done: int, state: dict[str, torch.Tensor], ema: dict[str, torch.Tensor] | None
    ) -> Checkpoint:
        return Checkpoint("evaluator", config_dict(cfg), state, mean, std, run.text_encoder, done, ema, extra)

    log.info(
        "evaluator %s: %.2fM parameters, %d training clips",
        run.preset,
        model.num_parameters() / 1e6,
        len(dataset),
    )
    return train_loop(
        step, dataset, run.train, run.out, make_checkpoint, resume=resume, stop_after=stop_after
    )
