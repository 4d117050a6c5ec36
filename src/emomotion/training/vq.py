"""Training (or fine-tuning) the motion VQ-VAE on the shared loop.

As the official recipe: windows of 64 frames, AdamW at lr 2e-4, SmoothL1 reconstruction + 0.02
commitment + 0.5 joint-position term (:func:`emomotion.models.vqvae.vq_loss`). Clips shorter than the
window are kept and padded; padded frames count in neither the loss nor the codebook update. Fine-tuning
(``init_from``) starts from the checkpoint's codebook *and* its EMA state (saved buffers), keeps its
normalisation, and so never re-initialises the codebook from the first batch.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path
from typing import Any

import torch

from emomotion import skeleton as sk
from emomotion.checkpoint import Checkpoint, load_checkpoint
from emomotion.configs import config_dict, dataclass_from
from emomotion.data.dataset import DatasetConfig, MotionBatch, MotionDataset
from emomotion.errors import CheckpointError, ConfigError
from emomotion.models.vqvae import VQVAE, VQVAEConfig, preset, vq_loss
from emomotion.text import TextEncoderSpec
from emomotion.training.config import TrainConfig
from emomotion.training.loop import train_loop

log = logging.getLogger(__name__)
RESIDUAL_LAYERS = 6


class VQTrainStep:
    def __init__(
        self, model: VQVAE, mean: torch.Tensor | None = None, std: torch.Tensor | None = None
    ) -> None:
        self.model, self.mean, self.std = model, mean, std  # Mean/Std: for the position loss

    def loss(self, batch: MotionBatch) -> tuple[torch.Tensor, dict[str, float]]:
        return vq_loss(_unwrap(self.model), batch.motion, batch.mask, mean=self.mean, std=self.std)


def _unwrap(model: torch.nn.Module) -> VQVAE:
    """The VQVAE under an accelerate/DDP wrapper (``vq_loss`` needs its methods and config)."""
    return model.module if hasattr(model, "module") else model  # type: ignore[return-value]


@dataclass(frozen=True)
class VQRun:
    """Everything a VQ-VAE training run is, saved in its checkpoints."""

    data: Path
    out: Path
    preset: str = "tiny"
    quantizer: str | None = None  # overrides the preset's quantizer (ema_reset, kmeans, residual, fsq)
    num_quantizers: int | None = None  # residual VQ layers (default 6, as MoMask)
    vq: Mapping[str, Any] = field(default_factory=dict)  # VQVAEConfig fields over the preset's (new runs)
    train: TrainConfig = field(default_factory=lambda: TrainConfig(lr=2e-4, ema_decay=0.0, batch_size=256))
    window: int = 64  # training window in frames (official 64)
    min_frames: int = sk.MIN_FRAMES
    init_from: Path | None = None  # fine-tuning: a vqvae (or mmm) checkpoint: its codebook state and stats
    stats_from: Path | None = None
    # reproduce the official code's fine-tuning (its EMA state is not saved, so the codebook is
    # re-initialised from the first batch): only for the study's failing recipe, never a default
    reinit_codebook: bool = False

    def __post_init__(self) -> None:
        if self.reinit_codebook and self.init_from is None:
            raise ConfigError("reinit_codebook only applies when fine-tuning (init_from)")
        if self.window < 4 or self.window % 4:
            raise ConfigError(f"window must be a positive multiple of 4 frames, got {self.window}")
        unknown = set(self.vq) - {f.name for f in fields(VQVAEConfig)}
        if unknown:
            raise ConfigError(f"unknown VQ-VAE settings: {', '.join(sorted(unknown))}")
        if self.vq and self.init_from is not None:
            raise ConfigError("VQ-VAE settings (vq) apply to new runs; fine-tuning keeps the checkpoint's")
        if self.min_frames > self.window:
            raise ConfigError(f"min_frames {self.min_frames} exceeds the window {self.window}")


def run_vq(run: VQRun, *, resume: bool = False, stop_after: int | None = None) -> Path:
    """Train (or fine-tune, with ``init_from``) a VQ-VAE; returns the last checkpoint."""
    base: Checkpoint | None = load_checkpoint(run.init_from) if run.init_from else None
    if base is not None and base.kind == "mmm":  # e.g. an imported official model: fine-tune its VQ
        base = Checkpoint(
            "vqvae",
            dict(base.config["vq"]),
            {k[3:]: v for k, v in base.model_state.items() if k.startswith("vq.")},
            base.mean,
            base.std,
            base.text_encoder,
            path=base.path,
        )
    if base is not None and base.kind != "vqvae":
        raise CheckpointError(f"expected a vqvae or mmm checkpoint, found kind {base.kind!r}", path=base.path)
    dataset = MotionDataset(
        DatasetConfig(
            run.data,
            split="train",
            min_frames=run.min_frames,
            max_frames=run.window,
            stats_root=run.stats_from,
            seed=run.train.seed,
        )
    )
    torch.manual_seed(run.train.seed)  # initial weights are part of the run's seed
    if base is not None:
        dataset.mean, dataset.std = base.mean.numpy(), base.std.numpy()
        cfg = dataclass_from(VQVAEConfig, base.config)
        model = base.build_model(use_ema=False).train()
        if run.reinit_codebook:
            flags = [b for name, b in model.named_buffers() if name.endswith("initted")]
            if not flags:
                raise ConfigError(f"the {cfg.quantizer} quantizer has no codebook initialisation to redo")
            for flag in flags:
                flag.fill_(False)
            log.warning("codebook re-initialised from the first batch (the official fine-tuning behaviour)")
    else:
        cfg = preset(run.preset, **run.vq)
        if run.quantizer is not None:
            layers = run.num_quantizers or (
                RESIDUAL_LAYERS if run.quantizer == "residual" else cfg.num_quantizers
            )
            cfg = replace(cfg, quantizer=run.quantizer, num_quantizers=layers)
        model = VQVAE(cfg)
    mean = torch.as_tensor(dataset.mean, dtype=torch.float32)
    std = torch.as_tensor(dataset.std, dtype=torch.float32)
    extra = {
        "train": asdict(run.train),
        "data": str(run.data),
        "window": run.window,
        "init_from": str(run.init_from) if run.init_from else None,
    }
    spec = base.text_encoder if base is not None else TextEncoderSpec()  # unused by the VQ; kept as given

    def make_checkpoint(
        done: int, state: dict[str, torch.Tensor], ema: dict[str, torch.Tensor] | None
    ) -> Checkpoint:
        return Checkpoint("vqvae", config_dict(cfg), state, mean, std, spec, done, ema, extra)

    log.info(
        "VQ-VAE %s (%s, %d x %d): %.2fM parameters, %d training clips",
        run.preset if base is None else "fine-tune",
        cfg.quantizer,
        cfg.codebook_size,
        cfg.code_dim,
        model.num_parameters() / 1e6,
        len(dataset),
    )
    return train_loop(
        VQTrainStep(model, mean, std),
        dataset,
        run.train,
        run.out,
        make_checkpoint,
        resume=resume,
        stop_after=stop_after,
    )
