"""Metrics of text-to-motion evaluation, emotion classification and motion quality.

The embedding metrics follow the protocol of Guo et al. 2022 ("Generating Diverse and
Natural 3D Human Motions from Text", the T2M evaluator) as run by MDM and MMM:
R-precision within batches of 32 matched pairs, MM-Dist, FID, Diversity over 300 random
pairs and MultiModality over 10 pairs of repeated generations, each reported as a mean
and a 95% confidence interval over repetitions. Emotion metrics score an emotion
classifier's predictions (confusion matrix, accuracy, macro and weighted F1). Motion-quality
metrics read SMPL-22 joint positions ``(T, 22, 3)`` in metres, Y up, floor at ``y = 0``.

Every function is pure, works in float64, validates its inputs (``ValueError`` naming the
argument and its shape) and, where it samples, draws only from the ``np.random.Generator``
it is given.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike
from scipy import linalg

from emomotion.skeleton import FEET_LEFT, FEET_RIGHT, FPS, NUM_JOINTS

log = logging.getLogger(__name__)

R_PRECISION_BATCH: int = 32
"""Matched pairs per R-precision batch; the protocol's numbers are only comparable at 32."""

CI_Z: float = 1.96
"""Normal quantile of a two-sided 95% interval."""

FOOT_JOINTS: tuple[int, ...] = (*FEET_LEFT, *FEET_RIGHT)
"""Left ankle, left foot, right ankle, right foot (SMPL-22 indices 7, 10, 8, 11)."""


def _array(name: str, value: ArrayLike, ndim: int, shape_text: str) -> np.ndarray:
    """``value`` as a finite float64 array with ``ndim`` dimensions, else ``ValueError``."""
    arr = np.asarray(value, dtype=np.float64)
    if arr.ndim != ndim or arr.size == 0:
        raise ValueError(f"{name} must have shape {shape_text}, got shape {arr.shape}")
    if not np.isfinite(arr).all():
        raise ValueError(f"{name} contains NaN or infinite values (shape {arr.shape})")
    return arr


def _generator(name: str, rng: object) -> np.random.Generator:
    if not isinstance(rng, np.random.Generator):
        raise ValueError(f"{name} must be a numpy.random.Generator, got {type(rng).__name__}")
    return rng


# Embedding metrics (Guo et al. 2022 protocol) ---------------------------------------


def euclidean_distance_matrix(a: ArrayLike, b: ArrayLike) -> np.ndarray:
    """Pairwise Euclidean distances ``(N, M)`` between rows of ``a (N, D)`` and ``b (M, D)``.

    Uses ``|a|^2 + |b|^2 - 2 a.b``; rounding can make that slightly negative, so it is
    clipped to 0 before the square root.
    """
    a = _array("a", a, 2, "(N, D)")
    b = _array("b", b, 2, "(M, D)")
    if a.shape[1] != b.shape[1]:
        raise ValueError(f"a and b must have the same width D, got shapes {a.shape} and {b.shape}")
    squared = (a * a).sum(axis=1)[:, None] + (b * b).sum(axis=1)[None, :] - 2.0 * (a @ b.T)
    return np.sqrt(np.clip(squared, 0.0, None))


def _matched_pairs(text_emb: ArrayLike, motion_emb: ArrayLike) -> tuple[np.ndarray, np.ndarray]:
    text = _array("text_emb", text_emb, 2, "(N, D)")
    motion = _array("motion_emb", motion_emb, 2, "(N, D)")
    if text.shape != motion.shape:
        raise ValueError(
            f"text_emb and motion_emb must have the same shape (N, D), got {text.shape} and {motion.shape}"
        )
    return text, motion


