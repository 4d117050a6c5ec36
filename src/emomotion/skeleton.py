"""The SMPL 22-joint skeleton of HumanML3D, defined once.

Joint order, kinematic chain, raw offset directions and target bone lengths follow
HumanML3D (``paramUtil.py`` and the bone lengths of every ``new_joints`` file).
"""

from __future__ import annotations

import itertools

import numpy as np

FPS: int = 20
"""Frame rate of every motion in the library (HumanML3D's)."""

NUM_JOINTS: int = 22
FEATURE_DIM: int = 263
MAX_FRAMES: int = 196
MIN_FRAMES: int = 40

JOINT_NAMES: tuple[str, ...] = (
    "pelvis",
    "l_hip",
    "r_hip",
    "spine1",
    "l_knee",
    "r_knee",
    "spine2",
    "l_ankle",
    "r_ankle",
    "spine3",
    "l_foot",
    "r_foot",
    "neck",
    "l_collar",
    "r_collar",
    "head",
    "l_shoulder",
    "r_shoulder",
    "l_elbow",
    "r_elbow",
    "l_wrist",
    "r_wrist",
)
JOINT_INDEX: dict[str, int] = {name: i for i, name in enumerate(JOINT_NAMES)}

KINEMATIC_CHAIN: tuple[tuple[int, ...], ...] = (
    (0, 2, 5, 8, 11),
    (0, 1, 4, 7, 10),
    (0, 3, 6, 9, 12, 15),
    (9, 14, 17, 19, 21),
    (9, 13, 16, 18, 20),
)


def _parents_from_chain(chain: tuple[tuple[int, ...], ...], n: int) -> tuple[int, ...]:
    parents = [-1] * n
    for limb in chain:
        for parent, child in itertools.pairwise(limb):
            parents[child] = parent
    return tuple(parents)


PARENTS: tuple[int, ...] = _parents_from_chain(KINEMATIC_CHAIN, NUM_JOINTS)
"""Parent of each joint (-1 for the pelvis)."""

RAW_OFFSETS: np.ndarray = np.array(
    [
        [0, 0, 0],
        [1, 0, 0],
        [-1, 0, 0],
        [0, 1, 0],
        [0, -1, 0],
        [0, -1, 0],
        [0, 1, 0],
        [0, -1, 0],
        [0, -1, 0],
        [0, 1, 0],
        [0, 0, 1],
        [0, 0, 1],
        [0, 1, 0],
        [1, 0, 0],
        [-1, 0, 0],
        [0, 0, 1],
        [0, -1, 0],
        [0, -1, 0],
        [0, -1, 0],
        [0, -1, 0],
        [0, -1, 0],
        [0, -1, 0],
    ],
    dtype=np.float64,
)
"""Unit direction of each bone in the rest pose (HumanML3D ``t2m_raw_offsets``)."""
RAW_OFFSETS.setflags(write=False)

BONE_LENGTHS: np.ndarray = np.array(
    [
        0.0,
        0.10307395,
        0.10988336,
        0.13156825,
        0.39362316,
        0.39018814,
        0.14319026,
        0.43243301,
        0.42564334,
        0.0573647,
        0.14338175,
        0.14941866,
        0.21936,
        0.13748683,
        0.14338283,
        0.10303927,
        0.13161399,
        0.12298431,
        0.25683985,
        0.26309187,
        0.26601185,
        0.2698763,
    ],
    dtype=np.float64,
)
"""Target bone length (m) from each joint's parent, as in every HumanML3D ``new_joints`` file."""
BONE_LENGTHS.setflags(write=False)

FACE_JOINTS: tuple[int, int, int, int] = (2, 1, 17, 16)
"""r_hip, l_hip, r_shoulder, l_shoulder: the joints that define the facing direction."""
FEET_LEFT: tuple[int, int] = (7, 10)
FEET_RIGHT: tuple[int, int] = (8, 11)
FOOT_CONTACT_THRESHOLD: float = 0.002
"""Squared per-frame displacement (m^2, per axis weight 1) below which a foot joint is in contact."""

LEFT_JOINTS: tuple[int, ...] = (1, 4, 7, 10, 13, 16, 18, 20)
RIGHT_JOINTS: tuple[int, ...] = (2, 5, 8, 11, 14, 17, 19, 21)


def mirror_permutation() -> np.ndarray:
    """Index array that swaps every left joint with its right twin."""
    perm = np.arange(NUM_JOINTS)
    perm[list(LEFT_JOINTS)] = RIGHT_JOINTS
    perm[list(RIGHT_JOINTS)] = LEFT_JOINTS
    return perm


def target_offsets() -> np.ndarray:
    """Rest-pose offsets (22, 3) in metres of the HumanML3D target skeleton."""
    return RAW_OFFSETS * BONE_LENGTHS[:, None]


def leg_length(offsets: np.ndarray) -> float:
    """Length of the right leg (knee + ankle bones) of a skeleton given by offsets (22, 3)."""
    return float(np.linalg.norm(offsets[5]) + np.linalg.norm(offsets[8]))
