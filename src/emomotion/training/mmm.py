"""Training and fine-tuning the MMM masked transformer on the shared loop, over a frozen VQ-VAE.

Each batch is tokenised by the frozen VQ (on the fly, so random crops and caption spans stay exact).
Per clip a mask ratio is drawn (``cosine``: ``cos(pi/2 u)``, u ~ U[0, 1], as MaskGIT / MoMask;
``uniform``: U[low, 1], the official MMM's U[0.5, 1]), that share of the clip's tokens is replaced by
MASK, and, before masking, each token is replaced by a random code with probability ``replace_prob``
(the official ``pkeep = 1 - replace_prob``, 0.5 in MMM). The loss is cross-entropy on the masked
positions (``loss_on="masked"``) or on every motion token (``"all"``, the official choice). Text is
dropped with the transformer's ``text_drop_prob`` for classifier-free guidance; with an emotion-label
table (``emotion_conditioning``) each clip's label is given too, dropped with ``emotion_drop_prob``.

Fine-tuning (``init_from`` an ``mmm`` checkpoint) keeps the base normalisation, text encoder and VQ
(frozen: its codebook defines what the tokens mean), and applies a :class:`FinetuneConfig` strategy
(full, freeze, LoRA) and optional replay of base data to the transformer. ``add_emotion_conditioning``
gives a text-only base a label table whose rows start at zero, so the fine-tune starts exactly at the
base model; it always trains, at ``label_lr_scale`` x the learning rate, as MDM's.

``tokenize_with`` reproduces, on purpose, the official pipeline's mismatch: the training tokens come
from another (fine-tuned) VQ while the model keeps, embeds and decodes with its own, as happens when
the official loader silently overwrites a fine-tuned VQ with the copy inside the transformer file.
"""

from __future__ import annotations

import logging
import math
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Literal

import torch
import torch.nn.functional as F

from emomotion.checkpoint import Checkpoint, load_checkpoint
from emomotion.configs import config_dict, dataclass_from
from emomotion.data.dataset import DatasetConfig, MotionBatch, MotionDataset
from emomotion.data.emotions import EMOTIONS
from emomotion.errors import CheckpointError, ConfigError
from emomotion.models.masked import MMM, MMMConfig, mmm_config, mmm_config_from
from emomotion.models.vqvae import VQVAE, VQVAEConfig
from emomotion.text import TextEncoder, TextEncoderSpec, build_text_encoder
from emomotion.training.config import TrainConfig
from emomotion.training.finetune import FinetuneConfig, ReplayDataset, apply_strategy, label_param_groups
from emomotion.training.loop import train_loop
from emomotion.training.validation import validation_dataset

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class MaskingConfig:
    schedule: Literal["cosine", "uniform"] = "cosine"
    uniform_low: float = 0.5  # ``uniform``: ratio ~ U[uniform_low, 1]
    replace_prob: float = 0.1  # random-code replacement before masking (official MMM: 0.5)
    loss_on: Literal["masked", "all"] = "masked"

    def __post_init__(self) -> None:
        if self.schedule not in ("cosine", "uniform"):
            raise ConfigError(f"mask schedule must be cosine or uniform, not {self.schedule!r}")
        if self.loss_on not in ("masked", "all"):
            raise ConfigError(f"loss_on must be masked or all, not {self.loss_on!r}")
        if not 0.0 <= self.uniform_low <= 1.0 or not 0.0 <= self.replace_prob < 1.0:
            raise ConfigError("need uniform_low in [0, 1] and replace_prob in [0, 1)")


@dataclass(frozen=True)
class MaskedBatch:
    inputs: torch.Tensor  # (B, N + 1) ids fed to the model (codes, MASK, END, PAD)
    targets: torch.Tensor  # (B, N + 1) true codes (0 outside motion tokens)
    token_mask: torch.Tensor  # (B, N + 1) motion tokens and END
    real: torch.Tensor  # (B, N + 1) motion tokens
    masked: torch.Tensor  # (B, N + 1) positions replaced by MASK