def r_precision(
    text_emb: ArrayLike,
    motion_emb: ArrayLike,
    *,
    batch_size: int = R_PRECISION_BATCH,
    top_k: int = 3,
    rng: np.random.Generator | None = None,
) -> np.ndarray:
    """R-precision top-1..top-k ``(top_k,)`` of matched text/motion embeddings ``(N, D)``.

    Row ``i`` of ``text_emb`` describes row ``i`` of ``motion_emb``. The pairs are cut into
    batches of exactly ``batch_size`` (32 in the protocol); the last ``N % batch_size``
    pairs are dropped, as the official loader does (``drop_last``). Within a batch every
    text ranks the batch's motions by Euclidean distance; a hit at ``k`` means its own
    motion is among the ``k`` closest. Returns the hit rate at each ``k`` over all texts
    kept. With ``rng`` the pairs are shuffled before batching (the official loader
    shuffles); without it batches follow row order. Raises ``ValueError`` when
    ``N < batch_size``.
    """
    text, motion = _matched_pairs(text_emb, motion_emb)
    if not 1 <= top_k <= batch_size:
        raise ValueError(f"top_k must be in [1, batch_size={batch_size}], got {top_k}")
    n = text.shape[0]
    if n < batch_size:
        raise ValueError(f"R-precision needs at least batch_size={batch_size} pairs, got {n}")
    order = np.arange(n) if rng is None else _generator("rng", rng).permutation(n)
    num_batches = n // batch_size
    if n % batch_size:
        log.debug("R-precision drops the last %d of %d pairs", n % batch_size, n)
    hits = np.zeros(top_k, dtype=np.int64)
    for batch in order[: num_batches * batch_size].reshape(num_batches, batch_size):
        dist = euclidean_distance_matrix(text[batch], motion[batch])  # (B, B)
        ranking = np.argsort(dist, axis=1, kind="stable")  # (B, B) motion indices, closest first
        rank = np.argmax(ranking == np.arange(batch_size)[:, None], axis=1)  # (B,) rank of own motion
        hits += (rank[:, None] < np.arange(1, top_k + 1)[None, :]).sum(axis=0)
    return hits / (num_batches * batch_size)


def mm_dist(text_emb: ArrayLike, motion_emb: ArrayLike) -> float:
    """MM-Dist (the "matching score"): mean distance of matched pairs ``(N, D)``.

    Averages over all ``N`` rows; the official script averages over the pairs its
    ``drop_last`` loader keeps, so pass that same subset to reproduce it exactly.
    """
    text, motion = _matched_pairs(text_emb, motion_emb)
    return float(np.linalg.norm(text - motion, axis=1).mean())


matching_score = mm_dist


def activation_statistics(acts: ArrayLike) -> tuple[np.ndarray, np.ndarray]:
    """Mean ``(D,)`` and unbiased covariance ``(D, D)`` of embeddings ``acts (N, D)``, ``N >= 2``."""
    arr = _array("acts", acts, 2, "(N, D)")
    if arr.shape[0] < 2:
        raise ValueError(f"acts needs at least 2 rows for a covariance, got shape {arr.shape}")
    return arr.mean(axis=0), np.atleast_2d(np.cov(arr, rowvar=False))


def frechet_distance(
    mu1: ArrayLike, sigma1: ArrayLike, mu2: ArrayLike, sigma2: ArrayLike, *, eps: float = 1e-6
) -> float:
    """Fréchet distance between Gaussians ``N(mu1 (D,), sigma1 (D, D))`` and ``N(mu2, sigma2)``.

    ``|mu1 - mu2|^2 + Tr(sigma1 + sigma2 - 2 sqrt(sigma1 sigma2))``. As the standard FID
    code does: when the matrix square root of a near-singular product is not finite,
    ``eps * I`` is added to both covariances; a small imaginary part from rounding is
    dropped, a large one (diagonal beyond 1e-3) raises ``ValueError``.
    """
    mu1 = _array("mu1", mu1, 1, "(D,)")
    mu2 = _array("mu2", mu2, 1, "(D,)")
    sigma1 = _array("sigma1", sigma1, 2, "(D, D)")
    sigma2 = _array("sigma2", sigma2, 2, "(D, D)")
    d = mu1.shape[0]
    if mu2.shape != (d,) or sigma1.shape != (d, d) or sigma2.shape != (d, d):
        raise ValueError(
            "mu1, sigma1, mu2, sigma2 must have shapes (D,), (D, D), (D,), (D, D), got "
            f"{mu1.shape}, {sigma1.shape}, {mu2.shape}, {sigma2.shape}"
        )
    covmean = linalg.sqrtm(sigma1 @ sigma2)
    if not np.isfinite(covmean).all():
        log.warning("FID: singular covariance product; adding %g to the diagonals", eps)
        offset = np.eye(d) * eps
        covmean = linalg.sqrtm((sigma1 + offset) @ (sigma2 + offset))
    if np.iscomplexobj(covmean):
        if not np.allclose(np.diagonal(covmean).imag, 0.0, atol=1e-3):
            raise ValueError(
                f"FID: imaginary component {np.abs(covmean.imag).max():g} in sqrt(sigma1 sigma2)"
            )
        covmean = covmean.real
    diff = mu1 - mu2
    return float(diff @ diff + np.trace(sigma1) + np.trace(sigma2) - 2.0 * np.trace(covmean))


