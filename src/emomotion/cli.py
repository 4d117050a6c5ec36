"""The ``emomotion`` command line: parse arguments, build a config, call one library function.

A typed :class:`~emomotion.errors.EmomotionError` prints one line naming the file and the reason and
exits with code 2; ``--debug`` (anywhere on the line) shows the traceback instead.
"""

from __future__ import annotations

import logging
import sys
from pathlib import Path
from typing import Annotated

import typer

from emomotion.errors import EmomotionError

app = typer.Typer(
    name="emomotion",
    help="Emotionally expressive text-to-motion: datasets from mocap, MDM/MMM fine-tuning, evaluation.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
log = logging.getLogger("emomotion")


@app.command()
def convert(
    source: Annotated[Path, typer.Argument(help="A .bvh, joints .npy (T,22,3) or features .npy (T,263).")],
    to: Annotated[str, typer.Option("--to", help="joints | features | bvh | gif | mp4")],
    out: Annotated[
        Path | None, typer.Option("--out", help="Output file (default: beside the input).")
    ] = None,
    joint_map: Annotated[
        str | None, typer.Option("--joint-map", help="Registered map name or a .toml file (BVH input).")
    ] = None,
    fps: Annotated[float | None, typer.Option("--fps", help="Frame rate of a joints .npy input.")] = None,
) -> None:
    """Convert a motion between BVH, joints, features, and gif/mp4 animations."""
    from emomotion.convert import convert as run

    written = run(source, to, out, joint_map=joint_map, fps=fps)
    typer.echo(str(written))


@app.command("joint-maps")
def joint_maps() -> None:
    """List the registered joint maps (source rig -> SMPL-22)."""
    from emomotion.joint_maps import get_joint_map, joint_map_names

    for name in joint_map_names():
        jm = get_joint_map(name)
        typer.echo(f"{name:10s} {jm.description}")


data_app = typer.Typer(help="Build, merge and inspect HumanML3D-layout datasets.", no_args_is_help=True)
app.add_typer(data_app, name="data")


@data_app.command("build")
def data_build(
    source: Annotated[
        str, typer.Argument(help="emilya | bandai | bvh | synthetic (see `emomotion data sources`)")
    ],
    out: Annotated[Path, typer.Option("--out", help="Output folder (HumanML3D layout).")],
    input: Annotated[Path | None, typer.Option("--input", help="The source's folder.")] = None,
    mirror: Annotated[
        bool, typer.Option("--mirror", help="Also write left/right mirrored clips (M + id).")
    ] = False,
    seed: Annotated[int, typer.Option("--seed")] = 0,
    joint_map: Annotated[
        str | None, typer.Option("--joint-map", help="Joint map name or .toml file.")
    ] = None,
    labels: Annotated[Path | None, typer.Option("--labels", help="Labels CSV (bvh source).")] = None,
    workers: Annotated[int, typer.Option("--workers", help="Worker processes.")] = 1,
    ratios: Annotated[str, typer.Option("--ratios", help="train,val,test shares.")] = "0.8,0.1,0.1",
    split_by: Annotated[str, typer.Option("--split-by", help="auto | actor | group | stratified")] = "auto",
    captions: Annotated[int, typer.Option("--captions", help="Generated captions per clip.")] = 3,
    clips_per_pair: Annotated[
        int, typer.Option("--clips-per-pair", help="synthetic: clips per action x emotion.")
    ] = 1,
    overwrite: Annotated[
        bool, typer.Option("--overwrite", help="Rebuild an existing output folder.")
    ] = False,
    emotions_only: Annotated[
        bool,
        typer.Option(
            "--emotions-only", help="Keep only clips with an emotion label (others listed as skipped)."
        ),
    ] = False,
) -> None:
    """Build a dataset (features, joints, captions, splits, Mean/Std, manifest) from a source."""
    from emomotion.data.build import BuildConfig, build_dataset
    from emomotion.data.splits import SplitConfig
    from emomotion.errors import ConfigError

    try:
        shares = tuple(float(x) for x in ratios.split(","))
    except ValueError as exc:
        raise ConfigError(f"--ratios must be three numbers like 0.8,0.1,0.1, got {ratios!r}") from exc
    if len(shares) != 3:
        raise ConfigError(f"--ratios needs three numbers, got {ratios!r}")
    cfg = BuildConfig(
        source=source,
        out=out,
        input=input,
        mirror=mirror,
        seed=seed,
        joint_map=joint_map,
        labels=labels,
        workers=workers,
        split=SplitConfig(ratios=shares, strategy=split_by, seed=seed),  # type: ignore[arg-type]
        captions_per_clip=captions,
        overwrite=overwrite,
        emotions_only=emotions_only,
        options={"clips_per_pair": clips_per_pair} if source == "synthetic" else {},
    )
    typer.echo(build_dataset(cfg).describe())


@data_app.command("merge")
def data_merge(
    inputs: Annotated[list[Path], typer.Argument(help="Two or more HumanML3D-layout folders.")],
    out: Annotated[Path, typer.Option("--out", help="Output folder.")],
    stats_from: Annotated[
        Path | None,
        typer.Option("--stats-from", help="Keep this dataset's Mean/Std (e.g. the pretraining set)."),
    ] = None,
    prefix: Annotated[
        list[str] | None,
        typer.Option("--prefix", help="Id prefix per input, in order (default: folder names)."),
    ] = None,
    overwrite: Annotated[bool, typer.Option("--overwrite")] = False,
) -> None:
    """Merge datasets: per-source id prefixes, splits kept, manifests merged."""
    from emomotion.data.merge import merge_datasets

    summary = merge_datasets(inputs, out, prefixes=prefix or None, stats_from=stats_from, overwrite=overwrite)
    typer.echo(summary.describe())


@data_app.command("inspect")
def data_inspect(
    root: Annotated[Path, typer.Argument(help="A HumanML3D-layout folder.")],
    png: Annotated[
        Path | None, typer.Option("--png", help="Summary picture (default: ROOT/inspect.png).")
    ] = None,
) -> None:
    """Counts per emotion x action x split, lengths, and every problem found; a PNG summary."""
    from emomotion.data.inspect import inspect_dataset

    report = inspect_dataset(root, png=png or root / "inspect.png")
    typer.echo(report.describe())
    typer.echo(f"summary picture: {png or root / 'inspect.png'}")


@data_app.command("sources")
def data_sources() -> None:
    """List the registered dataset sources."""
    from emomotion.data.sources import get_source, source_names

    for name in source_names():
        typer.echo(f"{name:10s} {get_source(name).description}")


train_app = typer.Typer(help="Train a model from scratch on a dataset.", no_args_is_help=True)
finetune_app = typer.Typer(help="Fine-tune a trained model on another dataset.", no_args_is_help=True)
app.add_typer(train_app, name="train")
app.add_typer(finetune_app, name="finetune")


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
) -> None:
    """Train MDM (x0-predicting diffusion) on a dataset."""
    from emomotion.sampling.diffusion import DiffusionConfig
    from emomotion.text import TextEncoderSpec
    from emomotion.training.loop import TrainConfig
    from emomotion.training.mdm import MDMRun, run_mdm

    run = MDMRun(
        data=data,
        out=out,
        preset=preset,
        diffusion=DiffusionConfig(diffusion_steps, schedule),  # type: ignore[arg-type]
        train=TrainConfig(
            steps=steps,
            batch_size=batch_size,
            lr=lr,
            save_every=save_every,
            warmup_steps=warmup,
            ema_decay=ema,
            seed=seed,
            mixed_precision="bf16" if bf16 else "no",
        ),
        text_encoder=TextEncoderSpec(text_encoder, str(text_encoder_path) if text_encoder_path else None),
        emotion_conditioning=emotion_conditioning,
    )
    typer.echo(str(run_mdm(run, resume=resume)))


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
    add_emotion_conditioning: Annotated[
        bool,
        typer.Option("--add-emotion-conditioning", help="Give a text-only base an emotion-label table."),
    ] = False,
    steps: Annotated[int, typer.Option("--steps")] = 500,
    batch_size: Annotated[int, typer.Option("--batch-size")] = 32,
    lr: Annotated[float, typer.Option("--lr", help="Lower than pretraining by default.")] = 1e-5,
    bf16: Annotated[bool, typer.Option("--bf16")] = False,
    save_every: Annotated[int, typer.Option("--save-every")] = 250,
    ema: Annotated[float, typer.Option("--ema")] = 0.999,
    seed: Annotated[int, typer.Option("--seed")] = 0,
    resume: Annotated[bool, typer.Option("--resume")] = False,
    eval_every: Annotated[
        int, typer.Option("--eval-every", help="Validate on the data's val split every N steps (0 = never).")
    ] = 0,
    patience: Annotated[
        int, typer.Option("--patience", help="Stop after N validations without a better loss (0 = never).")
    ] = 0,
) -> None:
    """Fine-tune an MDM checkpoint (full, freeze or LoRA; optional replay), keeping its normalisation
    and text encoder."""
    from emomotion.checkpoint import load_checkpoint
    from emomotion.training.finetune import FinetuneConfig
    from emomotion.training.loop import TrainConfig
    from emomotion.training.mdm import MDMRun, freeze_patterns, run_mdm

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
        replay=replay,
        replay_ratio=replay_ratio if replay is not None else 0.0,
        train=TrainConfig(
            steps=steps,
            batch_size=batch_size,
            lr=lr,
            save_every=save_every,
            ema_decay=ema,
            seed=seed,
            mixed_precision="bf16" if bf16 else "no",
            eval_every=eval_every,
            patience=patience,
        ),
    )
    typer.echo(str(run_mdm(run, resume=resume)))


