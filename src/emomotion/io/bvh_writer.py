"""Write BVH files: a :class:`~emomotion.io.bvh_motion.Motion` back to channel values in its skeleton's
own channel orders (rotations solved as Euler angles), written atomically."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
from scipy.spatial.transform import Rotation

from emomotion.io.atomic import atomic_path
from emomotion.io.bvh_motion import AXIS_INDEX, Motion


def _fmt(values: np.ndarray, precision: int) -> np.ndarray:
    return np.char.mod(f"%.{precision}g", values)


def motion_channel_values(motion: Motion) -> np.ndarray:
    """(T, C) channel values that reproduce the motion in its skeleton's channel orders."""
    sk = motion.skeleton
    t = motion.num_frames
    out = np.zeros((t, sk.num_channels))
    col = 0
    for k, chans in enumerate(sk.channels):
        rot_chans = [c for c in chans if c.endswith("rotation")]
        angles = {}
        if rot_chans:
            order = "".join(c[0] for c in rot_chans)
            if len(order) == 3:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore", UserWarning)  # gimbal lock: still a valid solution
                    euler = Rotation.from_matrix(motion.rotations[:, k]).as_euler(order, degrees=True)
                angles = {c: euler[:, i] for i, c in enumerate(rot_chans)}
            else:  # fewer than three axes: read each angle off a single-axis rotation
                rv = Rotation.from_matrix(motion.rotations[:, k]).as_rotvec(degrees=True)
                angles = {c: rv[:, AXIS_INDEX[c[0]]] for c in rot_chans}
        for c in chans:
            out[:, col] = (
                motion.local_positions[:, k, AXIS_INDEX[c[0]]] if c.endswith("position") else angles[c]
            )
            col += 1
    return out


def write_bvh(path: str | Path, motion: Motion, *, precision: int = 6) -> None:
    """Write ``motion`` as BVH (atomically: a failure leaves no file)."""
    sk = motion.skeleton
    children: dict[int, list[int]] = {}
    for k, p in enumerate(sk.parents):
        children.setdefault(int(p), []).append(k)
    lines = ["HIERARCHY"]

    def emit(k: int, depth: int) -> None:
        pad = "  " * depth
        kind = "ROOT" if sk.parents[k] < 0 else "JOINT"
        lines.append(f"{pad}{kind} {sk.names[k]}")
        lines.append(f"{pad}{{")
        lines.append(f"{pad}  OFFSET " + " ".join(_fmt(sk.offsets[k], precision)))
        if sk.channels[k]:
            lines.append(f"{pad}  CHANNELS {len(sk.channels[k])} " + " ".join(sk.channels[k]))
        for c in children.get(k, []):
            emit(c, depth + 1)
        if k in sk.end_sites:
            lines.extend(
                [
                    f"{pad}  End Site",
                    f"{pad}  {{",
                    f"{pad}    OFFSET " + " ".join(_fmt(sk.end_sites[k], precision)),
                    f"{pad}  }}",
                ]
            )
        lines.append(f"{pad}}}")

    for root in children.get(-1, []):
        emit(root, 0)
    values = motion_channel_values(motion)
    lines += [
        "MOTION",
        f"Frames: {motion.num_frames}",
        f"Frame Time: {1.0 / motion.fps:.{max(precision, 8)}g}",
    ]
    body = "\n".join(" ".join(row) for row in _fmt(values, precision + 3))
    with atomic_path(path) as tmp:
        tmp.write_text("\n".join(lines) + "\n" + body + "\n", encoding="utf-8")