def fid(acts_a: ArrayLike, acts_b: ArrayLike) -> float:
    """FID between two sets of embeddings ``acts_a (N, D)`` and ``acts_b (M, D)``."""
    a = _array("acts_a", acts_a, 2, "(N, D)")
    b = _array("acts_b", acts_b, 2, "(M, D)")
    if a.shape[1] != b.shape[1]:
        raise ValueError(f"acts_a and acts_b must have the same width D, got {a.shape} and {b.shape}")
    mu_a, sigma_a = activation_statistics(a)
    mu_b, sigma_b = activation_statistics(b)
    return frechet_distance(mu_a, sigma_a, mu_b, sigma_b)


def _index_pairs(gen: np.random.Generator, n: int, num_pairs: int) -> tuple[np.ndarray, np.ndarray]:
    """Two index vectors drawn independently, each without replacement (the official pairing)."""
    return gen.choice(n, num_pairs, replace=False), gen.choice(n, num_pairs, replace=False)


def diversity(acts: ArrayLike, *, num_pairs: int = 300, rng: np.random.Generator) -> float:
    """Diversity: mean distance of ``num_pairs`` random pairs of embeddings ``acts (N, D)``.

    As in the official code, two index vectors are drawn independently, each without
    replacement, and paired position by position (so a pair may repeat a sample).
    Needs ``N >= num_pairs``.
    """
    arr = _array("acts", acts, 2, "(N, D)")
    gen = _generator("rng", rng)
    n = arr.shape[0]
    if num_pairs < 1:
        raise ValueError(f"num_pairs must be positive, got {num_pairs}")
    if n < num_pairs:
        raise ValueError(
            f"diversity draws {num_pairs} samples without replacement but acts has only {n} rows "
            f"(shape {arr.shape}); use more samples or a smaller num_pairs"
        )
    first, second = _index_pairs(gen, n, num_pairs)
    return float(np.linalg.norm(arr[first] - arr[second], axis=1).mean())


def multimodality(acts: ArrayLike, *, num_pairs: int = 10, rng: np.random.Generator) -> float:
    """MultiModality of repeated generations ``acts (num_texts, num_repeats, D)``.

    For every text, the mean distance between ``num_pairs`` random pairs of its repeats,
    averaged over texts. As in the official code one pair of index vectors (each drawn
    without replacement) serves every text. Needs ``num_repeats >= num_pairs``.
    """
    arr = _array("acts", acts, 3, "(num_texts, num_repeats, D)")
    gen = _generator("rng", rng)
    repeats = arr.shape[1]
    if num_pairs < 1:
        raise ValueError(f"num_pairs must be positive, got {num_pairs}")
    if repeats < num_pairs:
        raise ValueError(
            f"multimodality draws {num_pairs} repeats without replacement but acts has only {repeats} "
            f"per text (shape {arr.shape})"
        )
    first, second = _index_pairs(gen, repeats, num_pairs)
    return float(np.linalg.norm(arr[:, first] - arr[:, second], axis=2).mean())


# Repetitions -------------------------------------------------------------------------


def mean_confidence_interval(values: ArrayLike) -> tuple[float, float]:
    """Mean and 95% half width ``1.96 * std / sqrt(R)`` of one metric over ``R`` repetitions.

    ``std`` is the population standard deviation (``ddof=0``), as MDM's
    ``get_metric_statistics``; one repetition therefore gives a half width of 0.
    """
    arr = _array("values", values, 1, "(R,)")
    return float(arr.mean()), float(CI_Z * arr.std() / np.sqrt(arr.shape[0]))


