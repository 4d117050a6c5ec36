"""Normalisation statistics computed the HumanML3D way (``cal_mean_variance.ipynb``).

Mean over every frame of every clip; standard deviation per dimension, then averaged within each
feature group (root yaw, root xz velocity, root height, ric, 6D rotations, local velocities, foot
contacts), so that every dimension of a group is scaled alike. Accumulated in float64 one clip at
a time: memory does not grow with the dataset.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

import numpy as np

from emomotion import skeleton as sk
from emomotion.errors import DatasetError
from emomotion.features import FEATURE_GROUPS


@dataclass
class FeatureStats:
    """Streaming sums of features (population statistics, ddof=0)."""

    dim: int = sk.FEATURE_DIM
    count: int = 0
    total: np.ndarray = field(init=False)
    total_sq: np.ndarray = field(init=False)
    shift: np.ndarray | None = field(init=False, default=None)

    def __post_init__(self) -> None:
        self.total = np.zeros(self.dim)
        self.total_sq = np.zeros(self.dim)

    def update(self, features: np.ndarray) -> None:
        x = np.asarray(features, dtype=np.float64).reshape(-1, self.dim)
        if not np.isfinite(x).all():
            raise DatasetError("features contain NaN or inf")
        if self.shift is None:  # shifted sums keep the variance accurate in float64
            self.shift = x[0].copy()
        d = x - self.shift
        self.count += x.shape[0]
        self.total += d.sum(axis=0)
        self.total_sq += (d * d).sum(axis=0)

    def mean(self) -> np.ndarray:
        if self.count == 0 or self.shift is None:
            raise DatasetError("no frames to compute statistics from")
        return self.shift + self.total / self.count

    def std(self) -> np.ndarray:
        if self.count == 0:
            raise DatasetError("no frames to compute statistics from")
        m = self.total / self.count
        return np.sqrt(np.maximum(self.total_sq / self.count - m * m, 0.0))


def group_average_std(std: np.ndarray) -> np.ndarray:
    """Replace each dimension's std by its feature group's mean std (HumanML3D's Std.npy)."""
    out = np.array(std, dtype=np.float64, copy=True)
    for sl in FEATURE_GROUPS.values():
        out[sl] = out[sl].mean()
    return out


def compute_mean_std(clips: Iterable[np.ndarray], *, min_std: float = 1e-8) -> tuple[np.ndarray, np.ndarray]:
    """(Mean, Std) float32 (263,) of feature clips, as HumanML3D computes them.

    A group whose std is 0 (e.g. foot contacts of a dataset that never lifts a foot) is set to 1 so
    that normalising never divides by zero; ``min_std`` is that threshold.
    """
    acc = FeatureStats()
    for clip in clips:
        acc.update(clip)
    std = group_average_std(acc.std())
    std[std < min_std] = 1.0
    return acc.mean().astype(np.float32), std.astype(np.float32)
