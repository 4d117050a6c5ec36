"""An existing HumanML3D-layout folder (HumanML3D itself, EmotionalT2M, ...), indexed in place.

The input is validated (feature and joint shapes, NaN, caption files, split ids that do not exist)
and never modified: the output folder gets the manifest, split files listing only the valid clips,
the input's Mean/Std, and symbolic links to the input's ``new_joints``, ``new_joint_vecs`` and
``texts``. Emotion labels come from a labels CSV (``id,emotion``) or are inferred from the caption
words (:data:`emomotion.data.emotions.CAPTION_LEXICON`, marked approximate).
"""

from __future__ import annotations

import csv
import logging
import os
import shutil
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from emomotion import __version__
from emomotion import skeleton as sk
from emomotion.data import layout
from emomotion.data.emotions import EmotionLabel, canonical_label, infer_emotion
from emomotion.data.sources.base import (
    BuildContext,
    LoadedClip,
    Skipped,
    SourceClip,
    register_source,
    require_dir,
)
from emomotion.errors import ConfigError, DatasetError
from emomotion.progress import progress_bar

log = logging.getLogger(__name__)


def _labels(path: Path) -> dict[str, str]:
    with open(path, newline="", encoding="utf-8") as fh:
        reader = csv.DictReader(fh)
        if not reader.fieldnames or not {"id", "emotion"} <= set(reader.fieldnames):
            raise DatasetError("the labels CSV needs 'id' and 'emotion' columns", path=path)
        return {row["id"].strip(): row["emotion"].strip() for row in reader}


def _check_clip(root: Path, clip_id: str) -> tuple[int, list[str]] | str:
    """(feature frames, caption texts) or the reason the clip is unusable."""
    feats_path = root / layout.FEATURES_DIR / f"{clip_id}.npy"
    if not feats_path.is_file():
        return "features file missing"
    try:
        feats = np.load(feats_path, mmap_mode="r")
    except (ValueError, OSError) as exc:
        return f"unreadable features: {exc}"
    if feats.ndim != 2 or feats.shape[1] != sk.FEATURE_DIM or feats.shape[0] < 1:
        return f"features have shape {feats.shape}, expected (T, {sk.FEATURE_DIM})"
    if not np.isfinite(feats).all():
        return "features contain NaN or inf"
    joints_path = root / layout.JOINTS_DIR / f"{clip_id}.npy"
    if joints_path.is_file():
        shape = np.load(joints_path, mmap_mode="r").shape
        if shape[1:] != (sk.NUM_JOINTS, 3):
            return f"joints have shape {shape}"
    try:
        captions = layout.read_captions(root, clip_id)
    except DatasetError as exc:
        return exc.reason if exc.where is None else f"{exc.where}: {exc.reason}"
    if not captions:
        return "caption file is empty"
    return int(feats.shape[0]), [c.text for c in captions]