def summarise(reps: Sequence[Mapping[str, float]]) -> dict[str, tuple[float, float]]:
    """``{metric: (mean, half_width)}`` over repetitions, each a ``{metric: value}`` dict.

    Every repetition must hold the same metric names.
    """
    if not reps:
        raise ValueError("reps must hold at least one repetition, got an empty list")
    names = list(reps[0])
    for i, rep in enumerate(reps):
        if set(rep) != set(names):
            raise ValueError(f"reps[{i}] has metrics {sorted(rep)}, expected {sorted(names)}")
    return {name: mean_confidence_interval([rep[name] for rep in reps]) for name in names}


# Emotion classification --------------------------------------------------------------


def _labels(y_true: ArrayLike, y_pred: ArrayLike, num_classes: int | None) -> tuple[np.ndarray, np.ndarray]:
    true = np.asarray(y_true)
    pred = np.asarray(y_pred)
    for name, arr in (("y_true", true), ("y_pred", pred)):
        if arr.ndim != 1 or arr.size == 0:
            raise ValueError(f"{name} must have shape (N,), got shape {arr.shape}")
        if not np.issubdtype(arr.dtype, np.integer):
            raise ValueError(f"{name} must hold integer class indices, got dtype {arr.dtype}")
        if num_classes is not None and (arr.min() < 0 or arr.max() >= num_classes):
            raise ValueError(
                f"{name} holds labels outside [0, {num_classes}) (min {arr.min()}, max {arr.max()})"
            )
    if true.shape != pred.shape:
        raise ValueError(f"y_true and y_pred must have the same shape, got {true.shape} and {pred.shape}")
    return true.astype(np.int64), pred.astype(np.int64)


def confusion_matrix(y_true: ArrayLike, y_pred: ArrayLike, num_classes: int) -> np.ndarray:
    """Counts ``(num_classes, num_classes)``: row = true class, column = predicted class."""
    if num_classes < 1:
        raise ValueError(f"num_classes must be positive, got {num_classes}")
    true, pred = _labels(y_true, y_pred, num_classes)
    counts = np.zeros((num_classes, num_classes), dtype=np.int64)
    np.add.at(counts, (true, pred), 1)
    return counts


def accuracy(y_true: ArrayLike, y_pred: ArrayLike) -> float:
    """Share of the ``N`` labels predicted correctly (``y_true``, ``y_pred`` of shape ``(N,)``)."""
    true, pred = _labels(y_true, y_pred, None)
    return float((true == pred).mean())


def f1_scores(y_true: ArrayLike, y_pred: ArrayLike, num_classes: int) -> dict[str, float | np.ndarray]:
    """Per-class, macro and weighted F1 of integer labels ``(N,)`` in ``[0, num_classes)``.

    Per class ``F1 = 2 TP / (2 TP + FP + FN)``, which equals the harmonic mean of
    precision and recall and needs no division by zero elsewhere: a class that is
    predicted but never true, or true but never predicted, scores 0. A class absent
    from both ``y_true`` and ``y_pred`` has no F1 (NaN in ``per_class``) and is left out
    of the macro mean. The weighted mean weighs each class by its support (count in
    ``y_true``), so classes never true weigh 0. Returns ``{"macro": float,
    "weighted": float, "per_class": (num_classes,) array}``.
    """
    counts = confusion_matrix(y_true, y_pred, num_classes)
    tp = np.diag(counts).astype(np.float64)
    fp = counts.sum(axis=0) - tp
    fn = counts.sum(axis=1) - tp
    denominator = 2.0 * tp + fp + fn
    present = denominator > 0
    per_class = np.full(num_classes, np.nan)
    per_class[present] = 2.0 * tp[present] / denominator[present]
    support = counts.sum(axis=1).astype(np.float64)
    weighted = float((support[present] * per_class[present]).sum() / support.sum())
    return {"macro": float(per_class[present].mean()), "weighted": weighted, "per_class": per_class}


# Motion quality on joints (T, 22, 3) -------------------------------------------------


def _joints(joints: ArrayLike, min_frames: int, name: str = "joints") -> np.ndarray:
    arr = _array(name, joints, 3, f"(T, {NUM_JOINTS}, 3)")
    if arr.shape[1:] != (NUM_JOINTS, 3) or arr.shape[0] < min_frames:
        raise ValueError(
            f"{name} must have shape (T, {NUM_JOINTS}, 3) with T >= {min_frames}, got shape {arr.shape}"
        )
    return arr


def _positive(name: str, value: float) -> float:
    if not (np.isfinite(value) and value > 0):
        raise ValueError(f"{name} must be positive and finite, got {value}")
    return float(value)


