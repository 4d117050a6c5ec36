"""Source rig (BVH) -> SMPL-22 joint positions in metres, Y-up, at 20 fps.

The mapping comes from a registered or TOML joint map (:mod:`emomotion.joint_maps`), a registered
map whose joints the file has, or a guess from names, hierarchy and rest pose
(:func:`emomotion.rigs.mapping.auto_map`). Bones of zero length are repaired
(:mod:`emomotion.rigs.repair`), the scale comes from the units or the skeleton's own size
(:mod:`emomotion.rigs.units`), the up axis is converted, bind poses (found by pose) and physically
impossible jumps are cut off, and the clip is resampled to 20 fps **by time** with linear
interpolation, never by striding. Bone lengths do not matter here:
:func:`emomotion.features.canonicalise` re-poses the HumanML3D target skeleton along the
retargeted bone directions.
"""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from emomotion import skeleton as sk
from emomotion.errors import ConfigError, JointMapError, RetargetError
from emomotion.joint_maps import JointMap, get_joint_map, guess_joint_map
from emomotion.rigs.mapping import Rig, RigMapping, auto_map, check_sides
from emomotion.rigs.poses import find_bind_frames, speed_warnings
from emomotion.rigs.repair import evaluate, repair_degenerate
from emomotion.rigs.units import parse_units, scale_from_leg, unit_label, unit_scale

log = logging.getLogger(__name__)

MAX_ROOT_SPEED = 12.0
"""m/s: faster pelvis motion between two frames is a discontinuity (sprinters peak near 12 m/s)."""
MAX_JOINT_SPEED = 40.0
"""m/s: faster motion of any joint is a discontinuity (a fast punch or throw stays under ~20 m/s)."""
MAX_RESAMPLE_SECONDS = 3600.0
"""Longest clip resampled (the output is allocated by duration)."""
MIN_SECONDS = sk.MIN_FRAMES / sk.FPS
"""Clips shorter than HumanML3D's minimum (40 frames at 20 fps) are converted with a warning."""


class PoseSequence(Protocol):
    """What retargeting needs from a parsed motion (``emomotion.io.bvh.Motion`` satisfies it; one with a
    ``skeleton`` can also be mapped automatically and have toes synthesised)."""

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
    scale: float = 1.0  # metres per source unit
    scale_from: str = ""
    bind_frames: tuple[int, int] = (0, 0)  # leading, trailing bind-pose frames dropped
    mapping: dict[str, Any] = field(default_factory=dict)  # RigMapping.summary
    warnings: tuple[str, ...] = field(default=())

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def describe(self) -> str:
        """The mapping report ``convert`` prints."""
        m = self.mapping
        lines = [f"joint map: {self.joint_map} ({m.get('method', '')})"]
        for joint, src in m.get("joints", {}).items():
            lines.append(f"  {joint:11s} <- {src['source']} [{src['how']}, {src['confidence']:.2f}]")
        if m.get("synthesised"):
            lines.append(f"  synthesised: {', '.join(m['synthesised'])}")
        lines.append(f"scale: {self.scale:.6g} m/unit ({self.scale_from}); up: {self.up}")
        lines.append(
            f"frames: {self.source_frames} at {self.source_fps:g} fps -> {self.frames} at {sk.FPS} fps"
            + (
                f", kept source frames [{self.kept_source_frames[0]}, {self.kept_source_frames[1]})"
                if self.trimmed_start or self.trimmed_end
                else ""
            )
        )
        lines += [f"note: {n}" for n in (*m.get("notes", ()), *self.notes)]
        lines += [f"warning: {w}" for w in self.warnings]
        return "\n".join(lines)


@dataclass(frozen=True)
class RetargetResult:
    joints: np.ndarray  # (T, 22, 3) float64, metres, Y-up, 20 fps
    report: RetargetReport


def select_joints(
    names: tuple[str, ...], positions: np.ndarray, joint_map: JointMap | RigMapping
) -> np.ndarray:
    """(T, J, 3) source positions -> (T, 22, 3) in SMPL order, blending where the map says so."""
    mapping = joint_map if isinstance(joint_map, RigMapping) else joint_map.as_mapping("given")
    index = set(names)
    missing = [n for n in mapping.source_joints if n not in index]
    if missing:
        raise JointMapError(
            f"joint map {mapping.name!r} needs joints missing from the source: {', '.join(missing)}"
        )
    return evaluate(mapping, names, positions)


def rig_of(motion: PoseSequence) -> Rig | None:
    """The rest-pose tree of a motion that has a BVH skeleton."""
    skel = getattr(motion, "skeleton", None)
    if skel is None:
        return None
    return Rig.from_offsets(skel.names, skel.parents, skel.offsets, skel.end_sites)


