"""The study's stages: build the datasets, pretrain and fine-tune each model family, train the
evaluator and the emotion classifier, evaluate, report. Each stage is a function of the study
context returning a JSON-able summary; the list is built from the config by :func:`study_stages`."""

from __future__ import annotations

import json
import logging
from dataclasses import asdict, fields, is_dataclass, replace
from pathlib import Path
from typing import Any

from emomotion.errors import ConfigError
from emomotion.io.archive import is_archive, unpack
from emomotion.study.config import DataSpec, FinetuneVariant, StudyConfig
from emomotion.study.runner import Stage, StudyContext

log = logging.getLogger(__name__)


# Data ---------------------------------------------------------------------------------------------


def _source_input(ctx: StudyContext, name: str, spec: DataSpec) -> Path | None:
    if spec.input is None:
        return None
    path = Path(spec.input).expanduser()
    if not path.exists():
        raise ConfigError(f"the {name} dataset's input does not exist", path=path)
    if is_archive(path):
        path = unpack(path, ctx.out / "raw" / name)
    if spec.archive_subdir:
        path = path / spec.archive_subdir
    return path


def fingerprint_dict(value: Any) -> dict[str, Any]:
    """A config dataclass as a dict, less the late-added fields still at their default
    (:data:`~emomotion.study.config.FINGERPRINT_IF_SET`)."""
    out = asdict(value)
    for f in fields(value):
        if f.metadata.get("fingerprint") == "if_set" and getattr(value, f.name) == f.default:
            del out[f.name]
    return out


def _inputs(**parts: Any) -> dict[str, Any]:
    """A stage's fingerprint inputs: named config parts (dataclasses become dicts)."""
    return {k: fingerprint_dict(v) if is_dataclass(v) else v for k, v in parts.items()}


def build_stage(cfg: StudyConfig, name: str) -> Stage:
    def run(ctx: StudyContext) -> dict[str, Any]:
        from emomotion.data.build import BuildConfig, build_dataset
        from emomotion.data.splits import SplitConfig

        spec: DataSpec = getattr(ctx.cfg, name)
        summary = build_dataset(
            BuildConfig(
                source=spec.source,
                out=ctx.data / name,
                input=_source_input(ctx, name, spec),
                mirror=spec.mirror,
                seed=ctx.cfg.seed,
                workers=ctx.cfg.workers,
                split=SplitConfig(ratios=spec.ratios, seed=ctx.cfg.seed),
                emotions_only=spec.emotions_only,
                overwrite=True,
                options=dict(spec.options),
            )
        )
        return {
            "path": str(ctx.data / name),
            "clips": summary.clips,
            "mirrored": summary.mirrored,
            "skipped": len(summary.skipped),
            "hours": round(summary.hours, 3),
            "splits": summary.split_counts,
        }

    return Stage(
        f"data_{name}", run, f"build the {name} dataset", _inputs(spec=getattr(cfg, name), seed=cfg.seed)
    )


# MDM ----------------------------------------------------------------------------------------------


def _variant_train(cfg: StudyConfig, variant: FinetuneVariant, seed: int):
    """A fine-tuning variant's training settings, with its validation and early stopping."""
    train = _train_config(cfg, variant.steps, variant.batch_size, variant.lr, seed)
    return replace(
        train, eval_every=variant.eval_every, patience=variant.patience, lr_schedule=variant.lr_schedule
    )


def early_stop_record(run_dir: Path) -> dict[str, Any] | None:
    """A run's ``early_stop.json`` (where it stopped and its best step), or None if it ran to the end."""
    from emomotion.training.validation import EARLY_STOP_FILE

    path = run_dir / EARLY_STOP_FILE
    return json.loads(path.read_text(encoding="utf-8")) if path.exists() else None


