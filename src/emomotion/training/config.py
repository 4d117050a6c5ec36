"""What the shared training loop is given: its config, a family's loss step, the dataset contract and
the family's checkpoint factory."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal, Protocol

import torch

from emomotion.checkpoint import Checkpoint
from emomotion.data.dataset import MotionBatch, MotionSample
from emomotion.errors import ConfigError
from emomotion.limits import MAX_LENGTH_BUCKETS


@dataclass(frozen=True)
class TrainConfig:
    steps: int = 1000
    batch_size: int = 64  # per process: the effective batch is batch_size x the number of processes
    lr: float = 1e-4
    weight_decay: float = 0.0
    warmup_steps: int = 0
    grad_clip: float = 1.0
    ema_decay: float = 0.9999  # 0 disables EMA
    save_every: int = 500
    log_every: int = 10
    seed: int = 0
    mixed_precision: Literal["no", "bf16"] = "no"
    cpu: bool = False
    eval_every: int = 0  # validate every N steps (0 = never)
    val_batches: int = 8  # validation batches per validation
    patience: int = 0  # stop after this many validations without a new best (0 = never stop early)
    lr_schedule: Literal["constant", "cosine"] = "constant"  # after the warm-up; cosine decays to 10%
    # batches drawn from runs of this many batches sorted by clip length, so that a batch pads little
    # (emomotion.training.sampler); 0 or 1: plain shuffled batches
    length_buckets: int = 0

    def __post_init__(self) -> None:
        if self.steps < 1 or self.batch_size < 1 or self.save_every < 1 or self.log_every < 1:
            raise ConfigError("steps, batch_size, save_every and log_every must be >= 1")
        if not 0 <= self.length_buckets <= MAX_LENGTH_BUCKETS:
            raise ConfigError(
                f"length_buckets must be in [0, {MAX_LENGTH_BUCKETS}], got {self.length_buckets}"
            )
        if self.eval_every < 0 or self.val_batches < 1 or self.patience < 0:
            raise ConfigError("need eval_every >= 0, val_batches >= 1 and patience >= 0")
        if self.patience and not self.eval_every:
            raise ConfigError("early stopping (patience) needs validation: set eval_every")
        if not (math.isfinite(self.lr) and self.lr > 0):
            raise ConfigError(f"lr must be a positive finite number, got {self.lr}")
        if not (0.0 <= self.weight_decay < math.inf and 0.0 <= self.grad_clip < math.inf):
            raise ConfigError("weight_decay and grad_clip must be finite and >= 0")
        if not 0.0 <= self.ema_decay < 1.0:
            raise ConfigError(f"ema_decay must be in [0, 1), got {self.ema_decay}")
        if self.mixed_precision not in ("no", "bf16"):
            raise ConfigError("mixed_precision must be 'no' or 'bf16'")
        if self.lr_schedule not in ("constant", "cosine"):
            raise ConfigError(f"lr_schedule must be 'constant' or 'cosine', not {self.lr_schedule!r}")


def lr_factor(cfg: TrainConfig, step: int) -> float:
    """The learning-rate multiplier at ``step`` (0-based): linear warm-up, then constant or a cosine
    decay to 10% at the last step."""
    warmup = max(cfg.warmup_steps, 0)
    if warmup and step < warmup:
        return (step + 1) / warmup
    if cfg.lr_schedule == "constant":
        return 1.0
    span = max(cfg.steps - warmup, 1)
    progress = min(max(step - warmup, 0) / span, 1.0)
    return 0.1 + 0.9 * 0.5 * (1.0 + math.cos(math.pi * progress))


class TrainStep(Protocol):
    """A model family's loss on one batch."""

    model: torch.nn.Module

    def loss(self, batch: MotionBatch) -> tuple[torch.Tensor, dict[str, float]]: ...


class TrainDataset(Protocol):
    """What the loop needs of a dataset: items for ``collate`` and a resumable RNG (reseeded per process
    when several train together, so that their crops and captions differ)."""

    def __len__(self) -> int: ...
    def __getitem__(self, index: int) -> MotionSample: ...
    def rng_state(self) -> tuple: ...
    def set_rng_state(self, state: tuple) -> None: ...
    def reseed(self, seed: int) -> None: ...


# make_checkpoint(step, model_state, ema_state): what the family saves (config, stats, text spec)
MetaFn = Callable[[int, dict[str, torch.Tensor], dict[str, torch.Tensor] | None], Checkpoint]
