"""Training and fine-tuning MDM: the diffusion loss on one batch, and the run that wires data, text
encoder, model and diffusion into the shared loop.

Replay against forgetting has two targets. ``data``: the replayed base clips are trained on like any
other (their own clean motion is the target). ``teacher``: the frozen base model's prediction for the
same noised clip, text and classifier-free-guidance drops is the target (learning without forgetting,
Li & Hoiem 2017): the fine-tune is held to what the base model does on base data rather than re-fitted
to that data with a small batch.
"""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Literal

import torch

from emomotion.checkpoint import Checkpoint, load_checkpoint
from emomotion.configs import config_dict, dataclass_from
from emomotion.data.dataset import DatasetConfig, MotionBatch, MotionDataset
from emomotion.data.emotions import EMOTIONS
from emomotion.errors import CheckpointError, ConfigError
from emomotion.features import FOOT_CONTACT, recover_joints_t
from emomotion.models.condition import MotionCondition
from emomotion.models.mdm import MDM, MDMConfig, preset
from emomotion.sampling.diffusion import DiffusionConfig, GaussianDiffusion
from emomotion.skeleton import FEET_LEFT, FEET_RIGHT
from emomotion.text import TextEncoder, TextEncoderSpec, build_text_encoder
from emomotion.training.config import TrainConfig
from emomotion.training.finetune import FinetuneConfig, ReplayDataset, apply_strategy, label_param_groups
from emomotion.training.loop import train_loop
from emomotion.training.validation import validation_dataset

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class GeometricLossWeights:
    """MDM's optional geometric losses, on joints recovered from the predicted features."""

    position: float = 0.0
    velocity: float = 0.0
    foot_contact: float = 0.0


class MDMTrainStep:
    """Masked MSE on the predicted x0 (MDM's simple loss) plus optional geometric terms."""

    def __init__(
        self,
        model: torch.nn.Module,
        diffusion: GaussianDiffusion,
        text_encoder: TextEncoder,
        mean: torch.Tensor,
        std: torch.Tensor,
        geometric: GeometricLossWeights = GeometricLossWeights(),
        label_lr_scale: float = 1.0,
        teacher: torch.nn.Module | None = None,
    ) -> None:
        self.model = model
        self.teacher = teacher  # frozen; its prediction is the target of replayed clips
        self.label_lr_scale = label_lr_scale
        self.diffusion = diffusion
        self.text_encoder = text_encoder
        self.mean, self.std = mean, std
        self.geometric = geometric

    def param_groups(self, lr: float) -> list[dict[str, object]] | None:
        """The emotion-label table at ``label_lr_scale`` x the learning rate (:func:`label_param_groups`)."""
        table = getattr(self.model, "embed_emotion", None)
        return label_param_groups(self.model, table, lr, self.label_lr_scale)

    def condition(self, batch: MotionBatch, device: torch.device) -> MotionCondition:
        text = self.text_encoder.encode(batch.texts, device=device)
        return MotionCondition(text, emotion=batch.emotion)

    def loss(self, batch: MotionBatch) -> tuple[torch.Tensor, dict[str, float]]:
        x0, mask = batch.motion, batch.mask  # (B, T, 263), (B, T)
        b = x0.shape[0]
        t = torch.randint(0, self.diffusion.num_steps, (b,)).to(x0.device)
        noise = torch.randn(x0.shape).to(x0.device)
        xt = self.diffusion.q_sample(x0, t, noise)
        cond = self.condition(batch, x0.device)
        target = x0
        taught = None  # rows whose target is the teacher's prediction
        if self.teacher is not None and batch.replay is not None and bool(batch.replay.any()):
            taught = batch.replay.to(x0.device)
            cond, target = self._teacher_target(cond, xt, t, x0, mask, taught)
        pred = self.model(xt, t, cond, mask)
        m = mask[..., None].to(pred.dtype)
        frames = m.sum().clamp(min=1.0)
        loss = ((pred.float() - target) ** 2 * m).sum() / (frames * x0.shape[-1])
        extra: dict[str, float] = {"mse": float(loss.detach())}
        g = self.geometric
        if g.position or g.velocity or g.foot_contact:
            mean, std = self.mean.to(x0.device), self.std.to(x0.device)
            pj = recover_joints_t(pred.float() * std + mean)  # (B, T, 22, 3)
            tj = recover_joints_t(target * std + mean)
            jm = m[..., None]
            if g.position:
                pos = ((pj - tj) ** 2 * jm).sum() / (frames * 66)
                loss = loss + g.position * pos
                extra["position"] = float(pos.detach())
            if g.velocity:
                vm = (mask[:, 1:] & mask[:, :-1])[..., None, None].to(pj.dtype)
                vel = (((pj[:, 1:] - pj[:, :-1]) - (tj[:, 1:] - tj[:, :-1])) ** 2 * vm).sum() / (
                    vm.sum().clamp(min=1) * 66
                )
                loss = loss + g.velocity * vel
                extra["velocity"] = float(vel.detach())
            if g.foot_contact:
                contact = (x0 * std + mean)[..., FOOT_CONTACT] > 0.5  # (B, T, 4) from the data
                if taught is not None:  # a prior on the prediction itself: not where the base is the target
                    contact = contact & ~taught[:, None, None]
                feet = pj[:, :, [*FEET_LEFT, *FEET_RIGHT]]  # the order of the contact features
                slide = (feet[:, 1:] - feet[:, :-1]) ** 2  # (B, T-1, 4, 3)
                cm = (contact[:, :-1] & mask[:, 1:, None] & mask[:, :-1, None])[..., None].to(pj.dtype)
                fc = (slide * cm).sum() / cm.sum().clamp(min=1)
                loss = loss + g.foot_contact * fc
                extra["foot_contact"] = float(fc.detach())
        return loss, extra

    def _teacher_target(
        self,
        cond: MotionCondition,
        xt: torch.Tensor,
        t: torch.Tensor,
        x0: torch.Tensor,
        mask: torch.Tensor,
        replayed: torch.Tensor,
    ) -> tuple[MotionCondition, torch.Tensor]:
        """Decide the batch's classifier-free-guidance drops here (the student would draw its own), so
        that the teacher predicts the replayed rows under exactly the student's condition; those
        predictions replace the rows' clean motion as the target."""
        assert self.teacher is not None
        student = getattr(self.model, "module", self.model)  # unwrapped from DDP
        drop_text, drop_emotion = student.guidance_drops(cond, xt.shape[0], xt.device)
        cond = replace(cond, drop_text=drop_text, drop_emotion=drop_emotion)
        self.teacher.to(xt.device)
        with torch.no_grad():
            taught = self.teacher(xt[replayed], t[replayed], cond.select(replayed), mask[replayed])
        target = x0.clone()
        target[replayed] = taught.float()
        return cond, target


