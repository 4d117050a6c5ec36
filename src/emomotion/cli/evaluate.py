"""``emomotion eval`` (models side by side) and ``emomotion diagnose`` (MMM's token statistics)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from emomotion.cli import checks


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
            "--setting",
            help="MDM sampler:steps[:key=value] (ddim:20:eta=0.5:label=2.5:cg=0.3:intensity=1) or "
            "MMM mmm:steps[:temperature[:top_k]][:key=value] (mmm:10:1.0:guidance=2:label=2.5:cg=2); "
            "repeatable.",
        ),
    ] = None,
    emotion_guidance: Annotated[
        Path | None,
        typer.Option(
            "--emotion-guidance", help="Emotion classifier steering settings with cg=S (never the scorer)."
        ),
    ] = None,
    reps: Annotated[int, typer.Option("--reps")] = 3,
    split: Annotated[str, typer.Option("--split")] = "test",
    mm_texts: Annotated[int, typer.Option("--mm-texts", help="Texts for MultiModality (0 = off).")] = 100,
    seed: Annotated[int, typer.Option("--seed")] = 0,
    text_encoder_path: Annotated[
        Path | None,
        typer.Option(
            "--text-encoder-path",
            help="Give or override every --model's text-encoder files (CLIP .pt or folder).",
        ),
    ] = None,
) -> None:
    """Evaluate models side by side: report.md, metrics.json/csv, plots and a grid in --out."""
    for path in model:
        checks.existing("--model", path)
    checks.existing("--data", data, kind="folder")
    checks.existing("--evaluator", evaluator)
    checks.existing("--emotion-classifier", emotion_classifier)
    checks.at_least("--reps", reps, 1)
    checks.at_least("--mm-texts", mm_texts, 0)
    from emomotion.checkpoint import load_checkpoint
    from emomotion.errors import ConfigError
    from emomotion.evaluation.compare import Entry, compare, parse_setting

    same = emotion_guidance is not None and emotion_classifier is not None
    if same and emotion_guidance.resolve() == emotion_classifier.resolve():  # type: ignore[union-attr]
        raise ConfigError("--emotion-guidance must not be the scoring --emotion-classifier: train another")
    entries = []
    for path in model:
        ckpt = load_checkpoint(path, text_encoder_path=text_encoder_path)
        kind = ckpt.kind
        wanted = [parse_setting(s, emotion_guidance) for s in setting or []]
        mine = [
            s
            for s, text in zip(wanted, setting or [], strict=True)
            if text.startswith("mmm") == (kind == "mmm")
        ]
        for s in mine or [parse_setting("mmm" if kind == "mmm" else "ddpm")]:
            entries.append(Entry(f"{path.name} {s.label(kind)}", ckpt if text_encoder_path else path, s))
    compare(
        entries, data, evaluator, out, emotion_classifier=emotion_classifier, split=split, reps=reps, seed=seed,
        mm_texts=mm_texts,
    )  # fmt: skip
    typer.echo(f"report: {out / 'report.md'}")


diagnose_app = typer.Typer(help="Diagnose trained models.", no_args_is_help=True)


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
    evaluator: Annotated[
        Path | None,
        typer.Option("--evaluator", help="Evaluator checkpoint: adds the VQ's reconstruction FID."),
    ] = None,
) -> None:
    """Codebook usage, perplexity, repeated tokens, histogram divergence and the static rate."""
    checks.existing("--model", model)
    checks.existing("--data", data, kind="folder")
    checks.at_least("--steps", steps, 1)
    checks.number("--temperature", temperature, low=0, high=100)
    checks.at_least("--top-k", top_k, 1)
    checks.number("--guidance", guidance, low=0, high=100)
    checks.at_least("--num", num, 1)
    if evaluator is not None:
        checks.existing("--evaluator", evaluator)
    from emomotion.evaluation.diagnose import diagnose_checkpoint
    from emomotion.sampling.masked import MaskedDecodingConfig

    decoding = MaskedDecodingConfig(steps=steps, temperature=temperature, top_k=top_k, guidance=guidance)
    report = diagnose_checkpoint(
        model, data, out, split=split, decoding=decoding, num_generations=num, seed=seed, evaluator=evaluator
    )
    typer.echo(report.describe())
    typer.echo(f"plots and diagnose.json in {out}")
