"""Bind and rest poses found by pose, and motion that is implausible for its Frame Time.

A capture often starts (or ends) with a T- or A-pose that the take then leaves in one frame. Such a
frame is found by its pose, not by a speed in m/s (which depends on units and frame rate): it is
T/A-like (both arms raised away from the body, legs straight) and far, in body-relative pose, from
the first frame of the motion that follows it (a pose jump no motion makes between two frames). Speeds are checked afterwards only to warn: limbs
moving faster than people do, or a walk whose cadence no walker reaches, mean the Frame Time (or the
scale) is wrong.
"""

from __future__ import annotations

import numpy as np

from emomotion import skeleton as sk

MAX_BIND_FRAMES = 10
"""At most this many leading (or trailing) frames are checked for a bind pose."""
ARM_RAISED_DEG = 35.0
"""A bind pose has both arms at least this far from hanging down (A-poses are ~45 degrees)."""
LEG_STRAIGHT_DEG = 160.0
POSE_JUMP = 0.12
"""Mean body-relative joint distance (in leg lengths) from a bind pose to the motion that follows it."""
MAX_LIMB_SPEED = 15.0
"""m/s: hands and feet relative to the pelvis (fast throws and kicks stay under ~12 m/s)."""
MAX_WALK_CADENCE = 3.25
"""steps/s: walking faster than this is not human walking (people run instead)."""
WALK_STEP = 1.0
"""A step no longer than this many leg lengths is a walking step (running steps are longer)."""
I = sk.JOINT_INDEX


def _angle(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    cos = (a * b).sum(-1) / np.maximum(np.linalg.norm(a, axis=-1) * np.linalg.norm(b, axis=-1), 1e-12)
    return np.degrees(np.arccos(np.clip(cos, -1.0, 1.0)))


def _body_relative(joints: np.ndarray) -> np.ndarray:
    """(T, 22, 3) pelvis-relative, turned so the hips lie along x (Y-up)."""
    rel = joints - joints[:, :1]
    across = joints[:, I["l_hip"]] - joints[:, I["r_hip"]]
    yaw = np.arctan2(across[:, 2], across[:, 0])
    c, s = np.cos(yaw)[:, None], np.sin(yaw)[:, None]
    x, z = rel[..., 0], rel[..., 2]
    return np.stack([c * x + s * z, rel[..., 1], -s * x + c * z], axis=-1)


def bind_like(joints: np.ndarray) -> np.ndarray:
    """(T,) True where a frame looks like a T- or A-pose (Y-up joints)."""
    down = np.array([0.0, -1.0, 0.0])
    arms = [
        _angle(joints[:, I[f"{s}_wrist"]] - joints[:, I[f"{s}_shoulder"]], down) >= ARM_RAISED_DEG
        for s in "lr"
    ]
    legs = [
        _angle(
            joints[:, I[f"{s}_hip"]] - joints[:, I[f"{s}_knee"]],
            joints[:, I[f"{s}_ankle"]] - joints[:, I[f"{s}_knee"]],
        )
        >= LEG_STRAIGHT_DEG
        for s in "lr"
    ]
    return arms[0] & arms[1] & legs[0] & legs[1]


def find_bind_frames(joints: np.ndarray, leg: float) -> tuple[int, int]:
    """(leading, trailing) frame counts that are a bind pose followed (or preceded) by a pose jump
    (``leg``: the hip -> ankle length, the unit of pose distances)."""
    n = joints.shape[0]
    if n < 3:
        return 0, 0
    scale = max(leg, 1e-9)
    limit = min(MAX_BIND_FRAMES, n - 2)

    def block(ends: np.ndarray) -> int:
        """``ends``: the first limit+1 frames, in order from the clip's end inwards."""
        rel = ends - ends[:, :1]
        if np.abs(np.diff(rel, axis=0)).sum(axis=-1).mean(axis=-1).max() <= POSE_JUMP * scale:
            return 0  # cheap first look: no pelvis-relative jump (|d|_1 >= |d|_2) means no pose jump
        rel = _body_relative(ends)
        step = np.linalg.norm(np.diff(rel, axis=0), axis=-1).mean(axis=-1) / scale
        jumps = np.flatnonzero(step > POSE_JUMP)
        if not len(jumps):
            return 0
        k = int(jumps[0]) + 1  # frames before the first pose jump
        return k if bind_like(ends[:k]).all() else 0

    lead = block(joints[: limit + 1])
    trail = block(joints[::-1][: limit + 1])
    if lead + trail >= n - 1:
        return lead, 0
    return lead, trail


def speed_warnings(joints: np.ndarray, fps: float, leg: float, frame_time_note: str) -> list[str]:
    """Warnings when the motion is implausibly fast for its Frame Time (joints in m, Y-up; ``leg`` the
    hip -> ankle length)."""
    if joints.shape[0] < 3:
        return []
    out: list[str] = []
    ends = [I["l_wrist"], I["r_wrist"], I["l_ankle"], I["r_ankle"]]
    rel = joints[:, ends] - joints[:, :1]
    step = np.diff(rel, axis=0)
    speed = np.sqrt((step * step).sum(axis=-1)) * fps
    fast = float(speed.max())
    if fast > MAX_LIMB_SPEED:
        fast = float(np.percentile(speed, 95))
    if fast > MAX_LIMB_SPEED:
        out.append(
            f"hands and feet move at {fast:.1f} m/s relative to the pelvis (95th percentile) with {frame_time_note}: "
            "check the Frame Time (or --units / --scale)"
        )
    cadence = _walk_cadence(joints, fps, leg)
    if cadence is not None and cadence > MAX_WALK_CADENCE:
        out.append(
            f"a walk at {cadence:.1f} steps/s with {frame_time_note} (walkers stay under {MAX_WALK_CADENCE:g}): "
            "check the Frame Time"
        )
    return out


def _walk_cadence(joints: np.ndarray, fps: float, leg: float) -> float | None:
    """Steps per second of a walk: the ankles alternate in front while the pelvis travels, with steps
    no longer than a leg (a run's are longer); None when the motion is not such a walk."""
    n = joints.shape[0]
    root = joints[:, 0, [0, 2]]
    travel = float(np.linalg.norm(root[-1] - root[0]))
    if travel < 2.0 * leg or n < 8:
        return None
    heading = (root[-1] - root[0]) / travel
    ahead = (joints[:, I["l_ankle"], [0, 2]] - joints[:, I["r_ankle"], [0, 2]]) @ heading
    sign = np.sign(ahead[np.abs(ahead) > 0.1 * leg])
    steps = int(np.count_nonzero(np.diff(sign)))
    if steps < 2 or travel / steps > WALK_STEP * leg:
        return None
    return steps / ((n - 1) / fps)
