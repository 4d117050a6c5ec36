"""Normalisation statistics (HumanML3D's recipe) and deterministic, disjoint splits."""

from __future__ import annotations

import numpy as np
import pytest

from emomotion.data.splits import SplitConfig, SplitItem, assign_splits, split_of
from emomotion.data.stats import compute_mean_std, group_average_std
from emomotion.errors import ConfigError
from emomotion.features import FEATURE_GROUPS
from tests.conftest import shared_path


def test_mean_std_equal_the_reference_recipe():
    rng = np.random.default_rng(0)
    clips = [rng.normal(loc=3.0, scale=rng.uniform(0.1, 2.0, 263), size=(n, 263)) for n in (50, 7, 120)]
    mean, std = compute_mean_std(clips)
    data = np.concatenate(clips)
    ref_std = data.std(axis=0)
    for sl in FEATURE_GROUPS.values():
        ref_std[sl] = ref_std[sl].mean()
    np.testing.assert_allclose(mean, data.mean(axis=0), rtol=1e-6)
    np.testing.assert_allclose(std, ref_std, rtol=1e-5)
    assert mean.dtype == np.float32 and std.dtype == np.float32


def test_zero_std_groups_become_one():
    _, std = compute_mean_std([np.zeros((10, 263))])
    assert (std == 1.0).all()


def test_official_std_is_constant_within_groups():
    std = np.load(shared_path("humanml3d-sample", "Std.npy"))
    np.testing.assert_allclose(group_average_std(std), std, rtol=1e-6)


def items(n_actors=6, per_actor=10):
    emotions = ["Joy", "Sadness", "Anger"]
    return [
        SplitItem(f"a{a}_{i}", actor=f"actor{a}", group=f"act{i % 4}", emotion=emotions[i % 3])
        for a in range(n_actors)
        for i in range(per_actor)
    ]


def test_actor_disjoint_and_deterministic():
    cfg = SplitConfig(ratios=(0.66, 0.17, 0.17), seed=3)
    data = items()
    assignment, strategy = assign_splits(data, cfg)
    assert strategy == "actor"
    assert assignment == assign_splits(data, cfg)[0]
    by_actor = {}
    for item in data:
        by_actor.setdefault(item.actor, set()).add(assignment[item.clip_id])
    assert all(len(s) == 1 for s in by_actor.values())
    assert {s for v in by_actor.values() for s in v} == {"train", "val", "test"}
    assert assign_splits(data, SplitConfig(ratios=(0.66, 0.17, 0.17), seed=4))[0] != assignment


def test_stratified_keeps_emotion_proportions():
    data = [SplitItem(f"c{i}", emotion=["Joy", "Sadness"][i % 2]) for i in range(100)]
    assignment, strategy = assign_splits(data, SplitConfig(seed=1))
    assert strategy == "stratified"
    for emotion in ("Joy", "Sadness"):
        ids = [d.clip_id for d in data if d.emotion == emotion]
        assert sum(assignment[i] == "train" for i in ids) == 40
        assert sum(assignment[i] == "test" for i in ids) == 5


def test_group_strategy_requires_groups_and_mirrors_follow():
    assignment, _ = assign_splits(items(), SplitConfig(strategy="group"))
    assert split_of("Ma0_1", assignment) == assignment["a0_1"]
    with pytest.raises(ConfigError, match="needs a group"):
        assign_splits([SplitItem("x")], SplitConfig(strategy="group"))
    with pytest.raises(ConfigError):
        SplitConfig(ratios=(0.5, 0.5, 0.5))


def test_few_groups_still_fill_every_split():
    data = items(n_actors=3, per_actor=10)
    assignment, _ = assign_splits(data, SplitConfig(ratios=(0.8, 0.1, 0.1), strategy="actor"))
    assert set(assignment.values()) == {"train", "val", "test"}
    only_train, _ = assign_splits(data, SplitConfig(ratios=(1.0, 0.0, 0.0), strategy="actor"))
    assert set(only_train.values()) == {"train"}
