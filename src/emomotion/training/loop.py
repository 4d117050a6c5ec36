"""The shared training loop: accelerate (one CPU, one GPU, multi-GPU / multi-node unchanged), optional
bf16 autocast, AdamW with warm-up, gradient clipping, EMA weights, a progress bar with loss and ETA,
``metrics.csv``, atomic checkpoints every N steps, and exact resume.

Resume restores the model, EMA, optimiser, LR schedule, the torch and dataset RNG states and the
data position (epoch and batch), so an interrupted single-process run ends with the same weights
as an uninterrupted one.

Validation and early stopping (``eval_every`` > 0, with a validation set): every ``eval_every`` steps
the family's loss is averaged over the first ``val_batches`` validation batches, always with the same
noise and crops (a forked RNG, so training draws are untouched), and logged to ``validation.csv``. A
new best is checkpointed at once. After ``patience`` validations without a new best the run stops,
checkpoints newer than the best are removed, so the run directory stands for its best checkpoint, and
``early_stop.json`` records it; resuming a run that stopped early returns that checkpoint.
"""

from __future__ import annotations

import csv
import json
import logging
import math
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, Protocol

import torch
from torch.utils.data import DataLoader, Sampler, SequentialSampler

from emomotion.checkpoint import (
    Checkpoint,
    checkpoint_name,
    load_checkpoint,
    load_train_state,
    resolve_checkpoint,
    run_checkpoints,
    save_checkpoint,
    save_train_state,
    train_state_path,
)
from emomotion.data.dataset import DatasetConfig, MotionBatch, MotionDataset, MotionSample, collate
from emomotion.errors import CheckpointError, ConfigError
from emomotion.io.atomic import remove_stale_temps
from emomotion.progress import progress_bar
from emomotion.training.finetune import has_adapters, merged_state_dict

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class TrainConfig:
    steps: int = 1000
    batch_size: int = 64
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

    def __post_init__(self) -> None:
        if self.steps < 1 or self.batch_size < 1 or self.save_every < 1 or self.log_every < 1:
            raise ConfigError("steps, batch_size, save_every and log_every must be >= 1")
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


class TrainStep(Protocol):
    """A model family's loss on one batch."""

    model: torch.nn.Module

    def loss(self, batch: MotionBatch) -> tuple[torch.Tensor, dict[str, float]]: ...


class EpochSampler(Sampler[int]):
    """A fresh permutation per epoch from (seed, epoch), starting at a given batch (for resume)."""

    def __init__(self, size: int, seed: int) -> None:
        self.size = size
        self.seed = seed
        self.epoch = 0
        self.start = 0

    def __iter__(self) -> Iterator[int]:
        g = torch.Generator().manual_seed(self.seed * 100_003 + self.epoch)
        yield from torch.randperm(self.size, generator=g)[self.start :].tolist()

    def __len__(self) -> int:
        return self.size - self.start


class EMA:
    """Exponential moving average of the trainable parameters (float32); buffers are taken as they are.

    The decay warms up as ``min(decay, (1 + t) / (10 + t))`` after ``t`` updates, so that the average
    follows the first steps of a run instead of keeping the initial weights for thousands of steps (a
    short fine-tune at 0.995 would otherwise still hold half of the base weights after 150 steps)."""

    def __init__(self, model: torch.nn.Module, decay: float) -> None:
        self.decay = decay
        self.shadow = {k: p.detach().float().clone() for k, p in model.named_parameters() if p.requires_grad}

    def decay_at(self, updates: int) -> float:
        return min(self.decay, (1 + updates) / (10 + updates))

    @torch.no_grad()
    def update(self, model: torch.nn.Module, updates: int) -> None:
        """Fold in ``model`` after ``updates`` earlier updates in this run."""
        decay = self.decay_at(updates)
        for k, p in model.named_parameters():
            if k in self.shadow:
                self.shadow[k].mul_(decay).add_(p.detach().float(), alpha=1 - decay)

    def state_dict(self, model: torch.nn.Module) -> dict[str, torch.Tensor]:
        """The model's state_dict with the averaged parameters in place of the live ones."""
        return {k: self.shadow[k] if k in self.shadow else v.clone() for k, v in model.state_dict().items()}

    def load(self, state: dict[str, torch.Tensor]) -> None:
        for k in self.shadow:
            if k in state:
                self.shadow[k] = state[k].float().clone()


class TrainDataset(Protocol):
    """What the loop needs of a dataset: items for ``collate`` and a resumable RNG."""

    def __len__(self) -> int: ...
    def __getitem__(self, index: int) -> MotionSample: ...
    def rng_state(self) -> tuple: ...
    def set_rng_state(self, state: tuple) -> None: ...


MetaFn = Callable[[int, dict[str, torch.Tensor], dict[str, torch.Tensor] | None], Checkpoint]