def _train_config(
    steps: int, batch_size: int, lr: float, save_every: int, seed: int, bf16: bool, ema: float = 0.0
):
    from emomotion.training.loop import TrainConfig

    return TrainConfig(
        steps=steps,
        batch_size=batch_size,
        lr=lr,
        save_every=save_every,
        ema_decay=ema,
        seed=seed,
        mixed_precision="bf16" if bf16 else "no",
    )


@train_app.command("vq")
def train_vq(
    data: Annotated[Path, typer.Option("--data", help="HumanML3D-layout dataset folder.")],
    out: Annotated[Path, typer.Option("--out", help="Run directory.")],
    preset: Annotated[str, typer.Option("--preset", help="tiny | small | mmm")] = "small",
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
) -> None:
    """Train the motion VQ-VAE (MMM / T2M-GPT architecture)."""
    from emomotion.training.vq import VQRun, run_vq

    train = _train_config(steps, batch_size, lr, save_every, seed, bf16)
    run = VQRun(data=data, out=out, preset=preset, quantizer=quantizer, train=train, window=window)
    typer.echo(str(run_vq(run, resume=resume)))


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
    bf16: Annotated[bool, typer.Option("--bf16")] = False,
    save_every: Annotated[int, typer.Option("--save-every")] = 500,
    ema: Annotated[float, typer.Option("--ema")] = 0.0,
    seed: Annotated[int, typer.Option("--seed")] = 0,
    resume: Annotated[bool, typer.Option("--resume")] = False,
) -> None:
    """Train the masked motion transformer over a trained VQ-VAE's tokens."""
    from emomotion.text import TextEncoderSpec
    from emomotion.training.mmm import MMMRun, run_mmm

    run = MMMRun(
        data=data,
        out=out,
        vq=vq,
        preset=preset,
        train=_train_config(steps, batch_size, lr, save_every, seed, bf16, ema),
        text_encoder=TextEncoderSpec(text_encoder, str(text_encoder_path) if text_encoder_path else None),
    )
    typer.echo(str(run_mmm(run, resume=resume)))


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
    steps: Annotated[int, typer.Option("--steps")] = 500,
    batch_size: Annotated[int, typer.Option("--batch-size")] = 32,
    lr: Annotated[float, typer.Option("--lr", help="Lower than pretraining by default.")] = 2e-5,
    bf16: Annotated[bool, typer.Option("--bf16")] = False,
    save_every: Annotated[int, typer.Option("--save-every")] = 250,
    seed: Annotated[int, typer.Option("--seed")] = 0,
    resume: Annotated[bool, typer.Option("--resume")] = False,
    eval_every: Annotated[
        int, typer.Option("--eval-every", help="Validate on the data's val split every N steps (0 = never).")
    ] = 0,
    patience: Annotated[
        int, typer.Option("--patience", help="Stop after N validations without a better loss (0 = never).")
    ] = 0,
) -> None:
    """Fine-tune an MMM checkpoint's transformer (VQ frozen, base statistics kept)."""
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
        train=replace(
            _train_config(steps, batch_size, lr, save_every, seed, bf16),
            eval_every=eval_every,
            patience=patience,
        ),
    )
    typer.echo(str(run_mmm(run, resume=resume)))


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
    from emomotion.training.evaluator import EvaluatorRun, run_evaluator
    from emomotion.training.loop import TrainConfig

    train = TrainConfig(
        steps=steps, batch_size=batch_size, lr=lr, save_every=save_every, ema_decay=0.0, seed=seed
    )
    typer.echo(
        str(run_evaluator(EvaluatorRun(data=data, out=out, preset=preset, train=train), resume=resume))
    )


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
    from emomotion.training.emotion_classifier import EmotionClassifierRun, run_emotion_classifier
    from emomotion.training.loop import TrainConfig

    train = TrainConfig(
        steps=steps, batch_size=batch_size, lr=lr, save_every=save_every, ema_decay=0.0, seed=seed
    )
    run = EmotionClassifierRun(data=data, out=out, preset=preset, train=train)
    typer.echo(str(run_emotion_classifier(run, resume=resume)))


