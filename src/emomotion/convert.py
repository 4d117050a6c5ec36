"""Load any supported motion file and convert it to another representation.

Inputs: BVH (any rig with a joint map), joints ``.npy`` (T, 22, 3) and HumanML3D features ``.npy``
(T, 263). Outputs: canonical joints, features, an SMPL-22 BVH, or a stick-figure gif / mp4.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path

import numpy as np

from emomotion import features as F
from emomotion import skeleton as sk
from emomotion.errors import ConfigError, EmomotionError, MotionFormatError
from emomotion.io.atomic import save_npy
from emomotion.retarget import RetargetReport, resample, retarget

log = logging.getLogger(__name__)


class Target(StrEnum):
    JOINTS = "joints"
    FEATURES = "features"
    BVH = "bvh"
    GIF = "gif"
    MP4 = "mp4"


DEFAULT_SUFFIX = {
    Target.JOINTS: ".joints.npy",
    Target.FEATURES: ".features.npy",
    Target.BVH: ".bvh",
    Target.GIF: ".gif",
    Target.MP4: ".mp4",
}


@dataclass(frozen=True)
class LoadedMotion:
    """A motion in both library representations."""

    joints: np.ndarray  # (T, 22, 3) float64, canonical (HumanML3D target skeleton, on the floor, facing +Z)
    features: np.ndarray  # (T-1, 263) float32
    source: Path
    report: RetargetReport | None = None


def _load_npy(path: Path, fps: float | None) -> LoadedMotion:
    try:
        arr = np.load(path, allow_pickle=False)
    except (ValueError, OSError, EOFError) as exc:
        raise MotionFormatError(f"not a readable .npy array: {exc}", path=path) from exc
    if arr.ndim in (2, 3) and arr.shape[0] < 2:
        raise MotionFormatError(f"a motion needs at least 2 frames, got shape {arr.shape}", path=path)
    try:
        if arr.ndim == 3 and arr.shape[1:] == (sk.NUM_JOINTS, 3):
            joints = F.check_joints(arr)
            if fps is not None and fps != sk.FPS:
                joints = resample(joints, fps, sk.FPS)
            processed = F.process_joints(joints)
            return LoadedMotion(processed.joints, processed.features, path)
        if arr.ndim == 2 and arr.shape[1] == sk.FEATURE_DIM:
            if fps is not None and fps != sk.FPS:
                raise ConfigError("features are always at 20 fps; --fps applies to joints files only")
            feats = F.check_features(arr).astype(np.float32)
            return LoadedMotion(F.recover_joints(feats), feats, path)
    except EmomotionError as exc:
        if exc.path is None:
            raise type(exc)(exc.reason, path=path, where=exc.where) from exc
        raise
    raise MotionFormatError(
        f"expected joints (T, {sk.NUM_JOINTS}, 3) or features (T, {sk.FEATURE_DIM}), got shape {arr.shape}",
        path=path,
    )


def load_motion(
    path: str | Path,
    *,
    joint_map: str | None = None,
    fps: float | None = None,
    units: str | float | None = None,
) -> LoadedMotion:
    """Read a BVH or ``.npy`` motion as canonical SMPL-22 joints plus HumanML3D features.

    ``units`` (BVH only): a unit name or metres per unit, overriding the map's and the guess."""
    path = Path(path)
    if not path.is_file():
        raise MotionFormatError("no such file", path=path)
    suffix = path.suffix.lower()
    if suffix == ".npy":
        return _load_npy(path, fps)
    if suffix == ".bvh":
        from emomotion.io.bvh import read_bvh

        result = retarget(read_bvh(path), joint_map, units=units, source=path)
        try:
            processed = F.process_joints(result.joints)
        except MotionFormatError as exc:
            raise MotionFormatError(exc.reason, path=path) from exc
        return LoadedMotion(processed.joints, processed.features, path, result.report)
    raise MotionFormatError(f"unsupported input type {suffix or '(none)'}; use .bvh or .npy", path=path)


def default_output(path: Path, target: Target) -> Path:
    stem = path.name[: -len(path.suffix)] if path.suffix else path.name
    return path.with_name(stem + DEFAULT_SUFFIX[target])


def write_motion(motion: LoadedMotion, target: Target, out: Path, *, title: str | None = None) -> Path:
    """Write one representation of a loaded motion (atomically)."""
    if target is Target.JOINTS:
        return save_npy(out, motion.joints.astype(np.float32))
    if target is Target.FEATURES:
        return save_npy(out, motion.features.astype(np.float32))
    if target is Target.BVH:
        from emomotion.export.smpl_bvh import save_smpl_bvh

        return save_smpl_bvh(out, motion.joints)
    from emomotion.render import render_animation

    return render_animation(motion.joints, out, fps=sk.FPS, title=title or motion.source.stem, progress=True)


def convert(
    source: str | Path,
    to: Target | str,
    out: str | Path | None = None,
    *,
    joint_map: str | None = None,
    fps: float | None = None,
    title: str | None = None,
    units: str | float | None = None,
    on_report: Callable[[RetargetReport], None] | None = None,
) -> Path:
    """Convert ``source`` to ``to``; ``out`` defaults to the input's name with the new suffix.
    ``on_report`` receives a BVH input's retargeting report before anything is written."""
    try:
        target = Target(to)
    except ValueError as exc:
        raise ConfigError(f"unknown target {to!r}; use one of {', '.join(t.value for t in Target)}") from exc
    source = Path(source)
    dest = Path(out) if out is not None else default_output(source, target)
    # hostile input may drive arithmetic to NaN/inf: that is checked and reported as a typed error,
    # so numpy's warnings would only add lines to it
    with np.errstate(all="ignore"):
        motion = load_motion(source, joint_map=joint_map, fps=fps, units=units)
        if on_report is not None and motion.report is not None:
            on_report(motion.report)
        try:
            written = write_motion(motion, target, dest, title=title)
        except EmomotionError as exc:
            if exc.path is None:
                raise type(exc)(exc.reason, path=source, where=exc.where) from exc
            raise
    log.info("wrote %s (%d frames at %d fps)", written, motion.joints.shape[0], sk.FPS)
    return written
