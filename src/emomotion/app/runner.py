"""The demo without its page: check a request against the limits, generate, and file the results.

Every request gets its own folder under the demo's output folder; only files inside that folder
are ever handed to the page, so the server exposes nothing else.
"""

from __future__ import annotations

import logging
import math
import secrets
import shutil
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from emomotion.app.config import AppLimits
from emomotion.app.models import ModelEntry
from emomotion.data.emotions import EMOTIONS
from emomotion.errors import ConfigError
from emomotion.generate import GenerateRequest, SamplingSettings, generate_to
from emomotion.limits import MAX_GUIDANCE
from emomotion.sampling.settings import MAX_INTENSITY

log = logging.getLogger(__name__)

NO_EMOTION = "none"
FORMATS = ("npy", "bvh", "mp4")
MAX_SEED = 2**31 - 1
RUN_PREFIX = "run-"


@dataclass(frozen=True)
class UIRequest:
    """The page's controls, as the browser sent them (numbers may arrive as floats)."""

    prompt: str
    model: str
    seconds: float = 4.0
    num: float = 1
    steps: float | None = None  # None: the model's default
    sampler: str | None = None  # None: the model's default (models without samplers ignore it)
    emotion: str | None = None  # None or "none": no emotion label
    intensity: float = 1.0
    guidance: float = 2.5
    seed: float = 0


@dataclass(frozen=True)
class RunResult:
    folder: Path
    video: Path  # the animation to show: the motion itself, or a grid of all samples
    files: tuple[Path, ...]  # .npy / .bvh / .mp4 offered for download
    message: str


def _whole(value: float | None, what: str) -> int:
    if value is None or isinstance(value, bool):
        raise ConfigError(f"{what} is missing")
    try:
        number = float(value)
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"{what} must be a whole number, got {value!r}") from exc
    if not math.isfinite(number) or number != round(number):
        raise ConfigError(f"{what} must be a whole number, got {value!r}")
    return round(number)


def _number(value: float | None, what: str) -> float:
    try:
        number = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"{what} must be a number, got {value!r}") from exc
    if not math.isfinite(number):
        raise ConfigError(f"{what} must be a finite number, got {value!r}")
    return number