@app.command("eval")
def eval_cmd(
    model: Annotated[list[Path], typer.Option("--model", help="Checkpoint or run directory (repeatable).")],
    data: Annotated[Path, typer.Option("--data", help="Dataset folder (its test split is used).")],
    evaluator: Annotated[Path, typer.Option("--evaluator", help="Evaluator checkpoint.")],
    out: Annotated[Path, typer.Option("--out", help="Report folder.")],
    emotion_classifier: Annotated[
        Path | None, typer.Option("--emotion-classifier", help="Emotion classifier checkpoint.")
    ] = None,
    setting: Annotated[
        list[str] | None,
        typer.Option(
            "--setting", help="sampler:steps for MDM (ddim:50) or mmm:steps:temperature; repeatable."
        ),
    ] = None,
    reps: Annotated[int, typer.Option("--reps")] = 3,
    split: Annotated[str, typer.Option("--split")] = "test",
    mm_texts: Annotated[int, typer.Option("--mm-texts", help="Texts for MultiModality (0 = off).")] = 100,
    seed: Annotated[int, typer.Option("--seed")] = 0,
) -> None:
    """Evaluate models side by side: report.md, metrics.json/csv, plots and a grid in --out."""
    from emomotion.checkpoint import load_checkpoint
    from emomotion.evaluation.compare import Entry, compare, parse_setting

    entries = []
    for path in model:
        kind = load_checkpoint(path).kind
        wanted = [parse_setting(s) for s in setting or []]
        mine = [
            s
            for s, text in zip(wanted, setting or [], strict=True)
            if text.startswith("mmm") == (kind == "mmm")
        ]
        for s in mine or [parse_setting("mmm" if kind == "mmm" else "ddpm")]:
            entries.append(Entry(f"{path.name} {s.label(kind)}", path, s))
    compare(
        entries, data, evaluator, out, emotion_classifier=emotion_classifier, split=split, reps=reps, seed=seed,
        mm_texts=mm_texts,
    )  # fmt: skip
    typer.echo(f"report: {out / 'report.md'}")