def resolve_mapping(
    names: tuple[str, ...],
    motion: PoseSequence,
    joint_map: str | Path | JointMap | None,
    first_frame: np.ndarray | None = None,
) -> RigMapping:
    """The given map; else a registered map whose joints all exist; else a guess from the rig (and,
    when its rest pose is no body's, from ``first_frame``'s joint positions)."""
    if joint_map is not None:
        jm = get_joint_map(joint_map)
        return jm.as_mapping("given")
    try:
        jm = guess_joint_map(names)
        return jm.as_mapping("registered map, all its joints found")
    except JointMapError:
        rig = rig_of(motion)
        if rig is None:
            raise
    return auto_map(rig, first_frame)


def _leg_length(joints: np.ndarray) -> float:
    knee = np.linalg.norm(joints[:, 5] - joints[:, 2], axis=-1)
    shin = np.linalg.norm(joints[:, 8] - joints[:, 5], axis=-1)
    return float(np.median(knee + shin))


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
    units: str | float | None = None,
    up: str | None = None,
    trim_jumps: bool = True,
    source: str | Path | None = None,
) -> RetargetResult:
    """Map a parsed motion onto SMPL-22 joints (T, 22, 3), metres, Y-up, ``fps`` frames per second.

    ``joint_map`` is a registered name, a TOML path or a :class:`JointMap`; None uses a registered map
    whose joints the file has, else guesses from names and rest pose. ``units`` (a unit name or
    metres per unit) and ``up`` override the map's (and detection).
    """
    path = source if source is not None else getattr(motion, "source", None)
    try:
        names = tuple(motion.names)
        positions = motion.world_positions()
        mapping = resolve_mapping(names, motion, joint_map, positions[0])
        raw = select_joints(names, positions, mapping)
        if not np.isfinite(raw).all():
            raise RetargetError("forward kinematics produced non-finite positions")
        world_rotations = getattr(motion, "world_rotations", None)
        mapping, raw, _ = repair_degenerate(
            mapping, raw, names, positions, lambda: rig_of(motion), world_rotations
        )
        if any(src.how != "map" for src in mapping.joints.values()):  # guessed or repaired: check
            check_sides(raw)
        leg = _leg_length(raw)
        wanted = parse_units(units, what="--units") if units is not None else mapping.units
        if wanted != "auto":
            scale, unit, scale_from = unit_scale(wanted), unit_label(wanted), f"{unit_label(wanted)} as given"
        else:
            scale, unit, scale_from = scale_from_leg(leg)
        joints = raw * scale
        axis = up or (mapping.up if mapping.up != "auto" else detect_up(joints))
        if axis not in ("y", "z"):
            raise RetargetError(f"unknown up axis {axis!r}; use y or z")
        joints = to_y_up(joints, axis)
    except (RetargetError, ConfigError) as exc:
        if exc.path is None and path is not None:
            raise type(exc)(exc.reason, path=path) from exc
        raise

    n = joints.shape[0]
    notes: list[str] = []
    warnings: list[str] = []
    leg_m = leg * scale
    lead, trail = find_bind_frames(joints, leg_m) if trim_jumps else (0, 0)
    if lead or trail:
        notes.append(f"bind pose dropped: {lead} leading and {trail} trailing frame(s)")
    body = joints[lead : n - trail]
    jumps = find_jumps(body, motion.fps) if trim_jumps and len(body) > 1 else np.zeros(0, dtype=int)
    start, stop = longest_continuous_segment(len(body), jumps)
    jumps = jumps + lead
    start, stop = start + lead, stop + lead
    if start > lead or stop < n - trail:
        notes.append(
            f"kept source frames [{start}, {stop}) of {n}: impossible jumps at frames {jumps.tolist()}"
        )
    for note in notes:
        log.info("%s: %s", path or "motion", note)
    frame_time = f"Frame Time {1.0 / motion.fps:.6g} s ({motion.fps:g} fps)"
    warnings += speed_warnings(joints[start:stop], motion.fps, leg_m, frame_time)
    out = resample(joints[start:stop], motion.fps, fps)
    if out.shape[0] < sk.MIN_FRAMES * fps / sk.FPS:
        warnings.append(
            f"only {out.shape[0]} frames at {fps:g} fps ({(stop - start - 1) / motion.fps:.2f} s); "
            f"HumanML3D's clips have at least {sk.MIN_FRAMES} frames ({MIN_SECONDS:g} s)"
        )
    for warning in warnings:
        log.warning("%s: %s", path or "motion", warning)
    report = RetargetReport(
        joint_map=mapping.name,
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
        scale=float(scale),
        scale_from=scale_from,
        bind_frames=(int(lead), int(trail)),
        mapping=mapping.summary,
        warnings=tuple(warnings),
    )
    return RetargetResult(joints=out, report=report)
