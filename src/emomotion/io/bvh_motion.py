"""A parsed BVH motion: the skeleton of its HIERARCHY, per-frame local translations and rotations, and
forward kinematics vectorised over frames."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

CHANNEL_NAMES = ("Xposition", "Yposition", "Zposition", "Xrotation", "Yrotation", "Zrotation")
AXIS_INDEX = {"X": 0, "Y": 1, "Z": 2}


@dataclass(frozen=True)
class BvhSkeleton:
    """The HIERARCHY section. Joints are in file order, so parents precede their children."""

    names: tuple[str, ...]
    parents: np.ndarray  # (J,) int64, -1 for roots
    offsets: np.ndarray  # (J, 3) float64, file units
    channels: tuple[tuple[str, ...], ...]
    end_sites: dict[int, np.ndarray] = field(default_factory=dict)  # parent joint -> (3,) offset

    @property
    def num_channels(self) -> int:
        return sum(len(c) for c in self.channels)

    def index(self, name: str) -> int:
        try:
            return self.names.index(name)
        except ValueError:
            raise KeyError(name) from None


@dataclass(frozen=True)
class Motion:
    """A parsed BVH: per-frame local translations and rotations of every joint."""

    skeleton: BvhSkeleton
    local_positions: np.ndarray  # (T, J, 3) float64
    rotations: np.ndarray  # (T, J, 3, 3) float64 local rotation matrices
    fps: float
    source: Path | None = None

    @property
    def names(self) -> tuple[str, ...]:
        return self.skeleton.names

    @property
    def parents(self) -> np.ndarray:
        return self.skeleton.parents

    @property
    def num_frames(self) -> int:
        return int(self.local_positions.shape[0])

    def _fk(self) -> tuple[np.ndarray, np.ndarray]:
        t, j = self.local_positions.shape[:2]
        world_rot = np.empty((t, j, 3, 3))
        world_pos = np.empty((t, j, 3))
        for k, p in enumerate(self.skeleton.parents):
            if p < 0:
                world_rot[:, k] = self.rotations[:, k]
                world_pos[:, k] = self.local_positions[:, k]
            else:
                world_rot[:, k] = world_rot[:, p] @ self.rotations[:, k]
                world_pos[:, k] = world_pos[:, p] + np.einsum(
                    "tij,tj->ti", world_rot[:, p], self.local_positions[:, k]
                )
        return world_pos, world_rot

    def world_positions(self) -> np.ndarray:
        """(T, J, 3) joint positions, applying every joint's local translation."""
        return self._fk()[0]

    def world_rotations(self) -> np.ndarray:
        """(T, J, 3, 3) world rotation of every joint."""
        return self._fk()[1]

    def end_site_positions(self) -> dict[int, np.ndarray]:
        """Parent joint index -> (T, 3) world position of its End Site."""
        pos, rot = self._fk()
        return {j: pos[:, j] + rot[:, j] @ off for j, off in self.skeleton.end_sites.items()}
