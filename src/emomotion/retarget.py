"""Source rig (BVH) -> SMPL-22 joint positions in metres, Y-up, at 20 fps.

Joints are read **by name** through a :mod:`emomotion.joint_maps` map, units and up axis are
converted (detected where unambiguous), physically impossible jumps (bind poses, glitches) are cut
off, and the clip is resampled to 20 fps **by time** with linear interpolation, never by striding.
Bone lengths do not matter here: :func:`emomotion.features.canonicalise` re-poses the HumanML3D
target skeleton along the retargeted bone directions.
"""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from emomotion import skeleton as sk
from emomotion.errors import JointMapError, RetargetError
from emomotion.joint_maps import UNIT_SCALE, JointMap, get_joint_map, guess_joint_map

log = logging.getLogger(__name__)

MAX_ROOT_SPEED = 12.0
"""m/s: faster pelvis motion between two frames is a discontinuity (sprinters peak near 12 m/s)."""
MAX_JOINT_SPEED = 40.0
"""m/s: faster motion of any joint is a discontinuity (a fast punch or throw stays under ~20 m/s)."""
MAX_RESAMPLE_SECONDS = 3600.0
"""Longest clip resampled (the output is allocated by duration)."""
LEG_RANGE_M = (0.25, 1.6)
"""Plausible length (m) of hip -> knee -> ankle, used to detect units."""


class PoseSequence(Protocol):
    """What retargeting needs from a parsed motion (``emomotion.io.bvh.Motion`` satisfies it)."""

    @property
    def names(self) -> tuple[str, ...]: ...

    @property
    def fps(self) -> float: ...

    def world_positions(self) -> np.ndarray: ...


@dataclass(frozen=True)
class RetargetReport:
    """What retargeting did to one clip (recorded in dataset manifests)."""

    joint_map: str
    source_fps: float
    source_frames: int
    units: str
    up: str
    kept_source_frames: tuple[int, int]  # [start, stop) in source frames
    trimmed_start: int
    trimmed_end: int
    jumps: tuple[int, ...]  # source frame indexes i where i-1 -> i is impossible
    frames: int
    notes: tuple[str, ...] = field(default=())

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class RetargetResult:
    joints: np.ndarray  # (T, 22, 3) float64, metres, Y-up, 20 fps
    report: RetargetReport


def select_joints(names: tuple[str, ...], positions: np.ndarray, joint_map: JointMap) -> np.ndarray:
    """(T, J, 3) source positions -> (T, 22, 3) in SMPL order, blending where the map says so."""
    index = {n: i for i, n in enumerate(names)}
    missing = [n for n in joint_map.source_joints if n not in index]
    if missing:
        raise JointMapError(
            f"joint map {joint_map.name!r} needs joints missing from the source: {', '.join(missing)}"
        )
    out = np.zeros((positions.shape[0], sk.NUM_JOINTS, 3))
    for j, target in enumerate(sk.JOINT_NAMES):
        for name, weight in joint_map.joints[target]:
            out[:, j] += weight * positions[:, index[name]]
    return out


def _leg_length(joints: np.ndarray) -> float:
    knee = np.linalg.norm(joints[:, 5] - joints[:, 2], axis=-1)
    shin = np.linalg.norm(joints[:, 8] - joints[:, 5], axis=-1)
    return float(np.median(knee + shin))


def detect_units(joints: np.ndarray) -> str:
    """'m', 'cm' or 'mm' from the median leg length; ambiguous -> RetargetError."""
    leg = _leg_length(joints)
    for unit, scale in UNIT_SCALE.items():
        lo, hi = LEG_RANGE_M
        if lo <= leg * scale <= hi:
            return unit
    raise RetargetError(f"cannot tell the units from a leg length of {leg:.4g}; pass units explicitly")


def detect_up(joints: np.ndarray) -> str:
    """'y' or 'z': the axis along which pelvis -> head points on average."""
    spine = (joints[:, 15] - joints[:, 0]).mean(axis=0)
    axis = int(np.argmax(np.abs(spine)))
    if axis == 0 or spine[axis] <= 0:
        raise RetargetError(
            f"cannot tell the up axis (mean pelvis->head {np.round(spine, 3)}); pass it explicitly"
        )
    return "y" if axis == 1 else "z"


def to_y_up(joints: np.ndarray, up: str) -> np.ndarray:
    if up == "y":
        return joints
    # Z-up right-handed -> Y-up right-handed: a rotation of -90 deg about X.
    return np.stack([joints[..., 0], joints[..., 2], -joints[..., 1]], axis=-1)


