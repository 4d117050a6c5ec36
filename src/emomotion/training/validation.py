"""Validation and early stopping for the shared loop.

Every ``eval_every`` steps the family's loss is averaged over the first ``val_batches`` validation
batches, always with the same noise and crops (a forked RNG, so training draws are untouched), and
logged to ``validation.csv``. A new best is checkpointed at once. After ``patience`` validations
without a new best the run stops, checkpoints newer than the best are removed, so the run directory
stands for its best checkpoint, and ``early_stop.json`` records it; resuming a run that stopped early
returns that checkpoint. With several processes the main one validates and tells the others the result.
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch
from torch.utils.data import DataLoader, SequentialSampler

from emomotion.checkpoint import checkpoint_name, run_checkpoints, train_state_paths
from emomotion.data.dataset import DatasetConfig, MotionDataset, collate
from emomotion.training.config import TrainConfig, TrainDataset, TrainStep

log = logging.getLogger(__name__)

EARLY_STOP_FILE = "early_stop.json"


@dataclass
class EarlyStopping:
    """The best validation loss so far, its step, and the validations since without a better one."""

    best: float = math.inf
    best_step: int = 0
    bad: int = 0

    def record(self, step: int, val: float) -> bool:
        """Count one validation; True when it is a new best."""
        if val < self.best:
            self.best, self.best_step, self.bad = val, step, 0
            return True
        self.bad += 1
        return False

    def state(self) -> dict[str, Any]:
        return asdict(self)


def validation_dataset(
    data: Path, max_frames: int, like: TrainDataset, cfg: TrainConfig
) -> MotionDataset | None:
    """The ``val`` split of ``data`` normalised as the training set ``like``, when ``cfg`` validates."""
    if not cfg.eval_every:
        return None
    val = MotionDataset(DatasetConfig(data, split="val", max_frames=max_frames, seed=cfg.seed))
    val.mean, val.std = like.mean, like.std  # type: ignore[attr-defined]
    return val


@torch.no_grad()
def validate(
    step: TrainStep,
    model: torch.nn.Module,
    val_dataset: TrainDataset,
    start: tuple,
    cfg: TrainConfig,
    device: torch.device,
    autocast: Callable[[], AbstractContextManager],
) -> float:
    """The mean loss of ``model`` (in ``step``) over the first ``cfg.val_batches`` validation batches, with
    the same noise, masks and crops every time (forked RNGs: training draws are untouched)."""
    live = step.model
    step.model = model
    model.eval()
    val_dataset.set_rng_state(start)  # only validation draws from it: the same crops every time
    batch_size = min(cfg.batch_size, len(val_dataset))
    order = range(min(len(val_dataset), cfg.val_batches * batch_size))
    loader = DataLoader(
        val_dataset, batch_size=batch_size, sampler=SequentialSampler(order), collate_fn=collate
    )
    cuda = [device.index or 0] if device.type == "cuda" else []
    total = count = 0.0
    try:
        with torch.random.fork_rng(devices=cuda):
            torch.manual_seed(cfg.seed + 1)  # seeds every device
            for batch in loader:
                batch = batch.to(device)
                with autocast():
                    loss, _ = step.loss(batch)
                n = len(batch.texts)
                total += float(loss) * n
                count += n
    finally:
        model.train()
        step.model = live
    return total / count


def stop_early(run_dir: Path, done: int, early: EarlyStopping) -> Path:
    """Remove the checkpoints newer than the best and record the stop; returns the best checkpoint."""
    for at, path in run_checkpoints(run_dir):
        if at > early.best_step:
            for state in train_state_paths(path):
                state.unlink()
            path.unlink()
    record = {"stopped_at": done, "best_step": early.best_step, "best_val_loss": early.best}
    (run_dir / EARLY_STOP_FILE).write_text(json.dumps(record, indent=1), encoding="utf-8")
    log.info("early stop at step %d: no better validation loss for %d validations; best step %d (%.4f)",
             done, early.bad, early.best_step, early.best)  # fmt: skip
    return run_dir / checkpoint_name(early.best_step)