def mask_tokens(
    tokens: torch.Tensor, num_tokens: torch.Tensor, model: MMM, cfg: MaskingConfig
) -> MaskedBatch:
    """tokens (B, N) codes, num_tokens (B,) real tokens per clip -> the corrupted training input."""
    t = model.cfg.trans
    b, n = tokens.shape
    device = tokens.device
    pos = torch.arange(n + 1, device=device)[None]  # (1, N + 1)
    real = pos < num_tokens[:, None]
    token_mask = pos <= num_tokens[:, None]
    targets = torch.zeros(b, n + 1, dtype=torch.long, device=device)
    targets[:, :n] = tokens
    targets = targets.masked_fill(~real, 0)
    inputs = torch.full_like(targets, t.pad_id)
    inputs = torch.where(real, targets, inputs)
    inputs = inputs.masked_fill(pos == num_tokens[:, None], t.end_id)
    if cfg.replace_prob > 0:
        swap = real & (torch.rand(real.shape, device=device) < cfg.replace_prob)
        inputs = torch.where(swap, torch.randint_like(inputs, t.num_codes), inputs)
    u = torch.rand(b, device=device)
    ratio = (
        torch.cos(u * math.pi / 2)
        if cfg.schedule == "cosine"
        else cfg.uniform_low + (1 - cfg.uniform_low) * u
    )
    count = (num_tokens.float() * ratio).ceil().clamp(min=1).long()  # (B,) at least one masked token
    score = torch.rand(real.shape, device=device).masked_fill(~real, 2.0)  # padding never chosen
    rank = score.argsort(-1).argsort(-1)
    masked = real & (rank < count[:, None])
    inputs = inputs.masked_fill(masked, t.mask_id)
    return MaskedBatch(inputs, targets, token_mask, real, masked)


