"""``emomotion train`` and ``emomotion finetune``: every trainer takes ``--data --out`` and writes
``*.safetensors`` checkpoints into its run directory. Launched with ``torchrun`` or ``accelerate launch``,
the processes train together (``--batch-size`` is per process) and only process 0 prints the result."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated

import typer

from emomotion.cli import checks

train_app = typer.Typer(help="Train a model from scratch on a dataset.", no_args_is_help=True)
finetune_app = typer.Typer(help="Fine-tune a trained model on another dataset.", no_args_is_help=True)


AddEmotionConditioning = Annotated[
    bool, typer.Option("--add-emotion-conditioning", help="Give a text-only base an emotion-label table.")
]
LabelLrScale = Annotated[
    float, typer.Option("--label-lr-scale", help="The emotion-label table's learning-rate multiple.")
]
LrSchedule = Annotated[str, typer.Option("--lr-schedule", help="constant | cosine")]
LengthBuckets = Annotated[
    int,
    typer.Option(
        "--length-buckets",
        help="Batch clips of similar length: runs of N batches sorted by length (0 = plain shuffling).",
    ),
]


def _echo_result(path: Path) -> None:
    """The checkpoint a run ended with, once (from process 0 of a distributed run)."""
    if int(os.environ.get("RANK", "0")) == 0:
        typer.echo(str(path))


@train_app.command("mdm")
def train_mdm(
    data: Annotated[Path, typer.Option("--data", help="HumanML3D-layout dataset folder.")],
    out: Annotated[Path, typer.Option("--out", help="Run directory (checkpoints, metrics.csv).")],
    preset: Annotated[str, typer.Option("--preset", help="tiny | small | mdm")] = "small",
    steps: Annotated[int, typer.Option("--steps")] = 1000,
    batch_size: Annotated[int, typer.Option("--batch-size")] = 64,
    lr: Annotated[float, typer.Option("--lr")] = 1e-4,
    diffusion_steps: Annotated[
        int, typer.Option("--diffusion-steps", help="Trained diffusion steps (MDM: 1000 or 50).")
    ] = 1000,
    schedule: Annotated[str, typer.Option("--schedule", help="cosine | linear")] = "cosine",
    text_encoder: Annotated[
        str, typer.Option("--text-encoder", help="minilm | clip | distilbert")
    ] = "minilm",
    text_encoder_path: Annotated[
        Path | None, typer.Option("--text-encoder-path", help="Local folder for clip / distilbert.")
    ] = None,
    emotion_conditioning: Annotated[
        bool, typer.Option("--emotion-conditioning", help="Add an emotion-label embedding.")
    ] = False,
    bf16: Annotated[bool, typer.Option("--bf16", help="bf16 autocast (CPU or GPU).")] = False,
    save_every: Annotated[int, typer.Option("--save-every")] = 500,
    warmup: Annotated[int, typer.Option("--warmup")] = 0,
    ema: Annotated[float, typer.Option("--ema", help="EMA decay (0 = off).")] = 0.9999,
    seed: Annotated[int, typer.Option("--seed")] = 0,
    resume: Annotated[bool, typer.Option("--resume", help="Continue the run in --out.")] = False,
    length_buckets: LengthBuckets = 0,
) -> None:
    """Train MDM (x0-predicting diffusion) on a dataset."""
    checks.existing("--data", data, kind="folder")
    checks.existing("--text-encoder-path", text_encoder_path)
    checks.training(
        steps=steps,
        batch_size=batch_size,
        lr=lr,
        save_every=save_every,
        ema=ema,
        length_buckets=length_buckets,
    )
    checks.number("--diffusion-steps", diffusion_steps, low=1, high=10_000)
    checks.at_least("--warmup", warmup, 0)
    from emomotion.sampling.diffusion import DiffusionConfig
    from emomotion.text import TextEncoderSpec
    from emomotion.training.mdm import MDMRun, run_mdm

    run = MDMRun(
        data=data,
        out=out,
        preset=preset,
        diffusion=DiffusionConfig(diffusion_steps, schedule),  # type: ignore[arg-type]
        train=_train_config(
            steps,
            batch_size,
            lr,
            save_every,
            seed,
            bf16,
            ema,
            warmup_steps=warmup,
            length_buckets=length_buckets,
        ),
        text_encoder=TextEncoderSpec(text_encoder, str(text_encoder_path) if text_encoder_path else None),
        emotion_conditioning=emotion_conditioning,
    )
    _echo_result(run_mdm(run, resume=resume))


@finetune_app.command("mdm")
def finetune_mdm(
    source: Annotated[Path, typer.Option("--from", help="Base checkpoint or run directory.")],
    data: Annotated[Path, typer.Option("--data", help="Emotion dataset folder.")],
    out: Annotated[Path, typer.Option("--out", help="Run directory.")],
    strategy: Annotated[str, typer.Option("--strategy", help="full | freeze | lora")] = "full",
    lora_rank: Annotated[int, typer.Option("--lora-rank")] = 8,
    lora_alpha: Annotated[float, typer.Option("--lora-alpha")] = 16.0,
    freeze_layers: Annotated[
        int | None,
        typer.Option("--freeze-layers", help="freeze: lower transformer layers kept fixed (default half)."),
    ] = None,
    replay: Annotated[
        Path | None, typer.Option("--replay", help="Base dataset replayed against forgetting.")
    ] = None,
    replay_ratio: Annotated[
        float, typer.Option("--replay-ratio", help="Share of each batch from --replay.")
    ] = 0.25,
    replay_target: Annotated[
        str,
        typer.Option(
            "--replay-target",
            help="data: fit replayed clips themselves; teacher: fit the base model's prediction for them.",
        ),
    ] = "data",
    keep_base: Annotated[
        bool,
        typer.Option(
            "--keep-base",
            help="Keep a frozen copy of the base: samples asking for no emotion use it (no forgetting).",
        ),
    ] = False,
    add_emotion_conditioning: AddEmotionConditioning = False,
    label_lr_scale: LabelLrScale = 1.0,
    lr_schedule: LrSchedule = "constant",
    velocity_loss: Annotated[
        float, typer.Option("--velocity-loss", help="Weight of MDM's joint-velocity loss.")
    ] = 0.0,
    foot_contact_loss: Annotated[
        float, typer.Option("--foot-contact-loss", help="Weight of MDM's foot-contact loss.")
    ] = 0.0,
    position_loss: Annotated[
        float, typer.Option("--position-loss", help="Weight of MDM's joint-position loss.")
    ] = 0.0,
    steps: Annotated[int, typer.Option("--steps")] = 500,
    batch_size: Annotated[int, typer.Option("--batch-size")] = 32,
    lr: Annotated[float, typer.Option("--lr", help="Lower than pretraining by default.")] = 1e-5,
    bf16: Annotated[bool, typer.Option("--bf16")] = False,
    save_every: Annotated[int, typer.Option("--save-every")] = 250,
    ema: Annotated[float, typer.Option("--ema")] = 0.999,
    seed: Annotated[int, typer.Option("--seed")] = 0,
    resume: Annotated[bool, typer.Option("--resume")] = False,
    length_buckets: LengthBuckets = 0,
    eval_every: Annotated[
        int, typer.Option("--eval-every", help="Validate on the data's val split every N steps (0 = never).")
    ] = 0,
    patience: Annotated[
        int, typer.Option("--patience", help="Stop after N validations without a better loss (0 = never).")
    ] = 0,
) -> None:
    """Fine-tune an MDM checkpoint (full, freeze or LoRA; optional replay), keeping its normalisation
    and text encoder."""
    checks.existing("--from", source)
    checks.existing("--data", data, kind="folder")
    checks.existing("--replay", replay, kind="folder")
    checks.training(
        steps=steps,
        batch_size=batch_size,
        lr=lr,
        save_every=save_every,
        ema=ema,
        length_buckets=length_buckets,
    )
    checks.at_least("--lora-rank", lora_rank, 1)
    checks.positive("--lora-alpha", lora_alpha)
    checks.at_least("--freeze-layers", freeze_layers, 0)
    checks.fraction("--replay-ratio", replay_ratio, high_open=True)
    checks.one_of("--replay-target", replay_target, ("data", "teacher"))
    checks.at_least("--eval-every", eval_every, 0)
    checks.at_least("--patience", patience, 0)
    from emomotion.checkpoint import load_checkpoint
    from emomotion.training.finetune import FinetuneConfig
    from emomotion.training.mdm import GeometricLossWeights, MDMRun, freeze_patterns, run_mdm

    layers = int(load_checkpoint(source).config.get("num_layers", 8))
    run = MDMRun(
        data=data,
        out=out,
        init_from=source,
        finetune=FinetuneConfig(
            strategy,  # type: ignore[arg-type]
            freeze=freeze_patterns(layers, freeze_layers) if strategy == "freeze" else (),
            lora_rank=lora_rank,
            lora_alpha=lora_alpha,
        ),
        add_emotion_conditioning=add_emotion_conditioning,
        label_lr_scale=label_lr_scale,
        geometric=GeometricLossWeights(position_loss, velocity_loss, foot_contact_loss),
        replay=replay,
        replay_ratio=replay_ratio if replay is not None else 0.0,
        replay_target=replay_target,  # type: ignore[arg-type]
        keep_base=keep_base,
        train=_train_config(
            steps,
            batch_size,
            lr,
            save_every,
            seed,
            bf16,
            ema,
            eval_every=eval_every,
            patience=patience,
            lr_schedule=lr_schedule,
            length_buckets=length_buckets,
        ),
    )
    _echo_result(run_mdm(run, resume=resume))


def _train_config(
    steps: int,
    batch_size: int,
    lr: float,
    save_every: int,
    seed: int,
    bf16: bool,
    ema: float = 0.0,
    **options,
):
    """The commands' TrainConfig; ``options`` are its other fields (``lr_schedule``, ``eval_every``, ...)."""
    from emomotion.training.config import TrainConfig

    return TrainConfig(
        steps=steps,
        batch_size=batch_size,
        lr=lr,
        save_every=save_every,
        ema_decay=ema,
        seed=seed,
        mixed_precision="bf16" if bf16 else "no",
        **options,
    )