def train_loop(
    step: TrainStep,
    dataset: TrainDataset,
    cfg: TrainConfig,
    run_dir: Path,
    make_checkpoint: MetaFn,
    *,
    resume: bool = False,
    stop_after: int | None = None,
    val_dataset: TrainDataset | None = None,
) -> Path:
    """Train ``step.model`` for ``cfg.steps`` steps; returns the last checkpoint written (after an
    early stop: the best one).

    ``make_checkpoint(step, model_state, ema_state)`` fills in what the family saves (config, stats,
    text spec). ``stop_after`` ends the run early (as an interruption would) after that many steps.
    ``val_dataset`` is validated on every ``cfg.eval_every`` steps (required when that is set).
    """
    from accelerate import Accelerator
    from accelerate.state import AcceleratorState

    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    if cfg.eval_every and val_dataset is None:
        raise ConfigError("validation (eval_every) needs a validation set")
    stopped = run_dir / EARLY_STOP_FILE
    if resume and stopped.exists():
        record = json.loads(stopped.read_text(encoding="utf-8"))
        log.info("%s stopped early at step %d; its best is step %d", run_dir, record["stopped_at"],
                 record["best_step"])  # fmt: skip
        return resolve_checkpoint(run_dir)
    stopped.unlink(missing_ok=True)
    # accelerate keeps its state process-wide; a second run in one process (tests, a server) may ask for
    # another precision. The distributed part (PartialState) is kept.
    AcceleratorState._reset_state(reset_partial_state=False)
    accelerator = Accelerator(mixed_precision=cfg.mixed_precision, cpu=cfg.cpu)
    torch.manual_seed(cfg.seed)
    model = step.model
    optimizer = torch.optim.AdamW(
        [p for p in model.parameters() if p.requires_grad], lr=cfg.lr, weight_decay=cfg.weight_decay
    )
    warmup = max(cfg.warmup_steps, 0)
    scheduler = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda s: min(1.0, (s + 1) / warmup) if warmup else 1.0
    )
    ema = EMA(model, cfg.ema_decay) if cfg.ema_decay > 0 else None
    sampler = EpochSampler(len(dataset), cfg.seed)
    batch_size = min(cfg.batch_size, len(dataset))  # never wait for a batch a small dataset cannot fill
    per_epoch = len(dataset) // batch_size
    done = 0
    early = {"best": math.inf, "best_step": 0, "bad": 0}
    val_start = val_dataset.rng_state() if val_dataset is not None else None
    if resume:
        for stale in remove_stale_temps(run_dir):
            log.info("removed %s, left by an interrupted checkpoint write", stale.name)
        try:
            last = resolve_checkpoint(run_dir)
        except CheckpointError:
            last = None
            log.info("nothing to resume in %s: starting from scratch", run_dir)
        if last is not None:
            ckpt = load_checkpoint(last)
            state = load_train_state(last)
            # with adapters (LoRA) the checkpoint holds merged weights; the live ones are in the train state
            model.load_state_dict(state.get("live_model") or ckpt.model_state, strict=False)
            if ema is not None and (state.get("live_ema") or ckpt.ema_state):
                ema.load(state.get("live_ema") or ckpt.ema_state)
            optimizer.load_state_dict(state["optimizer"])
            scheduler.load_state_dict(state["scheduler"])
            torch.set_rng_state(state["torch_rng"])
            dataset.set_rng_state(_tuple_state(state["data_rng"]))
            early.update(state.get("early", {}))
            done = int(state["step"])
            log.info("resumed %s at step %d", last, done)
    model, optimizer = accelerator.prepare(model, optimizer)
    step.model = model
    model.train()
    metrics_path = run_dir / "metrics.csv"
    new_file = not metrics_path.exists() or done == 0
    val_path = run_dir / "validation.csv"
    if cfg.eval_every and (new_file or not val_path.exists()):
        val_path.write_text("step,val_loss,best_step\n", encoding="utf-8")
    last_path = None
    target = cfg.steps if stop_after is None else min(cfg.steps, done + stop_after)
    start_time = time.perf_counter()
    data_time = 0.0
    with (
        open(metrics_path, "w" if new_file else "a", newline="") as metrics,
        progress_bar("steps") as progress,
    ):
        writer = csv.writer(metrics)
        if new_file:
            writer.writerow(["step", "loss", "lr", "seconds", "data_seconds", "extra"])
        task = progress.add_task("training", total=cfg.steps, completed=done)
        while done < target:
            epoch, offset = divmod(done, per_epoch)
            sampler.epoch, sampler.start = epoch, offset * batch_size
            # a private generator: DataLoader draws a seed from the global RNG per iterator otherwise,
            # and resuming mid-epoch would shift every later draw
            loader = DataLoader(
                dataset,
                batch_size=batch_size,
                sampler=sampler,
                collate_fn=collate,
                drop_last=True,
                generator=torch.Generator().manual_seed(cfg.seed),
            )
            t_data = time.perf_counter()
            for batch in loader:
                data_time += time.perf_counter() - t_data
                batch = batch.to(accelerator.device)
                with accelerator.autocast():
                    loss, extra = step.loss(batch)
                optimizer.zero_grad(set_to_none=True)
                accelerator.backward(loss)
                if cfg.grad_clip > 0:
                    accelerator.clip_grad_norm_(model.parameters(), cfg.grad_clip)
                optimizer.step()
                scheduler.step()
                if ema is not None:
                    ema.update(accelerator.unwrap_model(model), done)
                done += 1
                progress.update(task, advance=1, description=f"training loss {loss.item():.4f}")
                if done % cfg.log_every == 0 or done == target:
                    writer.writerow(
                        [
                            done,
                            f"{loss.item():.6f}",
                            f"{scheduler.get_last_lr()[0]:.3e}",
                            f"{time.perf_counter() - start_time:.2f}",
                            f"{data_time:.2f}",
                            repr(extra),
                        ]
                    )
                    metrics.flush()
                improved = stop = False
                if cfg.eval_every and done % cfg.eval_every == 0:
                    assert val_dataset is not None and val_start is not None
                    val = _validate(step, val_dataset, val_start, cfg, accelerator)
                    improved = val < early["best"]
                    if improved:
                        early.update(best=val, best_step=done, bad=0)
                    else:
                        early["bad"] += 1
                    with open(val_path, "a", encoding="utf-8") as f:
                        f.write(f"{done},{val:.6f},{early['best_step']}\n")
                    stop = bool(cfg.patience) and early["bad"] >= cfg.patience
                if done % cfg.save_every == 0 or done == target or improved:
                    last_path = _save(
                        run_dir,
                        done,
                        accelerator.unwrap_model(model),
                        ema,
                        optimizer,
                        scheduler,
                        dataset,
                        make_checkpoint,
                        early,
                    )
                if stop:
                    last_path = _stop_early(run_dir, done, early)
                    done = target
                if done >= target:
                    break
                t_data = time.perf_counter()
    step.model = accelerator.unwrap_model(model)
    assert last_path is not None or done == target
    return last_path if last_path is not None else resolve_checkpoint(run_dir)


