"""One evaluator, many generators: the text-to-motion protocol of Guo et al. 2022 as MDM runs it,
plus emotion recognition, interpretable cues and motion quality.

``evaluate(generate_fn, dataset_root, evaluator)`` asks the generator for one motion per clip of
the split (a random caption of the clip, the clip's length), ``reps`` times with different seeds,
and reports per repetition: R-precision top-1/2/3 in batches of 32, MM-Dist, FID against the real
clips of the split, Diversity (300 pairs, fewer when the split is smaller: noted), MultiModality
(``mm_repeats`` generations of ``mm_texts`` captions, 10 pairs), emotion accuracy / F1 /
confusion with a classifier, cues per emotion, and foot skating, jitter, floor penetration and
the static rate. Every metric is summarised as mean and 95% CI over the repetitions.

``evaluate_real`` runs the same protocol on the real clips themselves (random crops per
repetition): the "real data" row every table starts with. With ``out_dir`` each repetition is
cached as JSON (``cache/<name>/rep000.json``) and reused when its settings match, so an
interrupted evaluation resumes where it stopped.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from emomotion.data.emotions import EMOTIONS
from emomotion.errors import ConfigError, MotionFormatError
from emomotion.evaluation import metrics
from emomotion.evaluation.cues import CUE_NAMES, Cues, clip_cues, cue_table, table_means
from emomotion.evaluation.evalset import (
    UNIT,
    Draw,
    EvalSet,
    EvalSettings,
    embed_motions,
    embed_texts,
    pad_motions,
)
from emomotion.features import recover_joints
from emomotion.io.atomic import save_text
from emomotion.progress import progress_bar
from emomotion.skeleton import FEATURE_DIM

log = logging.getLogger(__name__)

GenerateFn = Callable[[list[str], list[int], int], list[np.ndarray]]
"""``generate_fn(texts, lengths, seed) -> [(T_i, 263) de-normalised features]``."""

CACHE_VERSION = 1


@dataclass
class EvalResult:
    """One row of the report: a model (or the real data) under one setting."""

    name: str
    metrics: dict[str, tuple[float, float]]  # metric -> (mean, 95% CI half width)
    reps: list[dict[str, float]]
    notes: list[str] = field(default_factory=list)
    confusion: np.ndarray | None = None  # (C, C) counts summed over repetitions, row = true
    cues: dict[str, dict[str, float]] = field(default_factory=dict)  # group (emotion, "all") -> cue -> mean
    samples: list[np.ndarray] = field(default_factory=list)  # joints (T, 22, 3) for the grid
    sample_texts: list[str] = field(default_factory=list)
    real: bool = False

    def value(self, metric: str) -> float:
        return self.metrics[metric][0] if metric in self.metrics else float("nan")

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "real": self.real,
            "metrics": {k: {"mean": m, "ci95": c} for k, (m, c) in self.metrics.items()},
            "reps": self.reps,
            "notes": self.notes,
            "confusion": None if self.confusion is None else self.confusion.tolist(),
            "emotions": list(EMOTIONS),
            "cues": self.cues,
        }


def _check_motions(out: Any, lengths: Sequence[int], name: str) -> list[np.ndarray]:
    if not isinstance(out, Sequence) or len(out) != len(lengths):
        got = len(out) if isinstance(out, Sequence) else type(out).__name__
        raise MotionFormatError(f"generate_fn of {name!r} returned {got} motions for {len(lengths)} texts")
    checked = []
    for i, m in enumerate(out):
        arr = np.asarray(m, dtype=np.float32)
        if arr.ndim != 2 or arr.shape[1] != FEATURE_DIM or arr.shape[0] < UNIT:
            raise MotionFormatError(
                f"generate_fn of {name!r}: motion {i} must be (T >= {UNIT}, {FEATURE_DIM}), got {arr.shape}"
            )
        if not np.isfinite(arr).all():
            raise MotionFormatError(f"generate_fn of {name!r}: motion {i} has NaN or infinite values")
        checked.append(arr[: (arr.shape[0] // UNIT) * UNIT])
    return checked


def _generate(
    generate_fn: GenerateFn,
    texts: list[str],
    lengths: list[int],
    seed: int,
    batch_size: int,
    name: str,
    what: str,
) -> list[np.ndarray]:
    motions: list[np.ndarray] = []
    with progress_bar("clips", transient=True) as progress:
        task = progress.add_task(f"{name}: {what}", total=len(texts))
        for k, i in enumerate(range(0, len(texts), batch_size)):
            t, n = texts[i : i + batch_size], lengths[i : i + batch_size]
            motions += _check_motions(generate_fn(t, n, seed * 100_003 + k), n, name)
            progress.update(task, advance=len(t))
    return motions


def _quality(joints: Sequence[np.ndarray], reference_speed: float) -> dict[str, float]:
    skate = [metrics.foot_skating(j) for j in joints]
    return {
        "foot_skating": float(np.mean([s.velocity for s in skate])),
        "foot_skating_ratio": float(np.mean([s.ratio for s in skate])),
        "jitter": float(np.mean([metrics.jitter(j) for j in joints])),
        "penetration": float(np.mean([metrics.floor_penetration(j) for j in joints])),
        "static_rate": metrics.static_rate(joints, reference_speed),
    }


def _slug(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", name).strip("_") or "model"


def _fingerprint(
    name: str,
    root: Path,
    settings: EvalSettings,
    evaluator: Any,
    classifier: Any,
    real: bool,
    model_id: str | None = None,
) -> str:
    """What a cached repetition depends on. Not the number of repetitions (repetition r depends only
    on the seed and r, so more repetitions reuse the ones done), but the generator's identity."""

    def weights(model: Any) -> float | None:
        return (
            None
            if model is None
            else float(sum(float(p.double().sum()) for p in model.state_dict().values()))
        )

    key = {
        "version": CACHE_VERSION,
        "name": name,
        "real": real,
        "data": str(root.resolve()),
        "settings": {k: v for k, v in asdict(settings).items() if k != "reps"},
        "model": model_id,
        "evaluator": weights(evaluator),
        "classifier": weights(classifier),
    }
    return hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()[:16]


