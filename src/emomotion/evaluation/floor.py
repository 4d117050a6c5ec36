"""The FID floor of a small test split: what a generator reproducing the real motion exactly would score.

FID between two finite samples is biased upwards, the more so the fewer clips and the wider their
spread: with a few dozen test clips even real motion scores well above zero. The floor takes real clips
of another split (the training clips, cut as the test reference is cut), draws as many as the test
split has, ``draws`` times, and measures each draw's FID against the test reference. A generated FID
near the floor is as close to the test clips as held-out real motion of the same count.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from emomotion.evaluation import metrics
from emomotion.evaluation.evalset import EvalSet, EvalSettings, embed_motions


@dataclass(frozen=True)
class FidFloor:
    mean: float
    std: float
    clips: int  # clips per draw: the test split's count
    pool: int  # real clips drawn from
    draws: int
    split: str

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def fid_floor(
    root: str | Path,
    evaluator: Any,
    settings: EvalSettings,
    *,
    pool_split: str = "train",
    draws: int = 20,
) -> FidFloor:
    """FID of ``draws`` random draws of ``pool_split`` clips (as many as ``settings.split`` has) against
    ``settings.split``'s reference; raises :class:`ValueError` when the pool has fewer clips."""
    if draws < 1:
        raise ValueError(f"draws must be >= 1, got {draws}")
    test = EvalSet(root, settings)
    pool = EvalSet(root, replace(settings, split=pool_split, max_clips=0))
    n = len(test)
    if len(pool) < n:
        raise ValueError(f"{root}: the {pool_split} split has {len(pool)} clips, fewer than the {n} to draw")
    reference = embed_motions(evaluator, test.reference()[0])
    real = embed_motions(evaluator, pool.reference()[0])
    rng = np.random.default_rng([settings.seed, 2])
    fids = [metrics.fid(reference, real[rng.choice(len(real), n, replace=False)]) for _ in range(draws)]
    return FidFloor(float(np.mean(fids)), float(np.std(fids)), n, len(real), draws, pool_split)