@app.command()
def generate(
    model: Annotated[Path, typer.Option("--model", help="Checkpoint or run directory.")],
    out: Annotated[Path, typer.Option("--out", help="Output folder.")],
    text: Annotated[list[str] | None, typer.Option("--text", help="A prompt (repeatable).")] = None,
    prompts: Annotated[
        Path | None, typer.Option("--prompts", help="A file with one prompt per line.")
    ] = None,
    length: Annotated[float, typer.Option("--length", help="Seconds.")] = 6.0,
    num: Annotated[int, typer.Option("--num", help="Samples per prompt.")] = 1,
    sampler: Annotated[str, typer.Option("--sampler", help="ddpm | ddim | dpmpp")] = "ddpm",
    steps: Annotated[
        int | None, typer.Option("--steps", help="Sampling steps (default: as trained).")
    ] = None,
    guidance: Annotated[float, typer.Option("--guidance")] = 2.5,
    emotion: Annotated[
        str | None, typer.Option("--emotion", help="Emotion label (models with emotion conditioning).")
    ] = None,
    emotion_scale: Annotated[float | None, typer.Option("--emotion-scale")] = None,
    intensity: Annotated[float, typer.Option("--intensity")] = 1.0,
    seed: Annotated[int, typer.Option("--seed")] = 0,
    temperature: Annotated[
        float, typer.Option("--temperature", help="MMM: sampling temperature (0 = greedy).")
    ] = 1.0,
    top_k: Annotated[
        int | None, typer.Option("--top-k", help="MMM: sample among the k likeliest codes.")
    ] = None,
    formats: Annotated[str, typer.Option("--format", help="Comma list of npy,bvh,gif,mp4.")] = "npy,bvh,gif",
    inbetween: Annotated[
        Path | None,
        typer.Option(
            "--inbetween", help="MMM: a features .npy whose first/last frames are kept (length = its own)."
        ),
    ] = None,
    keep_first: Annotated[
        int, typer.Option("--keep-first", help="MMM in-betweening: frames kept at the start.")
    ] = 0,
    keep_last: Annotated[
        int, typer.Option("--keep-last", help="MMM in-betweening: frames kept at the end.")
    ] = 0,
) -> None:
    """Generate motion from text: features/joints .npy, .bvh, and animations."""
    from emomotion.errors import ConfigError
    from emomotion.generate import GenerateRequest, MotionGenerator, generate_to

    texts = list(text or [])
    if prompts is not None:
        try:
            texts += [
                line.strip() for line in prompts.read_text(encoding="utf-8").splitlines() if line.strip()
            ]
        except (OSError, UnicodeDecodeError) as exc:
            raise ConfigError(f"cannot read prompts: {exc}", path=prompts) from exc
    request = GenerateRequest(
        texts=tuple(texts),
        seconds=length,
        num=num,
        sampler=sampler,
        steps=steps,
        guidance=guidance,
        emotion=emotion,
        emotion_scale=emotion_scale,
        intensity=intensity,
        seed=seed,
        temperature=temperature,
        top_k=top_k,
        source=inbetween,
        keep_first=keep_first,
        keep_last=keep_last,
    )
    fmt = tuple(f.strip() for f in formats.split(",") if f.strip())
    unknown = set(fmt) - {"npy", "bvh", "gif", "mp4"}
    if unknown:
        raise ConfigError(f"unknown format(s) {sorted(unknown)}; use npy, bvh, gif, mp4")
    motions = MotionGenerator(model)(request)
    written = generate_to(out, motions, formats=fmt)
    typer.echo(f"wrote {len(written)} files under {out}")