class _Evaluation:
    """The shared state of one evaluate / evaluate_real call."""

    def __init__(self, root: Path, evaluator: Any, classifier: Any, settings: EvalSettings) -> None:
        self.settings = settings
        self.data = EvalSet(root, settings)
        self.evaluator = evaluator
        self.classifier = classifier
        ref, _ = self.data.reference()
        self.reference = embed_motions(evaluator, ref)
        speeds = [metrics.mean_joint_speed(recover_joints(m)) for m in ref]
        self.reference_speed = float(np.median(speeds))
        self.notes: list[str] = []
        if len(self.data) < self.data.total:
            self.note(f"evaluated on a fixed random {len(self.data)} of the split's {self.data.total} clips")

    def note(self, text: str) -> None:
        if text not in self.notes:
            log.info(text)
            self.notes.append(text)

    def rep(
        self, rep: int, draw: Draw, motions: list[np.ndarray], mm: np.ndarray | None, seed: int
    ) -> dict[str, Any]:
        """Every metric of one repetition (plain JSON types)."""
        s = self.settings
        rng = np.random.default_rng([seed, rep, 1])
        text = embed_texts(self.evaluator, draw.texts, draw.tokens)
        motion = embed_motions(self.evaluator, motions)
        n = len(motions)
        values: dict[str, float] = {}
        if n >= metrics.R_PRECISION_BATCH:
            top = metrics.r_precision(text, motion, rng=rng)
            values.update({f"r_precision_top{k + 1}": float(v) for k, v in enumerate(top)})
        else:
            self.note(f"R-precision skipped: {n} clips, fewer than a batch of {metrics.R_PRECISION_BATCH}")
        values["mm_dist"] = metrics.mm_dist(text, motion)
        values["fid"] = metrics.fid(self.reference, motion)
        pairs = min(s.diversity_pairs, n)
        if pairs < s.diversity_pairs:
            self.note(
                f"Diversity over {pairs} pairs (the split has {n} clips, fewer than {s.diversity_pairs})"
            )
        values["diversity"] = metrics.diversity(motion, num_pairs=pairs, rng=rng)
        if mm is not None:
            values["multimodality"] = metrics.multimodality(
                mm, num_pairs=min(s.mm_pairs, mm.shape[1]), rng=rng
            )
        joints = [recover_joints(m) for m in motions]
        values.update(_quality(joints, self.reference_speed))
        out: dict[str, Any] = {"metrics": values, "confusion": None}
        labelled = np.flatnonzero(self.data.emotions >= 0)
        if self.classifier is not None and len(labelled):
            probs = np.concatenate(
                [
                    self.classifier.predict(*pad_motions([motions[j] for j in labelled[i : i + 64]]))
                    for i in range(0, len(labelled), 64)
                ]
            )
            true, pred = self.data.emotions[labelled], probs.argmax(1)
            f1 = metrics.f1_scores(true, pred, len(EMOTIONS))
            values["emotion_accuracy"] = metrics.accuracy(true, pred)
            values["emotion_f1_macro"] = float(f1["macro"])
            values["emotion_f1_weighted"] = float(f1["weighted"])
            out["confusion"] = metrics.confusion_matrix(true, pred, len(EMOTIONS)).tolist()
        elif self.classifier is not None:
            self.note("emotion metrics skipped: no clip of the split has an emotion label")
        groups = [EMOTIONS[e] if e >= 0 else "unlabelled" for e in self.data.emotions]
        out["cues"] = [[*asdict(clip_cues(j)).values()] for j in joints]
        out["groups"] = groups
        return out


