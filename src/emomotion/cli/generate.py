"""``emomotion generate``, ``serve`` and ``demo``: motion from text, the web app, the whole pipeline in miniature."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from emomotion import skeleton as sk
from emomotion.cli import checks
from emomotion.errors import ConfigError
from emomotion.limits import MAX_GUIDANCE, MAX_PROMPT_CHARS, MAX_SAMPLES
from emomotion.sampling.settings import MAX_INTENSITY, MAX_NOISE_SCALE, MAX_SMOOTHING

Emotion = Annotated[
    list[str] | None,
    typer.Option(
        "--emotion",
        help="Emotion (repeatable: every prompt in each emotion). The label of models with emotion "
        "conditioning and the target of --emotion-guidance.",
    ),
]
EmotionScale = Annotated[
    float | None, typer.Option("--emotion-scale", help="The label's own guidance scale (default 2.5).")
]
Intensity = Annotated[
    float, typer.Option("--intensity", help="Emotion intensity: 0 = text only, 1 = default, up to 3.")
]
EmotionGuidance = Annotated[
    Path | None,
    typer.Option(
        "--emotion-guidance",
        help="An emotion classifier run steering the sampler (MDM: its clean-motion estimate; MMM: its token logits).",
    ),
]
EmotionGuidanceScale = Annotated[
    float, typer.Option("--emotion-guidance-scale", help="Classifier-guidance step (feature std units).")
]
Smoothing = Annotated[
    float | None,
    typer.Option(
        "--smoothing", help="Low-pass of the output in time, Gaussian sigma in frames (0 = off; MDM: 1)."
    ),
]
NoiseScale = Annotated[
    float,
    typer.Option(
        "--noise-scale",
        help="MDM: the starting noise's sd (< 1 narrows the samples toward typical motion; 1 = as trained).",
    ),
]
Sampler = Annotated[str, typer.Option("--sampler", help="ddpm | ddim | dpmpp")]
Steps = Annotated[int | None, typer.Option("--steps", help="Sampling steps (default: as trained).")]
Eta = Annotated[float | None, typer.Option("--eta", help="DDIM noise: 0 deterministic .. 1 (DDPM-like).")]
Guidance = Annotated[float | None, typer.Option("--guidance", help="Text guidance (default: the model's).")]
Formats = Annotated[str, typer.Option("--format", help="Comma list of npy,bvh,gif,mp4.")]
TextEncoderPath = Annotated[
    Path | None,
    typer.Option(
        "--text-encoder-path", help="Give or override the model's text-encoder files (CLIP .pt or folder)."
    ),
]


def _formats(text: str) -> tuple[str, ...]:
    from emomotion.errors import ConfigError

    fmt = tuple(f.strip() for f in text.split(",") if f.strip())
    unknown = set(fmt) - {"npy", "bvh", "gif", "mp4"}
    if unknown or not fmt:
        raise ConfigError(f"--format: unknown format(s) {sorted(unknown)}; use npy, bvh, gif, mp4")
    return fmt


def _settings(
    sampler: str,
    steps: int | None,
    guidance: float | None,
    eta: float | None,
    emotion_scale: float | None,
    intensity: float,
    emotion_guidance: Path | None,
    emotion_guidance_scale: float,
    smoothing: float | None = None,
    **masked: float | int | None,
):  # -> SamplingSettings
    """The sampling options of ``generate`` and ``restyle`` as one value (checked when made)."""
    from emomotion.generate import SamplingSettings

    if emotion_guidance_scale > 0 and emotion_guidance is None:
        raise ConfigError("--emotion-guidance-scale needs --emotion-guidance (an emotion classifier run)")
    return SamplingSettings(
        sampler=sampler, steps=steps, guidance=guidance, eta=eta, emotion_scale=emotion_scale,
        intensity=intensity, emotion_guidance=emotion_guidance,
        emotion_guidance_scale=emotion_guidance_scale if emotion_guidance is not None else 0.0,
        smoothing=smoothing, **masked,  # type: ignore[arg-type]
    )  # fmt: skip


def _read_prompts(path: Path) -> list[tuple[str, str | None]]:
    """One prompt per line; an optional emotion after a tab or a ``|`` (``a person walks | Sadness``)."""
    from emomotion.errors import ConfigError

    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"cannot read prompts: {exc}", path=path) from exc
    items = []
    for line in lines:
        text, sep, emotion = line.replace("\t", "|").partition("|")
        if text.strip():
            items.append((text.strip(), emotion.strip() or None if sep else None))
    if not items:
        raise ConfigError("no prompt in the file", path=path)
    return items


def generate(
    model: Annotated[Path, typer.Option("--model", help="Checkpoint or run directory.")],
    out: Annotated[Path, typer.Option("--out", help="Output folder.")],
    text: Annotated[list[str] | None, typer.Option("--text", help="A prompt (repeatable).")] = None,
    prompts: Annotated[
        Path | None,
        typer.Option("--prompts", help="A file with one prompt per line, optionally '| emotion' after it."),
    ] = None,
    length: Annotated[float, typer.Option("--length", help="Seconds.")] = 6.0,
    num: Annotated[int, typer.Option("--num", help="Samples per prompt.")] = 1,
    sampler: Sampler = "ddpm",
    steps: Steps = None,
    eta: Eta = None,
    guidance: Guidance = None,
    emotion: Emotion = None,
    emotion_scale: EmotionScale = None,
    intensity: Intensity = 1.0,
    emotion_guidance: EmotionGuidance = None,
    emotion_guidance_scale: EmotionGuidanceScale = 0.0,
    smoothing: Smoothing = None,
    noise_scale: NoiseScale = 1.0,
    seed: Annotated[int, typer.Option("--seed")] = 0,
    temperature: Annotated[
        float, typer.Option("--temperature", help="MMM: sampling temperature (0 = greedy).")
    ] = 1.0,
    top_k: Annotated[
        int | None, typer.Option("--top-k", help="MMM: sample among the k likeliest codes.")
    ] = None,
    formats: Formats = "npy,bvh,gif",
    inbetween: Annotated[
        Path | None,
        typer.Option(
            "--inbetween", help="A features .npy whose first/last frames are kept (length = its own)."
        ),
    ] = None,
    keep_first: Annotated[
        int, typer.Option("--keep-first", help="In-betweening: frames kept at the start.")
    ] = 0,
    keep_last: Annotated[int, typer.Option("--keep-last", help="In-betweening: frames kept at the end.")] = 0,
    text_encoder_path: TextEncoderPath = None,
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
    checks.number("--intensity", intensity, low=0, high=MAX_INTENSITY)
    checks.number("--eta", eta, low=0, high=1)
    checks.at_least("--emotion-guidance-scale", emotion_guidance_scale, 0)
    checks.existing("--emotion-guidance", emotion_guidance)
    checks.number("--smoothing", smoothing, low=0, high=MAX_SMOOTHING)
    checks.number("--temperature", temperature, low=0, high=100)
    checks.number("--noise-scale", noise_scale, low=0, high=MAX_NOISE_SCALE, low_open=True)
    checks.at_least("--top-k", top_k, 1)
    checks.at_least("--keep-first", keep_first, 0)
    checks.at_least("--keep-last", keep_last, 0)
    from emomotion.checkpoint import load_checkpoint
    from emomotion.generate import GenerateRequest, MotionGenerator, generate_to

    items: list[tuple[str, str | None]] = [(t, None) for t in text or []]
    if prompts is not None:
        items += _read_prompts(prompts)
    if not items:
        raise ConfigError("give a prompt: --text or --prompts")
    if emotion:  # every prompt without its own emotion, once per --emotion
        items = [(t, e) for t, own in items for e in ([own] if own else emotion)]
    settings = _settings(sampler, steps, guidance, eta, emotion_scale, intensity, emotion_guidance,
                         emotion_guidance_scale, smoothing, temperature=temperature, top_k=top_k,
                         noise_scale=noise_scale)  # fmt: skip
    request = GenerateRequest(
        texts=tuple(t for t, _ in items),
        seconds=length,
        num=num,
        settings=settings,
        emotions=tuple(e for _, e in items) if any(e for _, e in items) else (),
        seed=seed,
        source=inbetween,
        keep_first=keep_first,
        keep_last=keep_last,
    )
    fmt = _formats(formats)
    source = load_checkpoint(model, text_encoder_path=text_encoder_path) if text_encoder_path else model
    motions = MotionGenerator(source)(request)
    written = generate_to(out, motions, formats=fmt)
    typer.echo(f"wrote {len(written)} files under {out}")


def restyle(
    clip: Annotated[Path, typer.Argument(help="The motion to restyle: .bvh, joints or features .npy.")],
    model: Annotated[Path, typer.Option("--model", help="MDM checkpoint or run directory.")],
    emotion: Annotated[str, typer.Option("--emotion", help="The emotion to express.")],
    out: Annotated[Path, typer.Option("--out", help="Output folder.")],
    strength: Annotated[
        float, typer.Option("--strength", help="0 = unchanged .. 1 = free generation (default 0.5).")
    ] = 0.5,
    text: Annotated[
        str | None, typer.Option("--text", help="What the clip shows (default: generic).")
    ] = None,
    num: Annotated[int, typer.Option("--num", help="Samples.")] = 1,
    sampler: Sampler = "ddpm",
    steps: Steps = None,
    eta: Eta = None,
    guidance: Guidance = None,
    emotion_scale: EmotionScale = None,
    intensity: Intensity = 1.0,
    emotion_guidance: EmotionGuidance = None,
    emotion_guidance_scale: EmotionGuidanceScale = 0.0,
    smoothing: Smoothing = None,
    joint_map: Annotated[str | None, typer.Option("--joint-map", help="BVH clips: the joint map.")] = None,
    seed: Annotated[int, typer.Option("--seed")] = 0,
    formats: Formats = "npy,bvh,gif",
    text_encoder_path: TextEncoderPath = None,
) -> None:
    """Re-express an existing motion in an emotion (SDEdit): same length, its path and timing kept at
    low strength; writes the same files as generate."""
    from emomotion.errors import ConfigError
    from emomotion.generate import MotionGenerator, generate_to
    from emomotion.restyle import RestyleRequest
    from emomotion.restyle import restyle as run

    checks.existing("--model", model)
    checks.existing("--emotion-guidance", emotion_guidance)
    checks.number("--strength", strength, low=0, high=1)
    checks.number("--num", num, low=1, high=MAX_SAMPLES)
    checks.number("--smoothing", smoothing, low=0, high=MAX_SMOOTHING)
    settings = _settings(sampler, steps, guidance, eta, emotion_scale, intensity, emotion_guidance,
                         emotion_guidance_scale, smoothing)  # fmt: skip
    request = RestyleRequest(
        clip=clip, emotion=emotion, strength=strength, text=text, num=num, seed=seed, settings=settings,
        joint_map=joint_map,
    )  # fmt: skip
    fmt = _formats(formats)
    if not clip.is_file():
        raise ConfigError("no such clip", path=clip)
    from emomotion.checkpoint import load_checkpoint

    source = load_checkpoint(model, text_encoder_path=text_encoder_path) if text_encoder_path else model
    motions = run(MotionGenerator(source), request)
    written = generate_to(out, motions, formats=fmt)
    typer.echo(f"wrote {len(written)} files under {out}")


def serve(
    model: Annotated[
        list[Path] | None,
        typer.Option(
            "--model", help="Checkpoint or run directory (repeatable; default: what make demo trained)."
        ),
    ] = None,
    host: Annotated[
        str, typer.Option("--host", help="Address to listen on (default: this machine only).")
    ] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port")] = 7860,
    out: Annotated[
        Path | None,
        typer.Option("--out", help="Folder for generated files (default: a new temporary folder)."),
    ] = None,
    device: Annotated[str, typer.Option("--device")] = "cpu",
    text_encoder_path: Annotated[
        Path | None,
        typer.Option(
            "--text-encoder-path",
            help="Give or override the model's text-encoder files (CLIP .pt or folder).",
        ),
    ] = None,
) -> None:
    """Serve the web demo: generate emotional motion in the browser."""
    for path in model or []:
        checks.existing("--model", path)
    checks.number("--port", port, low=0, high=65535)
    from emomotion.app import ServeConfig
    from emomotion.app import serve as run
    from emomotion.demo import demo_models

    if not model:
        model = demo_models(Path("demo_out"))

    running = run(
        ServeConfig(
            models=tuple(model),
            host=host,
            port=port,
            out=out,
            device=device,
            text_encoder_path=text_encoder_path,
        )
    )
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
