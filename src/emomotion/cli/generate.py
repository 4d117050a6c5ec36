"""``emomotion generate``, ``serve`` and ``demo``: motion from text, the web app, the whole pipeline in miniature."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from emomotion import skeleton as sk
from emomotion.cli import checks
from emomotion.errors import ConfigError
from emomotion.limits import MAX_GUIDANCE, MAX_PROMPT_CHARS, MAX_SAMPLES


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
    checks.existing("--model", model)
    checks.existing("--prompts", prompts, kind="file")
    checks.existing("--inbetween", inbetween, kind="file")
    for prompt in text or []:
        if not prompt.strip() or len(prompt) > MAX_PROMPT_CHARS:
            raise ConfigError(
                f"--text needs some text, at most {MAX_PROMPT_CHARS} characters; got {len(prompt)}"
            )
    checks.number("--length", length, low=sk.MIN_FRAMES / sk.FPS, high=sk.MAX_FRAMES / sk.FPS)
    checks.number("--num", num, low=1, high=MAX_SAMPLES)
    checks.at_least("--steps", steps, 1)
    checks.number("--guidance", guidance, low=0, high=MAX_GUIDANCE)
    checks.number("--emotion-scale", emotion_scale, low=0, high=MAX_GUIDANCE)
    checks.fraction("--intensity", intensity)
    checks.number("--temperature", temperature, low=0, high=100)
    checks.at_least("--top-k", top_k, 1)
    checks.at_least("--keep-first", keep_first, 0)
    checks.at_least("--keep-last", keep_last, 0)
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
    for path in model:
        checks.existing("--model", path)
    checks.number("--port", port, low=0, high=65535)
    from emomotion.app import ServeConfig
    from emomotion.app import serve as run

    running = run(ServeConfig(models=tuple(model), host=host, port=port, out=out, device=device))
    typer.echo(f"emomotion demo on {running.url} (Ctrl-C to stop; files under {running.runner.out})")
    running.wait()


def demo(
    out: Annotated[Path, typer.Option("--out", help="Output folder.")] = Path("demo_out"),
    scale: Annotated[float, typer.Option("--scale", help="Multiply every training step count.")] = 1.0,
) -> None:
    """Run the whole method in miniature on the embedded synthetic data (no downloads, CPU only)."""
    checks.number("--scale", scale, low=0, low_open=True, high=1000)
    from emomotion.demo import run_demo

    report = run_demo(out, scale=scale)
    typer.echo(
        f"Demo finished. Open {report}, {out / 'RESULTS.md'} and {out / 'figures' / 'prompts_grid.gif'}."
    )
