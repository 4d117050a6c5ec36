"""Evaluating a mapping on a motion, and repairing bones that have no direction.

A source joint that sits on its parent (CMU's ``LowerBack`` on ``Hips``, ``LeftShoulder`` on
``Spine1``; a toe-less rig whose foot is mapped to the ankle) makes a zero-length SMPL bone, whose
direction would otherwise come from the target's rest pose in world space (a collar twisted against
the hips, a foot that never turns). Such a joint never sets a direction: it moves halfway to its SMPL
child (its blend is mixed with the child's), and a zero-length foot becomes a toe carried by the
ankle's rotation. Every change is written into the mapping, so the report lists it.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

from emomotion import skeleton as sk
from emomotion.rigs.mapping import JointSource, Rig, RigMapping, mix

DEGENERATE = 0.02
"""An SMPL bone shorter than this share of the leg (hip -> ankle), on average, has no direction."""
CHAIN_CHILD = {child: chain[i + 2] for chain in sk.KINEMATIC_CHAIN for i, child in enumerate(chain[1:-1])}
"""SMPL joint -> the next joint along its chain (spine3 continues to the neck; collars to shoulders)."""
FEET = (sk.JOINT_INDEX["l_foot"], sk.JOINT_INDEX["r_foot"])
SAMPLE_FRAMES = 8
TOE_LENGTH = 0.17
"""A synthesised ankle -> toe vector's length, as a share of the leg (hip -> ankle)."""
TOE_DROP = 0.35
"""... and how far it points down for each unit forward (the toe joint is below the ankle)."""


def evaluate(
    mapping: RigMapping,
    names: Sequence[str],
    positions: np.ndarray,
    rotations: np.ndarray | None = None,
    only: Sequence[int] | None = None,
    out: np.ndarray | None = None,
) -> np.ndarray:
    """(T, J, 3) source positions -> (T, 22, 3) SMPL joints (``only`` recomputes a few into ``out``)."""
    if only is None and not any(s.toe_from for s in mapping.joints.values()):
        return np.matmul(mapping.weights(tuple(names)), positions)
    index = {n: i for i, n in enumerate(names)}
    if out is None:
        out = np.zeros((positions.shape[0], sk.NUM_JOINTS, 3))
    todo = list(range(sk.NUM_JOINTS) if only is None else only)
    todo.sort(key=lambda j: mapping.joints[sk.JOINT_NAMES[j]].toe_from is not None)  # toes need the rest
    for j in todo:
        src = mapping.joints[sk.JOINT_NAMES[j]]
        if src.toe_from is not None:
            out[:, j] = _toe(src, index, positions, rotations, out)
            continue
        acc = np.zeros((positions.shape[0], 3))
        for name, weight in src.blend:
            acc += weight * positions[:, index[name]]
        out[:, j] = acc
    return out


def _toe(
    src: JointSource,
    index: dict[str, int],
    positions: np.ndarray,
    rotations: np.ndarray | None,
    smpl: np.ndarray,
) -> np.ndarray:
    k = index[src.toe_from]
    if rotations is not None and src.toe_offset is not None:
        return positions[:, k] + rotations[:, k] @ np.asarray(src.toe_offset)
    # no rotations: point along the body's facing, tilted down (the hips give the facing)
    across = smpl[:, sk.JOINT_INDEX["l_hip"]] - smpl[:, sk.JOINT_INDEX["r_hip"]]
    up = smpl[:, sk.JOINT_INDEX["head"]] - smpl[:, 0]
    forward = np.cross(across, up)
    forward /= np.maximum(np.linalg.norm(forward, axis=-1, keepdims=True), 1e-12)
    up /= np.maximum(np.linalg.norm(up, axis=-1, keepdims=True), 1e-12)
    leg = np.linalg.norm(smpl[:, 1] - smpl[:, 4], axis=-1) + np.linalg.norm(smpl[:, 4] - smpl[:, 7], axis=-1)
    return positions[:, k] + (forward - TOE_DROP * up) * (TOE_LENGTH * leg)[:, None]


def _up(joints: np.ndarray) -> np.ndarray:
    """The source's up axis (unit vector) from pelvis -> head over the frames."""
    spine = (joints[:, sk.JOINT_INDEX["head"]] - joints[:, 0]).mean(axis=0)
    axis = int(np.argmax(np.abs(spine)))
    up = np.zeros(3)
    up[axis] = np.sign(spine[axis]) or 1.0
    return up


def _leg_lengths(joints: np.ndarray) -> np.ndarray:
    return np.linalg.norm(joints[:, 4] - joints[:, 1], axis=-1) + np.linalg.norm(
        joints[:, 7] - joints[:, 4], axis=-1
    )