@train_app.command("vq")
def train_vq(
    data: Annotated[Path, typer.Option("--data", help="HumanML3D-layout dataset folder.")],
    out: Annotated[Path, typer.Option("--out", help="Run directory.")],
    preset: Annotated[str, typer.Option("--preset", help="tiny | small | small_traj | mmm")] = "small",
    quantizer: Annotated[
        str | None, typer.Option("--quantizer", help="ema_reset (official) | kmeans | residual | fsq")
    ] = None,
    steps: Annotated[int, typer.Option("--steps")] = 2000,
    batch_size: Annotated[int, typer.Option("--batch-size")] = 64,
    lr: Annotated[float, typer.Option("--lr")] = 2e-4,
    window: Annotated[int, typer.Option("--window", help="Training window in frames.")] = 64,
    bf16: Annotated[bool, typer.Option("--bf16")] = False,
    save_every: Annotated[int, typer.Option("--save-every")] = 500,
    seed: Annotated[int, typer.Option("--seed")] = 0,
    resume: Annotated[bool, typer.Option("--resume")] = False,
    position_weight: Annotated[
        float | None,
        typer.Option("--position-weight", help="L1 (m) on global joint positions (default: the preset's)."),
    ] = None,
    root_weight: Annotated[
        float | None, typer.Option("--root-weight", help="Extra SmoothL1 on the root features.")
    ] = None,
    lr_schedule: LrSchedule = "constant",
) -> None:
    """Train the motion VQ-VAE (MMM / T2M-GPT architecture)."""
    checks.existing("--data", data, kind="folder")
    checks.training(steps=steps, batch_size=batch_size, lr=lr, save_every=save_every)
    checks.at_least("--window", window, 4)
    from emomotion.training.vq import VQRun, run_vq

    checks.number("--position-weight", position_weight, low=0, high=1e6)
    checks.number("--root-weight", root_weight, low=0, high=1e6)
    train = _train_config(steps, batch_size, lr, save_every, seed, bf16, lr_schedule=lr_schedule)
    weights = {"position_weight": position_weight, "root_weight": root_weight}
    vq = {k: v for k, v in weights.items() if v is not None}
    run = VQRun(data=data, out=out, preset=preset, quantizer=quantizer, train=train, window=window, vq=vq)
    _echo_result(run_vq(run, resume=resume))


