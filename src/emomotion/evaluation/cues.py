"""Interpretable movement cues of emotional body expression, per clip, from joints ``(T, 22, 3)``.

The cues follow the features that separate emotions in perception studies (Wallbott 1998;
Roether et al. 2009; Gross et al. 2012): how fast and how jerky the body moves, how the head and
torso incline, how far the arms reach away from the body, how long the strides are and how low
the body is carried. Joints are in metres, Y up, floor at 0, 20 fps. Forward is the horizontal
direction the hips and shoulders face (``up x (right - left)``), per frame.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, fields

import numpy as np
from numpy.typing import ArrayLike

from emomotion.skeleton import FEET_LEFT, FEET_RIGHT, FPS, JOINT_INDEX, NUM_JOINTS

_J = JOINT_INDEX
UP = np.array([0.0, 1.0, 0.0])


@dataclass(frozen=True)
class Cues:
    """Cues of one clip (means over its frames)."""

    speed: float  # m/s, mean joint speed
    acceleration: float  # m/s^2, mean joint acceleration magnitude
    jerk: float  # m/s^3, mean joint jerk magnitude
    head_pitch: float  # degrees from vertical of neck -> head, + forward / down
    torso_lean: float  # degrees from vertical of pelvis -> neck, + forward
    arm_expansion: float  # m, mean distance of the wrists from the torso axis
    stride_length: float  # m, mean horizontal distance between successive contacts of the same foot
    root_height: float  # m, mean pelvis height


CUE_NAMES: tuple[str, ...] = tuple(f.name for f in fields(Cues))
CUE_UNITS: dict[str, str] = {
    "speed": "m/s",
    "acceleration": "m/s²",
    "jerk": "m/s³",
    "head_pitch": "deg",
    "torso_lean": "deg",
    "arm_expansion": "m",
    "stride_length": "m",
    "root_height": "m",
}


def _check(joints: ArrayLike) -> np.ndarray:
    arr = np.asarray(joints, dtype=np.float64)
    if arr.ndim != 3 or arr.shape[1:] != (NUM_JOINTS, 3) or arr.shape[0] < 4:
        raise ValueError(f"joints must have shape (T, {NUM_JOINTS}, 3) with T >= 4, got shape {arr.shape}")
    if not np.isfinite(arr).all():
        raise ValueError(f"joints contain NaN or infinite values (shape {arr.shape})")
    return arr


def forward_directions(joints: np.ndarray) -> np.ndarray:
    """Unit horizontal facing direction ``(T, 3)`` from the hip and shoulder lines."""
    across = (joints[:, _J["r_hip"]] - joints[:, _J["l_hip"]]) + (
        joints[:, _J["r_shoulder"]] - joints[:, _J["l_shoulder"]]
    )  # (T, 3)
    forward = np.cross(UP, across)
    forward[:, 1] = 0.0
    return forward / np.maximum(np.linalg.norm(forward, axis=1, keepdims=True), 1e-8)


def _pitch(segment: np.ndarray, forward: np.ndarray) -> np.ndarray:
    """Signed angle (degrees) of segments ``(T, 3)`` from vertical, + towards ``forward``."""
    return np.degrees(np.arctan2((segment * forward).sum(1), segment[:, 1]))


def _distance_to_axis(points: np.ndarray, base: np.ndarray, top: np.ndarray) -> np.ndarray:
    """Distance ``(T,)`` of points ``(T, 3)`` from the lines through ``base`` and ``top``."""
    axis = top - base
    axis = axis / np.maximum(np.linalg.norm(axis, axis=1, keepdims=True), 1e-8)
    rel = points - base
    return np.linalg.norm(rel - (rel * axis).sum(1, keepdims=True) * axis, axis=1)


def stride_length(joints: np.ndarray, *, fps: float = FPS, height: float = 0.05, speed: float = 0.3) -> float:
    """Mean horizontal distance between successive ground contacts of the same foot (0 without two).

    A foot (ankle or toe) is planted when it is lower than ``height`` above the lowest foot
    point of the clip and slower than ``speed`` m/s; each run of planted frames is one contact,
    placed at the foot's mean position over the run.
    """
    floor = joints[:, [*FEET_LEFT, *FEET_RIGHT], 1].min()
    strides: list[float] = []
    for foot in (FEET_LEFT, FEET_RIGHT):
        toe = joints[:, foot[1]]  # (T, 3)
        low = joints[:, list(foot), 1].min(axis=1) - floor < height  # (T,)
        still = np.r_[np.linalg.norm(np.diff(toe[:, [0, 2]], axis=0), axis=1) * fps < speed, False]
        planted = low & still
        edges = np.flatnonzero(np.diff(np.r_[0, planted.astype(np.int8), 0]))
        places = [toe[a:b, [0, 2]].mean(axis=0) for a, b in zip(edges[::2], edges[1::2], strict=True)]
        strides += [float(np.linalg.norm(b - a)) for a, b in itertools.pairwise(places)]
    return float(np.mean(strides)) if strides else 0.0


def clip_cues(joints: ArrayLike, fps: float = FPS) -> Cues:
    """The cues of one clip ``(T, 22, 3)``, ``T >= 4``."""
    j = _check(joints)
    vel = np.diff(j, axis=0) * fps  # (T-1, 22, 3)
    acc = np.diff(j, n=2, axis=0) * fps**2
    jerk = np.diff(j, n=3, axis=0) * fps**3
    forward = forward_directions(j)
    head = _pitch(j[:, _J["head"]] - j[:, _J["neck"]], forward)
    lean = _pitch(j[:, _J["neck"]] - j[:, _J["pelvis"]], forward)
    wrists = np.stack(
        [_distance_to_axis(j[:, _J[w]], j[:, _J["pelvis"]], j[:, _J["neck"]]) for w in ("l_wrist", "r_wrist")]
    )
    return Cues(
        speed=float(np.linalg.norm(vel, axis=2).mean()),
        acceleration=float(np.linalg.norm(acc, axis=2).mean()),
        jerk=float(np.linalg.norm(jerk, axis=2).mean()),
        head_pitch=float(head.mean()),
        torso_lean=float(lean.mean()),
        arm_expansion=float(wrists.mean()),
        stride_length=stride_length(j, fps=fps),
        root_height=float(j[:, _J["pelvis"], 1].mean()),
    )


def cue_table(cues: Sequence[Cues], groups: Sequence[str]) -> dict[str, dict[str, tuple[float, float]]]:
    """``{group: {cue: (mean, std)}}`` over clips, one group label (e.g. an emotion) per clip; ``"all"`` too."""
    if len(cues) != len(groups):
        raise ValueError(f"{len(cues)} cue sets for {len(groups)} group labels")
    if not cues:
        return {}
    values = np.array([[getattr(c, n) for n in CUE_NAMES] for c in cues])  # (N, cues)
    labels = np.asarray(groups, dtype=object)
    table: dict[str, dict[str, tuple[float, float]]] = {}
    for group in ["all", *sorted(set(groups))]:
        rows = values if group == "all" else values[labels == group]
        table[group] = {
            n: (float(rows[:, i].mean()), float(rows[:, i].std())) for i, n in enumerate(CUE_NAMES)
        }
    return table


def cues_dict(cues: Cues) -> dict[str, float]:
    return asdict(cues)


def table_means(table: Mapping[str, Mapping[str, tuple[float, float]]]) -> dict[str, dict[str, float]]:
    """The means of a :func:`cue_table` (drops the spreads)."""
    return {g: {n: v[0] for n, v in cues.items()} for g, cues in table.items()}
