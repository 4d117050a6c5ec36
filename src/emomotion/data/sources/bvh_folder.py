"""Any folder of BVH files, with a joint map and an optional labels CSV.

The CSV has a header with ``file`` and any of ``action``, ``emotion``, ``actor``, ``caption``
(several captions separated by ``|``); ``file`` is a path relative to the folder or a file stem.
Emotions use the common vocabulary (:data:`emomotion.data.emotions.EMOTIONS`, any spelling).
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

from emomotion.data.emotions import EmotionLabel, canonical_label
from emomotion.data.sources._bvh import load_bvh_clip
from emomotion.data.sources.base import (
    BuildContext,
    LoadedClip,
    Skipped,
    SourceClip,
    register_source,
    require_dir,
)
from emomotion.errors import DatasetError


def read_labels(path: Path) -> dict[str, dict[str, str]]:
    """file key -> row; a missing ``file`` column or a duplicate key is a DatasetError."""
    try:
        with open(path, newline="", encoding="utf-8") as fh:
            reader = csv.DictReader(fh)
            if not reader.fieldnames or "file" not in reader.fieldnames:
                raise DatasetError("the labels CSV needs a header with a 'file' column", path=path)
            rows: dict[str, dict[str, str]] = {}
            for lineno, row in enumerate(reader, start=2):
                key = (row.get("file") or "").strip()
                if not key:
                    raise DatasetError("empty 'file' value", path=path, where=f"line {lineno}")
                if key in rows:
                    raise DatasetError(f"file {key!r} is listed twice", path=path, where=f"line {lineno}")
                rows[key] = {k: (v or "").strip() for k, v in row.items() if k}
            return rows
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise DatasetError(f"cannot read the labels CSV: {exc}", path=path) from exc


@dataclass(frozen=True)
class BvhFolderSource:
    name: str = "bvh"
    description: str = "any folder of BVH files (+ --joint-map, optional --labels CSV)"

    def scan(self, ctx: BuildContext) -> tuple[list[SourceClip], list[Skipped]]:
        root = require_dir(ctx, self.name)
        labels = read_labels(ctx.labels) if ctx.labels else {}
        used: set[str] = set()
        clips: list[SourceClip] = []
        skipped: list[Skipped] = []
        for bvh in sorted(p for p in root.rglob("*") if p.is_file() and p.suffix.lower() == ".bvh"):
            rel = bvh.relative_to(root).as_posix()
            key = rel if rel in labels else bvh.stem if bvh.stem in labels else None
            row = labels.get(key, {}) if key else {}
            if key:
                used.add(key)
            try:
                emotion = canonical_label(row["emotion"]) if row.get("emotion") else EmotionLabel("", None)
            except KeyError as exc:
                skipped.append(Skipped(str(bvh), str(exc.args[0])))
                continue
            captions = tuple(c.strip() for c in row.get("caption", "").split("|") if c.strip()) or None
            clips.append(
                SourceClip(
                    key=rel[: -len(bvh.suffix)].replace("/", "_"),
                    path=bvh,
                    action=row.get("action") or "move",
                    emotion=emotion,
                    actor=row.get("actor") or None,
                    captions=captions,
                )
            )
        for key in sorted(set(labels) - used):
            skipped.append(Skipped(str(ctx.labels), f"labels row {key!r} matches no BVH file"))
        return clips, skipped

    def load(self, clip: SourceClip, ctx: BuildContext) -> LoadedClip:
        return load_bvh_clip(clip, ctx.joint_map, ctx.units)


register_source(BvhFolderSource())
