"""Checkpoints: safetensors weights plus JSON metadata, so one path rebuilds a ready model.

A checkpoint ``step00001000.safetensors`` holds the model weights (``model.*``), the EMA weights
(``ema.*``, when training keeps them) and the normalisation statistics (``stats.mean``,
``stats.std``); its metadata holds the model kind and config, the text-encoder spec, the diffusion
config and the training step. The optimiser, schedule, RNG and data position needed to resume sit
beside it in ``step00001000.train.pt`` (plain tensors and numbers: read with ``weights_only=True``);
a run of several processes adds each other process's own RNG state in ``step00001000.rank1.train.pt``
and so on. All are written atomically. Wherever a checkpoint is expected, a run directory means its newest.
"""

from __future__ import annotations

import json
import re
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from emomotion.errors import CheckpointError
from emomotion.io.atomic import atomic_path
from emomotion.models.registry import model_factory
from emomotion.text.base import TextEncoderSpec

FORMAT = "emomotion-checkpoint/1"
_STEP = re.compile(r"step(\d+)\.safetensors$")


def checkpoint_name(step: int) -> str:
    return f"step{step:08d}.safetensors"


@dataclass
class Checkpoint:
    """What a checkpoint file holds."""

    kind: str
    config: dict[str, Any]
    model_state: dict[str, torch.Tensor]
    mean: torch.Tensor  # (263,)
    std: torch.Tensor  # (263,)
    text_encoder: TextEncoderSpec
    step: int = 0
    ema_state: dict[str, torch.Tensor] | None = None
    extra: dict[str, Any] | None = None  # e.g. diffusion config, data folder, training config
    path: Path | None = None

    def build_model(self, *, use_ema: bool = True) -> torch.nn.Module:
        """The model with its weights (EMA weights when present and ``use_ema``), in eval mode."""
        model = model_factory(self.kind, self.path)(self.config)
        state = self.ema_state if use_ema and self.ema_state else self.model_state
        missing, unexpected = model.load_state_dict(state, strict=False)
        missing = [k for k in missing if not k.endswith(".pe")]
        if missing or unexpected:
            raise CheckpointError(
                f"weights do not match the {self.kind} config: missing {missing[:5]}, unexpected {unexpected[:5]}",
                path=self.path,
            )
        return model.eval()


def save_checkpoint(path: str | Path, ckpt: Checkpoint) -> Path:
    path = Path(path)
    tensors: dict[str, torch.Tensor] = {
        f"model.{k}": v.detach().cpu().contiguous() for k, v in ckpt.model_state.items()
    }
    if ckpt.ema_state:
        tensors.update({f"ema.{k}": v.detach().cpu().contiguous() for k, v in ckpt.ema_state.items()})
    tensors["stats.mean"] = torch.as_tensor(ckpt.mean, dtype=torch.float32).contiguous()
    tensors["stats.std"] = torch.as_tensor(ckpt.std, dtype=torch.float32).contiguous()
    tensors = {k: v for k, v in tensors.items() if not k.endswith(".pe")}  # positional buffers are rebuilt
    meta = {
        "format": FORMAT,
        "kind": ckpt.kind,
        "config": ckpt.config,
        "text_encoder": asdict(ckpt.text_encoder),
        "step": ckpt.step,
        "extra": ckpt.extra or {},
    }
    with atomic_path(path) as tmp:
        save_file(tensors, str(tmp), metadata={"emomotion": json.dumps(meta)})
    return path


def run_checkpoints(run_dir: str | Path) -> list[tuple[int, Path]]:
    """A run directory's ``step*.safetensors`` checkpoints as (step, path), oldest first."""
    return sorted(
        (int(m.group(1)), p) for p in Path(run_dir).glob("step*.safetensors") if (m := _STEP.search(p.name))
    )


def resolve_checkpoint(path: str | Path) -> Path:
    """A file as is; a run directory -> its newest ``step*.safetensors``."""
    path = Path(path)
    if path.is_dir():
        found = run_checkpoints(path)
        if not found:
            raise CheckpointError("no step*.safetensors checkpoint in this run directory", path=path)
        return found[-1][1]
    if not path.is_file():
        raise CheckpointError("checkpoint not found", path=path)
    return path


def load_checkpoint(path: str | Path, *, text_encoder_path: str | Path | None = None) -> Checkpoint:
    """The checkpoint ``path`` (a run directory: its newest); ``text_encoder_path`` gives or overrides the
    local files of its text encoder (say, CLIP for an imported official model), stored absolute."""
    path = resolve_checkpoint(path)
    try:
        tensors = load_file(str(path))
        from safetensors import safe_open

        with safe_open(str(path), "pt") as fh:
            meta = json.loads((fh.metadata() or {}).get("emomotion", "null"))
    except (SafetensorError, OSError, json.JSONDecodeError) as exc:
        raise CheckpointError(f"not a readable safetensors checkpoint: {exc}", path=path) from exc
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise CheckpointError("not an emomotion checkpoint (no emomotion metadata)", path=path)
    model = {k[6:]: v for k, v in tensors.items() if k.startswith("model.")}
    ema = {k[4:]: v for k, v in tensors.items() if k.startswith("ema.")} or None
    try:
        return Checkpoint(
            kind=meta["kind"],
            config=meta["config"],
            model_state=model,
            mean=tensors["stats.mean"],
            std=tensors["stats.std"],
            text_encoder=_text_encoder(meta["text_encoder"], text_encoder_path),
            step=int(meta["step"]),
            ema_state=ema,
            extra=meta.get("extra") or {},
            path=path,
        )
    except KeyError as exc:
        raise CheckpointError(f"checkpoint lacks {exc.args[0]}", path=path) from exc


def _text_encoder(meta: dict[str, Any], override: str | Path | None) -> TextEncoderSpec:
    spec = TextEncoderSpec(**meta)
    return spec if override is None else replace(spec, path=str(Path(override).resolve()))


def train_state_path(checkpoint: Path, rank: int = 0) -> Path:
    """The training state beside ``checkpoint``: process 0's (the whole state), or another process's own."""
    suffix = ".train.pt" if rank == 0 else f".rank{rank}.train.pt"
    return checkpoint.with_name(checkpoint.name.replace(".safetensors", suffix))


def train_state_paths(checkpoint: Path) -> list[Path]:
    """Every training-state file of ``checkpoint`` (all processes)."""
    stem = checkpoint.name.replace(".safetensors", "")
    return sorted(checkpoint.parent.glob(f"{stem}.train.pt")) + sorted(
        checkpoint.parent.glob(f"{stem}.rank*.train.pt")
    )


def save_train_state(checkpoint: Path, state: dict[str, Any], rank: int = 0) -> Path:
    path = train_state_path(checkpoint, rank)
    with atomic_path(path) as tmp:
        torch.save(state, tmp)
    return path


def load_train_state(checkpoint: Path, rank: int = 0) -> dict[str, Any]:
    path = train_state_path(checkpoint, rank)
    try:
        return torch.load(path, weights_only=True, map_location="cpu")
    except FileNotFoundError as exc:
        raise CheckpointError(
            "training state missing: cannot resume from this checkpoint", path=path
        ) from exc
