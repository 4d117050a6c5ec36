"""Merge HumanML3D-layout datasets into one, never overwriting a clip.

Every input gets an id prefix (its folder name unless given), so ``000001`` from two datasets
becomes ``emilya_000001`` and ``emotionalt2m_000001`` (mirrored ``M``-ids keep the ``M`` in front:
``Memilya_000001``). Splits are kept as each input had them. Normalisation statistics are either
copied from one dataset (``stats_from``: the right choice when the merged set is for fine-tuning a
model pretrained on that dataset) or recomputed over the merged training split.
"""

from __future__ import annotations

import logging
import os
import re
import shutil
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from emomotion import __version__
from emomotion.data import layout
from emomotion.data.stats import FeatureStats, group_average_std
from emomotion.errors import ConfigError, DatasetError
from emomotion.progress import progress_bar

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class MergeSummary:
    out: Path
    clips_per_input: dict[str, int]
    total: int
    stats: str

    def describe(self) -> str:
        per = ", ".join(f"{k}: {v}" for k, v in self.clips_per_input.items())
        return f"merged {self.total} clips ({per}) -> {self.out}; Mean/Std {self.stats}"


def _prefix_for(path: Path) -> str:
    return re.sub(r"[^A-Za-z0-9]+", "", path.resolve().name).lower() or "dataset"


def _new_id(prefix: str, clip_id: str) -> str:
    if clip_id.startswith("M") and len(clip_id) > 1:
        return f"M{prefix}_{clip_id[1:]}"
    return f"{prefix}_{clip_id}"


def _link_or_copy(src: Path, dst: Path) -> None:
    dst.parent.mkdir(parents=True, exist_ok=True)
    try:
        os.link(src, dst)
    except OSError:
        shutil.copy2(src, dst)


def _read_splits(root: Path) -> dict[str, str]:
    splits: dict[str, str] = {}
    for name in ("train", "val", "test"):
        for clip_id in layout.read_split(root, name):
            if clip_id in splits:
                raise DatasetError(
                    f"clip {clip_id} is in both {splits[clip_id]}.txt and {name}.txt", path=root
                )
            splits[clip_id] = name
    return splits


def merge_datasets(
    inputs: Sequence[Path],
    out: Path,
    *,
    prefixes: Sequence[str] | None = None,
    stats_from: Path | None = None,
    overwrite: bool = False,
) -> MergeSummary:
    """Merge ``inputs`` into ``out`` (see the module docstring)."""
    inputs = [Path(p) for p in inputs]
    if len(inputs) < 2:
        raise ConfigError("merge needs at least two datasets")
    first_seen: dict[Path, Path] = {}
    for p in inputs:  # the same folder twice (any spelling, links included) would duplicate every clip
        twin = first_seen.setdefault(p.resolve(), p)
        if twin is not p:
            raise ConfigError(f"the same dataset is given twice ({twin} and {p}); merge each once", path=p)
    names = list(prefixes) if prefixes else [_prefix_for(p) for p in inputs]
    if len(names) != len(inputs):
        raise ConfigError(f"{len(inputs)} datasets but {len(names)} prefixes")
    seen: dict[str, int] = {}
    for i, name in enumerate(names):  # two folders with the same name get _2, _3, ...
        if name in seen:
            seen[name] += 1
            names[i] = f"{name}{seen[name]}"
        else:
            seen[name] = 1
    if (out / layout.MANIFEST).exists() and not overwrite:
        raise ConfigError(f"{out} already holds a dataset; pass --overwrite")
    for p in inputs:
        if out.resolve() == p.resolve():
            raise ConfigError("--out must differ from every input")
    plan: list[
        tuple[Path, str, str, str, str, dict[str, Any]]
    ] = []  # root, prefix, old id, new id, split, record
    new_ids: dict[str, str] = {}
    for root, prefix in zip(inputs, names, strict=True):
        splits = _read_splits(root)
        try:
            records = layout.read_manifest(root).get("clips", {})
        except DatasetError:
            records = {}
        for clip_id, split in sorted(splits.items()):
            new = _new_id(prefix, clip_id)
            if new in new_ids:
                raise DatasetError(f"id collision: {new} comes from both {new_ids[new]} and {root}/{clip_id}")
            new_ids[new] = f"{root}/{clip_id}"
            plan.append((root, prefix, clip_id, new, split, dict(records.get(clip_id, {}))))
    for sub in (layout.JOINTS_DIR, layout.FEATURES_DIR, layout.TEXTS_DIR):
        if (out / sub).exists():
            shutil.rmtree(out / sub)
    stats = FeatureStats()
    final_splits: dict[str, str] = {}
    clips: dict[str, dict[str, Any]] = {}
    per_input = dict.fromkeys(names, 0)
    with progress_bar("clips") as progress:
        task = progress.add_task("merging", total=len(plan))
        for root, prefix, old, new, split, record in plan:
            for sub in (layout.FEATURES_DIR, layout.JOINTS_DIR):
                src = root / sub / f"{old}.npy"
                if not src.is_file():
                    raise DatasetError(
                        f"{old} is listed in a split but {sub}/{old}.npy is missing", path=root
                    )
                _link_or_copy(src, out / sub / f"{new}.npy")
            text = root / layout.TEXTS_DIR / f"{old}.txt"
            if not text.is_file():
                raise DatasetError(f"{old} has no caption file", path=text)
            _link_or_copy(text, out / layout.TEXTS_DIR / f"{new}.txt")
            if stats_from is None and split == "train":
                stats.update(np.load(root / layout.FEATURES_DIR / f"{old}.npy"))
            per_input[prefix] += 1
            record.update({"split": split, "merged_from": {"dataset": str(root), "id": old}})
            if record.get("mirrored_from"):
                record["mirrored_from"] = _new_id(prefix, record["mirrored_from"])
            clips[new] = record
            final_splits[new] = split
            progress.advance(task)
    if stats_from is not None:
        mean, std = layout.load_stats(stats_from)
        stats_note = f"copied from {stats_from}"
    else:
        if stats.count == 0:
            raise DatasetError("the merged train split is empty: cannot compute Mean/Std")
        mean = stats.mean()
        std = group_average_std(stats.std())
        std[std < 1e-8] = 1.0
        stats_note = "recomputed over the merged train split (pass --stats-from BASE to keep a base model's)"
    layout.save_stats(out, mean, std)
    counts = layout.write_splits(out, final_splits)
    layout.write_manifest(
        out,
        {
            "format": "emomotion-dataset/1",
            "source": "merge",
            "inputs": [{"path": str(p), "prefix": n} for p, n in zip(inputs, names, strict=True)],
            "created": datetime.now(UTC).isoformat(timespec="seconds"),
            "emomotion_version": __version__,
            "splits": {"strategy": "kept from inputs", "counts": counts},
            "stats": {"from": stats_note, "frames": stats.count},
            "summary": {"clips": len(clips)},
            "clips": clips,
            "skipped": [],
        },
    )
    summary = MergeSummary(out, per_input, len(clips), stats_note)
    log.info("%s", summary.describe())
    return summary