@dataclass(frozen=True)
class HumanML3DSource:
    name: str = "humanml3d"
    description: str = (
        "an existing HumanML3D-layout folder (HumanML3D, EmotionalT2M), validated and indexed in place"
    )
    indexes_in_place: bool = True

    def scan(self, ctx: BuildContext) -> tuple[list[SourceClip], list[Skipped]]:
        raise ConfigError(
            "the humanml3d source is indexed in place; use build_dataset / `data build humanml3d`"
        )

    def load(self, clip: SourceClip, ctx: BuildContext) -> LoadedClip:
        raise ConfigError("the humanml3d source is indexed in place")

    def index(self, ctx: BuildContext, out: Path, *, overwrite: bool = False) -> dict[str, Any]:
        root = require_dir(ctx, self.name)
        start = time.perf_counter()
        if out.resolve() == root.resolve():
            raise ConfigError("--out must differ from --input: the input is never modified")
        if (out / layout.MANIFEST).exists() and not overwrite:
            raise ConfigError(f"{out} already holds a dataset; pass --overwrite")
        labels = _labels(ctx.labels) if ctx.labels else {}
        splits: dict[str, str] = {}
        skipped: list[Skipped] = []
        for split in ("train", "val", "test"):
            try:
                ids = layout.read_split(root, split)
            except DatasetError:
                skipped.append(Skipped(str(root / f"{split}.txt"), "split file missing"))
                continue
            for clip_id in ids:
                if clip_id in splits:
                    skipped.append(
                        Skipped(f"{split}.txt:{clip_id}", f"already in {splits[clip_id]}.txt; kept there")
                    )
                    continue
                splits[clip_id] = split
        clips: dict[str, dict[str, Any]] = {}
        kept: dict[str, str] = {}
        with progress_bar("clips") as progress:
            task = progress.add_task(f"indexing {root.name}", total=len(splits))
            for clip_id, split in sorted(splits.items()):
                progress.advance(task)
                checked = _check_clip(root, clip_id)
                if isinstance(checked, str):
                    skipped.append(Skipped(f"{root}/{clip_id}", checked))
                    continue
                frames, texts = checked
                if clip_id in labels:
                    try:
                        emotion = canonical_label(labels[clip_id])
                    except KeyError as exc:
                        skipped.append(Skipped(f"{root}/{clip_id}", str(exc.args[0])))
                        continue
                else:
                    emotion = infer_emotion(texts) if texts else EmotionLabel("", None)
                clips[clip_id] = {
                    "source_file": str(root / layout.FEATURES_DIR / f"{clip_id}.npy"),
                    "emotion": emotion.emotion,
                    "emotion_index": emotion.index,
                    "source_label": emotion.source_label,
                    "emotion_approximate": emotion.approximate,
                    "action": None,
                    "split": split,
                    "feature_frames": frames,
                    "captions": len(texts),
                    "mirrored_from": clip_id[1:]
                    if clip_id.startswith("M") and clip_id[1:] in splits
                    else None,
                }
                kept[clip_id] = split
        if not kept:
            raise DatasetError("no valid clip found", path=root)
        out.mkdir(parents=True, exist_ok=True)
        for sub in (layout.FEATURES_DIR, layout.JOINTS_DIR, layout.TEXTS_DIR):
            link = out / sub
            if link.is_symlink() or link.is_file():
                link.unlink()
            elif link.exists():
                shutil.rmtree(link)
            if (root / sub).is_dir():
                os.symlink((root / sub).resolve(), link, target_is_directory=True)
        try:
            mean, std = layout.load_stats(root)
            stats_note = f"copied from {root}"
        except DatasetError:
            from emomotion.data.stats import compute_mean_std

            train = [
                np.load(root / layout.FEATURES_DIR / f"{i}.npy") for i, s in kept.items() if s == "train"
            ]
            mean, std = compute_mean_std(train)
            stats_note = "computed over the train split (the input has no Mean/Std)"
        layout.save_stats(out, mean, std)
        counts = layout.write_splits(out, kept)
        frames_total = sum(c["feature_frames"] for c in clips.values())
        manifest = {
            "format": "emomotion-dataset/1",
            "source": self.name,
            "description": self.description,
            "input": str(root),
            "created": datetime.now(UTC).isoformat(timespec="seconds"),
            "emomotion_version": __version__,
            "options": {
                "labels": str(ctx.labels) if ctx.labels else None,
                "emotion_from": "labels CSV" if labels else "caption lexicon",
            },
            "splits": {"strategy": "kept from input", "counts": counts},
            "stats": {"from": stats_note},
            "summary": {
                "clips": len(clips),
                "skipped": len(skipped),
                "feature_frames": frames_total,
                "hours": frames_total / sk.FPS / 3600,
            },
            "clips": clips,
            "skipped": [{"path": s.path, "reason": s.reason} for s in skipped],
        }
        layout.write_manifest(out, manifest)
        log.info(
            "indexed %d clips of %s in %.1f s (%d skipped)",
            len(clips),
            root,
            time.perf_counter() - start,
            len(skipped),
        )
        return manifest


register_source(HumanML3DSource())
