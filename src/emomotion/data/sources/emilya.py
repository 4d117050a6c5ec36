"""Emilya (Emotional Body Expression in Daily Actions; Fourati & Pelachaud 2014), Xsens MVN BVH.

Layout: ``<root>/<ACTION>/<Emotion>/<Actor>/*.bvh`` (120 fps, cm, Y-up). Labels come from the path;
actors make splits actor-disjoint. ``*zyx.bvh`` files duplicating another file of the same take are
skipped and listed. Retargeting uses the ``xsens`` joint map (Hips is the pelvis, not Chest) and
resamples 120 -> 20 fps by time.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from emomotion.data.emotions import canonical_label
from emomotion.data.sources._bvh import load_bvh_clip
from emomotion.data.sources.base import (
    BuildContext,
    LoadedClip,
    Skipped,
    SourceClip,
    register_source,
    require_dir,
)

ACTIONS = {
    "sw": "walk",
    "simplewalk": "walk",
    "wh": "walk_object",
    "walkwithobjectinhands": "walk_object",
    "sd": "sit_down",
    "sitdown": "sit_down",
    "sdbs": "sit_down",
    "bs": "seated",
    "beingseated": "seated",
    "kd": "knock",
    "knocking": "knock",
    "knock": "knock",
    "lf": "lift",
    "lift": "lift",
    "th": "throw",
    "throw": "throw",
    "mb": "move_books",
    "movebooks": "move_books",
    "tr": "turn",
    "trsw": "turn",
    "trwh": "turn",
}
"""Emilya action folders (codes or names, case and spaces ignored) -> our action names."""


def _norm(name: str) -> str:
    return re.sub(r"[^a-z0-9]", "", name.lower())


@dataclass(frozen=True)
class EmilyaSource:
    name: str = "emilya"
    description: str = "Emilya database tree <root>/<ACTION>/<Emotion>/<Actor>/*.bvh (Xsens MVN, 120 fps)"

    def scan(self, ctx: BuildContext) -> tuple[list[SourceClip], list[Skipped]]:
        root = require_dir(ctx, self.name)
        clips: list[SourceClip] = []
        skipped: list[Skipped] = []
        for bvh in sorted(root.rglob("*")):
            if not bvh.is_file() or bvh.suffix.lower() != ".bvh":
                continue
            rel = bvh.relative_to(root)
            if len(rel.parts) != 4:
                skipped.append(Skipped(str(bvh), "not at <ACTION>/<Emotion>/<Actor>/<file>.bvh"))
                continue
            action_dir, emotion_dir, actor, _ = rel.parts
            if bvh.stem.lower().endswith("zyx"):
                twin = bvh.with_name(bvh.stem[:-3].rstrip("_-") + bvh.suffix)
                if twin.exists():
                    skipped.append(Skipped(str(bvh), f"duplicate of {twin.name} (zyx re-export)"))
                    continue
            try:
                emotion = canonical_label(emotion_dir)
            except KeyError as exc:
                skipped.append(Skipped(str(bvh), str(exc.args[0])))
                continue
            action = ACTIONS.get(_norm(action_dir))
            clips.append(
                SourceClip(
                    key=f"{_norm(action_dir)}_{_norm(emotion_dir)}_{_norm(actor)}_{_norm(bvh.stem)}",
                    path=bvh,
                    action=action or "move",
                    emotion=emotion,
                    actor=actor,
                    extra={"action_code": action_dir, "action_known": action is not None},
                )
            )
        return clips, skipped

    def load(self, clip: SourceClip, ctx: BuildContext) -> LoadedClip:
        return load_bvh_clip(clip, ctx.joint_map or "xsens", ctx.units)


register_source(EmilyaSource())
