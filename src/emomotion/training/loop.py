"""The shared training loop: accelerate on one process or several (``torchrun`` / ``accelerate launch``,
one or more GPUs and machines, or CPU processes), optional bf16 autocast, AdamW with warm-up, gradient
clipping, EMA weights, a progress bar with loss and ETA, ``metrics.csv``, atomic checkpoints every N
steps, validation with early stopping (:mod:`emomotion.training.validation`) and exact resume
(:mod:`emomotion.training.state`).

With several processes each reads its own share of every batch (:mod:`emomotion.training.sampler`):
``batch_size`` is per process, so a step trains on ``batch_size x processes`` items, and the gradients
are averaged across processes (DDP) so that every process holds the same weights. Process 0 alone
writes: checkpoints, ``metrics.csv`` (its loss is the mean over the processes, its ``samples`` column
counts the training items of all processes, its ``extra`` terms are process 0's), ``validation.csv``,
logs and the progress bar. Resume is exact for the same number of
processes: an interrupted run ends with the same weights as an uninterrupted one.
"""

from __future__ import annotations

import csv
import json
import logging
import time
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import torch
from torch.utils.data import DataLoader

from emomotion.checkpoint import checkpoint_name, resolve_checkpoint
from emomotion.data.dataset import collate
from emomotion.errors import CheckpointError, ConfigError
from emomotion.io.atomic import atomic_path, remove_stale_temps
from emomotion.progress import progress_bar
from emomotion.training.config import MetaFn, TrainConfig, TrainDataset, TrainStep, lr_factor
from emomotion.training.ema import EMA
from emomotion.training.sampler import EpochSampler
from emomotion.training.state import restore_run_state, save_rank_state, save_run_state
from emomotion.training.validation import EARLY_STOP_FILE, EarlyStopping, stop_early, validate

log = logging.getLogger(__name__)

METRICS_HEADER = ["step", "loss", "lr", "seconds", "data_seconds", "samples", "extra"]


def make_accelerator(cfg: TrainConfig) -> Any:
    """An Accelerator for ``cfg``; with several processes launched on a machine without CUDA, they train
    together on CPU (gloo)."""
    from accelerate import Accelerator
    from accelerate.state import AcceleratorState

    # accelerate keeps its state process-wide; a second run in one process (tests, a server) may ask for
    # another precision. The distributed part (PartialState) is kept.
    AcceleratorState._reset_state(reset_partial_state=False)
    return Accelerator(mixed_precision=cfg.mixed_precision, cpu=cfg.cpu or not torch.cuda.is_available())


