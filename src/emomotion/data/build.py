"""Build a HumanML3D-layout dataset from a source: the study's dataset stage, done right.

For every clip a source lists: load SMPL-22 joints at 20 fps, compute HumanML3D features (and the
joints recovered from them, as HumanML3D's ``new_joints``), write captions, optionally a mirrored
copy (``M`` + id, same split). Splits are assigned from the scan (actor-disjoint when actors are
known) before loading, so normalisation statistics accumulate over the training split in one
pass without holding the dataset in memory. Every input that is not used is listed, with its
reason, in ``manifest.json`` and in the returned summary.
"""

from __future__ import annotations

import logging
import multiprocessing
import shutil
import time
import zlib
from collections.abc import Iterator, Mapping
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

import numpy as np

from emomotion import __version__
from emomotion import features as F
from emomotion import skeleton as sk
from emomotion.data import layout
from emomotion.data.captions import Caption, make_caption, mirror_caption, template_captions
from emomotion.data.sources import BuildContext, Skipped, SourceClip, get_source
from emomotion.data.sources.base import sha256_of
from emomotion.data.splits import SplitConfig, SplitItem, assign_splits
from emomotion.data.stats import FeatureStats, group_average_std
from emomotion.errors import ConfigError, EmomotionError
from emomotion.io.archive import archive_stem, content_root, is_archive, unpack
from emomotion.progress import progress_bar

log = logging.getLogger(__name__)
FORMAT = "emomotion-dataset/1"


@dataclass(frozen=True)
class BuildConfig:
    source: str
    out: Path
    input: Path | None = None
    mirror: bool = False
    seed: int = 0
    joint_map: str | None = None
    labels: Path | None = None
    workers: int = 1
    split: SplitConfig = field(default_factory=SplitConfig)
    captions_per_clip: int = 3
    stats_split: Literal["train", "all"] = "train"
    overwrite: bool = False
    emotions_only: bool = False  # keep clips with an emotion label; the others are listed as skipped
    units: str | float | None = None  # BVH units override: a unit name or metres per unit
    options: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.workers < 1:
            raise ConfigError(f"workers must be >= 1, got {self.workers}")
        if self.captions_per_clip < 1:
            raise ConfigError("captions_per_clip must be >= 1")
        if self.stats_split not in ("train", "all"):
            raise ConfigError("stats_split must be 'train' or 'all'")


@dataclass(frozen=True)
class BuildSummary:
    out: Path
    clips: int
    mirrored: int
    skipped: tuple[Skipped, ...]
    feature_frames: int
    hours: float
    split_counts: Mapping[str, int]
    split_strategy: str
    seconds: float

    def describe(self) -> str:
        lines = [
            f"built {self.clips} clips (+{self.mirrored} mirrored), {self.feature_frames:,} frames, "
            f"{self.hours:.2f} h in {self.seconds:.1f} s -> {self.out}",
            f"splits ({self.split_strategy}): " + ", ".join(f"{k} {v}" for k, v in self.split_counts.items()),
        ]
        if self.skipped:
            lines.append(f"skipped {len(self.skipped)} input(s):")
            lines += [f"  {s.path}: {s.reason}" for s in self.skipped]
        return "\n".join(lines)


@dataclass(frozen=True)
class _Done:
    clip: SourceClip
    features: np.ndarray
    joints: np.ndarray
    captions: tuple[Caption, ...]
    info: Mapping[str, Any]
    source_frames: int


def _clip_seed(key: str, seed: int) -> int:
    return zlib.crc32(f"{key}|{seed}".encode())


def _process(source_name: str, clip: SourceClip, ctx: BuildContext, n_captions: int) -> _Done | Skipped:
    where = str(clip.path) if clip.path else clip.key
    try:
        loaded = get_source(source_name).load(clip, ctx)
        if loaded.joints.shape[0] < 2:
            return Skipped(where, f"only {loaded.joints.shape[0]} frame(s) at 20 fps after retargeting")
        processed = F.process_joints(loaded.joints)
        texts = clip.captions or tuple(
            template_captions(
                clip.action or "move",
                clip.emotion.emotion,
                count=n_captions,
                seed=_clip_seed(clip.key, ctx.seed),
                style=clip.style,
            )
        )
        captions = tuple(make_caption(t) for t in texts)
        joints = F.recover_joints(processed.features).astype(np.float32)
    except EmomotionError as exc:
        if exc.path is None:
            return Skipped(where, str(exc), exc.line)  # str() starts with the line when there is one
        return Skipped(where, f"{exc.where}: {exc.reason}" if exc.where else exc.reason, exc.line)
    except Exception as exc:
        log.debug("unexpected failure on %s", where, exc_info=True)
        return Skipped(where, f"unexpected {type(exc).__name__}: {str(exc)[:300]}")
    return _Done(clip, processed.features, joints, captions, loaded.info, int(loaded.joints.shape[0]))


