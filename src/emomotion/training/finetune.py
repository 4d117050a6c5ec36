"""Fine-tuning strategies shared by every model family: full, freeze, LoRA, and replay of base data.

- ``full``: every weight trains (at a lower learning rate than pretraining, chosen by the caller).
- ``freeze``: parameters whose names match one of ``freeze`` (regular expressions, matched from the
  start of the name) stay fixed; the rest train.
- ``lora``: every weight stays fixed; a low-rank update ``W + (alpha / r) B A`` (Hu et al. 2021, "LoRA")
  is learned on the linear and attention projections whose module names match ``lora_targets``. The
  update is a ``torch.nn.utils.parametrize`` parametrization, so the module code and the official key
  layout are untouched; :func:`merged_state_dict` folds it back into plain weights, which is what
  checkpoints store (the live adapter tensors go to the resume state only).

:class:`ReplayDataset` mixes batches of the base (pretraining) dataset into the fine-tuning data
against catastrophic forgetting.
"""

from __future__ import annotations

import logging
import math
import re
from dataclasses import dataclass, replace
from typing import Literal

import numpy as np
import torch
from torch import nn
from torch.nn.utils import parametrize
from torch.utils.data import Dataset

from emomotion.data.dataset import MotionDataset, MotionSample
from emomotion.errors import ConfigError

log = logging.getLogger(__name__)

STRATEGIES = ("full", "freeze", "lora")


@dataclass(frozen=True)
class FinetuneConfig:
    strategy: Literal["full", "freeze", "lora"] = "full"
    freeze: tuple[str, ...] = ()  # ``freeze``: parameter-name patterns kept fixed
    lora_rank: int = 8
    lora_alpha: float = 16.0
    lora_targets: tuple[str, ...] = (r".*",)  # module-name patterns that get an adapter
    lora_dropout: float = 0.0

    def __post_init__(self) -> None:
        if self.strategy not in STRATEGIES:
            raise ConfigError(
                f"unknown fine-tuning strategy {self.strategy!r}; choose from {', '.join(STRATEGIES)}"
            )
        if self.lora_rank < 1:
            raise ConfigError(f"lora_rank must be >= 1, got {self.lora_rank}")
        if self.strategy == "freeze" and not self.freeze:
            raise ConfigError("the freeze strategy needs at least one parameter pattern to freeze")
        for pattern in (*self.freeze, *self.lora_targets):
            try:
                re.compile(pattern)
            except re.error as exc:
                raise ConfigError(f"bad parameter pattern {pattern!r}: {exc}") from exc


class LoRADelta(nn.Module):
    """The parametrization ``W -> W + scale * B @ A`` of a (out, in) weight; B starts at zero, so the
    adapted model starts exactly at the base model."""

    def __init__(self, out_features: int, in_features: int, rank: int, alpha: float) -> None:
        super().__init__()
        self.lora_A = nn.Parameter(torch.empty(rank, in_features))
        self.lora_B = nn.Parameter(torch.zeros(out_features, rank))
        nn.init.kaiming_uniform_(self.lora_A, a=math.sqrt(5))
        self.scale = alpha / rank

    def forward(self, weight: torch.Tensor) -> torch.Tensor:
        return weight + self.scale * (self.lora_B @ self.lora_A).to(weight.dtype)


def _lora_weights(model: nn.Module, targets: tuple[str, ...]) -> list[tuple[str, nn.Module, str]]:
    """(module name, module, weight attribute) of every linear / attention projection to adapt."""
    found = []
    patterns = [re.compile(p) for p in targets]
    for name, module in model.named_modules():
        if not any(p.match(name) for p in patterns):
            continue
        if isinstance(module, nn.Linear):
            found.append((name, module, "weight"))
        elif isinstance(module, nn.MultiheadAttention) and module.in_proj_weight is not None:
            found.append((name, module, "in_proj_weight"))  # out_proj is an nn.Linear of its own
    return found


def apply_strategy(model: nn.Module, cfg: FinetuneConfig) -> None:
    """Set which parameters train (and add LoRA adapters) in place."""
    if cfg.strategy == "full":
        model.requires_grad_(True)
    elif cfg.strategy == "freeze":
        patterns = [re.compile(p) for p in cfg.freeze]
        frozen = 0
        for name, p in model.named_parameters():
            fixed = any(pat.match(name) for pat in patterns)
            p.requires_grad_(not fixed)
            frozen += p.numel() if fixed else 0
        if frozen == 0:
            raise ConfigError(f"freeze patterns {list(cfg.freeze)} match no parameter of the model")
    else:
        model.requires_grad_(False)
        targets = _lora_weights(model, cfg.lora_targets)
        if not targets:
            raise ConfigError(f"LoRA targets {list(cfg.lora_targets)} match no linear or attention layer")
        for _, module, attr in targets:
            weight = getattr(module, attr)
            delta = LoRADelta(weight.shape[0], weight.shape[1], cfg.lora_rank, cfg.lora_alpha)
            parametrize.register_parametrization(module, attr, delta.to(weight.device))
            getattr(module.parametrizations, attr).original.requires_grad_(False)
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    total = sum(p.numel() for p in model.parameters())
    log.info("fine-tuning strategy %s: %d of %d parameters train", cfg.strategy, trainable, total)