def trim_log(path: Path, done: int) -> int:
    """Drop the rows of a resumed run's CSV log (step first) past ``done``: a run stopped after logging
    but before its next checkpoint logged them, and it logs them again. A torn last row goes too. Returns
    how many rows were dropped."""
    if not path.exists():
        return 0
    header, *rows = path.read_text(encoding="utf-8").splitlines(keepends=True)

    def kept(row: str) -> bool:
        step = row.split(",", 1)[0]
        return step.isdigit() and int(step) <= done and row.endswith("\n")

    keep = [row for row in rows if kept(row)]
    if len(keep) < len(rows):
        with atomic_path(path) as tmp:
            tmp.write_text(header + "".join(keep), encoding="utf-8")
    return len(rows) - len(keep)


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
    early stop: the best one), in every process.

    ``make_checkpoint(step, model_state, ema_state)`` fills in what the family saves (config, stats,
    text spec). ``stop_after`` ends the run early (as an interruption would) after that many steps.
    ``val_dataset`` is validated on every ``cfg.eval_every`` steps (required when that is set).
    """
    run_dir = Path(run_dir)
    if cfg.eval_every and val_dataset is None:
        raise ConfigError("validation (eval_every) needs a validation set")
    accelerator = make_accelerator(cfg)
    rank, world, main = accelerator.process_index, accelerator.num_processes, accelerator.is_main_process
    device = accelerator.device
    run_dir.mkdir(parents=True, exist_ok=True)
    stopped = run_dir / EARLY_STOP_FILE
    if resume and stopped.exists():
        record = json.loads(stopped.read_text(encoding="utf-8"))
        if main:
            log.info("%s stopped early at step %d; its best is step %d", run_dir, record["stopped_at"],
                     record["best_step"])  # fmt: skip
        return resolve_checkpoint(run_dir)
    accelerator.wait_for_everyone()  # every process has looked for the early-stop record
    if main:
        stopped.unlink(missing_ok=True)
    if len(dataset) < world:
        raise ConfigError(f"{len(dataset)} training items cannot feed {world} processes")
    torch.manual_seed(cfg.seed + rank)  # each process its own noise; process 0 as a run of one
    if rank:
        dataset.reseed(cfg.seed + 7_919 * rank)  # and its own crops and captions
    model = step.model
    groups = step.param_groups(cfg.lr) if hasattr(step, "param_groups") else None
    optimizer = torch.optim.AdamW(
        groups or [p for p in model.parameters() if p.requires_grad], lr=cfg.lr, weight_decay=cfg.weight_decay
    )
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda s: lr_factor(cfg, s))
    ema = EMA(model, cfg.ema_decay) if cfg.ema_decay > 0 and main else None  # only process 0 saves it
    # never wait for a batch a small dataset cannot fill
    batch_size = min(cfg.batch_size, len(dataset) // world)
    sampler = EpochSampler(
        len(dataset), cfg.seed, rank, world, batch_size=batch_size, buckets=cfg.length_buckets
    )
    if cfg.length_buckets > 1 and not hasattr(dataset, "item_lengths"):
        raise ConfigError(f"length bucketing needs the items' lengths, which {type(dataset).__name__} lacks")
    per_epoch = len(dataset) // (batch_size * world)
    done = 0
    early = EarlyStopping()
    val_start = val_dataset.rng_state() if val_dataset is not None else None
    if resume:
        for stale in remove_stale_temps(run_dir):
            log.info("removed %s, left by an interrupted checkpoint write", stale.name)
        try:
            last = resolve_checkpoint(run_dir)
        except CheckpointError:
            last = None
            if main:
                log.info("nothing to resume in %s: starting from scratch", run_dir)
        if last is not None:
            done, early = restore_run_state(
                last, rank, world, model, ema, optimizer, scheduler, dataset, device
            )
            if main:
                log.info("resumed %s at step %d", last, done)
    model, optimizer = accelerator.prepare(model, optimizer)
    step.model = model
    model.train()
    metrics_path = run_dir / "metrics.csv"
    new_file = not metrics_path.exists() or done == 0
    val_path = run_dir / "validation.csv"
    if main and not new_file:
        for path in (metrics_path, val_path):
            if dropped := trim_log(path, done):
                log.info("%s: dropped %d row(s) logged after step %d, about to be logged again",
                         path.name, dropped, done)  # fmt: skip
    if main and cfg.eval_every and (new_file or not val_path.exists()):
        val_path.write_text("step,val_loss,best_step\n", encoding="utf-8")
    last_path = None
    target = cfg.steps if stop_after is None else min(cfg.steps, done + stop_after)
    start_time = time.perf_counter()
    data_time = 0.0
    with ExitStack() as stack:
        progress = stack.enter_context(progress_bar("steps", disable=not main))
        metrics = (
            stack.enter_context(open(metrics_path, "w" if new_file else "a", newline="")) if main else None
        )
        writer = csv.writer(metrics) if metrics is not None else None
        if writer is not None and new_file:
            writer.writerow(METRICS_HEADER)
        task = progress.add_task("training", total=cfg.steps, completed=done)
        while done < target:
            epoch, offset = divmod(done, per_epoch)
            sampler.epoch, sampler.start = epoch, offset * batch_size * world
            if hasattr(dataset, "set_epoch"):
                dataset.set_epoch(epoch)
            if cfg.length_buckets > 1:
                sampler.lengths = dataset.item_lengths()  # type: ignore[attr-defined]
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
                batch = batch.to(device)
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
                    mean_loss = accelerator.reduce(loss.detach().float().clone(), "mean")  # all processes
                    if metrics is not None and writer is not None:
                        writer.writerow(
                            [
                                done,
                                f"{mean_loss.item():.6f}",
                                f"{scheduler.get_last_lr()[0]:.3e}",
                                f"{time.perf_counter() - start_time:.2f}",
                                f"{data_time:.2f}",
                                done * batch_size * world,
                                repr(extra),
                            ]
                        )
                        metrics.flush()
                improved = stop = False
                if cfg.eval_every and done % cfg.eval_every == 0:
                    assert val_dataset is not None and val_start is not None
                    val = 0.0
                    if main:
                        val = validate(step, accelerator.unwrap_model(model), val_dataset, val_start, cfg,
                                       device, accelerator.autocast)  # fmt: skip
                    val = _from_main(val, world)
                    improved = early.record(done, val)
                    if main:
                        with open(val_path, "a", encoding="utf-8") as f:
                            f.write(f"{done},{val:.6f},{early.best_step}\n")
                    stop = bool(cfg.patience) and early.bad >= cfg.patience
                if done % cfg.save_every == 0 or done == target or improved:
                    last_path = run_dir / checkpoint_name(done)
                    if rank:
                        save_rank_state(last_path, rank, dataset, device)
                    accelerator.wait_for_everyone()
                    if main:
                        save_run_state(last_path, done, accelerator.unwrap_model(model), ema, optimizer,
                                       scheduler, dataset, device, world, make_checkpoint, early)  # fmt: skip
                    accelerator.wait_for_everyone()  # the checkpoint exists for every process
                if stop:
                    if main:
                        stop_early(run_dir, done, early)
                    last_path = run_dir / checkpoint_name(early.best_step)
                    accelerator.wait_for_everyone()
                    done = target
                if done >= target:
                    break
                t_data = time.perf_counter()
    step.model = accelerator.unwrap_model(model)
    assert last_path is not None or done == target
    return last_path if last_path is not None else resolve_checkpoint(run_dir)


def _from_main(value: float, world: int) -> float:
    """Process 0's ``value`` in every process."""
    if world == 1:
        return value
    from accelerate.utils import broadcast_object_list

    return float(broadcast_object_list([value], from_process=0)[0])