def find_jumps(joints: np.ndarray, fps: float) -> np.ndarray:
    """Indexes i (1..T-1) where going from frame i-1 to i is physically impossible."""
    step = np.linalg.norm(np.diff(joints, axis=0), axis=-1) * fps  # (T-1, 22) m/s
    bad = (step[:, 0] > MAX_ROOT_SPEED) | (step.max(axis=1) > MAX_JOINT_SPEED)
    return np.flatnonzero(bad) + 1


def longest_continuous_segment(num_frames: int, jumps: np.ndarray) -> tuple[int, int]:
    """[start, stop) of the longest run of frames with no jump inside."""
    bounds = np.concatenate([[0], jumps, [num_frames]])
    lengths = np.diff(bounds)
    k = int(np.argmax(lengths))
    return int(bounds[k]), int(bounds[k + 1])


def resample(joints: np.ndarray, src_fps: float, dst_fps: float = sk.FPS) -> np.ndarray:
    """Linear interpolation in time; the output covers the same duration (first frame kept)."""
    n = joints.shape[0]
    if n == 1 or abs(src_fps - dst_fps) < 1e-9:
        return joints.copy()
    duration = (n - 1) / src_fps
    if not (
        np.isfinite(duration) and duration <= MAX_RESAMPLE_SECONDS
    ):  # the output is allocated by duration
        raise RetargetError(
            f"{n} frames at {src_fps:g} fps is too long to resample (over {MAX_RESAMPLE_SECONDS:g} s)"
        )
    count = int(np.floor(duration * dst_fps + 1e-6)) + 1
    t = np.arange(count) / dst_fps * src_fps  # positions in source frames
    lo = np.clip(np.floor(t).astype(int), 0, n - 1)
    hi = np.clip(lo + 1, 0, n - 1)
    w = (t - lo)[:, None, None]
    return joints[lo] * (1.0 - w) + joints[hi] * w


def retarget(
    motion: PoseSequence,
    joint_map: str | Path | JointMap | None = None,
    *,
    fps: float = sk.FPS,
    units: str | None = None,
    up: str | None = None,
    trim_jumps: bool = True,
    source: str | Path | None = None,
) -> RetargetResult:
    """Map a parsed motion onto SMPL-22 joints (T, 22, 3), metres, Y-up, ``fps`` frames per second.

    ``joint_map`` is a registered name, a TOML path or a :class:`JointMap`; None guesses it from the
    joint names. ``units`` / ``up`` override the map's (and detection).
    """
    path = source if source is not None else getattr(motion, "source", None)
    try:
        jm = guess_joint_map(motion.names) if joint_map is None else get_joint_map(joint_map)
        raw = select_joints(tuple(motion.names), motion.world_positions(), jm)
        if not np.isfinite(raw).all():
            raise RetargetError("forward kinematics produced non-finite positions")
        unit = units or (jm.units if jm.units != "auto" else detect_units(raw))
        if unit not in UNIT_SCALE:
            raise RetargetError(f"unknown units {unit!r}; use one of {', '.join(UNIT_SCALE)}")
        joints = raw * UNIT_SCALE[unit]
        axis = up or (jm.up if jm.up != "auto" else detect_up(joints))
        if axis not in ("y", "z"):
            raise RetargetError(f"unknown up axis {axis!r}; use y or z")
        joints = to_y_up(joints, axis)
    except RetargetError as exc:
        if exc.path is None and path is not None:
            raise type(exc)(exc.reason, path=path) from exc
        raise

    n = joints.shape[0]
    jumps = find_jumps(joints, motion.fps) if trim_jumps and n > 1 else np.zeros(0, dtype=int)
    start, stop = longest_continuous_segment(n, jumps)
    notes = []
    if start or stop < n:
        notes.append(
            f"kept source frames [{start}, {stop}) of {n}: impossible jumps at frames {jumps.tolist()}"
        )
        log.info("%s: %s", path or "motion", notes[-1])
    out = resample(joints[start:stop], motion.fps, fps)
    report = RetargetReport(
        joint_map=jm.name,
        source_fps=float(motion.fps),
        source_frames=n,
        units=unit,
        up=axis,
        kept_source_frames=(start, stop),
        trimmed_start=start,
        trimmed_end=n - stop,
        jumps=tuple(int(j) for j in jumps),
        frames=int(out.shape[0]),
        notes=tuple(notes),
    )
    return RetargetResult(joints=out, report=report)