def label_param_groups(
    model: nn.Module, table: nn.Module | None, lr: float, scale: float
) -> list[dict[str, object]] | None:
    """Optimizer groups with ``table`` (an emotion-label table) at ``scale`` x ``lr``: a table added at
    fine-tuning starts at zero and would barely move at a fine-tune's low rate. None when there is no
    table or the scale is 1 (one plain group)."""
    if table is None or scale == 1.0:
        return None
    label = [p for p in table.parameters() if p.requires_grad]
    ids = {id(p) for p in label}
    rest = [p for p in model.parameters() if p.requires_grad and id(p) not in ids]
    return [{"params": rest, "lr": lr}, {"params": label, "lr": lr * scale}]


def has_adapters(model: nn.Module) -> bool:
    return any(parametrize.is_parametrized(m) for m in model.modules())


@torch.no_grad()
def merged_state_dict(
    model: nn.Module, state: dict[str, torch.Tensor] | None = None
) -> dict[str, torch.Tensor]:
    """``state`` (default: the model's own) with every LoRA adapter folded into its weight, under the
    plain key the un-adapted model uses."""
    state = dict(model.state_dict() if state is None else state)
    for name, module in model.named_modules():
        if not parametrize.is_parametrized(module):
            continue
        prefix = f"{name}." if name else ""
        for attr, plist in module.parametrizations.items():
            base = f"{prefix}parametrizations.{attr}"
            weight = state.pop(f"{base}.original")
            for i, p in enumerate(plist):
                if not isinstance(p, LoRADelta):
                    raise ConfigError(f"cannot merge parametrization {type(p).__name__} of {name}.{attr}")
                a, b = state.pop(f"{base}.{i}.lora_A"), state.pop(f"{base}.{i}.lora_B")
                weight = weight + p.scale * (b.float() @ a.float()).to(weight.dtype)
            state[f"{prefix}{attr}"] = weight
    return state


class ReplayDataset(Dataset[MotionSample]):
    """The fine-tuning clips plus draws from a replay (base) dataset, so that about ``ratio`` of every
    batch is base data. Each epoch's replay draws are a pure function of (seed, epoch)
    (:meth:`set_epoch`), the same in every process, so that resume is exact and the draws' lengths are
    known before the epoch's batches are made (length bucketing)."""

    def __init__(self, primary: MotionDataset, replay: MotionDataset, ratio: float, seed: int = 0) -> None:
        if not 0.0 < ratio < 1.0:
            raise ConfigError(f"replay ratio must be in (0, 1), got {ratio}")
        self.primary, self.replay, self.ratio = primary, replay, ratio
        self.extra = max(1, round(len(primary) * ratio / (1.0 - ratio)))
        self.seed = seed
        self.set_epoch(0)

    @property
    def mean(self):  # the normalisation every clip is given (the base model's when fine-tuning)
        return self.primary.mean

    @property
    def std(self):
        return self.primary.std

    def set_epoch(self, epoch: int) -> None:
        """Draw this epoch's replay clips."""
        rng = np.random.default_rng([self.seed, 7919, epoch])
        self.draws = rng.integers(0, len(self.replay), size=self.extra)

    def item_lengths(self) -> np.ndarray:
        """Each item's length this epoch (frames, after cropping)."""
        return np.concatenate([self.primary.item_lengths(), self.replay.item_lengths()[self.draws]])

    def __len__(self) -> int:
        return len(self.primary) + self.extra

    def __getitem__(self, index: int) -> MotionSample:
        if index < len(self.primary):
            return self.primary[index]
        return replace(self.replay[int(self.draws[index - len(self.primary)])], replay=True)

    def rng_state(self) -> tuple:
        return (self.primary.rng_state(), self.replay.rng_state())

    def set_rng_state(self, state: tuple) -> None:
        primary, replay = state[-2:]  # checkpoints before per-epoch draws held the draw RNG first
        self.primary.set_rng_state(primary)
        self.replay.set_rng_state(replay)

    def reseed(self, seed: int) -> None:
        self.primary.reseed(seed)
        self.replay.reseed(seed + 1)