import_app = typer.Typer(help="Import official checkpoints as emomotion checkpoints.", no_args_is_help=True)
app.add_typer(import_app, name="import")


@import_app.command("mdm")
def import_mdm_cmd(
    model: Annotated[Path, typer.Argument(help="Official model*.pt (flat or {'model','model_avg'}).")],
    out: Annotated[Path, typer.Option("--out", help="Output .safetensors checkpoint.")],
    stats: Annotated[Path, typer.Option("--stats", help="Folder with the HumanML3D Mean.npy / Std.npy.")],
    args: Annotated[
        Path | None, typer.Option("--args", help="args.json (default: beside the model).")
    ] = None,
    text_encoder_path: Annotated[
        Path | None, typer.Option("--text-encoder-path", help="Local CLIP / DistilBERT folder.")
    ] = None,
    no_ema: Annotated[bool, typer.Option("--no-ema", help="Take 'model', not 'model_avg'.")] = False,
) -> None:
    """Import an official MDM checkpoint (trans_enc / trans_dec, CLIP or DistilBERT)."""
    from emomotion.importers.mdm import import_mdm

    typer.echo(
        str(
            import_mdm(
                model,
                out,
                stats=stats,
                args_path=args,
                text_encoder_path=str(text_encoder_path) if text_encoder_path else None,
                use_ema=not no_ema,
            )
        )
    )


