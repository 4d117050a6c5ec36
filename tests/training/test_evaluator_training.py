"""Evaluator and emotion-classifier training on the shared loop: loss falls, reload, exact resume."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest
import torch

from emomotion.checkpoint import load_checkpoint
from emomotion.errors import ConfigError
from emomotion.training.config import TrainConfig
from emomotion.training.emotion_classifier import EmotionClassifierRun, run_emotion_classifier
from emomotion.training.evaluator import EvaluatorRun, contrastive_margin_loss, run_evaluator


@pytest.fixture(scope="module")
def data(synthetic_train_set) -> Path:
    return synthetic_train_set


def _cfg(steps: int, save_every: int | None = None) -> TrainConfig:
    return TrainConfig(
        steps=steps, batch_size=8, lr=1e-3, ema_decay=0.0, log_every=1, save_every=save_every or steps
    )


def _losses(run_dir: Path) -> list[float]:
    with open(run_dir / "metrics.csv") as fh:
        return [float(r["loss"]) for r in csv.DictReader(fh)]


def test_contrastive_loss_is_the_official_margin_loss():
    t = torch.tensor([[0.0, 0.0], [3.0, 4.0]])
    m = torch.tensor([[0.0, 1.0], [3.0, 4.0]])
    loss, parts = contrastive_margin_loss(t, m, margin=10.0, shift=1)
    # positives: d = 1, 0 -> mean d^2 = 0.5; negatives: t0-m1 = 5, t1-m0 = sqrt(9+9) -> (10-d)^2
    negative = ((10 - 5.0) ** 2 + (10 - np.sqrt(18.0)) ** 2) / 2
    assert parts["positive"] == pytest.approx(0.5, rel=1e-4) and float(loss) == pytest.approx(
        0.5 + negative, rel=1e-4
    )


def test_evaluator_trains_reloads_and_resumes_exactly(data, tmp_path):
    last = run_evaluator(EvaluatorRun(data, tmp_path / "a", train=_cfg(16)))
    curve = _losses(tmp_path / "a")
    assert len(curve) == 16 and np.mean(curve[-4:]) < np.mean(curve[:4])
    ckpt = load_checkpoint(last)
    assert ckpt.kind == "evaluator" and ckpt.config["embed_dim"] == 128
    model = ckpt.build_model()
    np.testing.assert_allclose(model.mean.numpy(), np.load(data / "Mean.npy"))
    x = np.random.default_rng(0).standard_normal((2, 44, 263)).astype(np.float32)
    a = model.embed_motion(x, [44, 41])
    assert a.shape == (2, 128) and torch.equal(
        a, load_checkpoint(last).build_model().embed_motion(x, [44, 41])
    )
    first = run_evaluator(EvaluatorRun(data, tmp_path / "b", train=_cfg(16, save_every=100)), stop_after=6)
    assert first.name == "step00000006.safetensors"
    resumed = run_evaluator(EvaluatorRun(data, tmp_path / "b", train=_cfg(16, save_every=100)), resume=True)
    for key, value in ckpt.model_state.items():
        assert torch.equal(value, load_checkpoint(resumed).model_state[key]), key
    assert _losses(tmp_path / "a") == _losses(tmp_path / "b")


def test_emotion_classifier_trains_and_reloads(data, tmp_path):
    last = run_emotion_classifier(EmotionClassifierRun(data, tmp_path / "c", preset="tiny", train=_cfg(20)))
    curve = _losses(tmp_path / "c")
    assert np.mean(curve[-5:]) < np.mean(curve[:5])
    ckpt = load_checkpoint(last)
    assert ckpt.kind == "emotion_classifier" and ckpt.extra["emotions"][0] == "Anger"
    x = np.random.default_rng(0).standard_normal((3, 40, 263)).astype(np.float32)
    probs = ckpt.build_model().predict(x, [40, 30, 20])
    assert probs.shape == (3, 8) and np.allclose(probs.sum(1), 1.0)
    np.testing.assert_array_equal(probs, load_checkpoint(last).build_model().predict(x, [40, 30, 20]))


def test_bad_runs_are_config_errors(data, tmp_path):
    with pytest.raises(ConfigError, match="margin"):
        EvaluatorRun(data, tmp_path, margin=0.0)
    with pytest.raises(ConfigError, match="unknown evaluator preset"):
        run_evaluator(EvaluatorRun(data, tmp_path, preset="huge", train=_cfg(1)))