@train_app.command("mmm")
def train_mmm(
    data: Annotated[Path, typer.Option("--data", help="HumanML3D-layout dataset folder.")],
    vq: Annotated[Path, typer.Option("--vq", help="Trained VQ-VAE checkpoint or run directory.")],
    out: Annotated[Path, typer.Option("--out", help="Run directory.")],
    preset: Annotated[str, typer.Option("--preset", help="tiny | small | mmm")] = "small",
    steps: Annotated[int, typer.Option("--steps")] = 2000,
    batch_size: Annotated[int, typer.Option("--batch-size")] = 32,
    lr: Annotated[float, typer.Option("--lr")] = 2e-4,
    text_encoder: Annotated[
        str, typer.Option("--text-encoder", help="minilm | clip | distilbert")
    ] = "minilm",
    text_encoder_path: Annotated[Path | None, typer.Option("--text-encoder-path")] = None,
    emotion_conditioning: Annotated[
        bool, typer.Option("--emotion-conditioning", help="Add an emotion-label embedding.")
    ] = False,
    bf16: Annotated[bool, typer.Option("--bf16")] = False,
    save_every: Annotated[int, typer.Option("--save-every")] = 500,
    ema: Annotated[float, typer.Option("--ema")] = 0.0,
    seed: Annotated[int, typer.Option("--seed")] = 0,
    resume: Annotated[bool, typer.Option("--resume")] = False,
    length_buckets: LengthBuckets = 0,
) -> None:
    """Train the masked motion transformer over a trained VQ-VAE's tokens."""
    checks.existing("--data", data, kind="folder")
    checks.existing("--vq", vq)
    checks.existing("--text-encoder-path", text_encoder_path)
    checks.training(
        steps=steps,
        batch_size=batch_size,
        lr=lr,
        save_every=save_every,
        ema=ema,
        length_buckets=length_buckets,
    )
    from emomotion.text import TextEncoderSpec
    from emomotion.training.mmm import MMMRun, run_mmm

    run = MMMRun(
        data=data,
        out=out,
        vq=vq,
        preset=preset,
        train=_train_config(
            steps, batch_size, lr, save_every, seed, bf16, ema, length_buckets=length_buckets
        ),
        text_encoder=TextEncoderSpec(text_encoder, str(text_encoder_path) if text_encoder_path else None),
        emotion_conditioning=emotion_conditioning,
    )
    _echo_result(run_mmm(run, resume=resume))