def _load_cached(path: Path, fingerprint: str) -> dict[str, Any] | None:
    try:
        cached = json.loads(path.read_text(encoding="utf-8"))
    except (FileNotFoundError, json.JSONDecodeError):
        return None
    if cached.get("fingerprint") != fingerprint:
        log.info("%s was computed with other settings: recomputing", path)
        return None
    return cached


def _run(
    name: str,
    provider: Callable[[Draw, int], list[np.ndarray]],
    mm_provider: Callable[[list[str], list[int], int], list[np.ndarray]] | None,
    root: Path,
    evaluator: Any,
    classifier: Any,
    settings: EvalSettings,
    out_dir: Path | None,
    real: bool,
    model_id: str | None = None,
    judge: Any = None,
) -> EvalResult:
    job = _Evaluation(root, evaluator, classifier, settings)
    fingerprint = _fingerprint(name, root, settings, evaluator, classifier, real, model_id)
    cache = None if out_dir is None else Path(out_dir) / "cache" / _slug(name)
    reps: list[dict[str, Any]] = []
    samples: list[np.ndarray] = []
    sample_texts: list[str] = []
    for r in range(settings.reps):
        seed = settings.seed * 1000 + r
        draw = job.data.draw(np.random.default_rng([settings.seed, r]))
        path = None if cache is None else cache / f"rep{r:03d}.json"
        cached = None if path is None else _load_cached(path, fingerprint)
        if cached is not None:
            log.info("%s: repetition %d from %s", name, r, path)
            reps.append(cached)
            job.notes += [n for n in cached.get("notes", []) if n not in job.notes]
        else:
            motions = provider(draw, seed)
            mm = None
            if mm_provider is not None and settings.mm_texts:
                mm = _multimodality_embeddings(job, draw, mm_provider, seed, name)
            result = job.rep(r, draw, motions, mm, settings.seed)
            result.update({"fingerprint": fingerprint, "notes": list(job.notes), "rep": r})
            if path is not None:
                save_text(path, json.dumps(result) + "\n")
            reps.append(result)
            if r == 0 and settings.grid_prompts and cache is not None:
                k = min(settings.grid_prompts, len(motions))
                np.savez(cache / "samples.npz", *[recover_joints(m) for m in motions[:k]])
                save_text(cache / "samples.json", json.dumps(draw.texts[:k]) + "\n")
            if r == 0 and settings.grid_prompts and cache is None:
                samples = [recover_joints(m) for m in motions[: settings.grid_prompts]]
                sample_texts = draw.texts[: len(samples)]
    if judge is not None:  # scored from each repetition's cues, cached or not
        for rep in reps:
            accuracy = judge.accuracy(rep["cues"], rep["groups"])
            if accuracy is not None:
                rep["metrics"]["judge_accuracy"] = accuracy
    if cache is not None and settings.grid_prompts and (cache / "samples.npz").exists():
        with np.load(cache / "samples.npz") as z:
            samples = [z[f"arr_{i}"] for i in range(len(z.files))]
        sample_texts = json.loads((cache / "samples.json").read_text(encoding="utf-8"))
    return _summarise(name, reps, job.notes, samples, sample_texts, real)


def _multimodality_embeddings(
    job: _Evaluation,
    draw: Draw,
    mm_provider: Callable[[list[str], list[int], int], list[np.ndarray]],
    seed: int,
    name: str,
) -> np.ndarray:
    """Embeddings ``(K, repeats, D)`` of ``mm_repeats`` generations for each of K captions."""
    s = job.settings
    rng = np.random.default_rng([s.seed, seed, 2])
    k = min(s.mm_texts, len(draw.texts))
    if k < s.mm_texts:
        job.note(f"MultiModality over {k} captions (the split has fewer than {s.mm_texts})")
    chosen = rng.choice(len(draw.texts), k, replace=False)
    texts = [draw.texts[i] for i in chosen for _ in range(s.mm_repeats)]
    lengths = [draw.lengths[i] for i in chosen for _ in range(s.mm_repeats)]
    motions = mm_provider(texts, lengths, seed + 50_000)
    emb = embed_motions(job.evaluator, motions)
    return emb.reshape(k, s.mm_repeats, -1)


