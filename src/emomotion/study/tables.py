"""Formatting the study's numbers for RESULTS.md: metric labels, mean ± CI cells, means over seeds."""

from __future__ import annotations

import math
from typing import Any

import numpy as np

LABELS = {
    "emotion_accuracy": "Emo acc ↑",
    "judge_accuracy": "Cue judge ↑",
    "emotion_f1_weighted": "Emo F1w ↑",
    "fid": "FID ↓",
    "r_precision_top1": "R@1 ↑",
    "r_precision_top3": "R@3 ↑",
    "mm_dist": "MM-Dist ↓",
    "diversity": "Diversity →",
    "multimodality": "MModality",
    "static_rate": "Static ↓",
    "jitter": "Jitter ↓",
    "foot_skating_ratio": "Skate ↓",
}


def fmt(mean: float | None, ci: float | None = None) -> str:
    """``mean ± ci`` with 3 decimals (1 from 100 on); ``–`` for a missing value."""
    if mean is None or (isinstance(mean, float) and math.isnan(mean)):
        return "–"
    digits = 3 if abs(mean) < 100 else 1
    return f"{mean:.{digits}f}" + (f" ± {ci:.{digits}f}" if ci is not None and ci > 0 else "")


def metric(row: dict[str, Any], name: str) -> tuple[float, float]:
    """(mean, 95% CI half width) of one metric of an evaluation row; NaN when absent."""
    m = row["metrics"].get(name)
    return (float(m["mean"]), float(m["ci95"])) if m else (float("nan"), 0.0)


def seed_mean(rows: list[dict[str, Any]], name: str) -> tuple[float, float, int]:
    """Mean over seeds of each seed's mean, the 95% CI half width over seeds, and the seed count."""
    values = np.array([metric(r, name)[0] for r in rows], dtype=float)
    values = values[np.isfinite(values)]
    if values.size == 0:
        return float("nan"), 0.0, 0
    ci = 1.96 * values.std(ddof=1) / math.sqrt(values.size) if values.size > 1 else 0.0
    return float(values.mean()), float(ci), int(values.size)
