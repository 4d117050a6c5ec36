"""Loading one BVH clip as SMPL-22 joints: shared by the BVH-based sources."""

from __future__ import annotations

from emomotion.data.sources.base import LoadedClip, SourceClip
from emomotion.io.bvh import read_bvh
from emomotion.retarget import retarget


def load_bvh_clip(clip: SourceClip, joint_map: str | None, units: str | float | None = None) -> LoadedClip:
    assert clip.path is not None
    motion = read_bvh(clip.path)
    result = retarget(motion, joint_map, units=units, source=clip.path)
    return LoadedClip(result.joints, {"retarget": result.report.to_dict()})
