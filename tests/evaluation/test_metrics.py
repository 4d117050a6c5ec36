"""Known-value tests of the evaluation metrics."""

from __future__ import annotations

import numpy as np
import pytest

from emomotion.evaluation.metrics import (
    FootSkating,
    accuracy,
    activation_statistics,
    confusion_matrix,
    diversity,
    euclidean_distance_matrix,
    f1_scores,
    fid,
    floor_penetration,
    foot_skating,
    frechet_distance,
    jitter,
    matching_score,
    mean_confidence_interval,
    mean_joint_speed,
    mm_dist,
    multimodality,
    r_precision,
    static_rate,
    summarise,
)

FPS = 20


def _brute_distances(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return np.array([[np.sqrt(((x - y) ** 2).sum()) for y in b] for x in a])


def _brute_r_precision(text: np.ndarray, motion: np.ndarray, top_k: int) -> np.ndarray:
    hits = np.zeros(top_k)
    n = (len(text) // 32) * 32
    for start in range(0, n, 32):
        t, m = text[start : start + 32], motion[start : start + 32]
        for i in range(32):
            dist = _brute_distances(t[i : i + 1], m)[0]
            rank = int((dist < dist[i]).sum())
            hits += rank < np.arange(1, top_k + 1)
    return hits / n


# Distances, R-precision, MM-Dist ------------------------------------------------------


def test_distance_matrix_matches_brute_force() -> None:
    rng = np.random.default_rng(0)
    a, b = rng.normal(size=(7, 5)), rng.normal(size=(4, 5))
    np.testing.assert_allclose(euclidean_distance_matrix(a, b), _brute_distances(a, b), atol=1e-12)


def test_distance_matrix_of_identical_rows_is_zero_not_nan() -> None:
    a = np.full((3, 512), 1e3)
    dist = euclidean_distance_matrix(a, a)
    assert np.isfinite(dist).all()
    np.testing.assert_allclose(dist, 0.0, atol=1e-3)


def test_distance_matrix_rejects_mismatched_width() -> None:
    with pytest.raises(ValueError, match=r"a and b .* \(2, 3\) and \(2, 4\)"):
        euclidean_distance_matrix(np.zeros((2, 3)), np.zeros((2, 4)))


def test_r_precision_is_one_for_identical_embeddings() -> None:
    emb = 10.0 * np.random.default_rng(1).normal(size=(96, 64))
    np.testing.assert_array_equal(r_precision(emb, emb), [1.0, 1.0, 1.0])
    shuffled = r_precision(emb, emb, rng=np.random.default_rng(2))
    np.testing.assert_array_equal(shuffled, [1.0, 1.0, 1.0])


def test_r_precision_is_chance_for_independent_embeddings() -> None:
    rng = np.random.default_rng(3)
    n = 32 * 300
    result = r_precision(rng.normal(size=(n, 16)), rng.normal(size=(n, 16)), top_k=3)
    chance = np.arange(1, 4) / 32
    # standard error of the top-3 rate is ~0.003; 0.015 is five of them
    np.testing.assert_allclose(result, chance, atol=0.015)


def test_r_precision_drops_the_remainder() -> None:
    rng = np.random.default_rng(4)
    matched = 10.0 * rng.normal(size=(64, 8))
    text = np.concatenate([matched, rng.normal(size=(6, 8))])
    motion = np.concatenate([matched, rng.normal(size=(6, 8))])
    np.testing.assert_array_equal(r_precision(text, motion), [1.0, 1.0, 1.0])


def test_r_precision_matches_brute_force_and_is_seeded() -> None:
    rng = np.random.default_rng(5)
    motion = rng.normal(size=(100, 8))
    text = motion + 0.8 * rng.normal(size=(100, 8))
    np.testing.assert_allclose(r_precision(text, motion, top_k=5), _brute_r_precision(text, motion, 5))
    first = r_precision(text, motion, rng=np.random.default_rng(9))
    second = r_precision(text, motion, rng=np.random.default_rng(9))
    np.testing.assert_array_equal(first, second)
    assert np.all(np.diff(first) >= 0)


def test_r_precision_needs_a_full_batch() -> None:
    emb = np.zeros((31, 4))
    with pytest.raises(ValueError, match="at least batch_size=32 pairs, got 31"):
        r_precision(emb, emb)


def test_mm_dist_known_values() -> None:
    text = np.random.default_rng(6).normal(size=(10, 3))
    assert mm_dist(text, text) == 0.0
    assert mm_dist(text, text + np.array([3.0, 4.0, 0.0])) == pytest.approx(5.0)
    assert matching_score is mm_dist


def test_embedding_validation_names_argument_and_shape() -> None:
    good = np.zeros((40, 4))
    with pytest.raises(ValueError, match=r"motion_emb must have shape \(N, D\), got shape \(40,\)"):
        r_precision(good, np.zeros(40))
    bad = good.copy()
    bad[3, 1] = np.nan
    with pytest.raises(ValueError, match=r"text_emb contains NaN .*\(40, 4\)"):
        mm_dist(bad, good)


# FID -----------------------------------------------------------------------------------


def test_fid_of_a_set_with_itself_is_zero() -> None:
    acts = np.random.default_rng(7).normal(size=(500, 8))
    assert fid(acts, acts) == pytest.approx(0.0, abs=1e-8)


def test_frechet_distance_closed_form_diagonal() -> None:
    mu1, mu2 = np.array([0.0, 1.0, -2.0]), np.array([1.0, 1.0, 0.5])
    s1, s2 = np.array([1.0, 4.0, 0.25]), np.array([9.0, 1.0, 0.25])
    expected = ((mu1 - mu2) ** 2).sum() + (s1 + s2 - 2.0 * np.sqrt(s1 * s2)).sum()
    assert frechet_distance(mu1, np.diag(s1), mu2, np.diag(s2)) == pytest.approx(expected, rel=1e-10)


def test_frechet_distance_general_covariances_and_symmetry() -> None:
    rng = np.random.default_rng(8)
    a, b = rng.normal(size=(6, 6)), rng.normal(size=(6, 6))
    sigma1, sigma2 = a @ a.T + 0.1 * np.eye(6), b @ b.T + 0.1 * np.eye(6)
    mu1, mu2 = rng.normal(size=6), rng.normal(size=6)
    w, v = np.linalg.eigh(sigma1)
    root1 = (v * np.sqrt(w)) @ v.T
    inner = np.linalg.eigvalsh(root1 @ sigma2 @ root1)
    expected = ((mu1 - mu2) ** 2).sum() + np.trace(sigma1 + sigma2) - 2.0 * np.sqrt(inner).sum()
    forward = frechet_distance(mu1, sigma1, mu2, sigma2)
    assert forward == pytest.approx(expected, rel=1e-8)
    assert frechet_distance(mu2, sigma2, mu1, sigma1) == pytest.approx(forward, rel=1e-8)


def test_fid_of_samples_approaches_closed_form() -> None:
    rng = np.random.default_rng(9)
    mu1, mu2 = np.array([0.0, 0.0, 1.0]), np.array([0.5, -0.5, 1.0])
    s1, s2 = np.array([1.0, 2.0, 0.5]), np.array([2.0, 1.0, 0.5])
    expected = ((mu1 - mu2) ** 2).sum() + (s1 + s2 - 2.0 * np.sqrt(s1 * s2)).sum()
    a = mu1 + np.sqrt(s1) * rng.normal(size=(40_000, 3))
    b = mu2 + np.sqrt(s2) * rng.normal(size=(40_000, 3))
    assert fid(a, b) == pytest.approx(expected, abs=0.05)
    assert fid(a, b) == pytest.approx(fid(b, a), rel=1e-6)


def test_fid_with_singular_covariances_is_finite() -> None:
    rng = np.random.default_rng(10)
    a, b = rng.normal(size=(5, 12)), rng.normal(size=(5, 12))
    value = fid(a, b)
    assert np.isfinite(value)
    assert value > 0


def test_activation_statistics_and_validation() -> None:
    acts = np.array([[0.0, 0.0], [2.0, 4.0]])
    mu, sigma = activation_statistics(acts)
    np.testing.assert_allclose(mu, [1.0, 2.0])
    np.testing.assert_allclose(sigma, [[2.0, 4.0], [4.0, 8.0]])
    with pytest.raises(ValueError, match=r"at least 2 rows .*\(1, 2\)"):
        activation_statistics(acts[:1])
    with pytest.raises(ValueError, match=r"sigma2"):
        frechet_distance(mu, np.eye(2), mu, np.eye(3))


# Diversity, MultiModality ---------------------------------------------------------------


def test_diversity_known_configurations() -> None:
    assert diversity(np.ones((400, 5)), rng=np.random.default_rng(0)) == 0.0
    clusters = np.zeros((1000, 4))
    clusters[500:, 0] = 10.0
    value = diversity(clusters, rng=np.random.default_rng(1))
    assert value == pytest.approx(5.0, abs=1.0)


def test_diversity_is_deterministic_for_a_seed() -> None:
    acts = np.random.default_rng(2).normal(size=(400, 8))
    first = diversity(acts, rng=np.random.default_rng(3))
    assert diversity(acts, rng=np.random.default_rng(3)) == first
    assert diversity(acts, rng=np.random.default_rng(4)) != first


def test_diversity_needs_enough_samples() -> None:
    with pytest.raises(ValueError, match="300 samples without replacement but acts has only 299 rows"):
        diversity(np.zeros((299, 2)), rng=np.random.default_rng(0))


def test_multimodality_known_values() -> None:
    same = np.repeat(np.random.default_rng(5).normal(size=(6, 1, 4)), 12, axis=1)
    assert multimodality(same, rng=np.random.default_rng(0)) == 0.0
    two_points = np.zeros((3, 10, 2))
    two_points[:, 5:, 1] = 2.0
    # every pair is at distance 0 or 2; the mean lies in between and is seeded
    value = multimodality(two_points, rng=np.random.default_rng(1))
    assert 0.0 < value < 2.0
    assert multimodality(two_points, rng=np.random.default_rng(1)) == value
    with pytest.raises(ValueError, match=r"only 9 per text \(shape \(3, 9, 2\)\)"):
        multimodality(two_points[:, :9], rng=np.random.default_rng(0))


def test_sampling_metrics_require_a_generator() -> None:
    with pytest.raises(ValueError, match=r"numpy\.random\.Generator"):
        diversity(np.zeros((400, 2)), rng=0)  # type: ignore[arg-type]


# Confidence intervals -------------------------------------------------------------------


def test_mean_confidence_interval_known_values() -> None:
    mean, half = mean_confidence_interval([1.0, 2.0, 3.0, 4.0])
    assert mean == pytest.approx(2.5)
    assert half == pytest.approx(1.96 * np.sqrt(1.25) / 2.0)
    assert mean_confidence_interval([0.7]) == (pytest.approx(0.7), 0.0)


def test_summarise_over_repetitions() -> None:
    summary = summarise([{"fid": 1.0, "diversity": 2.0}, {"fid": 3.0, "diversity": 2.0}])
    assert summary["fid"] == (pytest.approx(2.0), pytest.approx(1.96 / np.sqrt(2.0)))
    assert summary["diversity"] == (pytest.approx(2.0), 0.0)
    with pytest.raises(ValueError, match=r"reps\[1\]"):
        summarise([{"fid": 1.0}, {"diversity": 2.0}])
    with pytest.raises(ValueError, match="empty"):
        summarise([])


# Emotion classification -----------------------------------------------------------------


Y_TRUE = np.array([0, 0, 0, 1, 1, 2])
Y_PRED = np.array([0, 0, 1, 1, 2, 2])


def test_confusion_matrix_and_accuracy() -> None:
    expected = [[2, 1, 0, 0], [0, 1, 1, 0], [0, 0, 1, 0], [0, 0, 0, 0]]
    np.testing.assert_array_equal(confusion_matrix(Y_TRUE, Y_PRED, 4), expected)
    assert accuracy(Y_TRUE, Y_PRED) == pytest.approx(4 / 6)


def test_f1_macro_weighted_and_absent_class() -> None:
    scores = f1_scores(Y_TRUE, Y_PRED, 4)
    per_class = scores["per_class"]
    np.testing.assert_allclose(per_class[:3], [0.8, 0.5, 2 / 3])
    assert np.isnan(per_class[3])
    assert scores["macro"] == pytest.approx((0.8 + 0.5 + 2 / 3) / 3)
    assert scores["weighted"] == pytest.approx((3 * 0.8 + 2 * 0.5 + 1 * 2 / 3) / 6)


def test_f1_zero_division_gives_zero() -> None:
    scores = f1_scores(np.array([0, 0]), np.array([1, 1]), 2)
    np.testing.assert_array_equal(scores["per_class"], [0.0, 0.0])
    assert scores["macro"] == 0.0
    assert scores["weighted"] == 0.0
    perfect = f1_scores(Y_TRUE, Y_TRUE, 3)
    assert perfect["macro"] == perfect["weighted"] == 1.0


def test_label_validation() -> None:
    with pytest.raises(ValueError, match=r"y_pred holds labels outside \[0, 3\)"):
        confusion_matrix(Y_TRUE, Y_PRED + 1, 3)
    with pytest.raises(ValueError, match="integer class indices"):
        accuracy(Y_TRUE.astype(float), Y_PRED)
    with pytest.raises(ValueError, match="same shape"):
        accuracy(Y_TRUE, Y_PRED[:3])


# Motion quality -------------------------------------------------------------------------


def _pose() -> np.ndarray:
    """A standing pose (22, 3): the toes on the floor, the ankles 3 cm above, the rest higher."""
    rng = np.random.default_rng(11)
    pose = rng.uniform(-0.3, 0.3, size=(22, 3))
    pose[:, 1] = rng.uniform(0.1, 1.7, size=22)
    pose[[10, 11], 1] = 0.0
    pose[[7, 8], 1] = 0.03
    return pose


def _slide(speed: float, frames: int = 40) -> np.ndarray:
    joints = np.repeat(_pose()[None], frames, axis=0)
    joints[:, :, 0] += speed * np.arange(frames)[:, None] / FPS
    return joints


def test_static_figure_has_no_motion_artefacts() -> None:
    static = _slide(0.0)
    assert foot_skating(static) == FootSkating(velocity=0.0, ratio=0.0)
    assert jitter(static) == 0.0
    assert mean_joint_speed(static) == 0.0
    assert floor_penetration(static) == 0.0


def test_sliding_figure_skates_at_the_slide_speed() -> None:
    fast = foot_skating(_slide(0.8))
    assert fast.velocity == pytest.approx(0.8)
    assert fast.ratio == 1.0
    slow = foot_skating(_slide(0.3))
    assert slow.velocity == pytest.approx(0.3)
    assert slow.ratio == 0.0
    assert mean_joint_speed(_slide(0.8)) == pytest.approx(0.8)


def test_lifted_feet_do_not_skate() -> None:
    lifted = _slide(0.8)
    lifted[:, :, 1] += 0.2
    assert foot_skating(lifted) == FootSkating(velocity=0.0, ratio=0.0)


def test_quadratic_path_has_no_jerk_but_noise_does() -> None:
    t = np.arange(60) / FPS
    joints = np.repeat(_pose()[None], 60, axis=0)
    joints[:, :, 0] += (0.5 * t + 0.7 * t**2)[:, None]
    joints[:, :, 2] += (-0.3 * t**2)[:, None]
    assert jitter(joints) == pytest.approx(0.0, abs=1e-6)
    noisy = joints + 0.005 * np.random.default_rng(12).normal(size=joints.shape)
    assert jitter(noisy) > 10.0


def test_lowered_figure_penetrates_by_the_offset() -> None:
    lowered = _slide(0.0)
    lowered[:, :, 1] -= 0.05
    # the toes and the ankles (3 cm above them) end up 5 and 2 cm below the floor
    assert floor_penetration(lowered) == pytest.approx(0.035)
    lowered_by_3cm = _slide(0.0)
    lowered_by_3cm[:, :, 1] -= 0.03
    assert floor_penetration(lowered_by_3cm) == pytest.approx(0.03)


def test_static_rate_counts_slow_clips() -> None:
    clips = [_slide(0.0), _slide(0.05), _slide(1.0), _slide(0.5)]
    assert static_rate(clips, reference_median_speed=1.0) == pytest.approx(0.5)
    assert static_rate(clips, reference_median_speed=1.0, fraction=0.01) == pytest.approx(0.25)


def test_motion_validation_names_argument_and_shape() -> None:
    with pytest.raises(
        ValueError, match=r"joints must have shape \(T, 22, 3\) with T >= 4, got shape \(3, 22, 3\)"
    ):
        jitter(np.zeros((3, 22, 3)))
    with pytest.raises(ValueError, match=r"motions\[1\] must have shape"):
        static_rate([np.zeros((5, 22, 3)), np.zeros((5, 21, 3))], 1.0)
    nan_clip = np.zeros((5, 22, 3))
    nan_clip[2, 3, 0] = np.nan
    with pytest.raises(ValueError, match="joints contains NaN"):
        mean_joint_speed(nan_clip)
    with pytest.raises(ValueError, match="reference_median_speed must be positive"):
        static_rate([np.zeros((5, 22, 3))], 0.0)