diagnose_app = typer.Typer(help="Diagnose trained models.", no_args_is_help=True)
app.add_typer(diagnose_app, name="diagnose")


@diagnose_app.command("mmm")
def diagnose_mmm_cmd(
    model: Annotated[Path, typer.Option("--model", help="MMM checkpoint or run directory.")],
    data: Annotated[Path, typer.Option("--data", help="Dataset folder.")],
    out: Annotated[Path, typer.Option("--out", help="Folder for diagnose.json/txt and plots.")],
    split: Annotated[str, typer.Option("--split")] = "test",
    steps: Annotated[int, typer.Option("--steps", help="Decoding steps.")] = 10,
    temperature: Annotated[float, typer.Option("--temperature", help="0 = greedy.")] = 1.0,
    top_k: Annotated[int | None, typer.Option("--top-k")] = None,
    guidance: Annotated[float, typer.Option("--guidance")] = 1.0,
    num: Annotated[int, typer.Option("--num", help="Generations to diagnose.")] = 64,
    seed: Annotated[int, typer.Option("--seed")] = 0,
) -> None:
    """Codebook usage, perplexity, repeated tokens, histogram divergence and the static rate."""
    from emomotion.evaluation.diagnose import diagnose_checkpoint
    from emomotion.sampling.masked import MaskedDecodingConfig

    decoding = MaskedDecodingConfig(steps=steps, temperature=temperature, top_k=top_k, guidance=guidance)
    report = diagnose_checkpoint(
        model, data, out, split=split, decoding=decoding, num_generations=num, seed=seed
    )
    typer.echo(report.describe())
    typer.echo(f"plots and diagnose.json in {out}")


study_app = typer.Typer(help="Run the whole method as one resumable study.", no_args_is_help=True)
app.add_typer(study_app, name="study")


@study_app.command("run")
def study_run(
    config: Annotated[Path, typer.Argument(help="Study config (TOML), e.g. study/bandai.toml.")],
    out: Annotated[Path, typer.Option("--out", help="Study folder (data, runs, evaluation, report).")] = Path(
        "study_out"
    ),
    scale: Annotated[
        float, typer.Option("--scale", help="Multiply every step count (GPU users: 10-100).")
    ] = 1.0,
    full_size: Annotated[
        bool, typer.Option("--full-size", help="Official model sizes instead of the small CPU presets.")
    ] = False,
    only: Annotated[
        list[str] | None, typer.Option("--only", help="Run only these stages (repeatable).")
    ] = None,
) -> None:
    """Run every stage not yet done (an interrupted study resumes where it stopped)."""
    from emomotion.study import load_study_config, run_study

    cfg = load_study_config(config).scaled(scale, full_size)
    ctx = run_study(cfg, out, only=tuple(only or ()))
    typer.echo(f"study {cfg.name}: {len(ctx.state['stages'])} stage(s) done in {out}")


@study_app.command("stages")
def study_stages_cmd(
    config: Annotated[Path, typer.Argument(help="Study config (TOML).")],
    out: Annotated[Path, typer.Option("--out")] = Path("study_out"),
) -> None:
    """List the stages of a study and which are done."""
    import json

    from emomotion.study import load_study_config, study_stages
    from emomotion.study.runner import STATE_FILE

    cfg = load_study_config(config)
    state_path = out / STATE_FILE
    done = json.loads(state_path.read_text())["stages"] if state_path.exists() else {}
    for stage in study_stages(cfg):
        mark = f"done ({done[stage.name]['seconds']:.0f} s)" if stage.name in done else "to do"
        typer.echo(f"{stage.name:32s} {mark:16s} {stage.description}")