EARLY_STOP_FILE = "early_stop.json"


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
def _validate(
    step: TrainStep, val_dataset: TrainDataset, start: tuple, cfg: TrainConfig, accelerator: Any
) -> float:
    """The mean loss over the first ``cfg.val_batches`` validation batches, with the same noise, masks
    and crops every time (forked RNGs: training draws are untouched)."""
    model = step.model
    model.eval()
    val_dataset.set_rng_state(start)  # only validation draws from it: the same crops every time
    batch_size = min(cfg.batch_size, len(val_dataset))
    order = range(min(len(val_dataset), cfg.val_batches * batch_size))
    loader = DataLoader(
        val_dataset, batch_size=batch_size, sampler=SequentialSampler(order), collate_fn=collate
    )
    device = accelerator.device
    cuda = [device.index or 0] if device.type == "cuda" else []
    total = count = 0.0
    with torch.random.fork_rng(devices=cuda):
        torch.manual_seed(cfg.seed + 1)  # seeds every device
        for batch in loader:
            batch = batch.to(device)
            with accelerator.autocast():
                loss, _ = step.loss(batch)
            n = len(batch.texts)
            total += float(loss) * n
            count += n
    model.train()
    return total / count


def _stop_early(run_dir: Path, done: int, early: dict[str, Any]) -> Path:
    """Remove the checkpoints newer than the best and record the stop; returns the best checkpoint."""
    for at, path in run_checkpoints(run_dir):
        if at > early["best_step"]:
            train_state_path(path).unlink(missing_ok=True)
            path.unlink()
    record = {"stopped_at": done, "best_step": early["best_step"], "best_val_loss": early["best"]}
    (run_dir / EARLY_STOP_FILE).write_text(json.dumps(record, indent=1), encoding="utf-8")
    log.info("early stop at step %d: no better validation loss for %d validations; best step %d (%.4f)",
             done, early["bad"], early["best_step"], early["best"])  # fmt: skip
    return run_dir / checkpoint_name(early["best_step"])


def _tuple_state(state: Any) -> Any:
    return tuple(_tuple_state(s) for s in state) if isinstance(state, list | tuple) else state


def _save(
    run_dir: Path,
    done: int,
    model: torch.nn.Module,
    ema: EMA | None,
    optimizer: torch.optim.Optimizer,
    scheduler: Any,
    dataset: TrainDataset,
    make_checkpoint: MetaFn,
    early: dict[str, Any],
) -> Path:
    path = run_dir / checkpoint_name(done)
    live = model.state_dict()
    live_ema = ema.state_dict(model) if ema else None
    train_state: dict[str, Any] = {
        "step": done,
        "optimizer": optimizer.state_dict(),
        "scheduler": scheduler.state_dict(),
        "torch_rng": torch.get_rng_state(),
        "data_rng": list(dataset.rng_state()),
        "early": dict(early),
    }
    if has_adapters(model):  # checkpoints hold plain weights in the model's own layout
        train_state["live_model"] = live
        train_state["live_ema"] = {
            k: v for k, v in (live_ema or {}).items() if k in (ema.shadow if ema else {})
        }
        live = merged_state_dict(model, live)
        live_ema = merged_state_dict(model, live_ema) if live_ema is not None else None
    ckpt = make_checkpoint(done, live, live_ema)
    save_train_state(path, train_state)
    save_checkpoint(path, ckpt)  # written last: its presence means the pair is complete
    return path