class DemoRunner:
    """Turns page requests into files under ``out``; one generation at a time."""

    def __init__(
        self, models: dict[str, ModelEntry], out: str | Path, limits: AppLimits | None = None
    ) -> None:
        if not models:
            raise ConfigError("the demo needs at least one model")
        self.models = models
        self.limits = limits or AppLimits()
        self.out = Path(out).resolve()
        self.out.mkdir(parents=True, exist_ok=True)
        self.lock = threading.Lock()

    def request(self, ui: UIRequest) -> tuple[ModelEntry, GenerateRequest]:
        """Check ``ui`` against the limits and the chosen model; a ConfigError says what to change."""
        lim = self.limits
        for value, what in ((ui.prompt, "the prompt"), (ui.model, "the model"), (ui.sampler, "the sampler"),
                            (ui.emotion, "the emotion")):  # fmt: skip
            if value is not None and not isinstance(value, str):
                raise ConfigError(f"{what} must be text, got {type(value).__name__}")
        prompt = (ui.prompt or "").strip()
        if not prompt:
            raise ConfigError("type a prompt first: one sentence describing the motion")
        if len(prompt) > lim.max_prompt_chars:
            raise ConfigError(
                f"the prompt is {len(prompt)} characters long; the limit is {lim.max_prompt_chars}"
            )
        entry = self.models.get(ui.model)
        if entry is None:
            raise ConfigError(f"unknown model {ui.model!r}; choose one of {', '.join(self.models)}")
        seconds = _number(ui.seconds, "motion length")
        if not lim.min_seconds <= seconds <= lim.max_seconds:
            raise ConfigError(
                f"motion length must be between {lim.min_seconds:g} and {lim.max_seconds:g} seconds, "
                f"got {seconds:g}"
            )
        num = _whole(ui.num, "number of samples")
        if not 1 <= num <= lim.max_samples:
            raise ConfigError(f"number of samples must be between 1 and {lim.max_samples}, got {num}")
        steps = entry.default_steps if ui.steps is None else _whole(ui.steps, "steps")
        if not 1 <= steps <= entry.max_steps:
            raise ConfigError(f"steps must be between 1 and {entry.max_steps} for this model, got {steps}")
        seed = _whole(ui.seed, "seed")
        if not 0 <= seed <= MAX_SEED:
            raise ConfigError(f"seed must be between 0 and {MAX_SEED}, got {seed}")
        guidance = _number(ui.guidance, "guidance")
        if not 0.0 <= guidance <= MAX_GUIDANCE:
            raise ConfigError(f"guidance must be between 0 and {MAX_GUIDANCE:g}, got {guidance:g}")
        intensity = _number(ui.intensity, "intensity")
        if not 0.0 <= intensity <= MAX_INTENSITY:
            raise ConfigError(f"intensity must be between 0 and {MAX_INTENSITY:g}, got {intensity:g}")
        emotion = None if ui.emotion in (None, "", NO_EMOTION) else ui.emotion
        if emotion is not None and emotion not in EMOTIONS:
            raise ConfigError(f"unknown emotion {emotion!r}; choose one of {', '.join(EMOTIONS)}")
        if emotion is not None and not entry.emotions:
            raise ConfigError(
                f"model {entry.name} has no emotion conditioning; choose 'none' and put the emotion "
                "in the prompt instead"
            )
        extra: dict[str, str] = {}
        if entry.samplers:
            sampler = ui.sampler or entry.default_sampler
            if sampler not in entry.samplers:
                raise ConfigError(f"unknown sampler {sampler!r}; choose one of {', '.join(entry.samplers)}")
            extra["sampler"] = sampler
        settings = SamplingSettings(steps=steps, guidance=guidance, intensity=intensity, **extra)  # type: ignore[arg-type]
        request = GenerateRequest(
            texts=(prompt,),
            seconds=seconds,
            num=num,
            settings=settings,
            emotions=(emotion,) if emotion else (),
            seed=seed,
        )
        return entry, request

    def run(self, ui: UIRequest) -> RunResult:
        """Generate ``ui`` into a fresh folder; raises ConfigError (with a message for the user)."""
        entry, request = self.request(ui)
        with self.lock:
            start = time.perf_counter()
            motions = entry.generator(request)
            folder = self.new_folder()
            written = generate_to(folder, motions, formats=FORMATS)
            files = self.flatten(folder, written)
            self.prune()
            elapsed = time.perf_counter() - start
        videos = [f for f in files if f.suffix == ".mp4"]
        grid = [f for f in videos if f.name.startswith("grid")]
        video = grid[0] if grid else videos[0]
        emotion = request.emotion_of(0)
        label = f" ({emotion}, intensity {request.settings.intensity:g})" if emotion else ""
        message = (
            f"{len(motions)} motion(s) of {request.seconds:g} s{label} from {entry.name} "
            f"with {request.settings.steps} steps in {elapsed:.1f} s"
        )
        log.info("%s -> %s", message, folder)
        return RunResult(folder, video, tuple(f for f in files if not f.name.startswith("grid")), message)

    def new_folder(self) -> Path:
        now = time.time_ns()  # names sort in creation order, also within one second (pruning relies on it)
        stamp = time.strftime("%Y%m%d-%H%M%S", time.localtime(now // 1_000_000_000))
        folder = self.out / f"{RUN_PREFIX}{stamp}-{now % 1_000_000_000:09d}-{secrets.token_hex(2)}"
        folder.mkdir()
        return folder

    def flatten(self, folder: Path, written: list[Path]) -> list[Path]:
        """Move each sample's files up into ``folder`` with names that say which sample they are."""
        files = []
        for path in written:
            path = path.resolve()
            if not path.is_relative_to(folder):
                raise ConfigError("a generated file landed outside the run folder", path=path)
            if path.parent != folder:
                target = folder / f"{path.parent.name}_{path.name}"
                path.rename(target)
                path = target
            files.append(path)
        for sub in folder.iterdir():
            if sub.is_dir() and not any(sub.iterdir()):
                sub.rmdir()
        return sorted(files)

    def prune(self) -> None:
        runs = sorted(p for p in self.out.glob(f"{RUN_PREFIX}*") if p.is_dir())
        for old in runs[: max(0, len(runs) - self.limits.keep_runs)]:
            shutil.rmtree(old, ignore_errors=True)
