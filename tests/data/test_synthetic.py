"""The procedural emotional motion generator: deterministic, clean skeletons, measurable cues."""

from __future__ import annotations

import numpy as np
import pytest

from emomotion import features as F
from emomotion import skeleton as sk
from emomotion.data.emotions import EMOTIONS
from emomotion.data.synthetic import ACTIONS, generate_clip, generate_corpus
from emomotion.errors import ConfigError


def root_speed(j: np.ndarray) -> float:
    return float(np.linalg.norm(np.diff(j[:, 0, [0, 2]], axis=0), axis=-1).mean() * sk.FPS)


def head_height(j: np.ndarray) -> float:
    return float((j[:, 15, 1] - j[:, 0, 1]).mean())


def jerk(j: np.ndarray) -> float:
    return float(np.linalg.norm(np.diff(j, 3, axis=0), axis=-1).mean() * sk.FPS**3)


@pytest.fixture(scope="module")
def walks():
    return {e: generate_clip("walk", e, seconds=4.0, seed=3).joints for e in EMOTIONS}


def test_deterministic_and_seeded():
    a = generate_clip("knock", "Anger", seed=1).joints
    np.testing.assert_array_equal(a, generate_clip("knock", "Anger", seed=1).joints)
    assert not np.array_equal(a, generate_clip("knock", "Anger", seed=2).joints)


@pytest.mark.parametrize("action", sorted(ACTIONS))
def test_every_action_is_a_clean_skeleton_on_the_floor(action):
    clip = generate_clip(action, "Joy", seconds=3.0, seed=0, actor=1)
    j = clip.joints
    assert j.shape == (60, 22, 3) and np.isfinite(j).all()
    lengths = F.bone_lengths(j)
    np.testing.assert_allclose(lengths, np.broadcast_to(lengths[0], lengths.shape), atol=1e-9)
    feet = j[:, [7, 8, 10, 11], 1]
    assert abs(feet.min()) < 0.02 and j[..., 1].min() > -0.02
    again = F.recover_joints(F.joints_to_features(j))
    np.testing.assert_allclose(again, F.canonicalise(j)[:-1], atol=1e-3)


def test_emotion_cues_differ_as_the_literature_says(walks):
    assert root_speed(walks["Sadness"]) < root_speed(walks["Neutral"]) < root_speed(walks["Joy"])
    assert root_speed(walks["Sadness"]) < root_speed(walks["Anger"])
    assert head_height(walks["Sadness"]) < head_height(walks["Joy"])
    assert head_height(walks["Shame"]) < head_height(walks["Pride"])
    assert jerk(walks["Anger"]) > 2 * jerk(walks["Neutral"])
    assert walks["Neutral"][-1, 0, 2] - walks["Neutral"][0, 0, 2] > 1.0


def test_actions_do_what_they_say():
    sit = generate_clip("sit_down", "Neutral", seconds=4.0).joints
    assert sit[-1, 0, 1] < sit[0, 0, 1] - 0.25
    wave = generate_clip("wave", "Neutral", seconds=4.0).joints
    assert (wave[:, 21, 1] > wave[:, 15, 1]).any()


def test_intensity_zero_is_neutral():
    for emotion in ("Sadness", "Panic Fear"):
        np.testing.assert_allclose(
            generate_clip("walk", emotion, intensity=0.0, seed=5).joints,
            generate_clip("walk", "Neutral", seed=5).joints,
        )


def test_corpus_is_deterministic():
    a = [c.joints for c in generate_corpus(actions=["wave"], emotions=["Joy", "Shame"], seed=4)]
    b = [c.joints for c in generate_corpus(actions=["wave"], emotions=["Joy", "Shame"], seed=4)]
    assert len(a) == 2 and all(np.array_equal(x, y) for x, y in zip(a, b, strict=True))


@pytest.mark.parametrize(
    "kwargs",
    [{"action": "juggle"}, {"emotion": "Boredom"}, {"seconds": 0.5}, {"seconds": 12.0}, {"intensity": 2.0}],
)
def test_bad_arguments(kwargs):
    args = {"action": "walk", "emotion": "Joy", **kwargs}
    with pytest.raises(ConfigError):
        generate_clip(args.pop("action"), args.pop("emotion"), **args)