@dataclass(frozen=True)
class FootSkating:
    """Foot skating of one clip (see :func:`foot_skating`)."""

    velocity: float
    """Mean horizontal speed (m/s) of foot joints while in contact with the floor."""
    ratio: float
    """Share of frame steps in which some foot joint in contact skids faster than ``skid_speed``."""


def foot_skating(
    joints: ArrayLike, *, fps: float = FPS, height_threshold: float = 0.05, skid_speed: float = 0.5
) -> FootSkating:
    """Foot skating of joints ``(T, 22, 3)`` (metres, Y up, floor at 0), ``T >= 2``.

    The feet are the ankles and toes (joints 7, 10, 8, 11). A foot joint is in contact
    over the step ``t -> t+1`` when its height is below ``height_threshold`` at both
    frames; its sliding speed is its horizontal (XZ) displacement times ``fps``.
    ``velocity`` is the mean sliding speed over all (step, foot joint) contacts, 0 when
    there is none. ``ratio`` follows the "foot skating ratio" of GMD (Karunratanakul et
    al. 2023): the share of the ``T - 1`` steps in which any foot joint in contact moves
    faster than ``skid_speed`` (0.5 m/s = their 2.5 cm per frame at 20 fps).
    """
    arr = _joints(joints, 2)
    fps = _positive("fps", fps)
    _positive("height_threshold", height_threshold)
    _positive("skid_speed", skid_speed)
    feet = arr[:, list(FOOT_JOINTS)]  # (T, 4, 3)
    low = feet[:, :, 1] < height_threshold  # (T, 4)
    contact = low[:-1] & low[1:]  # (T-1, 4)
    speed = np.linalg.norm(np.diff(feet[:, :, [0, 2]], axis=0), axis=2) * fps  # (T-1, 4)
    velocity = float(speed[contact].mean()) if contact.any() else 0.0
    ratio = float((contact & (speed > skid_speed)).any(axis=1).mean())
    return FootSkating(velocity=velocity, ratio=ratio)


def jitter(joints: ArrayLike, fps: float = FPS) -> float:
    """Mean jerk magnitude (m/s^3) of joints ``(T, 22, 3)``, ``T >= 4``.

    Jerk is the third finite difference of positions times ``fps ** 3``; the mean runs
    over the ``T - 3`` steps and the 22 joints.
    """
    arr = _joints(joints, 4)
    fps = _positive("fps", fps)
    jerk = np.diff(arr, n=3, axis=0) * fps**3  # (T-3, 22, 3)
    return float(np.linalg.norm(jerk, axis=2).mean())


def floor_penetration(joints: ArrayLike) -> float:
    """Mean depth (m) below the floor ``y = 0`` of the joint positions ``(T, 22, 3)`` under it.

    Averages ``-y`` over the (frame, joint) entries with ``y < 0``; 0 when none is below.
    """
    heights = _joints(joints, 1)[:, :, 1]  # (T, 22)
    below = heights < 0.0
    return float(-heights[below].mean()) if below.any() else 0.0


def mean_joint_speed(joints: ArrayLike, fps: float = FPS) -> float:
    """Mean speed (m/s) of joints ``(T, 22, 3)`` over the ``T - 1`` steps and 22 joints, ``T >= 2``."""
    arr = _joints(joints, 2)
    fps = _positive("fps", fps)
    return float(np.linalg.norm(np.diff(arr, axis=0), axis=2).mean() * fps)


def static_rate(
    motions: Sequence[ArrayLike],
    reference_median_speed: float,
    *,
    fraction: float = 0.2,
    fps: float = FPS,
) -> float:
    """Share of clips ``(T, 22, 3)`` that barely move.

    A clip is static when its :func:`mean_joint_speed` is below ``fraction *
    reference_median_speed``, the reference being the median mean joint speed of real
    motions (e.g. the test split).
    """
    if len(motions) == 0:
        raise ValueError("motions must hold at least one clip, got an empty sequence")
    threshold = _positive("fraction", fraction) * _positive("reference_median_speed", reference_median_speed)
    static = [
        mean_joint_speed(_joints(m, 2, f"motions[{i}]"), fps) < threshold for i, m in enumerate(motions)
    ]
    return float(np.mean(static))