@dataclass(frozen=True)
class MDMRun:
    """Everything a training or fine-tuning run of MDM is, saved in its checkpoints."""

    data: Path
    out: Path
    preset: str = "tiny"
    diffusion: DiffusionConfig = field(default_factory=DiffusionConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    text_encoder: TextEncoderSpec = field(default_factory=TextEncoderSpec)
    emotion_conditioning: bool = False
    geometric: GeometricLossWeights = field(default_factory=GeometricLossWeights)
    max_frames: int = 196
    init_from: Path | None = None  # fine-tuning: start from this checkpoint (its stats and text encoder)
    stats_from: Path | None = None
    finetune: FinetuneConfig = field(default_factory=FinetuneConfig)
    # fine-tuning a text-only base on labelled data: add a label table, zero-initialised
    add_emotion_conditioning: bool = False
    replay: Path | None = None  # fine-tuning: base dataset replayed against forgetting
    replay_ratio: float = 0.0
    replay_target: Literal["data", "teacher"] = "data"  # what a replayed clip is fitted to (module doc)
    label_lr_scale: float = 1.0  # the emotion-label table learns at this multiple of the learning rate
    # fine-tuning: keep a frozen copy of the base, which answers requests without an emotion (MDMConfig)
    keep_base: bool = False

    def __post_init__(self) -> None:
        if not self.label_lr_scale > 0:
            raise ConfigError(f"label_lr_scale must be > 0, got {self.label_lr_scale}")
        if self.init_from is None and (self.replay is not None or self.finetune.strategy != "full"):
            raise ConfigError("fine-tuning strategies and replay need a base checkpoint (init_from)")
        if (self.replay is None) != (self.replay_ratio == 0.0):
            raise ConfigError("replay needs both a dataset and a ratio in (0, 1)")
        if self.replay_target not in ("data", "teacher"):
            raise ConfigError(f"replay_target must be 'data' or 'teacher', got {self.replay_target!r}")
        if self.keep_base and (self.init_from is None or self.replay is not None):
            raise ConfigError(
                "keep_base fine-tunes a base checkpoint (init_from) without replay: the kept base answers "
                "the base corpus's prompts"
            )


def freeze_patterns(num_layers: int, frozen_layers: int | None = None) -> tuple[str, ...]:
    """The ``freeze`` strategy's default for MDM: the input side (pose, text and timestep embeddings) and
    the first half of the transformer layers stay fixed; the upper layers and the output train."""
    k = num_layers // 2 if frozen_layers is None else frozen_layers
    if not 0 <= k <= num_layers:
        raise ConfigError(f"frozen layers must be in [0, {num_layers}], got {k}")
    layers = [rf"seqTrans(Encoder|Decoder)\.layers\.{i}\." for i in range(k)]
    return (r"input_process\.", r"embed_text\.", r"embed_timestep\.", *layers)


def without_kept_base(ckpt: Checkpoint) -> Checkpoint:
    """An MDM fine-tune that kept its base (``keep_base``) as its fine-tuned weights alone: the checkpoint
    the same run without ``keep_base`` writes, bit for bit. The kept copy is frozen, trains nothing, and
    the run's random draws do not depend on it (the loop reseeds after the model is built), so one run
    gives both; ``extra["weights_of"]`` names the checkpoint it came from."""
    if ckpt.kind != "mdm" or not ckpt.config.get("keep_base"):
        raise CheckpointError("not an MDM fine-tune that keeps its base (keep_base)", path=ckpt.path)

    def alone(state: dict[str, torch.Tensor] | None) -> dict[str, torch.Tensor] | None:
        return None if state is None else {k: v for k, v in state.items() if not k.startswith("base_copy.")}

    extra = {**(ckpt.extra or {}), "keep_base": False, "weights_of": str(ckpt.path) if ckpt.path else None}
    return replace(
        ckpt,
        config={**ckpt.config, "keep_base": False},
        model_state=alone(ckpt.model_state),
        ema_state=alone(ckpt.ema_state),
        extra=extra,
        path=None,
    )


def run_mdm(run: MDMRun, *, resume: bool = False, stop_after: int | None = None) -> Path:
    """Train (or fine-tune, with ``init_from``) MDM; returns the last checkpoint."""
    base: Checkpoint | None = load_checkpoint(run.init_from) if run.init_from else None
    text_spec = base.text_encoder if base else run.text_encoder
    encoder = build_text_encoder(text_spec)
    dataset: MotionDataset | ReplayDataset = MotionDataset(
        DatasetConfig(
            run.data, split="train", max_frames=run.max_frames, stats_root=run.stats_from, seed=run.train.seed
        )
    )
    if base is not None:  # keep the base model's normalisation (renormalising broke public fine-tunes)
        dataset.mean, dataset.std = base.mean.numpy(), base.std.numpy()
        if run.replay is not None:
            replay = MotionDataset(
                DatasetConfig(run.replay, split="train", max_frames=run.max_frames, seed=run.train.seed + 1)
            )
            replay.mean, replay.std = dataset.mean, dataset.std
            dataset = ReplayDataset(dataset, replay, run.replay_ratio, seed=run.train.seed)
        cfg = dataclass_from(MDMConfig, base.config)
        if run.add_emotion_conditioning and cfg.num_emotions == 0:
            cfg = replace(cfg, num_emotions=len(EMOTIONS))
        base_kept = cfg.keep_base  # a fine-tune of a fine-tune that kept its base keeps that base
        cfg = replace(cfg, keep_base=cfg.keep_base or run.keep_base)
        diffusion_cfg = dataclass_from(DiffusionConfig, (base.extra or {}).get("diffusion", {}))
    else:
        cfg = preset(
            run.preset, text_dim=encoder.dim, num_emotions=len(EMOTIONS) if run.emotion_conditioning else 0
        )
        diffusion_cfg = run.diffusion
    torch.manual_seed(run.train.seed)  # initial weights are part of the run's seed
    model = MDM(cfg)
    if base is not None:
        base_model = base.build_model(use_ema=True)
        base_state = base_model.state_dict()
        missing, _ = model.load_state_dict(base_state, strict=False)
        new = [k for k in missing if not k.startswith("base_copy.")]
        if any(not k.startswith("embed_emotion.") for k in new):
            raise ConfigError(f"base checkpoint lacks weights {new[:5]}", path=base.path)
        if new:  # a new label table starts at zero: the fine-tune starts exactly at the base model
            torch.nn.init.zeros_(model.embed_emotion.weight)
        kept = model.base_copy
        if kept is not None and not base_kept:
            kept.load_state_dict(base_state, strict=False)
            if new:
                torch.nn.init.zeros_(kept.embed_emotion.weight)
        model.base_copy = None  # the strategy applies to the fine-tuned weights only
        apply_strategy(model, run.finetune)
        model.base_copy = kept
        if new:
            model.embed_emotion.requires_grad_(True)
    diffusion = GaussianDiffusion(diffusion_cfg)
    mean = torch.as_tensor(dataset.mean, dtype=torch.float32)
    std = torch.as_tensor(dataset.std, dtype=torch.float32)
    teacher = None
    if base is not None and run.replay is not None and run.replay_target == "teacher":
        teacher = base_model.eval().requires_grad_(False)  # the model's weights are copies of it
    step = MDMTrainStep(model, diffusion, encoder, mean, std, run.geometric, run.label_lr_scale, teacher)
    extra = {
        "diffusion": asdict(diffusion_cfg),
        "train": asdict(run.train),
        "data": str(run.data),
        "init_from": str(run.init_from) if run.init_from else None,
        "geometric": asdict(run.geometric),
        "label_lr_scale": run.label_lr_scale,
        "keep_base": cfg.keep_base,
        "finetune": asdict(run.finetune) if base is not None else None,
        "replay": (
            {"data": str(run.replay), "ratio": run.replay_ratio, "target": run.replay_target}
            if run.replay
            else None
        ),
    }

    def make_checkpoint(
        done: int, state: dict[str, torch.Tensor], ema: dict[str, torch.Tensor] | None
    ) -> Checkpoint:
        return Checkpoint("mdm", config_dict(cfg), state, mean, std, text_spec, done, ema, extra)

    log.info(
        "MDM %s: %.2fM trainable parameters, %d training items",
        run.preset if base is None else f"fine-tune ({run.finetune.strategy})",
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