def _results(cfg: BuildConfig, clips: list[SourceClip], ctx: BuildContext) -> Iterator[_Done | Skipped]:
    if cfg.workers == 1:
        for clip in clips:
            yield _process(cfg.source, clip, ctx, cfg.captions_per_clip)
        return
    # spawn, not fork: forking a process that runs progress-bar and torch threads can deadlock the child
    with ProcessPoolExecutor(cfg.workers, mp_context=multiprocessing.get_context("spawn")) as pool:
        futures = pool.map(
            _process,
            [cfg.source] * len(clips),
            clips,
            [ctx] * len(clips),
            [cfg.captions_per_clip] * len(clips),
            chunksize=4,
        )
        yield from futures


def _prepare_out(cfg: BuildConfig) -> None:
    out = cfg.out
    if (out / layout.MANIFEST).exists() and not cfg.overwrite:
        raise ConfigError(f"{out} already holds a dataset; pass --overwrite to rebuild it")
    if cfg.input is not None and out.resolve() == cfg.input.resolve():
        raise ConfigError("--out must differ from --input: sources are never modified")
    for sub in (layout.JOINTS_DIR, layout.FEATURES_DIR, layout.TEXTS_DIR):
        if (out / sub).exists():
            shutil.rmtree(out / sub)
    out.mkdir(parents=True, exist_ok=True)


def _record(done: _Done, clip_id: str, split: str, mirrored_from: str | None) -> dict[str, Any]:
    clip = done.clip
    return {
        "source_file": str(clip.path) if clip.path else None,
        "sha256": sha256_of(clip.path) if clip.path else None,
        "action": clip.action,
        "emotion": clip.emotion.emotion,
        "emotion_index": clip.emotion.index,
        "source_label": clip.emotion.source_label,
        "emotion_approximate": clip.emotion.approximate,
        "style": clip.style,
        "actor": clip.actor,
        "synthetic": clip.synthetic,
        "split": split,
        "mirrored_from": mirrored_from,
        "source_frames": done.source_frames,
        "joint_frames": int(done.joints.shape[0]),
        "feature_frames": int(done.features.shape[0]),
        "fps": sk.FPS,
        "captions": len(done.captions),
        "extra": dict(clip.extra),
        **dict(done.info),
    }


def _input_folder(cfg: BuildConfig) -> Path | None:
    """The input folder; an archive is unpacked once into ``<out>/raw/<archive name>``."""
    if cfg.input is None or not is_archive(cfg.input):
        return cfg.input
    return content_root(unpack(cfg.input, cfg.out / "raw" / archive_stem(cfg.input)))


