"""What a run saves and restores to resume exactly: the checkpoint (weights, EMA) and its training state.

Process 0 writes the whole state beside the checkpoint (step, optimiser, LR schedule, early stopping,
the number of processes, and its own RNGs); every other process writes only its own RNGs (torch's CPU
generator, the CUDA generator of its device, the dataset's crop/caption RNG). The data position
follows from the step. A run resumes only with the number of processes it was saved with: the data
each process reads and the RNG each one restores depend on it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from emomotion.checkpoint import (
    load_checkpoint,
    load_train_state,
    save_checkpoint,
    save_train_state,
)
from emomotion.errors import ConfigError
from emomotion.training.config import MetaFn, TrainDataset
from emomotion.training.ema import EMA
from emomotion.training.finetune import has_adapters, merged_state_dict
from emomotion.training.validation import EarlyStopping


def rng_state(dataset: TrainDataset, device: torch.device) -> dict[str, Any]:
    """This process's random state: torch (CPU, and the CUDA device in use) and the dataset's."""
    state: dict[str, Any] = {"torch_rng": torch.get_rng_state(), "data_rng": list(dataset.rng_state())}
    if device.type == "cuda":
        state["cuda_rng"] = torch.cuda.get_rng_state(device)
    return state


def set_rng_state(state: dict[str, Any], dataset: TrainDataset, device: torch.device) -> None:
    torch.set_rng_state(state["torch_rng"])
    if device.type == "cuda" and "cuda_rng" in state:
        torch.cuda.set_rng_state(state["cuda_rng"], device)
    dataset.set_rng_state(_tuple_state(state["data_rng"]))


def save_rank_state(path: Path, rank: int, dataset: TrainDataset, device: torch.device) -> None:
    """A process other than 0 saves its own RNGs beside the checkpoint ``path`` (before process 0 writes
    the checkpoint, whose presence means the set is complete)."""
    save_train_state(path, {"rank": rank, **rng_state(dataset, device)}, rank)


def save_run_state(
    path: Path,
    done: int,
    model: torch.nn.Module,
    ema: EMA | None,
    optimizer: torch.optim.Optimizer,
    scheduler: Any,
    dataset: TrainDataset,
    device: torch.device,
    world: int,
    make_checkpoint: MetaFn,
    early: EarlyStopping,
) -> Path:
    """Process 0 writes the checkpoint ``path`` and its training state."""
    live = model.state_dict()
    live_ema = ema.state_dict(model) if ema else None
    train_state: dict[str, Any] = {
        "step": done,
        "world_size": world,
        "optimizer": optimizer.state_dict(),
        "scheduler": scheduler.state_dict(),
        "early": early.state(),
        **rng_state(dataset, device),
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
    save_checkpoint(path, ckpt)  # written last: its presence means the set is complete
    return path


def restore_run_state(
    path: Path,
    rank: int,
    world: int,
    model: torch.nn.Module,
    ema: EMA | None,
    optimizer: torch.optim.Optimizer,
    scheduler: Any,
    dataset: TrainDataset,
    device: torch.device,
) -> tuple[int, EarlyStopping]:
    """Load the checkpoint ``path`` and this process's training state; returns (step, early stopping)."""
    state = load_train_state(path)
    saved_world = int(state.get("world_size", 1))
    if saved_world != world:
        raise ConfigError(
            f"this run was saved by {saved_world} process(es) and is resumed by {world}: resume it with "
            f"{saved_world} (the data each process reads and its saved RNG depend on the number), or "
            "fine-tune from the checkpoint into a new run directory",
            path=path,
        )
    ckpt = load_checkpoint(path)
    # with adapters (LoRA) the checkpoint holds merged weights; the live ones are in the train state
    model.load_state_dict(state.get("live_model") or ckpt.model_state, strict=False)
    if ema is not None and (state.get("live_ema") or ckpt.ema_state):
        ema.load(state.get("live_ema") or ckpt.ema_state)
    optimizer.load_state_dict(state["optimizer"])
    scheduler.load_state_dict(state["scheduler"])
    set_rng_state(state if rank == 0 else load_train_state(path, rank), dataset, device)
    return int(state["step"]), EarlyStopping(**state.get("early", {}))


def _tuple_state(state: Any) -> Any:
    return tuple(_tuple_state(s) for s in state) if isinstance(state, list | tuple) else state