def _summarise(
    name: str,
    reps: list[dict[str, Any]],
    notes: list[str],
    samples: list[np.ndarray],
    texts: list[str],
    real: bool,
) -> EvalResult:
    values = [r["metrics"] for r in reps]
    confusions = [np.asarray(r["confusion"]) for r in reps if r.get("confusion") is not None]
    cue_rows = [Cues(*c) for r in reps for c in r["cues"]]
    groups = [g for r in reps for g in r["groups"]]
    return EvalResult(
        name=name,
        metrics=metrics.summarise(values),
        reps=values,
        notes=list(notes),
        confusion=np.sum(confusions, axis=0) if confusions else None,
        cues=table_means(cue_table(cue_rows, groups)),
        samples=samples,
        sample_texts=texts,
        real=real,
    )


def _settings(split: str, reps: int, seed: int, options: dict[str, Any]) -> EvalSettings:
    unknown = set(options) - {f for f in EvalSettings.__dataclass_fields__}
    if unknown:
        raise ConfigError(f"unknown evaluation options: {', '.join(sorted(unknown))}")
    return EvalSettings(split=split, reps=reps, seed=seed, **options)


def evaluate(
    generate_fn: GenerateFn,
    dataset_root: str | Path,
    evaluator: Any,
    *,
    name: str = "model",
    split: str = "test",
    reps: int = 3,
    emotion_classifier: Any = None,
    seed: int = 0,
    out_dir: str | Path | None = None,
    model_id: str | None = None,
    emotion_judge: Any = None,
    **options: Any,
) -> EvalResult:
    """Evaluate one generator on a split (see the module docstring). ``model_id`` identifies the
    generator's weights and settings in the cache (e.g. a checkpoint's path, size and time), so a
    retrained model under the same name is never served stale results.

    ``generate_fn(texts, lengths, seed) -> [(T_i, 263)]`` returns de-normalised features.
    ``options`` are :class:`EvalSettings` fields (``mm_texts``, ``mm_repeats``, ``diversity_pairs``,
    ``batch_size``, ``max_frames``, ``grid_prompts``, ...). ``emotion_judge``
    (:class:`~emomotion.evaluation.cue_judge.CueJudge`) adds ``judge_accuracy``, from the clips' cues.
    """
    settings = _settings(split, reps, seed, options)

    def provider(draw: Draw, rep_seed: int) -> list[np.ndarray]:
        return _generate(
            generate_fn, draw.texts, draw.lengths, rep_seed, settings.batch_size, name, "generating"
        )

    def mm_provider(texts: list[str], lengths: list[int], mm_seed: int) -> list[np.ndarray]:
        return _generate(generate_fn, texts, lengths, mm_seed, settings.batch_size, name, "multimodality")

    return _run(
        name,
        provider,
        mm_provider,
        Path(dataset_root),
        evaluator,
        emotion_classifier,
        settings,
        None if out_dir is None else Path(out_dir),
        real=False,
        model_id=model_id,
        judge=emotion_judge,
    )


def evaluate_real(
    dataset_root: str | Path,
    evaluator: Any,
    *,
    name: str = "real data",
    split: str = "test",
    reps: int = 3,
    emotion_classifier: Any = None,
    seed: int = 0,
    out_dir: str | Path | None = None,
    emotion_judge: Any = None,
    **options: Any,
) -> EvalResult:
    """The real-data row: the protocol on the split's own clips (no MultiModality)."""
    settings = _settings(split, reps, seed, options)
    return _run(
        name,
        lambda draw, _seed: list(draw.real),
        None,
        Path(dataset_root),
        evaluator,
        emotion_classifier,
        settings,
        None if out_dir is None else Path(out_dir),
        real=True,
        judge=emotion_judge,
    )


def metric_names(results: Sequence[EvalResult]) -> list[str]:
    """Metrics present in any result, in the report's order."""
    order = [
        "r_precision_top1", "r_precision_top2", "r_precision_top3", "fid", "mm_dist", "diversity", "multimodality",
        "emotion_accuracy", "judge_accuracy", "emotion_f1_macro", "emotion_f1_weighted",
        "foot_skating", "foot_skating_ratio", "jitter", "penetration", "static_rate",
    ]  # fmt: skip
    present = {m for r in results for m in r.metrics}
    return [m for m in order if m in present] + sorted(present - set(order))


__all__ = [
    "CUE_NAMES",
    "EvalResult",
    "EvalSettings",
    "GenerateFn",
    "evaluate",
    "evaluate_real",
    "metric_names",
]