def build_dataset(cfg: BuildConfig) -> BuildSummary:
    """Build ``cfg.source`` into ``cfg.out`` (see the module docstring)."""
    start = time.perf_counter()
    source = get_source(cfg.source)
    ctx = BuildContext(
        input=_input_folder(cfg),
        seed=cfg.seed,
        joint_map=cfg.joint_map,
        labels=cfg.labels,
        units=cfg.units,
        options=dict(cfg.options),
    )
    if getattr(source, "indexes_in_place", False):  # an existing HumanML3D layout: validate and index
        manifest = source.index(ctx, cfg.out, overwrite=cfg.overwrite)  # type: ignore[attr-defined]
        summary = manifest["summary"]
        return BuildSummary(
            out=cfg.out,
            clips=summary["clips"],
            mirrored=sum(1 for c in manifest["clips"].values() if c["mirrored_from"]),
            skipped=tuple(Skipped(**s) for s in manifest["skipped"]),
            feature_frames=summary["feature_frames"],
            hours=summary["hours"],
            split_counts=manifest["splits"]["counts"],
            split_strategy="kept from input",
            seconds=time.perf_counter() - start,
        )
    clips, skipped = source.scan(ctx)
    if cfg.emotions_only:
        kept = [c for c in clips if c.emotion.emotion is not None]
        skipped = list(skipped) + [
            Skipped(
                str(c.path) if c.path else c.key,
                f"no emotion label (style {c.style or c.emotion.source_label!r}); build asked for emotions only",
            )
            for c in clips
            if c.emotion.emotion is None
        ]
        clips = kept
    keys = [c.key for c in clips]
    if len(set(keys)) != len(keys):
        raise ConfigError(f"source {cfg.source!r} produced duplicate clip ids")
    if not clips:
        raise ConfigError(f"source {cfg.source!r} found no usable clips in {cfg.input}")
    _prepare_out(cfg)
    split_cfg = SplitConfig(ratios=cfg.split.ratios, strategy=cfg.split.strategy, seed=cfg.seed)
    assignment, strategy = assign_splits(
        [SplitItem(c.key, actor=c.actor, group=c.action, emotion=c.emotion.emotion) for c in clips], split_cfg
    )
    stats = FeatureStats()
    records: dict[str, dict[str, Any]] = {}
    final_splits: dict[str, str] = {}
    skipped = list(skipped)
    with progress_bar("clips") as progress:
        task = progress.add_task(f"building {cfg.source}", total=len(clips))
        for result in _results(cfg, clips, ctx):
            progress.advance(task)
            if isinstance(result, Skipped):
                skipped.append(result)
                log.warning("skipped %s: %s", result.path, result.reason)
                continue
            clip_id = result.clip.key
            split = assignment[clip_id]
            versions = [(clip_id, result.features, result.joints, result.captions, None)]
            if cfg.mirror:
                feats = F.mirror_features(result.features)
                versions.append(
                    (
                        "M" + clip_id,
                        feats,
                        F.recover_joints(feats).astype(np.float32),
                        tuple(mirror_caption(c) for c in result.captions),
                        clip_id,
                    )
                )
            for vid, feats, joints, captions, origin in versions:
                layout.write_clip(cfg.out, vid, feats, joints, captions)
                if cfg.stats_split == "all" or split == "train":
                    stats.update(feats)
                records[vid] = _record(result, vid, split, origin)
                final_splits[vid] = split
    if not records:
        first = f"; first: {skipped[0].path}: {skipped[0].reason}" if skipped else ""
        raise ConfigError(
            f"no clip of {cfg.source!r} could be built: {len(skipped)} input(s) skipped (each logged above){first}"
        )
    if stats.count == 0:
        raise ConfigError(f"the {cfg.stats_split} split is empty: cannot compute Mean/Std")
    std = group_average_std(stats.std())
    std[std < 1e-8] = 1.0
    layout.save_stats(cfg.out, stats.mean(), std)
    counts = layout.write_splits(cfg.out, final_splits)
    frames = sum(r["feature_frames"] for r in records.values())
    summary = BuildSummary(
        out=cfg.out,
        clips=sum(1 for r in records.values() if r["mirrored_from"] is None),
        mirrored=sum(1 for r in records.values() if r["mirrored_from"] is not None),
        skipped=tuple(skipped),
        feature_frames=frames,
        hours=frames / sk.FPS / 3600,
        split_counts=counts,
        split_strategy=strategy,
        seconds=time.perf_counter() - start,
    )
    layout.write_manifest(
        cfg.out,
        {
            "format": FORMAT,
            "source": cfg.source,
            "description": source.description,
            "input": str(cfg.input) if cfg.input else None,
            "created": datetime.now(UTC).isoformat(timespec="seconds"),
            "emomotion_version": __version__,
            "options": {
                "mirror": cfg.mirror,
                "seed": cfg.seed,
                "joint_map": cfg.joint_map,
                "labels": str(cfg.labels) if cfg.labels else None,
                "captions_per_clip": cfg.captions_per_clip,
                "emotions_only": cfg.emotions_only,
                "units": cfg.units,
                **{k: v for k, v in cfg.options.items()},
            },
            "splits": {
                "strategy": strategy,
                "ratios": list(split_cfg.ratios),
                "seed": cfg.seed,
                "counts": counts,
            },
            "stats": {"split": cfg.stats_split, "frames": stats.count, "from": "this dataset"},
            "summary": {
                "clips": summary.clips,
                "mirrored": summary.mirrored,
                "skipped": len(skipped),
                "feature_frames": frames,
                "hours": summary.hours,
            },
            "clips": records,
            "skipped": [asdict(s) for s in skipped],
        },
    )
    log.info("%s", summary.describe())
    return summary
