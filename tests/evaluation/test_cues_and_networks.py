"""Cues on constructed motions; evaluator and classifier networks: layout, presets, validation."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from emomotion.data.synthetic import generate_clip
from emomotion.errors import ConfigError
from emomotion.evaluation.cues import clip_cues, cue_table, forward_directions
from emomotion.models.emotion_classifier import EmotionClassifier
from emomotion.models.emotion_classifier import preset as classifier_preset
from emomotion.models.evaluator import Evaluator, EvaluatorConfig, build_from_config, preset


def _walk(emotion: str) -> np.ndarray:
    return generate_clip("walk", emotion, seconds=4.0, seed=1, actor=0).joints


def test_cues_follow_the_emotional_styles():
    joy, sad, anger = clip_cues(_walk("Joy")), clip_cues(_walk("Sadness")), clip_cues(_walk("Anger"))
    assert sad.head_pitch > joy.head_pitch + 20 and sad.torso_lean > joy.torso_lean + 5
    assert joy.speed > sad.speed and joy.arm_expansion > sad.arm_expansion
    assert anger.jerk > sad.jerk and joy.stride_length > sad.stride_length > 0.1
    walk = _walk("Neutral")
    forward = forward_directions(walk)
    travel = walk[-1, 0] - walk[0, 0]
    assert float(np.dot(forward.mean(0), travel)) > 0.5 * np.linalg.norm(travel)  # faces where it walks


def test_cues_on_a_still_pose_and_the_table():
    still = np.repeat(_walk("Neutral")[:1], 30, axis=0)
    cues = clip_cues(still)
    assert cues.speed == 0 and cues.jerk == 0 and cues.stride_length == 0 and cues.root_height > 0.5
    table = cue_table([cues, clip_cues(_walk("Joy"))], ["Neutral", "Joy"])
    assert set(table) == {"all", "Joy", "Neutral"} and table["Neutral"]["speed"] == (0.0, 0.0)
    with pytest.raises(ValueError, match="shape"):
        clip_cues(np.zeros((3, 22, 3)))


def test_evaluator_official_layout_and_presets():
    model = Evaluator(preset("t2m", text_frontend="glove", word_dim=300, vocabulary=("unk", "sos", "eos")))
    state = model.state_dict()
    assert state["movement_encoder.main.0.weight"].shape == (512, 259, 4)
    assert state["movement_encoder.main.3.weight"].shape == (512, 512, 4)
    assert state["text_encoder.pos_emb.weight"].shape == (300, 15)
    assert state["text_encoder.gru.weight_ih_l0_reverse"].shape == (3 * 512, 512)
    assert state["motion_encoder.hidden"].shape == (2, 1, 1024)
    assert state["motion_encoder.output_net.3.weight"].shape == (512, 1024)
    tiny = build_from_config({"embed_dim": 128, "movement_hidden": 64, "unknown_key": 1}).eval()
    assert "text_encoder.pos_emb.weight" not in tiny.state_dict()
    x = torch.randn(3, 50, 263)
    out = tiny.embed_motion(x.numpy(), [50, 47, 20])
    assert out.shape == (3, 128) and torch.isfinite(out).all()
    # frames past a length never matter
    y = x.clone()
    y[2, 20:] = 99.0
    assert torch.allclose(tiny.embed_motion(y.numpy(), [50, 47, 20])[2], out[2], atol=1e-5)


def test_config_validation():
    with pytest.raises(ConfigError, match="special tokens"):
        EvaluatorConfig(text_frontend="glove", vocabulary=("a",))
    with pytest.raises(ConfigError, match="unknown evaluator preset"):
        preset("huge")
    with pytest.raises(ConfigError, match="at least 4 frames"):
        Evaluator(preset("tiny")).embed_motion(np.zeros((1, 8, 263), np.float32), [3])
    with pytest.raises(ConfigError, match="odd"):
        classifier_preset("tiny", kernel=4)


def test_classifier_ignores_padding():
    torch.manual_seed(0)
    model = EmotionClassifier(classifier_preset("tiny")).eval()
    x = np.random.default_rng(0).standard_normal((2, 60, 263)).astype(np.float32)
    y = x.copy()
    y[1, 40:] = 50.0
    a, b = model.predict(x, [60, 40]), model.predict(y, [60, 40])
    np.testing.assert_allclose(a[1], b[1], atol=1e-5)