@finetune_app.command("mmm")
def finetune_mmm(
    source: Annotated[Path, typer.Option("--from", help="Base MMM checkpoint or run directory.")],
    data: Annotated[Path, typer.Option("--data", help="Emotion dataset folder.")],
    out: Annotated[Path, typer.Option("--out", help="Run directory.")],
    strategy: Annotated[str, typer.Option("--strategy", help="full | lora (the VQ stays frozen)")] = "full",
    lora_rank: Annotated[int, typer.Option("--lora-rank")] = 8,
    replay: Annotated[
        Path | None, typer.Option("--replay", help="Base dataset replayed against forgetting.")
    ] = None,
    replay_ratio: Annotated[float, typer.Option("--replay-ratio")] = 0.25,
    add_emotion_conditioning: AddEmotionConditioning = False,
    label_lr_scale: LabelLrScale = 1.0,
    steps: Annotated[int, typer.Option("--steps")] = 500,
    batch_size: Annotated[int, typer.Option("--batch-size")] = 32,
    lr: Annotated[float, typer.Option("--lr", help="Lower than pretraining by default.")] = 2e-5,
    bf16: Annotated[bool, typer.Option("--bf16")] = False,
    save_every: Annotated[int, typer.Option("--save-every")] = 250,
    seed: Annotated[int, typer.Option("--seed")] = 0,
    resume: Annotated[bool, typer.Option("--resume")] = False,
    length_buckets: LengthBuckets = 0,
    eval_every: Annotated[
        int, typer.Option("--eval-every", help="Validate on the data's val split every N steps (0 = never).")
    ] = 0,
    patience: Annotated[
        int, typer.Option("--patience", help="Stop after N validations without a better loss (0 = never).")
    ] = 0,
) -> None:
    """Fine-tune an MMM checkpoint's transformer (VQ frozen, base statistics kept)."""
    checks.existing("--from", source)
    checks.existing("--data", data, kind="folder")
    checks.existing("--replay", replay, kind="folder")
    checks.training(
        steps=steps, batch_size=batch_size, lr=lr, save_every=save_every, length_buckets=length_buckets
    )
    checks.at_least("--lora-rank", lora_rank, 1)
    checks.fraction("--replay-ratio", replay_ratio, high_open=True)
    checks.at_least("--eval-every", eval_every, 0)
    checks.at_least("--patience", patience, 0)
    from dataclasses import replace

    from emomotion.training.finetune import FinetuneConfig
    from emomotion.training.mmm import MMMRun, run_mmm

    run = MMMRun(
        data=data,
        out=out,
        init_from=source,
        finetune=FinetuneConfig(strategy, lora_rank=lora_rank),  # type: ignore[arg-type]
        replay=replay,
        replay_ratio=replay_ratio if replay is not None else 0.0,
        add_emotion_conditioning=add_emotion_conditioning,
        label_lr_scale=label_lr_scale,
        train=replace(
            _train_config(steps, batch_size, lr, save_every, seed, bf16, length_buckets=length_buckets),
            eval_every=eval_every,
            patience=patience,
        ),
    )
    _echo_result(run_mmm(run, resume=resume))


