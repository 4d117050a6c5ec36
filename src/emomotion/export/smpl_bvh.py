"""SMPL-22 joint positions -> an animated BVH rig with rotations solved from the joints.

The rig uses SMPL-style joint names (``Hips``, ``LeftUpLeg``, ... as read back by the ``smpl-bvh``
joint map), a root with position channels and ZYX rotations everywhere. Its rest pose stands with
the arms down and legs straight, the pelvis frame with +X to the left and +Y up.

Rotations: a joint with one child gets the shortest-arc swing that points its rest bone at the
child (twist inherited from its parent); the pelvis and spine3, which carry three children each,
get the full frame spanned by their children (left-right axis from the hips / collars, up axis from
spine1 / neck). Their children's rest offsets are that rigid configuration averaged over the clip,
so joints from a rigid skeleton (SMPL, retargeted mocap) read back exactly.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from scipy.spatial.transform import Rotation

from emomotion import features as F
from emomotion import geometry as g
from emomotion import skeleton as sk
from emomotion.errors import MotionFormatError
from emomotion.io.bvh import BvhSkeleton, Motion
from emomotion.io.bvh_writer import write_bvh

BVH_NAMES: tuple[str, ...] = (
    "Hips",
    "LeftUpLeg",
    "RightUpLeg",
    "Spine",
    "LeftLeg",
    "RightLeg",
    "Spine1",
    "LeftFoot",
    "RightFoot",
    "Spine2",
    "LeftToe",
    "RightToe",
    "Neck",
    "LeftShoulder",
    "RightShoulder",
    "Head",
    "LeftArm",
    "RightArm",
    "LeftForeArm",
    "RightForeArm",
    "LeftHand",
    "RightHand",
)
"""BVH joint name of each SMPL-22 joint, in SMPL order."""

# joint -> (left child, right child, up child) spanning its frame
_FRAMED = {0: (1, 2, 3), 9: (13, 14, 12)}
_END_SITES = {
    10: (0.0, 0.0, 0.05),
    11: (0.0, 0.0, 0.05),
    15: (0.0, 0.1, 0.0),
    20: (0.0, -0.08, 0.0),
    21: (0.0, -0.08, 0.0),
}
UNITS = {"m": 1.0, "cm": 100.0}


def _children(j: int) -> list[int]:
    return [c for c, p in enumerate(sk.PARENTS) if p == j]


def _frame(left: np.ndarray, right: np.ndarray, up: np.ndarray, origin: np.ndarray) -> np.ndarray:
    """Orthonormal frames (T, 3, 3) with x = right->left, y = up (orthogonalised), z = x cross y."""
    x = left - right
    x = x / np.linalg.norm(x, axis=-1, keepdims=True)
    y = up - origin
    y = y - (y * x).sum(-1, keepdims=True) * x
    y = y / np.linalg.norm(y, axis=-1, keepdims=True)
    z = np.cross(x, y)
    return np.stack([x, y, z], axis=-1)


def _dfs_order() -> list[int]:
    order: list[int] = []

    def visit(j: int) -> None:
        order.append(j)
        for c in _children(j):
            visit(c)

    visit(0)
    return order


def joints_to_bvh_motion(joints: np.ndarray, *, fps: float = sk.FPS, units: str = "m") -> Motion:
    """Solve a BVH :class:`Motion` whose forward kinematics reproduces ``joints`` (T, 22, 3) in metres."""
    joints = F.check_joints(joints, min_frames=1)
    if units not in UNITS:
        raise ValueError(f"units must be one of {list(UNITS)}")
    t = joints.shape[0]
    lengths = F.bone_lengths(joints).mean(axis=0)
    world = np.zeros((t, sk.NUM_JOINTS, 3, 3))
    rest = sk.RAW_OFFSETS * lengths[:, None]
    for j, (left, right, up) in _FRAMED.items():
        frames = _frame(joints[:, left], joints[:, right], joints[:, up], joints[:, j])
        for c in (left, right, up):
            local = np.einsum("tji,tj->ti", frames, joints[:, c] - joints[:, j])
            rest[c] = local.mean(axis=0)
    for j in range(sk.NUM_JOINTS):  # parents precede children in SMPL order
        parent_world = world[:, sk.PARENTS[j]] if j else np.broadcast_to(np.eye(3), (t, 3, 3))
        kids = _children(j)
        if j in _FRAMED:
            left, right, up = _FRAMED[j]
            world[:, j] = _frame(joints[:, left], joints[:, right], joints[:, up], joints[:, j])
        elif len(kids) == 1:
            c = kids[0]
            target = np.einsum("tji,tj->ti", parent_world, joints[:, c] - joints[:, j])
            world[:, j] = parent_world @ g.swing_matrix(rest[c], target)
        else:
            world[:, j] = parent_world
    parents = np.array(sk.PARENTS)
    local_rot = np.einsum("...ji,...jk->...ik", world[:, np.maximum(parents, 0)], world)  # parent^T @ world
    local_rot[:, 0] = world[:, 0]
    if not np.isfinite(local_rot).all():
        raise MotionFormatError("joints coincide (a degenerate pose): joint rotations are undefined")

    order = _dfs_order()
    new_index = {old: new for new, old in enumerate(order)}
    scale = UNITS[units]
    names = tuple(BVH_NAMES[j] for j in order)
    new_parents = np.array([-1 if sk.PARENTS[j] < 0 else new_index[sk.PARENTS[j]] for j in order])
    offsets = rest[order] * scale
    offsets[0] = joints[0, 0] * scale
    rot_channels = ("Zrotation", "Yrotation", "Xrotation")
    channels = tuple(
        (("Xposition", "Yposition", "Zposition") if j == 0 else ()) + rot_channels for j in order
    )
    end_sites = {new_index[j]: np.array(v) * scale for j, v in _END_SITES.items()}
    skeleton = BvhSkeleton(
        names=names, parents=new_parents, offsets=offsets, channels=channels, end_sites=end_sites
    )
    local_positions = np.broadcast_to(offsets, (t, len(order), 3)).copy()
    local_positions[:, 0] = joints[:, 0] * scale
    # Round-trip through ZYX Euler angles, the channel order written, so what we store is what is read.
    euler = Rotation.from_matrix(local_rot[:, order].reshape(-1, 3, 3)).as_euler("ZYX", degrees=True)
    rotations = Rotation.from_euler("ZYX", euler, degrees=True).as_matrix().reshape(t, len(order), 3, 3)
    return Motion(skeleton=skeleton, local_positions=local_positions, rotations=rotations, fps=float(fps))


def save_smpl_bvh(path: str | Path, joints: np.ndarray, *, fps: float = sk.FPS, units: str = "m") -> Path:
    """Write joints (T, 22, 3) in metres as an SMPL-22 BVH (atomically)."""
    path = Path(path)
    write_bvh(path, joints_to_bvh_motion(joints, fps=fps, units=units))
    return path