@import_app.command("mmm")
def import_mmm_cmd(
    vq: Annotated[Path, typer.Option("--vq", help="Official VQ net_last.pth ({'net': ...}).")],
    trans: Annotated[
        Path, typer.Option("--trans", help="Official transformer net_last.pth ({'trans': ...}).")
    ],
    stats: Annotated[Path, typer.Option("--stats", help="Folder with the HumanML3D Mean.npy / Std.npy.")],
    out: Annotated[Path, typer.Option("--out", help="Output .safetensors checkpoint.")],
    text_encoder_path: Annotated[
        Path | None, typer.Option("--text-encoder-path", help="CLIP folder or OpenAI ViT-B-32.pt.")
    ] = None,
    num_heads: Annotated[
        int, typer.Option("--num-heads", help="Transformer heads (not in the weights).")
    ] = 16,
) -> None:
    """Import official MMM weights. The VQ is taken from --vq; the copy inside --trans is only compared."""
    from emomotion.importers.mmm import import_mmm

    typer.echo(
        str(
            import_mmm(
                vq,
                trans,
                out,
                stats=stats,
                text_encoder_path=str(text_encoder_path) if text_encoder_path else None,
                num_heads=num_heads,
            )
        )
    )


@import_app.command("t2m-evaluator")
def import_t2m_evaluator_cmd(
    model: Annotated[
        Path, typer.Argument(help="finest.tar, or a folder holding t2m/text_mot_match/model/finest.tar.")
    ],
    glove: Annotated[
        Path, typer.Option("--glove", help="Folder with our_vab_data.npy, _words.pkl, _idx.pkl.")
    ],
    mean: Annotated[Path, typer.Option("--mean", help="The evaluator's mean (t2m_mean.npy).")],
    std: Annotated[Path, typer.Option("--std", help="The evaluator's std (t2m_std.npy).")],
    out: Annotated[Path, typer.Option("--out", help="Output .safetensors checkpoint.")],
) -> None:
    """Import the official T2M evaluator (text_mot_match) with its GloVe vocabulary."""
    from emomotion.importers.t2m_evaluator import import_t2m_evaluator

    typer.echo(str(import_t2m_evaluator(model, glove, out, mean=mean, std=std)))


@app.command()
def serve(
    model: Annotated[list[Path], typer.Option("--model", help="Checkpoint or run directory (repeatable).")],
    host: Annotated[
        str, typer.Option("--host", help="Address to listen on (default: this machine only).")
    ] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port")] = 7860,
    out: Annotated[
        Path | None,
        typer.Option("--out", help="Folder for generated files (default: a new temporary folder)."),
    ] = None,
    device: Annotated[str, typer.Option("--device")] = "cpu",
) -> None:
    """Serve the web demo: generate emotional motion in the browser."""
    from emomotion.app import ServeConfig
    from emomotion.app import serve as run

    running = run(ServeConfig(models=tuple(model), host=host, port=port, out=out, device=device))
    typer.echo(f"emomotion demo on {running.url} (Ctrl-C to stop; files under {running.runner.out})")
    running.wait()


@app.command()
def demo(
    out: Annotated[Path, typer.Option("--out", help="Output folder.")] = Path("demo_out"),
    scale: Annotated[float, typer.Option("--scale", help="Multiply every training step count.")] = 1.0,
) -> None:
    """Run the whole method in miniature on the embedded synthetic data (no downloads, CPU only)."""
    from emomotion.demo import run_demo

    report = run_demo(out, scale=scale)
    typer.echo(
        f"Demo finished. Open {report}, {out / 'RESULTS.md'} and {out / 'figures' / 'prompts_grid.gif'}."
    )


def main(argv: list[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in args
    if debug:
        args.remove("--debug")
    logging.basicConfig(
        level=logging.DEBUG if debug else logging.INFO, format="%(levelname)s %(name)s: %(message)s"
    )
    try:
        app(args=args, prog_name="emomotion")  # usage errors and --help exit through SystemExit
    except EmomotionError as exc:
        if debug:
            raise
        typer.echo(f"error: {exc}", err=True)
        return 2
    except SystemExit as exc:  # typer's way of finishing (0) or reporting a usage error (2)
        return exc.code if isinstance(exc.code, int) else int(exc.code is not None)
    return 0


if __name__ == "__main__":
    sys.exit(main())
