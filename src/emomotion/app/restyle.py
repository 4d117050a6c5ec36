"""The web demo's Restyle tab without its page: an uploaded clip re-expressed in an emotion (SDEdit,
:mod:`emomotion.restyle`) by a model with emotion control, filed like any other request."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from pathlib import Path

from emomotion.app.runner import FORMATS, DemoRunner, RunResult, _number, _whole
from emomotion.data.emotions import EMOTIONS
from emomotion.errors import ConfigError
from emomotion.generate import SamplingSettings, generate_to
from emomotion.sampling.settings import MAX_INTENSITY

log = logging.getLogger(__name__)

CLIP_SUFFIXES = (".bvh", ".npy")
MAX_CLIP_BYTES = 50 * 2**20


@dataclass(frozen=True)
class RestyleUI:
    """The Restyle tab's controls, as the browser sent them."""

    clip: str | None  # the uploaded file's path (in the demo's upload folder)
    model: str
    emotion: str | None
    strength: float = 0.5
    intensity: float = 1.0
    steps: float | None = None
    seed: float = 0


def uploaded_clip(value: object, uploads: Path) -> str | None:
    """The path of a clip the page uploaded (a path, or gradio's file record ``{"path": ...}``), refused
    unless it lies in the demo's own upload folder: a request can't make the demo read other files."""
    path = value.get("path") if isinstance(value, dict) else value
    if path in (None, ""):
        return None
    if not isinstance(path, str) or not Path(path).resolve().is_relative_to(Path(uploads).resolve()):
        raise ConfigError("the clip must be uploaded through the page")
    return path


def restyle_request(runner: DemoRunner, ui: RestyleUI):  # -> (ModelEntry, RestyleRequest)
    """Check ``ui`` against the limits and the chosen model; a ConfigError says what to change."""
    from emomotion.restyle import RestyleRequest

    if not ui.clip:
        raise ConfigError("upload a clip first: a .bvh, or a joints or features .npy")
    clip = Path(ui.clip)
    if clip.suffix.lower() not in CLIP_SUFFIXES:
        raise ConfigError(
            f"the clip must be a .bvh or .npy file, not {clip.suffix or 'a file without suffix'}"
        )
    if not clip.is_file():
        raise ConfigError("the uploaded clip is gone; upload it again")
    if clip.stat().st_size > MAX_CLIP_BYTES:
        raise ConfigError(f"the clip is larger than {MAX_CLIP_BYTES // 2**20} MB")
    entry = runner.models.get(ui.model)
    if entry is None:
        raise ConfigError(f"unknown model {ui.model!r}; choose one of {', '.join(runner.models)}")
    if not entry.emotions or entry.kind != "mdm":
        raise ConfigError(
            f"model {entry.name} cannot restyle: it needs a diffusion model with emotion conditioning"
        )
    if ui.emotion not in EMOTIONS:
        raise ConfigError(f"choose an emotion: one of {', '.join(EMOTIONS)}")
    strength = _number(ui.strength, "strength")
    if not 0.0 <= strength <= 1.0:
        raise ConfigError(f"strength must be between 0 and 1, got {strength:g}")
    intensity = _number(ui.intensity, "intensity")
    if not 0.0 <= intensity <= MAX_INTENSITY:
        raise ConfigError(f"intensity must be between 0 and {MAX_INTENSITY:g}, got {intensity:g}")
    steps = entry.default_steps if ui.steps is None else _whole(ui.steps, "steps")
    if not 1 <= steps <= entry.max_steps:
        raise ConfigError(f"steps must be between 1 and {entry.max_steps} for this model, got {steps}")
    seed = _whole(ui.seed, "seed")
    if seed < 0:
        raise ConfigError(f"seed must be >= 0, got {seed}")
    settings = SamplingSettings(steps=steps, intensity=intensity)
    return entry, RestyleRequest(
        clip=clip, emotion=ui.emotion, strength=strength, seed=seed, settings=settings
    )


def run_restyle(runner: DemoRunner, ui: RestyleUI) -> RunResult:
    """Restyle the uploaded clip into a fresh folder of ``runner``; raises ConfigError for the user."""
    from emomotion.restyle import restyle

    entry, request = restyle_request(runner, ui)
    with runner.lock:
        start = time.perf_counter()
        motions = restyle(entry.generator, request)
        folder = runner.new_folder()
        written = generate_to(folder, motions, formats=FORMATS)
        files = runner.flatten(folder, written)
        runner.prune()
        elapsed = time.perf_counter() - start
    video = next(f for f in files if f.suffix == ".mp4")
    message = (
        f"{request.clip.name} restyled as {request.emotion} (strength {request.strength:g}, intensity "
        f"{request.settings.intensity:g}) by {entry.name} in {elapsed:.1f} s"
    )
    log.info("%s -> %s", message, folder)
    return RunResult(folder, video, tuple(files), message)
