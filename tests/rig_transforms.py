"""Make rigs the project has never seen from the shared BVH files, at test time.

:class:`EditRig` holds a parsed motion as editable lists and applies the changes other rigs show:
other joint names, units, joints that sit on their parent, twist and finger bones, a folded (removed)
joint whose motion its children inherit, a dropped end joint, Z-up axes and other channel orders.
Every edit keeps the world positions of the joints that remain (folding gives the children position
channels), so the retargeted result can be compared with the original's.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from emomotion.io.bvh import BvhSkeleton, Motion, read_bvh
from emomotion.io.bvh_writer import write_bvh

ROT_ZYX = ("Zrotation", "Yrotation", "Xrotation")
POS = ("Xposition", "Yposition", "Zposition")


@dataclass
class EditRig:
    names: list[str]
    parents: list[int]
    offsets: list[np.ndarray]
    channels: list[tuple[str, ...]]
    end_sites: dict[str, np.ndarray]
    local_pos: list[np.ndarray]  # (T, 3) each
    rot: list[np.ndarray]  # (T, 3, 3) each
    fps: float

    @classmethod
    def from_motion(cls, m: Motion, frames: slice = slice(None)) -> EditRig:
        sk = m.skeleton
        return cls(
            list(sk.names),
            [int(p) for p in sk.parents],
            [o.copy() for o in sk.offsets],
            list(sk.channels),
            {sk.names[k]: v.copy() for k, v in sk.end_sites.items()},
            [m.local_positions[frames, k].copy() for k in range(len(sk.names))],
            [m.rotations[frames, k].copy() for k in range(len(sk.names))],
            m.fps,
        )

    @classmethod
    def read(cls, path: Path, frames: slice = slice(None)) -> EditRig:
        return cls.from_motion(read_bvh(path), frames)

    def i(self, name: str) -> int:
        return self.names.index(name)

    @property
    def frames(self) -> int:
        return self.rot[0].shape[0]

    # ------------------------------------------------------------------ edits

    def rename(self, mapping: dict[str, str]) -> EditRig:
        self.end_sites = {mapping.get(k, k): v for k, v in self.end_sites.items()}
        self.names = [mapping.get(n, n) for n in self.names]
        return self

    def scale(self, factor: float) -> EditRig:
        self.offsets = [o * factor for o in self.offsets]
        self.local_pos = [p * factor for p in self.local_pos]
        self.end_sites = {k: v * factor for k, v in self.end_sites.items()}
        return self

    def _add(self, name: str, parent: int, offset: np.ndarray, channels: tuple[str, ...]) -> int:
        self.names.append(name)
        self.parents.append(parent)
        self.offsets.append(np.asarray(offset, dtype=float))
        self.channels.append(channels)
        self.local_pos.append(np.broadcast_to(offset, (self.frames, 3)).astype(float))
        self.rot.append(np.broadcast_to(np.eye(3), (self.frames, 3, 3)).copy())
        return len(self.names) - 1

    def insert_on(self, parent: str, name: str, children: list[str]) -> EditRig:
        """A new joint sitting exactly on ``parent`` (zero offset, no rotation), adopting ``children``."""
        k = self._add(name, self.i(parent), np.zeros(3), ROT_ZYX)
        for c in children:
            self.parents[self.i(c)] = k
        return self

    def split(self, child: str, name: str) -> EditRig:
        """A twist bone halfway along the bone to ``child``."""
        c = self.i(child)
        k = self._add(name, self.parents[c], self.offsets[c] / 2, ROT_ZYX)
        self.local_pos[k] = self.local_pos[c] / 2
        self.offsets[c] = self.offsets[c] / 2
        self.local_pos[c] = self.local_pos[c] / 2
        self.parents[c] = k
        return self

    def add_children(self, parent: str, specs: dict[str, tuple[float, float, float]]) -> EditRig:
        for name, offset in specs.items():
            self._add(name, self.i(parent), np.array(offset, dtype=float), ROT_ZYX)
        return self

    def fold(self, name: str) -> EditRig:
        """Remove a joint; its children inherit its motion through position channels."""
        k = self.i(name)
        for c in [c for c, p in enumerate(self.parents) if p == k]:
            self.local_pos[c] = self.local_pos[k] + np.einsum("tij,tj->ti", self.rot[k], self.local_pos[c])
            self.rot[c] = self.rot[k] @ self.rot[c]
            self.offsets[c] = self.offsets[k] + self.offsets[c]
            rot = tuple(ch for ch in self.channels[c] if ch.endswith("rotation")) or ROT_ZYX
            self.channels[c] = POS + rot
            self.parents[c] = self.parents[k]
        return self._remove(k)

    def drop_leaf(self, name: str) -> EditRig:
        """Remove an end joint; its offset becomes its parent's End Site."""
        k = self.i(name)
        assert k not in self.parents, f"{name} has children"
        self.end_sites[self.names[self.parents[k]]] = self.offsets[k].copy()
        self.end_sites.pop(name, None)
        return self._remove(k)

    def _remove(self, k: int) -> EditRig:
        for lst in (self.names, self.offsets, self.channels, self.local_pos, self.rot):
            del lst[k]
        parent = self.parents.pop(k)
        self.parents = [parent if p == k else p - (p > k) for p in self.parents]
        return self

    def z_up(self) -> EditRig:
        """Express everything in a Z-up frame (a +90 degree turn about X)."""
        r = np.array([[1.0, 0.0, 0.0], [0.0, 0.0, -1.0], [0.0, 1.0, 0.0]])
        self.offsets = [r @ o for o in self.offsets]
        self.local_pos = [p @ r.T for p in self.local_pos]
        self.rot = [r @ q @ r.T for q in self.rot]
        self.end_sites = {k: r @ v for k, v in self.end_sites.items()}
        return self

    def rest_turn(self, joint: str, q: np.ndarray) -> EditRig:
        """Turn the rest pose below ``joint`` by ``q`` (e.g. arms hanging -> T-pose), keeping the motion:
        every world rotation below it becomes W q^T, every offset below it q @ offset."""
        k = self.i(joint)
        self.rot[k] = self.rot[k] @ q.T
        for c in range(len(self.names)):
            if c != k and k in self._chain(c):
                self.offsets[c] = q @ self.offsets[c]
                self.local_pos[c] = self.local_pos[c] @ q.T
                self.rot[c] = q @ self.rot[c] @ q.T
        for name in list(self.end_sites):
            c = self.i(name)
            if c != k and k in self._chain(c):
                self.end_sites[name] = q @ self.end_sites[name]
        return self

    def _chain(self, j: int) -> list[int]:
        out = []
        while j >= 0:
            out.append(j)
            j = self.parents[j]
        return out

    def channel_order(self, order: str) -> EditRig:
        self.channels = [
            tuple(c for c in ch if c.endswith("position")) + tuple(f"{a}rotation" for a in order)
            for ch in self.channels
        ]
        return self

    # ------------------------------------------------------------------ output

    def motion(self) -> Motion:
        children: dict[int, list[int]] = {}
        for k, p in enumerate(self.parents):
            children.setdefault(p, []).append(k)
        order: list[int] = []
        stack = list(reversed(children.get(-1, [])))
        while stack:
            k = stack.pop()
            order.append(k)
            stack.extend(reversed(children.get(k, [])))
        new = {old: i for i, old in enumerate(order)}
        skeleton = BvhSkeleton(
            tuple(self.names[k] for k in order),
            np.array([new[self.parents[k]] if self.parents[k] >= 0 else -1 for k in order]),
            np.array([self.offsets[k] for k in order]),
            tuple(self.channels[k] for k in order),
            {new[self.i(n)]: v for n, v in self.end_sites.items() if n in self.names},
        )
        return Motion(
            skeleton,
            np.stack([self.local_pos[k] for k in order], axis=1),
            np.stack([self.rot[k] for k in order], axis=1),
            self.fps,
        )

    def write(self, path: Path) -> Path:
        write_bvh(path, self.motion())
        return path
