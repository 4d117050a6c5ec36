"""Bandai Namco Research motion datasets 1 and 2 (BVH + JSON labels + cfg label files).

Layout: ``<root>/data/dataset-N_<content>_<style>_<id>.{bvh,json}``, ``<root>/cfg/content_label.txt``
and ``style_label.txt`` (the JSON's ``content`` / ``style`` are 0-based line indexes). Styles map to
emotions through :data:`emomotion.data.emotions.SOURCE_LABELS` (non-emotional styles keep
``emotion=None`` and their style). Actors are not published, so splits fall back to stratified.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from emomotion.data.emotions import map_label
from emomotion.data.sources._bvh import load_bvh_clip
from emomotion.data.sources.base import (
    BuildContext,
    LoadedClip,
    Skipped,
    SourceClip,
    register_source,
    require_dir,
)

CONTENT_TO_ACTION = {
    "walk": "walk",
    "run": "run",
    "dash": "dash",
    "walk-back": "walk_back",
    "walk-left": "walk_left",
    "walk-right": "walk_right",
    "walk-turn-left": "walk_turn_left",
    "walk-turn-right": "walk_turn_right",
    "bow": "bow",
    "bye": "bye",
    "byebye": "bye",
    "guide": "guide",
    "respond": "respond",
    "call": "call",
    "punch": "punch",
    "kick": "kick",
    "slash": "slash",
    "dance-long": "dance",
    "dance-short": "dance",
    "wave-both-hands": "wave_both",
    "wave-left-hand": "wave_left",
    "wave-right-hand": "wave_right",
    "raise-up-both-hands": "raise_both",
    "raise-up-left-hand": "raise_left",
    "raise-up-right-hand": "raise_right",
}


def _labels(path: Path) -> list[str]:
    names = [line.strip() for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    return [n.split("_", 1)[1] if n.startswith("dataset-") and "_" in n else n for n in names]


@dataclass(frozen=True)
class BandaiSource:
    name: str = "bandai"
    description: str = "Bandai Namco Research motion datasets (BVH + JSON labels), dataset-1 and dataset-2"

    def scan(self, ctx: BuildContext) -> tuple[list[SourceClip], list[Skipped]]:
        root = require_dir(ctx, self.name)
        data = root / "data" if (root / "data").is_dir() else root
        cfg = root / "cfg"
        contents = _labels(cfg / "content_label.txt") if (cfg / "content_label.txt").is_file() else None
        styles = _labels(cfg / "style_label.txt") if (cfg / "style_label.txt").is_file() else None
        clips: list[SourceClip] = []
        skipped: list[Skipped] = []
        for bvh in sorted(data.glob("*.bvh")):
            content, style, reason = self._label(bvh, contents, styles)
            if reason:
                skipped.append(Skipped(str(bvh), reason))
                continue
            assert content is not None and style is not None
            try:
                emotion = map_label("bandai", style)
            except KeyError as exc:
                skipped.append(Skipped(str(bvh), str(exc.args[0])))
                continue
            action = CONTENT_TO_ACTION.get(content)
            if action is None:
                skipped.append(Skipped(str(bvh), f"unknown Bandai content {content!r}"))
                continue
            clips.append(
                SourceClip(
                    key=bvh.stem,
                    path=bvh,
                    action=action,
                    emotion=emotion,
                    style=None if emotion.emotion else style,
                    extra={"content": content, "style": style},
                )
            )
        for orphan in sorted(data.glob("*.json")):
            if not orphan.with_suffix(".bvh").exists():
                skipped.append(Skipped(str(orphan), "label file without a BVH"))
        return clips, skipped

    @staticmethod
    def _label(
        bvh: Path, contents: list[str] | None, styles: list[str] | None
    ) -> tuple[str | None, str | None, str | None]:
        label_file = bvh.with_suffix(".json")
        if label_file.is_file() and contents is not None and styles is not None:
            try:
                labels = json.loads(label_file.read_text(encoding="utf-8"))
                return contents[int(labels["content"])], styles[int(labels["style"])], None
            except (ValueError, KeyError, IndexError, TypeError) as exc:
                return None, None, f"bad label file {label_file.name}: {exc!r}"
        parts = bvh.stem.split("_")  # dataset-N_<content>_<style>_<id>
        if len(parts) >= 4:
            return parts[1], parts[2], None
        return None, None, "no JSON label and the file name is not dataset-N_<content>_<style>_<id>"

    def load(self, clip: SourceClip, ctx: BuildContext) -> LoadedClip:
        return load_bvh_clip(clip, ctx.joint_map or "bandai", ctx.units)


register_source(BandaiSource())