def place_toes(
    mapping: RigMapping,
    joints: np.ndarray,
    names: Sequence[str],
    positions: np.ndarray,
    rig: Rig | None,
    rotations: np.ndarray | None,
) -> tuple[RigMapping, np.ndarray]:
    """Give every synthesised toe its vector in the ankle's frame: the ankle's End Site when it points
    forward, else a foot's length forward and down on the frame where the ankle is lowest (the foot
    flat on the floor)."""
    feet = [
        f
        for f in FEET
        if mapping.joints[sk.JOINT_NAMES[f]].toe_from and mapping.joints[sk.JOINT_NAMES[f]].toe_offset is None
    ]
    if not feet or rotations is None:
        return mapping, joints
    up = _up(joints)
    height = joints @ up
    leg = float(np.median(_leg_lengths(joints)))
    for f in feet:
        name = sk.JOINT_NAMES[f]
        src = mapping.joints[name]
        k = list(names).index(src.toe_from)
        frame = int(
            np.argmin(height[:, sk.PARENTS[f]])
        )  # the ankle at its lowest: the foot flat on the floor
        pose = joints[frame]
        forward = np.cross(pose[1] - pose[2], up)
        forward /= max(float(np.linalg.norm(forward)), 1e-12)
        rot = rotations[frame, k]
        end = rig.end_sites.get(k) if rig is not None else None
        if (
            end is not None
            and float((rot @ end) @ forward) > 0.3 * float(np.linalg.norm(end))
            and np.linalg.norm(end) > 0.05 * leg
        ):
            local, how = np.asarray(end, dtype=float), "its End Site"
        else:
            world = forward - TOE_DROP * up
            local = rot.T @ (world / np.linalg.norm(world) * TOE_LENGTH * leg)
            how = "a foot's length forward and down"
        mapping = mapping.with_joint(
            name,
            JointSource(src.blend, src.how, src.confidence, src.toe_from, tuple(float(x) for x in local)),
            f"{name}: {src.toe_from}'s rotation carries {how}",
        )
        evaluate(mapping, names, positions, rotations, only=[f], out=joints)
    return mapping, joints


def repair_degenerate(
    mapping: RigMapping,
    joints: np.ndarray,
    names: Sequence[str],
    positions: np.ndarray,
    rig_fn: Callable[[], Rig | None],
    rotations_fn: Callable[[], np.ndarray] | None = None,
) -> tuple[RigMapping, np.ndarray, np.ndarray | None]:
    """Fix zero-length SMPL bones (see the module docstring) and place synthesised toes.
    ``rig_fn()`` and ``rotations_fn()`` give the source's rest tree and world rotations, computed only
    when a toe is synthesised.
    Returns (mapping, joints, rotations)."""
    rotations = None
    step = max(1, joints.shape[0] // SAMPLE_FRAMES)
    sample = joints[::step]
    leg = float(_leg_lengths(sample).mean())
    eps = DEGENERATE * leg
    for _ in range(3):
        changed = False
        sample = joints[::step]
        parents = np.array(sk.PARENTS[1:])
        lengths = np.linalg.norm(sample[:, 1:] - sample[:, parents], axis=-1).mean(axis=0)
        for c in np.flatnonzero(lengths < eps) + 1:
            c = int(c)
            name = sk.JOINT_NAMES[c]
            src = mapping.joints[name]
            if src.toe_from is not None:
                continue
            if c in FEET:
                ankle = mapping.joints[sk.JOINT_NAMES[sk.PARENTS[c]]]
                ankle_name = max(ankle.blend, key=lambda nw: nw[1])[0]
                toe = JointSource(ankle.blend, "synthesised", 0.4, toe_from=ankle_name)
                mapping = mapping.with_joint(
                    name, toe, f"{name} sat on the ankle: a toe carried by {ankle_name}'s rotation"
                )
            elif c in CHAIN_CHILD:
                child = sk.JOINT_NAMES[CHAIN_CHILD[c]]
                blend = mix(src.blend, mapping.joints[child].blend, 0.5)
                mapping = mapping.with_joint(
                    name,
                    JointSource(blend, "repaired", min(src.confidence, 0.7)),
                    f"{name} sat on {sk.JOINT_NAMES[sk.PARENTS[c]]}: moved halfway to {child}",
                )
            else:
                continue
            evaluate(mapping, names, positions, None, only=[c], out=joints)
            changed = True
        if not changed:
            break
    if rotations_fn is not None and any(
        mapping.joints[sk.JOINT_NAMES[f]].toe_from and mapping.joints[sk.JOINT_NAMES[f]].toe_offset is None
        for f in FEET
    ):
        rotations = rotations_fn()
        mapping, joints = place_toes(mapping, joints, names, positions, rig_fn(), rotations)
    return mapping, joints, rotations