def _train_config(
    cfg: StudyConfig,
    steps: int,
    batch: int,
    lr: float,
    seed: int,
    warmup: int = 0,
    *,
    ema: bool = True,
    bf16: bool | None = None,
):
    """The study's training settings; ``ema=False`` for runs that keep no EMA weights, ``bf16`` overrides
    the study's autocast (the evaluator and classifier train in float32)."""
    from emomotion.training.config import TrainConfig

    n = cfg.steps(steps)
    # an EMA window longer than the run would lag it
    decay = (0.995 if n < 20_000 else 0.9999) if ema else 0.0
    return TrainConfig(
        steps=n,
        batch_size=batch,
        lr=lr,
        warmup_steps=min(warmup, n // 4),
        save_every=max(1, min(250, n)),
        ema_decay=decay,
        seed=seed,
        mixed_precision="bf16" if (cfg.bf16 if bf16 is None else bf16) else "no",
    )


def _training_inputs(cfg: StudyConfig) -> dict[str, Any]:
    return _inputs(
        base=cfg.base,
        seed=cfg.seed,
        bf16=cfg.bf16,
        max_frames=cfg.max_frames,
        scale=cfg.scale,
        full=cfg.full_size,
    )


def _mdm_base_inputs(cfg: StudyConfig, diffusion_steps: int) -> dict[str, Any]:
    mdm = {
        k: v
        for k, v in asdict(cfg.mdm).items()
        if k not in ("finetune", "diffusion_steps")
        and not (k == "length_buckets" and v == 0)  # added later: studies run without it stay valid
    }
    return {**_training_inputs(cfg), "mdm": mdm, "diffusion_steps": diffusion_steps}


def mdm_base_stage(cfg: StudyConfig, diffusion_steps: int) -> Stage:
    def run(ctx: StudyContext) -> dict[str, Any]:
        from emomotion.sampling.diffusion import DiffusionConfig
        from emomotion.training.mdm import MDMRun, run_mdm

        m = ctx.cfg.mdm
        out = ctx.runs / f"mdm_base_{diffusion_steps}"
        ckpt = run_mdm(
            MDMRun(
                data=ctx.data / "base",
                out=out,
                preset=m.full_preset if ctx.cfg.full_size else m.preset,
                diffusion=DiffusionConfig(diffusion_steps),
                train=replace(
                    _train_config(ctx.cfg, m.steps, m.batch_size, m.lr, ctx.cfg.seed, m.warmup),
                    length_buckets=m.length_buckets,
                ),
                max_frames=ctx.cfg.max_frames,
            ),
            resume=True,
        )
        return {"checkpoint": str(ckpt), "family": "mdm", "diffusion_steps": diffusion_steps}

    return Stage(
        f"mdm_base_{diffusion_steps}",
        run,
        f"pretrain MDM ({diffusion_steps} diffusion steps) on the base corpus",
        _mdm_base_inputs(cfg, diffusion_steps),
    )


def mdm_finetune_stage(cfg: StudyConfig, variant: FinetuneVariant, diffusion_steps: int, seed: int) -> Stage:
    name = f"mdm_{variant.name}_{diffusion_steps}_s{seed}"
    if variant.weights_of:
        return _weights_alone_stage(cfg, variant, diffusion_steps, seed)

    def run(ctx: StudyContext) -> dict[str, Any]:
        from emomotion.checkpoint import load_checkpoint
        from emomotion.training.finetune import FinetuneConfig
        from emomotion.training.mdm import GeometricLossWeights, MDMRun, freeze_patterns, run_mdm

        base = Path(ctx.result(f"mdm_base_{diffusion_steps}")["checkpoint"])
        layers = int(load_checkpoint(base).config["num_layers"])
        ckpt = run_mdm(
            MDMRun(
                data=ctx.data / "emotion",
                out=ctx.runs / name,
                init_from=base,
                finetune=FinetuneConfig(
                    variant.strategy,  # type: ignore[arg-type]
                    freeze=freeze_patterns(layers) if variant.strategy == "freeze" else (),
                    lora_rank=variant.lora_rank,
                ),
                add_emotion_conditioning=variant.add_emotion_conditioning,
                label_lr_scale=variant.label_lr_scale,
                geometric=GeometricLossWeights(
                    variant.position_loss, variant.velocity_loss, variant.foot_contact_loss
                ),
                replay=ctx.data / "base" if variant.replay_ratio > 0 else None,
                replay_ratio=variant.replay_ratio,
                replay_target=variant.replay_target,  # type: ignore[arg-type]
                keep_base=variant.keep_base,
                train=replace(
                    _variant_train(ctx.cfg, variant, seed), length_buckets=ctx.cfg.mdm.length_buckets
                ),
                max_frames=ctx.cfg.max_frames,
            ),
            resume=True,
        )
        return {
            "checkpoint": str(ckpt),
            "family": "mdm",
            "variant": variant.name,
            "diffusion_steps": diffusion_steps,
            "seed": seed,
            "early_stop": early_stop_record(ckpt.parent),
        }

    inputs = {
        **_mdm_base_inputs(cfg, diffusion_steps),
        **_inputs(emotion=cfg.emotion, variant=variant),
        "ft_seed": seed,
    }
    return Stage(
        name, run, f"fine-tune MDM-{diffusion_steps} on the emotion set ({variant.name}, seed {seed})", inputs
    )


def _weights_alone_stage(
    cfg: StudyConfig, variant: FinetuneVariant, diffusion_steps: int, seed: int
) -> Stage:
    """``variant.weights_of``'s run (a fine-tune that kept its base) as its fine-tuned weights alone: no
    training, the checkpoint that run without ``keep_base`` would write."""
    name = f"mdm_{variant.name}_{diffusion_steps}_s{seed}"
    source = next(v for v in cfg.mdm.finetune if v.name == variant.weights_of)
    trained = mdm_finetune_stage(cfg, source, diffusion_steps, seed)

    def run(ctx: StudyContext) -> dict[str, Any]:
        from emomotion.checkpoint import checkpoint_name, load_checkpoint, save_checkpoint
        from emomotion.training.mdm import without_kept_base

        result = ctx.result(trained.name)
        kept = load_checkpoint(result["checkpoint"])
        (ctx.runs / name).mkdir(parents=True, exist_ok=True)
        ckpt = save_checkpoint(ctx.runs / name / checkpoint_name(kept.step), without_kept_base(kept))
        return {**result, "checkpoint": str(ckpt), "variant": variant.name, "weights_of": trained.name}

    inputs = {"weights_of": trained.inputs, "variant": variant.name}
    return Stage(
        name, run, f"the {source.name} fine-tune's weights without its kept base (seed {seed})", inputs
    )