@train_app.command("evaluator")
def train_evaluator(
    data: Annotated[Path, typer.Option("--data", help="HumanML3D-layout dataset folder.")],
    out: Annotated[Path, typer.Option("--out", help="Run directory.")],
    preset: Annotated[str, typer.Option("--preset", help="tiny | small | t2m")] = "small",
    steps: Annotated[int, typer.Option("--steps")] = 2000,
    batch_size: Annotated[int, typer.Option("--batch-size")] = 32,
    lr: Annotated[float, typer.Option("--lr")] = 1e-4,
    save_every: Annotated[int, typer.Option("--save-every")] = 500,
    seed: Annotated[int, typer.Option("--seed")] = 0,
    resume: Annotated[bool, typer.Option("--resume")] = False,
) -> None:
    """Train the text-motion evaluator (Guo et al. design, contrastive) with its own statistics."""
    checks.existing("--data", data, kind="folder")
    checks.training(steps=steps, batch_size=batch_size, lr=lr, save_every=save_every)
    from emomotion.training.config import TrainConfig
    from emomotion.training.evaluator import EvaluatorRun, run_evaluator

    train = TrainConfig(
        steps=steps, batch_size=batch_size, lr=lr, save_every=save_every, ema_decay=0.0, seed=seed
    )
    _echo_result(run_evaluator(EvaluatorRun(data=data, out=out, preset=preset, train=train), resume=resume))


@train_app.command("emotion-classifier")
def train_emotion_classifier(
    data: Annotated[Path, typer.Option("--data", help="Emotion-labelled dataset folder.")],
    out: Annotated[Path, typer.Option("--out", help="Run directory.")],
    preset: Annotated[str, typer.Option("--preset", help="tiny | small | base")] = "small",
    steps: Annotated[int, typer.Option("--steps")] = 1000,
    batch_size: Annotated[int, typer.Option("--batch-size")] = 32,
    lr: Annotated[float, typer.Option("--lr")] = 3e-4,
    save_every: Annotated[int, typer.Option("--save-every")] = 500,
    seed: Annotated[int, typer.Option("--seed")] = 0,
    resume: Annotated[bool, typer.Option("--resume")] = False,
) -> None:
    """Train the motion emotion classifier used to score generated motion."""
    checks.existing("--data", data, kind="folder")
    checks.training(steps=steps, batch_size=batch_size, lr=lr, save_every=save_every)
    from emomotion.training.config import TrainConfig
    from emomotion.training.emotion_classifier import EmotionClassifierRun, run_emotion_classifier

    train = TrainConfig(
        steps=steps, batch_size=batch_size, lr=lr, save_every=save_every, ema_decay=0.0, seed=seed
    )
    run = EmotionClassifierRun(data=data, out=out, preset=preset, train=train)
    _echo_result(run_emotion_classifier(run, resume=resume))
