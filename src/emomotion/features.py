"""SMPL-22 joint positions <-> the 263-dim HumanML3D motion features.

Layout of one feature row (T joint frames give T-1 rows)::

    [0]        root yaw velocity, stored as HALF the per-frame yaw angle (arcsin of the quaternion's y)
    [1:3]      root xz velocity in the facing frame
    [3]        root height
    [4:67]     root-relative, facing-aligned positions of joints 1..21 ("ric")
    [67:193]   6D local rotations of joints 1..21 (first two matrix columns)
    [193:259]  local velocities of all 22 joints in the facing frame
    [259:263]  foot contacts (l_ankle, l_foot, r_ankle, r_foot)

This follows HumanML3D's ``motion_representation.ipynb`` (``process_file``, ``recover_from_ric``)
so that features made here are interchangeable with the official ``new_joint_vecs``.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

import numpy as np
import torch
from scipy.ndimage import gaussian_filter1d

from emomotion import geometry as g
from emomotion import skeleton as sk
from emomotion.errors import MotionFormatError

ROOT_YAW = slice(0, 1)
ROOT_XZ_VEL = slice(1, 3)
ROOT_Y = slice(3, 4)
RIC = slice(4, 4 + (sk.NUM_JOINTS - 1) * 3)
ROT6D = slice(RIC.stop, RIC.stop + (sk.NUM_JOINTS - 1) * 6)
LOCAL_VEL = slice(ROT6D.stop, ROT6D.stop + sk.NUM_JOINTS * 3)
FOOT_CONTACT = slice(LOCAL_VEL.stop, LOCAL_VEL.stop + 4)
assert FOOT_CONTACT.stop == sk.FEATURE_DIM

FEATURE_GROUPS: dict[str, slice] = {
    "root_yaw": ROOT_YAW,
    "root_xz_vel": ROOT_XZ_VEL,
    "root_y": ROOT_Y,
    "ric": RIC,
    "rot6d": ROT6D,
    "local_vel": LOCAL_VEL,
    "foot_contact": FOOT_CONTACT,
}
"""Named slices of the 263 features, in order."""

FACING_SMOOTH_SIGMA = 20.0
"""Gaussian sigma (frames) of the facing direction used for the 6D rotations (HumanML3D's)."""


def check_joints(joints: np.ndarray, *, name: str = "joints", min_frames: int = 2) -> np.ndarray:
    """Validate a (T, 22, 3) finite joint array and return it as float64."""
    arr = np.asarray(joints)
    if arr.ndim != 3 or arr.shape[1:] != (sk.NUM_JOINTS, 3):
        raise MotionFormatError(f"{name} must have shape (T, {sk.NUM_JOINTS}, 3), got {arr.shape}")
    if arr.shape[0] < min_frames:
        raise MotionFormatError(f"{name} needs at least {min_frames} frames, got {arr.shape[0]}")
    if not np.issubdtype(arr.dtype, np.number) or not np.isfinite(arr).all():
        raise MotionFormatError(f"{name} contains non-finite or non-numeric values")
    return arr.astype(np.float64, copy=False)


def check_features(features: np.ndarray, *, name: str = "features") -> np.ndarray:
    arr = np.asarray(features)
    if arr.ndim < 2 or arr.shape[-1] != sk.FEATURE_DIM:
        raise MotionFormatError(f"{name} must have shape (..., T, {sk.FEATURE_DIM}), got {arr.shape}")
    if arr.shape[-2] < 1:
        raise MotionFormatError(f"{name} has no frames")
    if not np.issubdtype(arr.dtype, np.number) or not np.isfinite(arr).all():
        raise MotionFormatError(f"{name} contains non-finite or non-numeric values")
    return arr


# ----------------------------------------------------------------------------- joints -> features


def bone_lengths(joints: np.ndarray) -> np.ndarray:
    """Per-frame bone lengths (T, 22) (0 for the root)."""
    parents = np.array(sk.PARENTS)
    lengths = np.linalg.norm(joints[:, 1:] - joints[:, parents[1:]], axis=-1)
    return np.concatenate([np.zeros((len(joints), 1)), lengths], axis=1)


def _bone_table() -> tuple[np.ndarray, np.ndarray, tuple[np.ndarray, ...], np.ndarray]:
    """The bones of :data:`~emomotion.skeleton.KINEMATIC_CHAIN` in chain order: parents, children, the
    bone indexes of each depth (every bone's parent is placed at a smaller depth), and where the IK
    finds each bone's parent rotation (0: the root's, as every chain starts from it; k + 1: bone k's)."""
    bones = [
        (p, c, i == 0) for chain in sk.KINEMATIC_CHAIN for i, (p, c) in enumerate(itertools.pairwise(chain))
    ]
    assert all(sk.PARENTS[c] == p for p, c, _ in bones)
    depth = [0] * sk.NUM_JOINTS
    for p, c, _ in bones:
        depth[c] = depth[p] + 1
    levels = tuple(
        np.array([k for k, (_, c, _) in enumerate(bones) if depth[c] == d]) for d in range(1, max(depth) + 1)
    )
    world_from = np.array([0 if first else k for k, (_, _, first) in enumerate(bones)])
    return np.array([p for p, _, _ in bones]), np.array([c for _, c, _ in bones]), levels, world_from


_BONE_PARENT, _BONE_CHILD, _BONE_LEVELS, _IK_WORLD_FROM = _bone_table()


def uniform_skeleton(joints: np.ndarray, target_lengths: np.ndarray = sk.BONE_LENGTHS) -> np.ndarray:
    """Re-pose the target skeleton along the source's bone directions.

    HumanML3D does this with IK on the source then FK with the target offsets; both reduce to placing
    every bone of the target length along the source bone's direction, with the root scaled by the
    ratio of leg lengths measured on frame 0. A degenerate (zero-length) source bone keeps the
    rest direction. All bones' directions are found at once, then placed one depth at a time.
    """
    joints = check_joints(joints, min_frames=1)
    src_leg = float(np.linalg.norm(joints[0, 5] - joints[0, 2]) + np.linalg.norm(joints[0, 8] - joints[0, 5]))
    tgt_leg = float(target_lengths[5] + target_lengths[8])
    if src_leg <= 1e-9:
        raise MotionFormatError("the source leg (r_hip -> r_knee -> r_ankle) has zero length on frame 0")
    bone = joints[:, _BONE_CHILD] - joints[:, _BONE_PARENT]
    norm = np.linalg.norm(bone, axis=-1, keepdims=True)
    direction = np.where(norm > 1e-9, bone / np.maximum(norm, 1e-12), sk.RAW_OFFSETS[_BONE_CHILD])
    step = direction * target_lengths[_BONE_CHILD][:, None]
    out = np.empty_like(joints)
    out[:, 0] = joints[:, 0] * (tgt_leg / src_leg)
    for level in _BONE_LEVELS:
        out[:, _BONE_CHILD[level]] = out[:, _BONE_PARENT[level]] + step[:, level]
    return out


def _forward_from_across(across: np.ndarray) -> np.ndarray:
    across = across / np.linalg.norm(across, axis=-1, keepdims=True)
    forward = g.cross(np.array([0.0, 1.0, 0.0]), across)
    return forward


def _normalise(v: np.ndarray) -> np.ndarray:
    return v / np.linalg.norm(v, axis=-1, keepdims=True)


def _facing_rotations(joints: np.ndarray, *, smooth: bool) -> np.ndarray:
    """Per-frame root rotation (T, 4) turning the facing direction onto +Z, frame 0 forced to identity.

    Reproduces HumanML3D ``Skeleton.inverse_kinematics_np``, *including its documented bug*: it
    unpacks the face joints ``[r_hip, l_hip, r_sdr, l_sdr]`` as ``l_hip, r_hip, ...``, so the hip term
    of the across vector is negated (across = (l_hip - r_hip) + (r_sdr - l_sdr)). Shipped features
    were made that way; we keep it for exact compatibility.
    """
    r_hip, l_hip, r_sdr, l_sdr = sk.FACE_JOINTS
    across = (joints[:, l_hip] - joints[:, r_hip]) + (joints[:, r_sdr] - joints[:, l_sdr])
    forward = _forward_from_across(across)
    if smooth:
        forward = gaussian_filter1d(forward, FACING_SMOOTH_SIGMA, axis=0, mode="nearest")
    forward = _normalise(forward)
    root_quat = g.qbetween(forward, np.broadcast_to([0.0, 0.0, 1.0], forward.shape))
    root_quat[0] = (1.0, 0.0, 0.0, 0.0)
    return root_quat


def local_rotations(joints: np.ndarray, root_quat: np.ndarray) -> np.ndarray:
    """HumanML3D's IK: (T, 22, 4) local quaternions; every chain starts from the root rotation.

    Each bone's world rotation is its swing from the rest direction, so a bone's local rotation is
    its parent bone's swing (the root rotation at a chain's start) inverted, times its own swing;
    all bones are computed at once.
    """
    quats = np.zeros(joints.shape[:-1] + (4,))
    quats[:, 0] = root_quat
    v = _normalise(joints[:, _BONE_CHILD] - joints[:, _BONE_PARENT])
    swing = g.qbetween(sk.RAW_OFFSETS[_BONE_CHILD], v)
    world = np.concatenate([root_quat[:, None], swing], axis=1)[:, _IK_WORLD_FROM]
    quats[:, _BONE_CHILD] = g.qmul(g.qinv(world), swing)
    return quats


def foot_contacts(joints: np.ndarray, threshold: float = sk.FOOT_CONTACT_THRESHOLD) -> np.ndarray:
    """(T-1, 4) contacts (l_ankle, l_foot, r_ankle, r_foot): squared displacement below threshold."""
    feet = list(sk.FEET_LEFT) + list(sk.FEET_RIGHT)
    disp = ((joints[1:, feet] - joints[:-1, feet]) ** 2).sum(-1)
    return (disp < threshold).astype(np.float64)


def canonicalise(joints: np.ndarray) -> np.ndarray:
    """Uniform skeleton, feet on the floor, frame-0 root at the xz origin, frame 0 facing +Z."""
    pos = uniform_skeleton(joints)
    pos[..., 1] -= pos[..., 1].min()
    pos = pos - pos[0, 0] * np.array([1.0, 0.0, 1.0])
    r_hip, l_hip, r_sdr, l_sdr = sk.FACE_JOINTS
    across = (pos[0, r_hip] - pos[0, l_hip]) + (pos[0, r_sdr] - pos[0, l_sdr])
    forward = _normalise(_forward_from_across(across))
    quat = g.qbetween(forward, np.array([0.0, 0.0, 1.0]))
    return g.qrot(np.broadcast_to(quat, pos.shape[:-1] + (4,)), pos)


@dataclass(frozen=True)
class ProcessedMotion:
    """The result of :func:`process_joints`."""

    features: np.ndarray  # (T-1, 263) float32
    joints: np.ndarray  # (T, 22, 3) float64: canonical global positions the features describe


def features_from_canonical(pos: np.ndarray, feet_threshold: float = sk.FOOT_CONTACT_THRESHOLD) -> np.ndarray:
    """Features (T-1, 263) float64 of joints already canonicalised (see :func:`canonicalise`)."""
    contacts = foot_contacts(pos, feet_threshold)
    r_rot = _facing_rotations(pos, smooth=True)
    cont6d = g.quat_to_cont6d(local_rotations(pos, r_rot))

    velocity = g.qrot(r_rot[1:], pos[1:, 0] - pos[:-1, 0])
    r_velocity = g.qmul(r_rot[1:], g.qinv(r_rot[:-1]))
    # HumanML3D takes arcsin of y as is; when the facing crosses +-180 deg the product has w < 0 and
    # that records the yaw step with the wrong sign (a permanent heading error on recovery). We take the
    # w >= 0 representative: identical everywhere else, correct on those frames.
    r_velocity = np.where(r_velocity[:, :1] < 0, -r_velocity, r_velocity)
    yaw = np.arcsin(np.clip(r_velocity[:, 2:3], -1.0, 1.0))

    ric = pos.copy()
    ric[..., 0] -= pos[:, 0:1, 0]
    ric[..., 2] -= pos[:, 0:1, 2]
    ric = g.qrot(r_rot[:, None], ric)

    local_vel = g.qrot(r_rot[:-1, None], pos[1:] - pos[:-1])
    n = len(pos) - 1
    return np.concatenate(
        [
            yaw,
            velocity[:, [0, 2]],
            ric[:-1, 0, 1:2],
            ric[:-1, 1:].reshape(n, -1),
            cont6d[:-1, 1:].reshape(n, -1),
            local_vel.reshape(n, -1),
            contacts,
        ],
        axis=-1,
    )


def process_joints(joints: np.ndarray, feet_threshold: float = sk.FOOT_CONTACT_THRESHOLD) -> ProcessedMotion:
    """Joints (T, 22, 3) in metres, Y-up, 20 fps -> HumanML3D features (T-1, 263) and canonical joints."""
    pos = canonicalise(check_joints(joints))
    feats = features_from_canonical(pos, feet_threshold)
    return ProcessedMotion(features=feats.astype(np.float32), joints=pos)


def joints_to_features(joints: np.ndarray, feet_threshold: float = sk.FOOT_CONTACT_THRESHOLD) -> np.ndarray:
    """Joints (T, 22, 3) -> features (T-1, 263) float32, as HumanML3D's ``process_file``."""
    return process_joints(joints, feet_threshold).features


# ----------------------------------------------------------------------------- features -> joints


def recover_root_t(features: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Root yaw quaternion (..., T, 4) and root position (..., T, 3) from features (..., T, 263)."""
    yaw_vel = features[..., 0]
    angle = torch.cumsum(torch.nn.functional.pad(yaw_vel[..., :-1], (1, 0)), dim=-1)
    r_quat = g.yaw_quat_t(angle)
    xz = torch.nn.functional.pad(features[..., :-1, 1:3], (0, 0, 1, 0))
    step = torch.stack([xz[..., 0], torch.zeros_like(xz[..., 0]), xz[..., 1]], dim=-1)
    root = torch.cumsum(g.qrot_t(g.qinv_t(r_quat), step), dim=-2)
    root = torch.cat([root[..., :1], features[..., 3:4], root[..., 2:3]], dim=-1)
    return r_quat, root


def recover_joints_t(features: torch.Tensor) -> torch.Tensor:
    """Differentiable, batched: features (..., T, 263) -> joints (..., T, 22, 3) (``recover_from_ric``)."""
    if features.shape[-1] != sk.FEATURE_DIM:
        raise MotionFormatError(f"features must end in {sk.FEATURE_DIM}, got shape {tuple(features.shape)}")
    r_quat, root = recover_root_t(features)
    ric = features[..., RIC].unflatten(-1, (sk.NUM_JOINTS - 1, 3))
    ric = g.qrot_t(g.qinv_t(r_quat)[..., None, :], ric)
    offset = torch.stack([root[..., 0], torch.zeros_like(root[..., 0]), root[..., 2]], dim=-1)
    return torch.cat([root[..., None, :], ric + offset[..., None, :]], dim=-2)


def recover_joints(features: np.ndarray) -> np.ndarray:
    """Features (..., T, 263) -> joints (..., T, 22, 3) float64 (NumPy in, NumPy out)."""
    feats = check_features(features)
    with torch.no_grad():
        return recover_joints_t(torch.from_numpy(np.asarray(feats, dtype=np.float64))).numpy()


def recover_joints_from_rot_t(features: torch.Tensor, offsets: torch.Tensor | None = None) -> torch.Tensor:
    """Joints from the root track and the 6D rotations by FK on the target skeleton (``recover_from_rot``).

    Like HumanML3D, every kinematic chain starts from the root rotation.
    """
    _r_quat, root = recover_root_t(features)
    if offsets is None:
        offsets = torch.as_tensor(sk.target_offsets(), dtype=features.dtype, device=features.device)
    rot = g.cont6d_to_matrix_t(features[..., ROT6D].unflatten(-1, (sk.NUM_JOINTS - 1, 6)))
    angle = torch.cumsum(torch.nn.functional.pad(features[..., :-1, 0], (1, 0)), dim=-1) * 2.0
    c, s = torch.cos(angle), torch.sin(angle)
    zeros, ones = torch.zeros_like(c), torch.ones_like(c)
    # the facing rotation itself (the IK expressed every chain relative to it): +Y by 2*angle
    root_rot = torch.stack([c, zeros, s, zeros, ones, zeros, -s, zeros, c], dim=-1).unflatten(-1, (3, 3))
    joints: list[torch.Tensor | None] = [None] * sk.NUM_JOINTS
    joints[0] = root
    for chain in sk.KINEMATIC_CHAIN:
        world = root_rot
        for parent, child in itertools.pairwise(chain):
            world = world @ rot[..., child - 1, :, :]
            joints[child] = joints[parent] + (world @ offsets[child].unsqueeze(-1)).squeeze(-1)
    return torch.stack(joints, dim=-2)  # type: ignore[arg-type]


# ----------------------------------------------------------------------------- mirroring

_MIRROR = np.array([-1.0, 1.0, 1.0])


def smooth_features(features: np.ndarray, sigma: float) -> np.ndarray:
    """A Gaussian low-pass in time (``sigma`` frames) of features ``(T, 263)``: every channel but the foot
    contacts, which stay binary. Sigma 0 returns the input; 1 removes the frame-to-frame noise a sampler
    leaves (its jerk) while keeping what real motion has at 20 fps (a cut-off near 3 Hz for half power).
    """
    if sigma < 0 or not np.isfinite(sigma):
        raise ValueError(f"smoothing sigma must be a finite number >= 0, got {sigma}")
    if sigma == 0 or len(features) < 2:
        return features
    out = np.array(features, copy=True)
    body = slice(0, FOOT_CONTACT.start)
    out[:, body] = gaussian_filter1d(out[:, body], sigma, axis=0, mode="nearest")
    return out


def mirror_joints(joints: np.ndarray) -> np.ndarray:
    """Reflect x -> -x and swap left/right joints (HumanML3D's data augmentation)."""
    return joints[..., sk.mirror_permutation(), :] * _MIRROR


def mirror_features(features: np.ndarray) -> np.ndarray:
    """Mirror features directly, equal to featurising the mirrored joints (up to float error)."""
    f = np.array(features, copy=True)
    perm = sk.mirror_permutation()
    lead = f.shape[:-1]
    f[..., 0] *= -1
    f[..., 1] *= -1
    ric = f[..., RIC].reshape(lead + (sk.NUM_JOINTS - 1, 3))
    ric = ric[..., perm[1:] - 1, :] * _MIRROR
    f[..., RIC] = ric.reshape(lead + (-1,))
    rot = f[..., ROT6D].reshape(lead + (sk.NUM_JOINTS - 1, 2, 3))
    rot = rot[..., perm[1:] - 1, :, :]
    # R' = M R M with M = diag(-1, 1, 1): column 0 -> -M col0, column 1 -> M col1
    rot = rot * np.stack([-_MIRROR, _MIRROR])
    f[..., ROT6D] = rot.reshape(lead + (-1,))
    vel = f[..., LOCAL_VEL].reshape(lead + (sk.NUM_JOINTS, 3))
    f[..., LOCAL_VEL] = (vel[..., perm, :] * _MIRROR).reshape(lead + (-1,))
    f[..., FOOT_CONTACT] = f[..., FOOT_CONTACT][..., [2, 3, 0, 1]]
    return f