class MMMTrainStep:
    """Cross-entropy of the masked transformer over tokens of the frozen VQ."""

    def __init__(
        self,
        model: MMM,
        text_encoder: TextEncoder,
        masking: MaskingConfig,
        tokenizer: VQVAE | None = None,
        label_lr_scale: float = 1.0,
    ) -> None:
        self.model = model
        self.text_encoder = text_encoder
        self.masking = masking
        self.tokenizer = tokenizer  # None: the model's own VQ
        self.label_lr_scale = label_lr_scale

    def param_groups(self, lr: float) -> list[dict[str, object]] | None:
        """The emotion-label table at ``label_lr_scale`` x the learning rate (:func:`label_param_groups`)."""
        mmm: MMM = self.model.module if hasattr(self.model, "module") else self.model  # type: ignore[assignment]
        table = getattr(mmm.trans.trans_base, "emotion_emb", None)
        return label_param_groups(self.model, table, lr, self.label_lr_scale)

    def loss(self, batch: MotionBatch) -> tuple[torch.Tensor, dict[str, float]]:
        mmm: MMM = self.model.module if hasattr(self.model, "module") else self.model  # type: ignore[assignment]
        vq = mmm.vq if self.tokenizer is None else self.tokenizer.to(batch.motion.device)
        with torch.no_grad():
            tokens = vq.encode(batch.motion)  # (B, N)
        num_tokens = (batch.lengths // mmm.frames_per_token).clamp(max=tokens.shape[1])
        mb = mask_tokens(tokens, num_tokens, mmm, self.masking)
        text = self.text_encoder.encode(batch.texts, device=batch.motion.device)
        logits = self.model(mb.inputs, text, mb.token_mask, emotion=batch.emotion)  # (B, N + 1, K)
        where = mb.masked if self.masking.loss_on == "masked" else mb.real
        loss = F.cross_entropy(logits[where].float(), mb.targets[where])
        with torch.no_grad():
            acc = (logits[mb.masked].argmax(-1) == mb.targets[mb.masked]).float().mean()
        return loss, {"ce": float(loss.detach()), "masked_acc": float(acc)}


@dataclass(frozen=True)
class MMMRun:
    """Everything a training or fine-tuning run of the masked transformer is, saved in its checkpoints."""

    data: Path
    out: Path
    vq: Path | None = None  # the trained VQ-VAE (kind vqvae); for a fine-tune, replaces the base's VQ
    preset: str = "tiny"  # transformer preset (sized to the VQ's codebook)
    masking: MaskingConfig = field(default_factory=MaskingConfig)
    train: TrainConfig = field(default_factory=lambda: TrainConfig(lr=2e-4, weight_decay=1e-6))
    text_encoder: TextEncoderSpec = field(default_factory=TextEncoderSpec)
    max_frames: int = 196
    init_from: Path | None = None  # fine-tuning: an mmm checkpoint (its stats, text encoder and VQ)
    finetune: FinetuneConfig = field(default_factory=FinetuneConfig)
    replay: Path | None = None  # fine-tuning: base dataset replayed against forgetting
    replay_ratio: float = 0.0
    tokenize_with: Path | None = None  # fine-tuning: tokens from this VQ, the model's own VQ kept (see above)
    emotion_conditioning: bool = False  # training from scratch: an emotion-label table beside the text
    # fine-tuning a text-only base on labelled data: add a label table, zero-initialised
    add_emotion_conditioning: bool = False
    label_lr_scale: float = 1.0  # the emotion-label table learns at this multiple of the learning rate

    def __post_init__(self) -> None:
        if not self.label_lr_scale > 0:
            raise ConfigError(f"label_lr_scale must be > 0, got {self.label_lr_scale}")
        if self.add_emotion_conditioning and self.init_from is None:
            raise ConfigError("add_emotion_conditioning needs a base checkpoint (init_from)")
        if self.emotion_conditioning and self.init_from is not None:
            raise ConfigError(
                "emotion_conditioning is for training from scratch; a fine-tune adds the label table "
                "with add_emotion_conditioning"
            )
        if self.init_from is None and self.vq is None:
            raise ConfigError("training the masked transformer needs a VQ-VAE checkpoint (vq)")
        if self.init_from is None and (self.replay is not None or self.finetune.strategy != "full"):
            raise ConfigError("fine-tuning strategies and replay need a base checkpoint (init_from)")
        if (self.replay is None) != (self.replay_ratio == 0.0):
            raise ConfigError("replay needs both a dataset and a ratio in (0, 1)")
        if self.tokenize_with is not None and (self.init_from is None or self.vq is not None):
            raise ConfigError(
                "tokenize_with applies to a fine-tune that keeps its base VQ (init_from, no vq)"
            )


def _load_kind(path: Path, kind: str) -> Checkpoint:
    ckpt = load_checkpoint(path)
    if ckpt.kind != kind:
        raise CheckpointError(f"expected a {kind} checkpoint, found kind {ckpt.kind!r}", path=ckpt.path)
    return ckpt


def _with_label_table(cfg: MMMConfig, model: MMM, base: Checkpoint) -> tuple[MMMConfig, MMM]:
    """``model`` (a text-only base) rebuilt with an emotion-label table whose rows are all zero, so it
    computes exactly what the base does until the table trains."""
    cfg = MMMConfig(cfg.vq, replace(cfg.trans, num_emotions=len(EMOTIONS)))
    labelled = MMM(cfg).train()
    missing, unexpected = labelled.load_state_dict(model.state_dict(), strict=False)
    if unexpected or any(not k.startswith("trans.trans_base.emotion_emb.") for k in missing):
        raise ConfigError(
            f"base checkpoint does not match the model: {(missing + unexpected)[:5]}", path=base.path
        )
    torch.nn.init.zeros_(labelled.trans.trans_base.emotion_emb.weight)
    log.info("fine-tune: emotion-label table added (%d labels, rows at zero)", len(EMOTIONS))
    return cfg, labelled


def run_mmm(run: MMMRun, *, resume: bool = False, stop_after: int | None = None) -> Path:
    """Train (or fine-tune, with ``init_from``) the masked transformer; returns the last checkpoint."""
    base = _load_kind(run.init_from, "mmm") if run.init_from else None
    vq_ckpt = _load_kind(run.vq, "vqvae") if run.vq else None
    text_spec = base.text_encoder if base is not None else run.text_encoder
    encoder = build_text_encoder(text_spec)
    dataset: MotionDataset | ReplayDataset = MotionDataset(
        DatasetConfig(run.data, split="train", max_frames=run.max_frames, seed=run.train.seed)
    )
    # the tokens mean what the VQ was trained on: always the VQ's (or the base model's) normalisation
    stats_from = base if base is not None else vq_ckpt
    assert stats_from is not None
    dataset.mean, dataset.std = stats_from.mean.numpy(), stats_from.std.numpy()
    torch.manual_seed(run.train.seed)  # initial weights are part of the run's seed
    if base is not None:
        cfg = mmm_config_from(base.config)
        model = base.build_model(use_ema=True).train()
        added = run.add_emotion_conditioning and cfg.trans.num_emotions == 0
        if added:
            cfg, model = _with_label_table(cfg, model, base)
        if vq_ckpt is not None:
            vq_cfg = mmm_config_from({"vq": vq_ckpt.config, "trans": config_dict(cfg.trans)}).vq
            cfg = MMMConfig(vq_cfg, cfg.trans)
            model.vq.load_state_dict(vq_ckpt.model_state)
            log.warning(
                "fine-tune: VQ replaced by %s; the transformer learnt the base VQ's tokens", vq_ckpt.path
            )
        if run.replay is not None:
            replay = MotionDataset(
                DatasetConfig(run.replay, split="train", max_frames=run.max_frames, seed=run.train.seed + 1)
            )
            replay.mean, replay.std = dataset.mean, dataset.std
            dataset = ReplayDataset(dataset, replay, run.replay_ratio, seed=run.train.seed)
        apply_strategy(model.trans, run.finetune)
        if added:
            model.trans.trans_base.emotion_emb.requires_grad_(True)
    else:
        assert vq_ckpt is not None
        num_emotions = len(EMOTIONS) if run.emotion_conditioning else 0
        cfg = mmm_config(
            dataclass_from(VQVAEConfig, vq_ckpt.config),
            run.preset,
            text_dim=encoder.dim,
            num_emotions=num_emotions,
        )
        model = MMM(cfg)
        model.vq.load_state_dict(vq_ckpt.model_state)
    if cfg.trans.text_dim != encoder.dim:
        raise ConfigError(
            f"text encoder gives {encoder.dim}-d embeddings, the model takes {cfg.trans.text_dim}"
        )
    model.vq.requires_grad_(False)  # frozen: its codebook defines the tokens
    mean = torch.as_tensor(dataset.mean, dtype=torch.float32)
    std = torch.as_tensor(dataset.std, dtype=torch.float32)
    tokenizer = None
    if run.tokenize_with is not None:
        tok_ckpt = _load_kind(run.tokenize_with, "vqvae")
        tokenizer = tok_ckpt.build_model().eval().requires_grad_(False)
        if tokenizer.cfg.num_codes != cfg.vq.num_codes:
            raise ConfigError(
                f"the tokenizing VQ has {tokenizer.cfg.num_codes} codes, the model {cfg.vq.num_codes}",
                path=tok_ckpt.path,
            )
        log.warning("fine-tune: tokens from %s, embedded and decoded with the model's own VQ", tok_ckpt.path)
    step = MMMTrainStep(model, encoder, run.masking, tokenizer, run.label_lr_scale)
    extra = {
        "train": asdict(run.train),
        "masking": asdict(run.masking),
        "data": str(run.data),
        "vq": str(vq_ckpt.path) if vq_ckpt is not None else None,
        "init_from": str(run.init_from) if run.init_from else None,
        "finetune": asdict(run.finetune) if base is not None else None,
        "replay": {"data": str(run.replay), "ratio": run.replay_ratio} if run.replay else None,
        "tokenize_with": str(run.tokenize_with) if run.tokenize_with else None,
        "label_lr_scale": run.label_lr_scale,
    }
    config = {"vq": config_dict(cfg.vq), "trans": config_dict(cfg.trans)}

    def make_checkpoint(
        done: int, state: dict[str, torch.Tensor], ema: dict[str, torch.Tensor] | None
    ) -> Checkpoint:
        return Checkpoint("mmm", config, state, mean, std, text_spec, done, ema, extra)

    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    log.info(
        "MMM %s: %.2fM trainable of %.2fM parameters, %d training items",
        run.preset if base is None else f"fine-tune ({run.finetune.strategy})",
        trainable / 1e6,
        model.num_parameters() / 1e6,
        len(dataset),
    )
    val = validation_dataset(run.data, run.max_frames, dataset, run.train)
    return train_loop(
        step,
        dataset,
        run.train,
        run.out,
        make_checkpoint,
        resume=resume,
        stop_after=stop_after,
        val_dataset=val,
    )
