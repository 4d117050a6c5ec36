"""Side-by-side evaluation of several checkpoints (and settings) on one dataset split: what
``emomotion eval`` and the study run. One row per (model, setting), a "real data" row first, every
repetition cached so an interrupted comparison resumes."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from emomotion.checkpoint import Checkpoint, load_checkpoint
from emomotion.evaluation.evaluate import EvalResult, evaluate, evaluate_real
from emomotion.evaluation.generators import CheckpointGenerator
from emomotion.generate import SamplingSettings

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Entry:
    """One row: a checkpoint generating with one setting, under a display name."""

    name: str
    checkpoint: Path | Checkpoint  # a loaded one: say, with its text encoder given (load_checkpoint)
    settings: SamplingSettings = field(default_factory=SamplingSettings)


def compare(
    entries: Sequence[Entry],
    data: str | Path,
    evaluator: str | Path,
    out: str | Path,
    *,
    emotion_classifier: str | Path | None = None,
    emotion_judge: Any = None,
    split: str = "test",
    reps: int = 3,
    seed: int = 0,
    real_row: bool = True,
    report: bool = True,
    **options: Any,
) -> list[EvalResult]:
    """Evaluate every entry (and the real data) and write the report into ``out``; ``emotion_judge``
    (:func:`~emomotion.evaluation.cue_judge.fit_cue_judge`) scores every row beside the classifier."""
    from emomotion.evaluation.report import write_report

    names = [e.name for e in entries]
    if len(set(names)) != len(names):
        from emomotion.errors import ConfigError

        raise ConfigError(f"row names must be unique, got {names}")
    ev = load_checkpoint(evaluator).build_model()
    cls = load_checkpoint(emotion_classifier).build_model() if emotion_classifier else None
    common = {
        "split": split,
        "reps": reps,
        "emotion_classifier": cls,
        "emotion_judge": emotion_judge,
        "seed": seed,
        "out_dir": out,
        **options,
    }
    results = [evaluate_real(data, ev, **common)] if real_row else []
    for entry in entries:
        log.info("evaluating %s (%s)", entry.name, entry.checkpoint)
        generator = CheckpointGenerator(entry.checkpoint, entry.settings)
        path = generator.ckpt.path
        stat = path.stat() if path is not None else None
        model_id = f"{path}:{stat.st_size}:{stat.st_mtime_ns}:{entry.settings}" if stat else None
        results.append(evaluate(generator, data, ev, name=entry.name, model_id=model_id, **common))
    if report:
        write_report(results, Path(out))
    return results


SETTING_KEYS = {
    "eta": "eta",
    "guidance": "guidance",
    "label": "emotion_scale",
    "intensity": "intensity",
    "cg": "emotion_guidance_scale",
    "smooth": "smoothing",
    "noise": "noise_scale",
}
"""``key=value`` options of an MDM setting and the :class:`SamplingSettings` field each sets."""

MMM_SETTING_KEYS = ("guidance", "label", "intensity", "cg")
"""The ``key=value`` options an MMM setting takes (text guidance, the label's scale, intensity, classifier
guidance in logit units)."""

USAGE = "use sampler:steps[:key=value] (ddim:50:label=2.5) or mmm:steps[:temperature[:top_k]][:key=value]"


def parse_setting(text: str, emotion_guidance: Path | None = None) -> SamplingSettings:
    """``sampler:steps[:key=value...]`` (MDM, e.g. ``ddim:20:eta=0.5:label=2.5:cg=0.3:intensity=1:smooth=1:noise=0.8``) or
    ``mmm:steps[:temperature[:top_k]][:key=value...]`` (e.g. ``mmm:10:1.0:guidance=2:label=2.5:cg=2``).
    ``cg`` (classifier-guidance scale) steers with ``emotion_guidance``, an emotion classifier checkpoint."""
    from emomotion.errors import ConfigError

    parts = text.split(":")
    keyed = [i for i, part in enumerate(parts) if "=" in part]
    positional, pairs = (parts[: keyed[0]], parts[keyed[0] :]) if keyed else (parts, [])
    mmm = positional[0] == "mmm"
    allowed = MMM_SETTING_KEYS if mmm else tuple(SETTING_KEYS)
    options: dict[str, float] = {}
    try:
        for part in pairs:
            key, _, value = part.partition("=")
            if key not in allowed or not value:
                raise ConfigError(
                    f"bad setting {text!r}: unknown option {part!r}; use {', '.join(k + '=' for k in allowed)}"
                )
            options[SETTING_KEYS[key]] = float(value)
        if options.get("emotion_guidance_scale") and emotion_guidance is None:
            raise ConfigError(f"setting {text!r} uses classifier guidance (cg=): give --emotion-guidance")
        guide = emotion_guidance if options.get("emotion_guidance_scale") else None
        if mmm:
            if len(positional) > 4:
                raise ValueError(text)
            return SamplingSettings(
                steps=int(positional[1]) if len(positional) > 1 else 0,
                temperature=float(positional[2]) if len(positional) > 2 else 1.0,
                top_k=int(positional[3]) if len(positional) > 3 else 0,
                emotion_guidance=guide,
                **options,  # type: ignore[arg-type]
            )
        if len(positional) > 2:
            raise ConfigError(f"bad setting {text!r}: an MDM setting's options are key=value; {USAGE}")
        return SamplingSettings(
            sampler=positional[0],
            steps=int(positional[1]) if len(positional) > 1 else 0,
            emotion_guidance=guide,
            **options,  # type: ignore[arg-type]
        )
    except (ValueError, IndexError) as exc:
        raise ConfigError(f"bad setting {text!r}: {USAGE}") from exc
