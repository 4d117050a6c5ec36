"""A parsed BVH motion: the skeleton of its HIERARCHY, per-frame local translations and rotations, and
forward kinematics vectorised over frames."""

from __future__ import annotations

import functools
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


@functools.lru_cache(maxsize=64)
def _fk_levels(parents: tuple[int, ...]) -> tuple[np.ndarray, tuple[tuple[np.ndarray, np.ndarray], ...]]:
    """The roots, then (joints, their parents) one depth at a time: forward kinematics takes one batched
    product per depth instead of one per joint. Parents precede their children."""
    depth: list[int] = []
    for p in parents:
        depth.append(0 if p < 0 else depth[p] + 1)
    roots = np.flatnonzero(np.array(depth) == 0)
    levels = []
    for d in range(1, max(depth, default=0) + 1):
        kids = np.array([k for k, dk in enumerate(depth) if dk == d])
        levels.append((kids, np.array(parents)[kids]))
    return roots, tuple(levels)


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
        roots, levels = _fk_levels(tuple(self.skeleton.parents.tolist()))
        world_rot[:, roots] = self.rotations[:, roots]
        world_pos[:, roots] = self.local_positions[:, roots]
        for kids, parents in levels:
            parent_rot = world_rot[:, parents]
            world_rot[:, kids] = parent_rot @ self.rotations[:, kids]
            offsets = np.einsum("tkij,tkj->tki", parent_rot, self.local_positions[:, kids])
            world_pos[:, kids] = world_pos[:, parents] + offsets
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
